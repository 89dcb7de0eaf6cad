/* SPDX-License-Identifier: GPL-2.0 */
/* struct metrics_value (cilium_metrics, one per CPU) in Cilium 1.9 to 1.19 (bpf/lib/common.h, metrics.h). */
#pragma once
#include "common.h"

struct metrics_value {
	__u64	count;		/* packets */
	__u64	bytes;
};
