"""Cilium's program arrays: the tail-call maps a packet's path depends on.

All are BPF_MAP_TYPE_PROG_ARRAY with a u32 key (the slot) and, read from user space, the id of the program
in the slot (the kernel's prog_fd_array_sys_lookup_elem; an empty slot has no entry). Pinned names
(pkg/maps/callsmap, pkg/maps/policymap; bpf.LocalMapName pads ids to five digits):

* cilium_call_policy: slot = endpoint id, the endpoint's policy program (every version);
* cilium_egresscall_policy: slot = endpoint id, its egress policy program (from 1.12);
* cilium_calls_<ep>, cilium_calls_hostns_<ep>, cilium_calls_netdev_<ifindex>, cilium_calls_overlay_2,
  cilium_calls_xdp[_<ifindex>], cilium_calls_wireguard_*: one object's CILIUM_CALL_* slots.

They hold programs, not structs, so they are not CiliumMaps (nothing to lay out): `tshoot map dump` shows
slot -> program (id, name), `tshoot map list` counts the filled slots.
"""

from __future__ import annotations

import struct

CALL_POLICY = "cilium_call_policy"  # local delivery's tail call into the endpoint's policy program
POLICY_ARRAYS = (CALL_POLICY, "cilium_egresscall_policy")  # slot = endpoint id
CALLS_PREFIX = "cilium_calls_"
HOST_CALLS_PREFIX = "cilium_calls_hostns_"  # + the host endpoint's id (callsmap.HostMapName)
OVERLAY_CALLS = "cilium_calls_overlay_2"  # bpf_overlay's (2: the world identity, unpadded; every version)
# The slots every version numbers alike (bpf/lib/common.h up to 1.18.0-pre.1, bpf/lib/tailcall.h after):
# CILIUM_CALL_IPV4_FROM_LXC (alias IPV4_FROM_OVERLAY from 1.12) and CILIUM_CALL_IPV6_FROM_LXC.
CALL_IPV4_FROM_LXC, CALL_IPV6_FROM_LXC = 7, 10


def endpoint_calls(endpoint_id: int) -> str:
    """The endpoint's own tail-call map (callsmap.MapName + bpf.LocalMapName's five digits)."""
    return f"{CALLS_PREFIX}{endpoint_id:05d}"


def is_prog_array(name: str) -> bool:
    """Whether a pinned name is one of Cilium's program arrays."""
    return name in POLICY_ARRAYS or name.startswith(CALLS_PREFIX)


def slot_meaning(name: str) -> str:
    """What a slot number is in that array: an endpoint id, or a CILIUM_CALL_* index."""
    return "endpoint" if name in POLICY_ARRAYS else "tail call"


def slots(keys: bytes, values: bytes) -> list[tuple[int, int]]:
    """(slot, program id) of every filled slot, from a dump's concatenated keys and values (u32 each)."""
    count = len(keys) // 4
    return sorted(zip(struct.unpack(f"<{count}I", keys), struct.unpack(f"<{count}I", values[:count * 4])))
