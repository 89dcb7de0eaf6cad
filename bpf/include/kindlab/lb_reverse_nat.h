/* SPDX-License-Identifier: GPL-2.0 */
/* struct lb4_reverse_nat / lb6_reverse_nat (values of cilium_lb{4,6}_reverse_nat, keyed by a
 * network-order __u16), unchanged from Cilium 1.9. */
#pragma once
#include "common.h"

struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
} __packed;

struct lb6_reverse_nat {
	union v6addr address;
	__be16 port;
} __packed;
