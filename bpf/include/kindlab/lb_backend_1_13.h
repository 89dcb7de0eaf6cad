/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_backend / lb6_backend in Cilium 1.13.x-1.14.x (cilium_lb{4,6}_backends_v3): a clustermesh cluster id. */
#pragma once
#include "common.h"

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;
	__u8 cluster_id;
	__u8 pad[3];
};

struct lb6_backend {
	union v6addr address;
	__be16 port;
	__u8 proto;
	__u8 flags;
	__u8 cluster_id;
	__u8 pad[3];
};
