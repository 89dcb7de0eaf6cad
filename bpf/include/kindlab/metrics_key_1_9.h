/* SPDX-License-Identifier: GPL-2.0 */
/* struct metrics_key (cilium_metrics) in Cilium 1.9.0 to 1.15.x (bpf/lib/common.h). */
#pragma once
#include "common.h"

struct metrics_key {
	__u8	reason;		/* 0: forwarded, REASON_*, or the absolute value of a DROP_* code */
	__u8	dir:2,		/* METRIC_INGRESS 1, METRIC_EGRESS 2, METRIC_SERVICE 3 */
		pad:6;
	__u16	reserved[3];
};
