/* SPDX-License-Identifier: GPL-2.0 */
/* struct metrics_key (cilium_metrics) from Cilium 1.16.0 (bpf/lib/common.h; bpf/lib/metrics.h in 1.19). */
#pragma once
#include "common.h"

struct metrics_key {
	__u8	reason;		/* 0: forwarded, REASON_*, or the absolute value of a DROP_* code */
	__u8	dir:2,		/* METRIC_INGRESS 1, METRIC_EGRESS 2, METRIC_SERVICE 3 */
		pad:6;
	__u16	line;		/* __MAGIC_LINE__ */
	__u8	file;		/* __MAGIC_FILE__: __id_for_file() of bpf/lib/source_info.h */
	__u8	reserved[3];
};
