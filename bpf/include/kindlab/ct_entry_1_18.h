/* SPDX-License-Identifier: GPL-2.0 */
/* struct ct_entry (conntrack value) in Cilium 1.18.x: ifindex retired (bpf/lib/common.h, later conntrack.h). */
#pragma once
#include "common.h"

struct ct_entry {
	__u64 reserved0;
	__u64 backend_id;
	__u64 packets;
	__u64 bytes;
	__u32 lifetime;
	__u16 rx_closing:1,
	      tx_closing:1,
	      reserved1:1,	/* was nat46 */
	      lb_loopback:1,
	      seen_non_syn:1,
	      node_port:1,
	      proxy_redirect:1,
	      dsr_internal:1,	/* DSR is k8s service related, cluster internal */
	      from_l7lb:1,
	      reserved2:1,
	      from_tunnel:1,
	      reserved3:5;
	__be16 rev_nat_index;
	__u16 reserved4;
	__u8 tx_flags_seen;	/* OR of the TCP flags seen, transmit direction */
	__u8 rx_flags_seen;
	__u32 src_sec_id;	/* Used from userspace proxies, do not change offset! */
	__u32 last_tx_report;
	__u32 last_rx_report;
};
