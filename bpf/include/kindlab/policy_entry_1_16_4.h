/* SPDX-License-Identifier: GPL-2.0 */
/* struct policy_entry from Cilium 1.16.4 to 1.16.x: the prefix length of port ranges (bpf/lib/common.h, later policy.h). */
#pragma once
#include "common.h"

struct policy_entry {
	__be16 proxy_port;	/* 0 = no L7 redirect */
	__u8 deny:1,
	     reserved:2,
	     lpm_prefix_length:5;	/* key prefix length minus 40 (port ranges) */
	__u8 auth_type;
	__u32 pad1;
	__u64 packets;
	__u64 bytes;
};
