/* SPDX-License-Identifier: GPL-2.0 */
/* struct policy_key from Cilium 1.9.0 to 1.13.x: an exact-match hash key (bpf/lib/common.h). */
#pragma once
#include "common.h"

struct policy_key {
	__u32 sec_label;
	__u16 dport;		/* network order */
	__u8 protocol;
	__u8 egress:1,
	     pad:7;
};
