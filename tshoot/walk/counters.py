"""The cilium_metrics counter the packet a walk follows would increment where the walk ends.

cilium_metrics (a per-CPU hash, every version) is keyed by {reason, direction} and, from 1.16, the
source file and line (bpf/lib/metrics.h update_metrics(); struct metrics_key in bpf/lib/common.h up to
1.18, bpf/lib/metrics.h in 1.19). A drop counts its drop code (bpf/lib/drop.h send_drop_notify*: the
caller passes the direction), a forward REASON_FORWARDED (0) where bpf/lib/trace.h accounts the trace
point: TO_LXC as INGRESS, TO_STACK/TO_OVERLAY as EGRESS (_update_trace_metrics()).

Reason names, texts and directions are tshoot.maps.metrics's (Cilium's names for the node's version);
this module knows which codes a walk's ends produce.
"""

from __future__ import annotations

from tshoot.core.version import NEWEST_KNOWN, Version
from tshoot.maps import metrics

REASON_FORWARDED = 0
DROP_POLICY = 133            # bpf/lib/common.h, every version
DROP_MISSED_TAIL_CALL = 140  # every version
DROP_NO_SERVICE = 158        # every version
DROP_POLICY_DENY = 181       # every version: a deny rule matched
DROP_EP_NOT_READY = 203      # by 1.15.7, 1.16+

INGRESS, EGRESS = 1, 2  # METRIC_INGRESS, METRIC_EGRESS (enum metric_dir from 1.12)
FILE_IN_KEY = (1, 16, 0)  # metrics_key gained line and file in 1.16.0


def reason_name(code: int, version: Version | None = None) -> str:
    """Cilium's C name for a code as `version` (unknown: the newest) names it."""
    return metrics.reasons_of(version or NEWEST_KNOWN).get(code, (str(code), None))[0]


def empty_policy_slot_drop(version: Version | None) -> int:
    """What local delivery returns when the destination endpoint's cilium_call_policy slot is empty:
    ipv4_local_delivery() (bpf/lib/l3.h up to 1.17, bpf/lib/local_delivery.h from 1.18) tail-calls the
    slot through ep_tail_call() and returns DROP_MISSED_TAIL_CALL up to 1.14; tail_call_policy() returns
    DROP_EP_NOT_READY from the 1.15 cycle (seen in 1.15.7 and every 1.16+)."""
    return DROP_EP_NOT_READY if version is None or version >= (1, 15, 0) else DROP_MISSED_TAIL_CALL


def counter(code: int, direction: int, program: str, node) -> dict:
    """The cilium_metrics key the packet increments on `node` (a walker Node: its name and version), as
    `tshoot map dump cilium_metrics` shows it."""
    version = node.version
    out = {"node": node.name, "map": "cilium_metrics", "reason": reason_name(code, version), "code": code,
           "description": metrics.reason_label(code, version or NEWEST_KNOWN),
           "direction": metrics.DIRECTIONS[direction], "program": program}
    if version is None or version >= FILE_IN_KEY:
        out["file"] = program  # the key's file id names the object's source file (bpf/lib/source_info.h)
    return out
