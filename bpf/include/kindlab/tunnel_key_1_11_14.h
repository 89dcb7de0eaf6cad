/* SPDX-License-Identifier: GPL-2.0 */
/* struct tunnel_key (cilium_tunnel_map) in Cilium 1.11.14+, 1.12.8+, 1.13 and 1.14 (bpf/lib/common.h). */
#pragma once
#include "common.h"

struct tunnel_key {
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
	__u8 cluster_id;
	__u16 pad;
} __packed;
