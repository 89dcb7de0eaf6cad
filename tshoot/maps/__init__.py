"""The Cilium maps tshoot knows, one module each, and how a name a user types finds its module."""

from __future__ import annotations

from ..errors import UsageError
from . import ct, ipcache, lbbackends, lbrevnat, lbservices, lxc, policy, tunnel
from .base import CiliumMap

MAPS: list[CiliumMap] = [
    ipcache.MAP, lxc.MAP,
    lbservices.LB4, lbservices.LB6, lbbackends.LB4, lbbackends.LB6, lbrevnat.LB4, lbrevnat.LB6,
    ct.CT4, ct.CT6, ct.CT_ANY4, ct.CT_ANY6,
    policy.MAP, tunnel.MAP,
]


def find(name: str) -> tuple[CiliumMap, dict]:
    """A short name, alias or pinned name -> (map, parameters from the pinned name)."""
    for cmap in MAPS:
        if name == cmap.short or name in cmap.aliases:
            return cmap, {}
    for cmap in MAPS:
        params = cmap.match_pinned(name)
        if params is not None:
            return cmap, params
    known = ", ".join(m.short + "".join(f" ({a})" for a in m.aliases) for m in MAPS)
    raise UsageError(f"unknown map {name!r} (known: {known}; or a pinned name like cilium_ipcache_v2)")
