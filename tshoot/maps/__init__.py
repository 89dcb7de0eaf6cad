"""The Cilium maps tshoot knows, one module each, and how a name a user types finds its module.

Map modules are imported on demand: `tshoot key ipcache …` loads the ipcache module alone, because
start-up time is most of what an offline command costs. `MAPS` (every map) loads them all when asked.
"""

from __future__ import annotations

from importlib import import_module

from tshoot.core.errors import UsageError
from tshoot.maps.base import CiliumMap

# Module of each map, in the order maps are listed. tests/test_map_names.py checks this table against
# the modules' own short names, aliases and pins, so the two cannot drift apart.
MODULES = ("ipcache", "lxc", "lbservices", "lbbackends", "lbrevnat", "ct", "policy", "tunnel", "metrics")
BY_NAME = {
    "ipcache": "ipcache", "lxc": "lxc", "endpoints": "lxc",
    "lb4-services": "lbservices", "lb6-services": "lbservices",
    "lb4-backends": "lbbackends", "lb6-backends": "lbbackends",
    "lb4-revnat": "lbrevnat", "lb6-revnat": "lbrevnat",
    "ct4": "ct", "ct6": "ct", "ct-any4": "ct", "ct-any6": "ct",
    "policy": "policy", "tunnel": "tunnel", "metrics": "metrics",
}
PINNED_PREFIXES = (  # the stem every pinned name of the module starts with
    ("cilium_ipcache", "ipcache"), ("cilium_lxc", "lxc"),
    ("cilium_lb4_services", "lbservices"), ("cilium_lb6_services", "lbservices"),
    ("cilium_lb4_backends", "lbbackends"), ("cilium_lb6_backends", "lbbackends"),
    ("cilium_lb4_reverse_nat", "lbrevnat"), ("cilium_lb6_reverse_nat", "lbrevnat"),
    ("cilium_ct", "ct"), ("cilium_policy_", "policy"), ("cilium_tunnel_map", "tunnel"),
    ("cilium_metrics", "metrics"),
)


def maps_of(module_name: str) -> list[CiliumMap]:
    module = import_module(f"{__name__}.{module_name}")
    return [value for value in vars(module).values() if isinstance(value, CiliumMap)]


def __getattr__(name: str):
    if name == "MAPS":
        return [cmap for module in MODULES for cmap in maps_of(module)]
    raise AttributeError(name)


def find(name: str) -> tuple[CiliumMap, dict]:
    """A short name, alias or pinned name -> (map, parameters from the pinned name)."""
    if name in BY_NAME:
        for cmap in maps_of(BY_NAME[name]):
            if name == cmap.short or name in cmap.aliases:
                return cmap, {}
    for prefix, module in PINNED_PREFIXES:
        if name.startswith(prefix):
            for cmap in maps_of(module):
                params = cmap.match_pinned(name)
                if params is not None:
                    return cmap, params
    known = ", ".join(m.short + "".join(f" ({a})" for a in m.aliases) for m in __getattr__("MAPS"))
    raise UsageError(f"unknown map {name!r} (known: {known}; or a pinned name like cilium_ipcache_v2)")
