/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_backend / lb6_backend in Cilium 1.15.x: the cluster id widened to u16. */
#pragma once
#include "common.h"

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;
	__u16 cluster_id;
	__u8 pad[2];
};

struct lb6_backend {
	union v6addr address;
	__be16 port;
	__u8 proto;
	__u8 flags;
	__u16 cluster_id;
	__u8 pad[2];
};
