/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_service / lb6_service from Cilium 1.9.0 to 1.11.x. */
#pragma once
#include "common.h"

struct lb4_service {
	union {
		__u32 backend_id;	/* Backend ID in lb4_backends */
		__u32 affinity_timeout;	/* In seconds, only for svc frontend */
	};
	__u16 count;
	__be16 rev_nat_index;	/* Reverse NAT ID in lb4_reverse_nat */
	__u8 flags;
	__u8 flags2;
	__u8 pad[2];
};

struct lb6_service {
	union {
		__u32 backend_id;
		__u32 affinity_timeout;
	};
	__u16 count;
	__be16 rev_nat_index;
	__u8 flags;
	__u8 flags2;
	__u8 pad[2];
};
