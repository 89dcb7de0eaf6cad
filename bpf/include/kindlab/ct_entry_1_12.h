/* SPDX-License-Identifier: GPL-2.0 */
/* struct ct_entry (conntrack value) in Cilium 1.12.x: flag from_l7lb (bpf/lib/common.h, later conntrack.h). */
#pragma once
#include "common.h"

struct ct_entry {
	__u64 rx_packets;
	union {
		__u64 rx_bytes;
		__u64 backend_id;	/* service entries */
	};
	__u64 tx_packets;
	__u64 tx_bytes;
	__u32 lifetime;
	__u16 rx_closing:1,
	      tx_closing:1,
	      nat46:1,
	      lb_loopback:1,
	      seen_non_syn:1,
	      node_port:1,
	      proxy_redirect:1,	/* Connection is redirected to a proxy */
	      dsr:1,
	      from_l7lb:1,	/* Connection is originated from an L7 LB proxy */
	      reserved:7;
	__be16 rev_nat_index;
	__u16 ifindex;
	__u8 tx_flags_seen;	/* OR of the TCP flags seen, transmit direction */
	__u8 rx_flags_seen;
	__u32 src_sec_id;	/* Used from userspace proxies, do not change offset! */
	__u32 last_tx_report;
	__u32 last_rx_report;
};
