/* SPDX-License-Identifier: GPL-2.0 */
/* struct tunnel_value (cilium_tunnel_map) in Cilium 1.11.20+, 1.12.13+, 1.13.6+, 1.14.1 to 1.17.x (bpf/lib/common.h). */
#pragma once
#include "common.h"

struct tunnel_value {
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
	__u16 pad;
} __packed;
