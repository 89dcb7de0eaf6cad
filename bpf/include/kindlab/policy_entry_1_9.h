/* SPDX-License-Identifier: GPL-2.0 */
/* struct policy_entry from Cilium 1.9.0 to 1.12.x (bpf/lib/common.h, later policy.h). */
#pragma once
#include "common.h"

struct policy_entry {
	__be16 proxy_port;	/* 0 = no L7 redirect */
	__u8 deny:1,
	     pad:7;
	__u8 pad0;
	__u16 pad1;
	__u16 pad2;
	__u64 packets;
	__u64 bytes;
};
