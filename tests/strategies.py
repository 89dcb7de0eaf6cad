"""Hypothesis strategies: random semantic keys and values for each Cilium map, for one layout.

Each map registers `key` and `value` builders taking the Layout (which fields exist) and returning a
strategy of field dicts as the decoder returns them. Used by the round-trip tests and by the tests
that fill real kernel maps.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from tshoot.maps import ipcache, lxc
from tshoot.version import Range

u8, u16, u32 = (st.integers(0, (1 << b) - 1) for b in (8, 16, 32))
ipv4 = st.integers(0, (1 << 32) - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.integers(0, (1 << 128) - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
mac = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


def flag_subset(table: dict[int, str], allowed: set[str] | None = None):
    names = [n for n in table.values() if allowed is None or n in allowed]
    return st.lists(st.sampled_from(names), unique=True).map(lambda xs: sorted(xs, key=names.index)) if names else st.just([])


def cluster_id(layout):
    field = layout.by_name.get("cluster_id")
    return st.integers(0, (1 << (8 * field.size)) - 1) if field else st.just(0)


def _prefix(family: str):
    bits = 32 if family == "ipv4" else 128
    addr = ipv4 if family == "ipv4" else ipv6
    return st.tuples(addr, st.integers(0, bits)).map(
        lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False)))


def ipcache_key(layout):
    return st.sampled_from(["ipv4", "ipv6"]).flatmap(lambda fam: st.fixed_dictionaries(
        {"prefix": _prefix(fam), "family": st.just(fam), "cluster_id": cluster_id(layout)}))


def ipcache_value(layout):
    if layout is ipcache.VALUE_D:
        endpoint = st.one_of(st.none(), ipv4, ipv6)
        flags = flag_subset(ipcache.FLAGS, {"skiptunnel", "remotecluster"})
    else:
        endpoint = st.one_of(st.none(), ipv4.filter(lambda a: a != "0.0.0.0"))
        flags = flag_subset(ipcache.FLAGS, {"skiptunnel"} if layout is ipcache.VALUE_C else set())

    def finish(d):
        if layout is ipcache.VALUE_D and d["tunnel_endpoint"]:
            extra = ["hastunnel"] + (["ipv6tunnel"] if ":" in d["tunnel_endpoint"] else [])
            d["flags"] = sorted(set(d["flags"]) | set(extra), key=list(ipcache.FLAGS.values()).index)
        return d

    return st.fixed_dictionaries({"identity": u32, "tunnel_endpoint": endpoint, "encrypt_key": u8,
                                  "flags": flags}).map(finish)


def lxc_key(layout):
    return st.sampled_from(["ipv4", "ipv6"]).flatmap(lambda fam: st.fixed_dictionaries(
        {"ip": ipv4 if fam == "ipv4" else ipv6, "family": st.just(fam), "cluster_id": cluster_id(layout)}))


def lxc_value(layout):
    fields = {"ifindex": u32, "lxc_id": u16, "flags": flag_subset(lxc.FLAGS), "mac": mac, "node_mac": mac}
    for optional in ("sec_id", "parent_ifindex"):
        if optional in layout.by_name:
            fields[optional] = u32
    return st.fixed_dictionaries(fields)


STRATEGIES = {
    "ipcache": {"key": ipcache_key, "value": ipcache_value},
    "lxc": {"key": lxc_key, "value": lxc_value},
}


def representative_versions(versions: Range):
    """The first version of each interval: one version per layout era is enough to reach its layout."""
    return [low for low, _ in versions.intervals]
