/* SPDX-License-Identifier: GPL-2.0 */
/* struct policy_entry from Cilium 1.14.0 to 1.16.3: wildcard bits for the LPM key (bpf/lib/common.h, later policy.h). */
#pragma once
#include "common.h"

struct policy_entry {
	__be16 proxy_port;	/* 0 = no L7 redirect */
	__u8 deny:1,
	     wildcard_protocol:1,	/* protocol is fully wildcarded */
	     wildcard_dport:1,		/* dport is fully wildcarded */
	     pad:5;
	__u8 auth_type;
	__u16 pad1;
	__u16 pad2;
	__u64 packets;
	__u64 bytes;
};
