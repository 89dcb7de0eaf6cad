"""Property tests: for every map and every layout era, encode(fields) then decode gives the fields back."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tshoot.maps import MAPS
from tests.strategies import STRATEGIES, representative_versions

CASES = [
    pytest.param(cmap, which, version, id=f"{cmap.short}-{which}-{'.'.join(map(str, version))}")
    for cmap in MAPS
    for which in ("key", "value")
    for versions, _ in (cmap.keys if which == "key" else cmap.values)
    for version in representative_versions(versions)
]


def test_every_map_has_strategies():
    assert {m.short for m in MAPS} <= set(STRATEGIES)


@pytest.mark.parametrize("cmap, which, version", CASES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip(cmap, which, version, data):
    layout = cmap.layout_for(which, version)
    fields = data.draw(STRATEGIES[cmap.short][which](layout))
    raw = cmap.encode(which, fields, version)
    assert len(raw) == layout.size
    decoded = cmap.decode(which, raw, version, role=fields.get("role") if which == "value" else None)
    assert decoded.fields == fields
    # and the bytes are canonical: re-encoding what was decoded gives the same bytes
    assert cmap.encode(which, decoded.fields, version) == raw


def _ipcache_layouts():
    from tshoot.maps import ipcache

    return [pytest.param(which, layout, id=f"{which}-{i}")
            for which, table in (("key", ipcache.MAP.keys), ("value", ipcache.MAP.values))
            for i, layout in enumerate({id(lay): lay for _, lay in table}.values())]


@pytest.mark.parametrize("which, layout", _ipcache_layouts())
def test_ipcache_dump_reads_each_entry_as_one_entry_is_read_whatever_the_padding_holds(which, layout):
    """A dump reads ipcache entries by byte columns (fields_many), one entry reads its layout's members: they
    agree, also where padding and unnamed flag bits are set (IPv4, IPv6 and unknown families alike)."""
    from tshoot.maps import ipcache

    size = layout.size
    entries = [bytes(range(1, size + 1)), b"\xff" * size, bytes(size)]
    if which == "key":  # an IPv4 and an IPv6 key with padding set
        entries += [b"\x40\0\0\0\xff\xff\xff\x01" + bytes(range(16)), b"\x60\0\0\0\xff\xff\xff\x02" + b"\xfe" * 16]
    convert = ipcache.MAP.key_fields if which == "key" else ipcache.MAP.value_fields
    one_by_one = [convert(layout.unpack(entry), layout) for entry in entries]
    assert ipcache.MAP.fields_many(which, layout, b"".join(entries)) == one_by_one


@pytest.mark.parametrize("short", ["ct4", "ct6", "ct-any4"])
def test_conntrack_dump_reads_each_key_as_one_key_is_read(short):
    """A dump reads conntrack keys by columns (fields_many), one entry reads its layout's members: they agree
    for every flags byte (egress, ingress, related, service, and bits no direction uses) and protocol."""
    from tshoot.maps import find

    cmap, _ = find(short)
    (_, layout), = cmap.keys
    half = (layout.size - 6) // 2
    entries = [bytes(range(1, half + 1)) + bytes(range(200, 200 + half)) + b"\x1f\x90\xc3\x50" + bytes([proto, flags])
               for flags in range(256) for proto in (0, 1, 6, 17, 58, 132, 255)]
    one_by_one = [cmap.key_fields(layout.unpack(entry), layout) for entry in entries]
    assert cmap.fields_many("key", layout, b"".join(entries)) == one_by_one
    assert [list(fields) for fields in cmap.fields_many("key", layout, b"".join(entries))] == \
        [list(fields) for fields in one_by_one]  # the same order of fields: -o json prints them in it


@pytest.mark.parametrize("version", [(1, 9, 0), (1, 12, 0), (1, 17, 0), (1, 19, 4)], ids=lambda v: ".".join(map(str, v)))
def test_service_entries_read_by_role(version):
    """One value, two roles: slot 0 is the frontend (its first word the affinity timeout, from 1.17 with the LB
    algorithm in the top byte), a slot above 0 a backend slot whose first word is the backend id."""
    from tshoot.mapio.decode import decode_entry
    from tshoot.maps import lbservices

    cmap = lbservices.LB4
    value = bytes.fromhex("0000000103000007 0000 0000")  # first word 0x01000000: 1.17+'s "random", no timeout
    frontend = cmap.encode("key", {"address": "10.96.0.10", "port": 53, "proto": "ANY", "slot": 0, "scope": "external"}, version)
    slot = cmap.encode("key", {"address": "10.96.0.10", "port": 53, "proto": "ANY", "slot": 2, "scope": "external"}, version)
    as_frontend = decode_entry(cmap, frontend, value, version)[0]["value"]
    as_backend = decode_entry(cmap, slot, value, version)[0]["value"]
    assert "backend_id" not in as_frontend and as_frontend["role"] == "frontend"
    if version >= (1, 17, 0):
        assert (as_frontend["lb_algorithm"], as_frontend["affinity_timeout"]) == ("random", 0)
    else:
        assert as_frontend["affinity_timeout"] == 1 << 24 and "lb_algorithm" not in as_frontend
    assert as_backend == {**{k: v for k, v in as_frontend.items() if k not in ("lb_algorithm", "affinity_timeout")},
                          "role": "backend", "backend_id": 1 << 24}
    assert cmap.encode("value", as_frontend, version) == value == cmap.encode("value", as_backend, version)


@pytest.mark.parametrize("version", [(1, 9, 0), (1, 11, 0), (1, 15, 0)], ids=lambda v: ".".join(map(str, v)))
def test_conntrack_service_entries_read_bytes_8_15_as_the_backend_id(version):
    """Up to 1.15 a service entry (TUPLE_F_SERVICE) keeps its backend id where a connection counts rx_bytes."""
    from tshoot.mapio.decode import decode_entry
    from tshoot.maps import ct

    key = {"src_addr": "10.244.1.5", "src_port": 40000, "dst_addr": "10.96.0.10", "dst_port": 53, "proto": "TCP",
           "related": False}
    value = bytes(8) + (11).to_bytes(8, "little") + bytes(40)
    service = decode_entry(ct.CT4, ct.CT4.encode("key", {**key, "direction": "service"}, version), value, version)[0]
    egress = decode_entry(ct.CT4, ct.CT4.encode("key", {**key, "direction": "egress"}, version), value, version)[0]
    assert service["value"]["backend_id"] == 11 and "rx_bytes" not in service["value"]
    assert egress["value"]["rx_bytes"] == 11 and "backend_id" not in egress["value"]
    assert ct.CT4.encode("value", service["value"], version) == value
