/* SPDX-License-Identifier: GPL-2.0 */
/* struct policy_key from Cilium 1.14.0: an LPM trie key; prefixlen counts the bits after itself.
 * dport is declared __be16 from 1.18, the same network-order bytes. */
#pragma once
#include "common.h"

struct policy_key {
	struct bpf_lpm_trie_key lpm_key;
	__u32 sec_label;
	__u8 egress:1,
	     pad:7;
	__u8 protocol;
	__u16 dport;		/* network order */
};
