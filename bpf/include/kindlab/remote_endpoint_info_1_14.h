/* SPDX-License-Identifier: GPL-2.0 */
/* struct remote_endpoint_info in Cilium 1.14.0: a u16 at byte 8 moved the IPsec key to byte 10. */
#pragma once
#include "common.h"

struct remote_endpoint_info {
	__u32 sec_identity;
	__u32 tunnel_endpoint;
	__u16 node_id;
	__u8 key;
};
