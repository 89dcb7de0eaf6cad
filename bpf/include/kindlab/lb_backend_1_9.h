/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_backend / lb6_backend from Cilium 1.9.0 to 1.11.x (cilium_lb4_backends, _v2). */
#pragma once
#include "common.h"

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct lb6_backend {
	union v6addr address;
	__be16 port;
	__u8 proto;
	__u8 pad;
};
