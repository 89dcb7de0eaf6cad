/* SPDX-License-Identifier: GPL-2.0 */
/* struct ipv4_ct_tuple / ipv6_ct_tuple (conntrack keys), unchanged from Cilium 1.9 (bpf/lib/common.h). */
#pragma once
#include "common.h"

struct ipv4_ct_tuple {
	/* Address fields are reversed, i.e.,
	 * these field names are correct for reply direction traffic.
	 */
	__be32 daddr;
	__be32 saddr;
	/* The order of dport+sport must not be changed!
	 * These field names are correct for original direction traffic.
	 */
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 flags;		/* TUPLE_F_OUT 0, _IN 1, _RELATED 2, _SERVICE 4 */
} __packed;

struct ipv6_ct_tuple {
	union v6addr daddr;
	union v6addr saddr;
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 flags;
} __packed;
