"""Hypothesis strategies: random semantic keys and values for each Cilium map, for one layout.

Each map registers `key` and `value` builders taking the Layout (which fields exist) and returning a
strategy of field dicts as the decoder returns them. Used by the round-trip tests and by the tests
that fill real kernel maps.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from tshoot.maps import ct, ipcache, lbbackends, lbservices, lxc, metrics, policy, tunnel
from tshoot.core.layout import flag_names, flag_value
from tshoot.core.version import Range

u8, u16, u32, u64 = (st.integers(0, (1 << b) - 1) for b in (8, 16, 32, 64))
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


def _address(family: str):
    return ipv4 if family == "ipv4" else ipv6


# Protocols as the decoder names them: the usual ones by name, any other number as digits.
protocol = st.one_of(st.sampled_from(["ANY", "ICMP", "TCP", "UDP", "SCTP", "ICMPV6"]),
                     st.integers(0, 255).filter(lambda n: n not in (0, 1, 6, 17, 58, 132)).map(str))


def lb_service_key(family):
    def key(layout):
        return st.fixed_dictionaries({"address": _address(family), "port": u16, "proto": protocol, "slot": u16,
                                      "scope": st.sampled_from(["external", "internal"])})
    return key


def lb_service_value(cmap):
    """A frontend's or a backend slot's value (`role`, else either), each with its own union member."""
    def value(layout, role=None):
        def build(role, word, port, algorithm, timeout, flags, flags2_bits, rest):
            flags_value = flag_value(flags, lbservices.FLAGS)
            table = cmap.flags2_names(layout, role, flags_value)
            fields = {"role": role}
            if role == lbservices.BACKEND:
                fields["backend_id"] = word
            elif "l7_lb_proxy_port" in layout.by_name and flags2_bits & lbservices.L7_LOADBALANCER:
                fields["l7_lb_proxy_port"] = port
            elif layout is cmap.value_1_17:
                fields["lb_algorithm"] = algorithm
                fields["affinity_timeout"] = timeout & lbservices.AFFINITY_TIMEOUT_MASK
            else:
                fields["affinity_timeout"] = timeout
            fields.update(count=rest[0], rev_nat_index=rest[1], flags=flags,
                          flags2=flag_names(flags2_bits & max(table) * 2 - 1, table))
            if "qcount" in layout.by_name:
                fields["qcount"] = rest[2]
            return fields

        roles = st.sampled_from(lbservices.ROLES) if role is None else st.just(role)
        return st.builds(build, roles, u32, u16,
                         st.sampled_from(list(lbservices.LB_ALGORITHMS.values())), u32,
                         flag_subset(lbservices.FLAGS), u8, st.tuples(u16, u16, u16))
    return value


def lb_backend_key(layout):
    return st.fixed_dictionaries({"backend_id": st.integers(0, (1 << (8 * layout.size)) - 1)})


def lb_backend_value(family):
    def value(layout):
        fields = {"address": _address(family), "port": u16, "proto": protocol}
        if "flags" in layout.by_name:
            fields["flags"] = st.sampled_from(list(lbbackends.STATES.values()) + ["7"])
        for optional in ("cluster_id", "zone"):
            if optional in layout.by_name:
                fields[optional] = st.integers(0, (1 << (8 * layout.by_name[optional].size)) - 1)
        return st.fixed_dictionaries(fields)
    return value


def lb_revnat_key(layout):
    return st.fixed_dictionaries({"rev_nat_index": u16})


def lb_revnat_value(family):
    return lambda layout: st.fixed_dictionaries({"address": _address(family), "port": u16})


def ct_key(family):
    def key(layout):
        return st.fixed_dictionaries({
            "src_addr": _address(family), "src_port": u16, "dst_addr": _address(family), "dst_port": u16,
            "proto": protocol, "direction": st.sampled_from(["egress", "ingress", "service"]), "related": st.booleans()})
    return key


def ct_value(layout, role=None):
    """A conntrack value; `role` ct.SERVICE: a service entry's, whose backend id is in rx_bytes' bytes up to 1.15."""
    names = [f.name for f in ct.flag_members(layout)]
    fields = {name: u64 for name in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "packets", "bytes")
              if name in layout.by_name}
    if "packets" in layout.by_name:
        fields["backend_id"] = u64
    elif role == ct.SERVICE:
        fields["backend_id"] = fields.pop("rx_bytes")
    fields["flags"] = st.lists(st.sampled_from(names), unique=True).map(lambda xs: sorted(xs, key=names.index))
    for name in ("lifetime", "src_sec_id", "last_tx_report", "last_rx_report"):
        fields[name] = u32
    for name in ("rev_nat_index", "ifindex", "nat_port"):
        if name in layout.by_name:
            fields[name] = u16
    fields["tx_flags_seen"] = flag_subset(ct.TCP_FLAGS)
    fields["rx_flags_seen"] = flag_subset(ct.TCP_FLAGS)
    order = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "backend_id", "packets", "bytes", "flags",
             "lifetime", "rev_nat_index", "ifindex", "nat_port", "src_sec_id", "last_tx_report", "last_rx_report",
             "tx_flags_seen", "rx_flags_seen")
    return st.fixed_dictionaries(fields).map(lambda d: {k: d[k] for k in order if k in d})


def policy_key(layout):
    base = {"identity": u32, "direction": st.sampled_from(["ingress", "egress"])}
    if layout is policy.KEY_HASH:
        return st.fixed_dictionaries({**base, "protocol": protocol, "port": u16})

    def lpm(d):
        # An agent-made entry: a port only with a protocol, a port range as one aligned block of 2^k ports.
        proto_bits, (port_bits, port) = d.pop("proto_bits"), d.pop("port")
        if d["protocol"] == "ANY" or not proto_bits:
            d["protocol"], proto_bits, port_bits = "ANY", False, 0
        d["port"] = port & (0xFFFF << (16 - port_bits)) & 0xFFFF if port_bits else 0
        d["port_end"] = d["port"] | (0xFFFF >> port_bits) if d["port"] else 0
        d["prefix_len"] = 40 + (8 if proto_bits else 0) + (port_bits if d["port"] else 0)
        return d

    return st.fixed_dictionaries({**base, "protocol": protocol, "proto_bits": st.booleans(),
                                  "port": st.tuples(st.integers(0, 16), u16)}).map(lpm)


def policy_value(layout):
    fields = {}
    for f in layout.fields:
        if f.kind == "pad" or f.name in ("pad", "reserved"):
            continue
        bits = f.bits[1] if f.bits else 8 * f.size
        fields[f.name] = st.booleans() if bits == 1 else st.integers(0, (1 << bits) - 1)
    return st.fixed_dictionaries(fields)


def tunnel_key(layout):
    return st.sampled_from(["ipv4", "ipv6"]).flatmap(lambda fam: st.fixed_dictionaries(
        {"ip": _address(fam), "family": st.just(fam), "cluster_id": cluster_id(layout)}))


def tunnel_value(layout):
    fields = {"endpoint": st.one_of(ipv4, ipv6), "encrypt_key": u8}
    if layout is tunnel.VALUE_NODE_ID:
        fields["node_id"] = u16
    return st.fixed_dictionaries(fields)


def metrics_key(layout):
    """Any reason byte and direction (and line and file id where the key has them), as the layout's era names
    them: the names are the module's tables, so what this checks is that they encode back to the same bytes."""
    raw = {"reason": u8, "dir": st.integers(0, 3)}
    if "file" in layout.by_name:
        raw |= {"line": u16, "file": u8}
    return st.fixed_dictionaries(raw).map(lambda r: metrics.MAP.key_fields(r, layout))


def metrics_value(layout):
    return st.fixed_dictionaries({"packets": u64, "bytes": u64})


STRATEGIES = {
    "ipcache": {"key": ipcache_key, "value": ipcache_value},
    "lxc": {"key": lxc_key, "value": lxc_value},
    "lb4-services": {"key": lb_service_key("ipv4"), "value": lb_service_value(lbservices.LB4)},
    "lb6-services": {"key": lb_service_key("ipv6"), "value": lb_service_value(lbservices.LB6)},
    "lb4-backends": {"key": lb_backend_key, "value": lb_backend_value("ipv4")},
    "lb6-backends": {"key": lb_backend_key, "value": lb_backend_value("ipv6")},
    "lb4-revnat": {"key": lb_revnat_key, "value": lb_revnat_value("ipv4")},
    "lb6-revnat": {"key": lb_revnat_key, "value": lb_revnat_value("ipv6")},
    "ct4": {"key": ct_key("ipv4"), "value": ct_value},
    "ct6": {"key": ct_key("ipv6"), "value": ct_value},
    "ct-any4": {"key": ct_key("ipv4"), "value": ct_value},
    "ct-any6": {"key": ct_key("ipv6"), "value": ct_value},
    "policy": {"key": policy_key, "value": policy_value},
    "tunnel": {"key": tunnel_key, "value": tunnel_value},
    "metrics": {"key": metrics_key, "value": metrics_value},
}


def representative_versions(versions: Range):
    """The first version of each interval: one version per layout era is enough to reach its layout."""
    return [low for low, _ in versions.intervals]
