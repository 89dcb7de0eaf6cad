/* SPDX-License-Identifier: GPL-2.0 */
/* struct endpoint_key from Cilium 1.15.0 (bpf/lib/common.h, later eps.h). */
#pragma once
#include "common.h"

struct endpoint_key {
	union {
		struct {
			__u32 ip4;
			__u32 pad1;
			__u32 pad2;
			__u32 pad3;
		};
		union v6addr ip6;
	};
	__u8 family;
	__u8 key;
	__u16 cluster_id;
} __packed;
