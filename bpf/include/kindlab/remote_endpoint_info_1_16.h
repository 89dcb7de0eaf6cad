/* SPDX-License-Identifier: GPL-2.0 */
/* struct remote_endpoint_info from Cilium 1.16.0 to 1.17.x. */
#pragma once
#include "common.h"

struct remote_endpoint_info {
	__u32 sec_identity;
	__u32 tunnel_endpoint;
	__u16 pad;
	__u8 key;
	__u8 flag_skip_tunnel:1,
	     pad2:7;
};
