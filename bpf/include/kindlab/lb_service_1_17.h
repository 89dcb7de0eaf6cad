/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_service / lb6_service from Cilium 1.17.0: pad becomes the quarantined slot count. */
#pragma once
#include "common.h"

struct lb4_service {
	union {
		__u32 backend_id;
		__u32 affinity_timeout;	/* a frontend (slot 0): top 8 bits the LB algorithm, low 24 the timeout (s) */
		__u32 l7_lb_proxy_port;
	};
	__u16 count;
	__be16 rev_nat_index;
	__u8 flags;
	__u8 flags2;
	__u16 qcount;		/* slots count+1 .. count+qcount are quarantined */
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
	__u16 qcount;
};
