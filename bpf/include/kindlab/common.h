/* SPDX-License-Identifier: GPL-2.0 */
/* What every Cilium map declaration below needs, as Cilium's bpf/lib/common.h declares it.
 *
 * These headers are kindlab's own transcription of Cilium's map structs, one header per layout
 * era (named after the first release of the era), from shared/reference/cilium-map-layouts.md
 * (Appendix A: clang's record layouts of each release) and Cilium's bpf/lib sources. They are the
 * independent side of tests/test_c_oracle.py: they are not generated from tshoot's Python layouts.
 */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h> /* struct bpf_lpm_trie_key */

#define __packed __attribute__((packed))

/* A MAC address in the low 6 bytes of a u64, wire order on little-endian hosts. */
typedef __u64 mac_t;

/* An IPv6 address; 1.19 names the inner structs p and d, which does not change the layout. */
union v6addr {
	struct {
		__u32 p1;
		__u32 p2;
		__u32 p3;
		__u32 p4;
	};
	struct {
		__u64 d1;
		__u64 d2;
	};
	__u8 addr[16];
} __packed;
