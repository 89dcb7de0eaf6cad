// SPDX-License-Identifier: GPL-2.0
/* Every Cilium map tshoot decodes, with BTF-typed keys and values, as one Cilium version declares it.
 *
 * Compile with -DCILIUM_VERSION=MMmmpp (1.12.8 = 11208); kindlab/layouts.h picks each struct's header
 * (bpf/include/kindlab/) by the version boundaries of shared/reference/cilium-map-layouts.md §2.
 * tests/test_c_oracle.py loads one object per version, checks every struct's size and member
 * offsets against tshoot's Python layouts through BTF, fills the maps with bytes tshoot encodes and
 * compares bpftool's BTF-formatted dump with tshoot's decoding, member by member.
 *
 * Maps use Cilium's map types; the sizes are small, they only hold test entries.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kindlab/layouts.h"

/* --- the maps ----------------------------------------------------------------------------------- */
#define MAP(name, map_type, key_type, value_type, entries, flags) \
	KINDLAB_MAP(name, map_type, key_type, value_type, entries, flags)

#define LPM_FLAGS BPF_F_NO_PREALLOC	/* LPM tries must not be preallocated */

MAP(ipcache, BPF_MAP_TYPE_LPM_TRIE, struct ipcache_key, struct remote_endpoint_info, 1024, LPM_FLAGS);
MAP(lxc, BPF_MAP_TYPE_HASH, struct endpoint_key, struct endpoint_info, 1024, 0);
MAP(lb4_services, BPF_MAP_TYPE_HASH, struct lb4_key, struct lb4_service, 1024, 0);
MAP(lb6_services, BPF_MAP_TYPE_HASH, struct lb6_key, struct lb6_service, 1024, 0);
MAP(lb4_backends, BPF_MAP_TYPE_HASH, BACKEND_KEY, struct lb4_backend, 1024, 0);
MAP(lb6_backends, BPF_MAP_TYPE_HASH, BACKEND_KEY, struct lb6_backend, 1024, 0);
MAP(lb4_revnat, BPF_MAP_TYPE_HASH, __u16, struct lb4_reverse_nat, 1024, 0);
MAP(lb6_revnat, BPF_MAP_TYPE_HASH, __u16, struct lb6_reverse_nat, 1024, 0);
/* LRU maps can evict before they are full; far more room than the tests use keeps every entry. */
MAP(ct4, BPF_MAP_TYPE_LRU_HASH, struct ipv4_ct_tuple, struct ct_entry, 4096, 0);
MAP(ct6, BPF_MAP_TYPE_LRU_HASH, struct ipv6_ct_tuple, struct ct_entry, 4096, 0);
MAP(ct_any4, BPF_MAP_TYPE_LRU_HASH, struct ipv4_ct_tuple, struct ct_entry, 4096, 0);
MAP(ct_any6, BPF_MAP_TYPE_LRU_HASH, struct ipv6_ct_tuple, struct ct_entry, 4096, 0);
#if SINCE(14, 0)
MAP(policy, POLICY_MAP_TYPE, struct policy_key, struct policy_entry, 1024, LPM_FLAGS);
#else
MAP(policy, POLICY_MAP_TYPE, struct policy_key, struct policy_entry, 1024, 0);
#endif
#if !SINCE(18, 0)
MAP(tunnel, BPF_MAP_TYPE_HASH, TUNNEL_KEY, TUNNEL_VALUE, 1024, 0);
#endif
MAP(metrics, BPF_MAP_TYPE_PERCPU_HASH, struct metrics_key, struct metrics_value, 1024, 0);

/* bpftool prog loadall needs a program to load the object (and so create its maps). */
SEC("xdp")
int oracle(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
