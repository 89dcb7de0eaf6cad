/* SPDX-License-Identifier: GPL-2.0 */
/* struct tunnel_key (cilium_tunnel_map) in Cilium 1.15.0 to 1.17.x (bpf/lib/common.h). */
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
	__u8 pad;
	__u16 cluster_id;
} __packed;
