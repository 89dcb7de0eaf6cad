/* SPDX-License-Identifier: GPL-2.0 */
/* struct policy_entry from Cilium 1.19.0: rule precedence and a cookie (bpf/lib/common.h, later policy.h). */
#pragma once
#include "common.h"

struct policy_entry {
	__be16 proxy_port;	/* 0 = no L7 redirect */
	__u8 deny:1,
	     reserved:2,
	     lpm_prefix_length:5;	/* key prefix length minus 40 (port ranges) */
	__u8 auth_type:7,
	     has_explicit_auth_type:1;
	__u32 precedence;
	__u32 cookie;
};
