/* SPDX-License-Identifier: GPL-2.0 */
/* struct remote_endpoint_info from Cilium 1.18.0 (cilium_ipcache_v2; bpf/lib/eps.h).
 * flag_remote_cluster came with 1.18.2; before, bit 3 belonged to pad2 (always 0). */
#pragma once
#include "common.h"

struct remote_endpoint_info {
	__u32 sec_identity;
	union {
		struct {
			__u32 ip4;
			__u32 pad1;
			__u32 pad2;
			__u32 pad3;
		};
		union v6addr ip6;
	} tunnel_endpoint;
	__u16 pad;
	__u8 key;
	__u8 flag_skip_tunnel:1,
	     flag_has_tunnel_ep:1,
	     flag_ipv6_tunnel_ep:1,
	     flag_remote_cluster:1,
	     pad2:4;
};
