/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_backend / lb6_backend in Cilium 1.12.x: pad becomes the backend state (BE_STATE_*). */
#pragma once
#include "common.h"

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;
};

struct lb6_backend {
	union v6addr address;
	__be16 port;
	__u8 proto;
	__u8 flags;
};
