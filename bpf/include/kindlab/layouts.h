/* SPDX-License-Identifier: GPL-2.0 */
/* The struct layouts of Cilium's maps for one Cilium version: compile with -DCILIUM_VERSION=MMmmpp
 * (1.12.8 = 11208). The #if chains pick each struct's header by the version boundaries of
 * shared/reference/cilium-map-layouts.md §2. Used by the C oracle (bpf/oracle/) and by the simulated
 * datapath (bpf/progs/cilium/), so both read the same bytes tshoot's Python layouts describe.
 */
#pragma once

#ifndef CILIUM_VERSION
#error "compile with -DCILIUM_VERSION=MMmmpp, e.g. -DCILIUM_VERSION=11904 for 1.19.4"
#endif

#define V(minor, patch) (10000 + (minor) * 100 + (patch))
#define SINCE(minor, patch) (CILIUM_VERSION >= V(minor, patch))
/* A change backported inside a minor line: from patch `patch` of `minor` to the end of that line. */
#define PATCH_SINCE(minor, patch) (SINCE(minor, patch) && CILIUM_VERSION < V((minor) + 1, 0))

/* --- ipcache ---------------------------------------------------------------------------------- */
#if SINCE(15, 0)
#include "kindlab/ipcache_key_1_15.h"
#elif SINCE(14, 0)
#include "kindlab/ipcache_key_1_14.h"
#else
#include "kindlab/ipcache_key_1_9.h"
#endif

#if SINCE(18, 0)
#include "kindlab/remote_endpoint_info_1_18.h"
#elif SINCE(16, 0)
#include "kindlab/remote_endpoint_info_1_16.h"
#elif SINCE(14, 1)
#include "kindlab/remote_endpoint_info_1_14_1.h"
#elif SINCE(14, 0)
#include "kindlab/remote_endpoint_info_1_14.h"
#elif PATCH_SINCE(11, 20) || PATCH_SINCE(12, 13) || PATCH_SINCE(13, 6)
#include "kindlab/remote_endpoint_info_1_11_20.h"
#elif PATCH_SINCE(11, 14) || PATCH_SINCE(12, 8) || SINCE(13, 0)
#include "kindlab/remote_endpoint_info_1_11_14.h"
#else
#include "kindlab/remote_endpoint_info_1_9.h"
#endif

/* --- lxc (endpoints) ---------------------------------------------------------------------------- */
#if SINCE(15, 0)
#include "kindlab/endpoint_key_1_15.h"
#elif SINCE(14, 0)
#include "kindlab/endpoint_key_1_14.h"
#else
#include "kindlab/endpoint_key_1_9.h"
#endif

#if SINCE(17, 0)
#include "kindlab/endpoint_info_1_17.h"
#elif SINCE(14, 0)
#include "kindlab/endpoint_info_1_14.h"
#else
#include "kindlab/endpoint_info_1_9.h"
#endif

/* --- load balancer ------------------------------------------------------------------------------ */
#include "kindlab/lb_key.h"
#include "kindlab/lb_reverse_nat.h"

#if SINCE(17, 0)
#include "kindlab/lb_service_1_17.h"
#elif SINCE(12, 0)
#include "kindlab/lb_service_1_12.h"
#else
#include "kindlab/lb_service_1_9.h"
#endif

#if SINCE(16, 0)
#include "kindlab/lb_backend_1_16.h"
#elif SINCE(15, 0)
#include "kindlab/lb_backend_1_15.h"
#elif SINCE(13, 0)
#include "kindlab/lb_backend_1_13.h"
#elif SINCE(12, 0)
#include "kindlab/lb_backend_1_12.h"
#else
#include "kindlab/lb_backend_1_9.h"
#endif

#if SINCE(11, 0)
#define BACKEND_KEY __u32	/* cilium_lb{4,6}_backends_v2 and _v3 */
#else
#define BACKEND_KEY __u16	/* cilium_lb{4,6}_backends */
#endif

/* --- conntrack ---------------------------------------------------------------------------------- */
#include "kindlab/ct_tuple.h"

#if SINCE(19, 0)
#include "kindlab/ct_entry_1_19.h"
#elif SINCE(18, 0)
#include "kindlab/ct_entry_1_18.h"
#elif SINCE(16, 0)
#include "kindlab/ct_entry_1_16.h"
#elif SINCE(15, 0)
#include "kindlab/ct_entry_1_15.h"
#elif SINCE(14, 0)
#include "kindlab/ct_entry_1_14.h"
#elif SINCE(13, 0)
#include "kindlab/ct_entry_1_13.h"
#elif SINCE(12, 0)
#include "kindlab/ct_entry_1_12.h"
#elif SINCE(11, 0)
#include "kindlab/ct_entry_1_11.h"
#else
#include "kindlab/ct_entry_1_9.h"
#endif

/* --- policy ------------------------------------------------------------------------------------- */
#if SINCE(14, 0)
#include "kindlab/policy_key_1_14.h"
#define POLICY_MAP_TYPE BPF_MAP_TYPE_LPM_TRIE
#else
#include "kindlab/policy_key_1_9.h"
#define POLICY_MAP_TYPE BPF_MAP_TYPE_HASH
#endif

#if SINCE(19, 0)
#include "kindlab/policy_entry_1_19.h"
#elif SINCE(18, 0)
#include "kindlab/policy_entry_1_18.h"
#elif SINCE(17, 0)
#include "kindlab/policy_entry_1_17.h"
#elif PATCH_SINCE(16, 4)
#include "kindlab/policy_entry_1_16_4.h"
#elif SINCE(14, 0)
#include "kindlab/policy_entry_1_14.h"
#elif SINCE(13, 0)
#include "kindlab/policy_entry_1_13.h"
#else
#include "kindlab/policy_entry_1_9.h"
#endif

/* --- tunnel (gone in 1.18) ---------------------------------------------------------------------- */
#if !SINCE(18, 0)
#if SINCE(15, 0)
#include "kindlab/tunnel_key_1_15.h"
#define TUNNEL_KEY struct tunnel_key
#elif PATCH_SINCE(11, 14) || SINCE(12, 8)
#include "kindlab/tunnel_key_1_11_14.h"
#define TUNNEL_KEY struct tunnel_key
#else
#define TUNNEL_KEY struct endpoint_key
#endif

#if SINCE(14, 1) || PATCH_SINCE(11, 20) || PATCH_SINCE(12, 13) || PATCH_SINCE(13, 6)
#include "kindlab/tunnel_value_1_11_20.h"
#define TUNNEL_VALUE struct tunnel_value
#elif PATCH_SINCE(11, 14) || PATCH_SINCE(12, 8) || SINCE(13, 0)
#include "kindlab/tunnel_value_1_11_14.h"
#define TUNNEL_VALUE struct tunnel_value
#else
#define TUNNEL_VALUE struct endpoint_key
#endif
#endif

/* --- metrics (per-CPU) ------------------------------------------------------------------------ */
#if SINCE(16, 0)
#include "kindlab/metrics_key_1_16.h"
#else
#include "kindlab/metrics_key_1_9.h"
#endif
#include "kindlab/metrics_value.h"

/* A map of these layouts as libbpf reads BTF-defined maps; further members (pinning) may follow the flags. */
#define KINDLAB_MAP(name, map_type, key_type, value_type, entries, flags, ...)	\
	struct {								\
		__uint(type, map_type);						\
		__uint(max_entries, entries);					\
		__uint(map_flags, flags);					\
		__type(key, key_type);						\
		__type(value, value_type);					\
		__VA_ARGS__							\
	} name SEC(".maps")
