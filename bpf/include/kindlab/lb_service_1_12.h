/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_service / lb6_service from Cilium 1.12.0 to 1.16.x: the L7 LB proxy port joins the union. */
#pragma once
#include "common.h"

struct lb4_service {
	union {
		__u32 backend_id;
		__u32 affinity_timeout;
		__u32 l7_lb_proxy_port;	/* network order in the low 2 bytes (Go: HostToNetwork16) */
	};
	__u16 count;
	__be16 rev_nat_index;
	__u8 flags;
	__u8 flags2;
	__u8 pad[2];
};

struct lb6_service {
	union {
		__u32 backend_id;
		__u32 affinity_timeout;
		__u32 l7_lb_proxy_port;
	};
	__u16 count;
	__be16 rev_nat_index;
	__u8 flags;
	__u8 flags2;
	__u8 pad[2];
};
