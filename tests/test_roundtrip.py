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
