/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_key / lb6_key (cilium_lb{4,6}_services_v2 keys), unchanged from Cilium 1.9 (bpf/lib/common.h, later lb.h). */
#pragma once
#include "common.h"

struct lb4_key {
	__be32 address;		/* service virtual IPv4 address */
	__be16 dport;		/* L4 port filter, if unset, all ports apply */
	__u16 backend_slot;	/* backend iterator, 0 indicates the svc frontend */
	__u8 proto;		/* L4 protocol, 0 before 1.17 */
	__u8 scope;		/* LB_LOOKUP_SCOPE_* for externalTrafficPolicy=Local */
	__u8 pad[2];
};

struct lb6_key {
	union v6addr address;
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 scope;
	__u8 pad[2];
};
