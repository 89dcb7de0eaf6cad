/* SPDX-License-Identifier: GPL-2.0 */
/* struct ipcache_key from Cilium 1.9.0 (bpf/lib/maps.h, later eps.h). */
#pragma once
#include "common.h"

struct ipcache_key {
	struct bpf_lpm_trie_key lpm_key;
	__u16 pad1;
	__u8 pad2;
	__u8 family;
	union {
		struct {
			__u32 ip4;
			__u32 pad4;
			__u32 pad5;
			__u32 pad6;
		};
		union v6addr ip6;
	};
} __packed;
