/* SPDX-License-Identifier: GPL-2.0 */
/* struct remote_endpoint_info from Cilium 1.9.0 to 1.11.13 and 1.12.0-1.12.7 (bpf/lib/common.h). */
#pragma once
#include "common.h"

struct remote_endpoint_info {
	__u32 sec_label;
	__u32 tunnel_endpoint;
	__u8 key;
};
