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
    decoded = cmap.decode(which, raw, version)
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
