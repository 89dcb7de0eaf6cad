/* SPDX-License-Identifier: GPL-2.0 */
/* struct endpoint_info (cilium_lxc value) from Cilium 1.9.0. mac_t is 8-aligned: bytes 12-15 are padding. */
#pragma once
#include "common.h"

struct endpoint_info {
	__u32 ifindex;
	__u16 unused; /* used to be sec_label */
	__u16 lxc_id;
	__u32 flags;
	mac_t mac;
	mac_t node_mac;
	__u32 pad[4];
};
