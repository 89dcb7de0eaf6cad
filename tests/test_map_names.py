"""Map names: short names, aliases and every version's pinned names find their map; a pinned name
implies its versions; `tshoot maps` lists what a version pins."""

import json

import pytest

from tshoot.core.errors import UsageError
from tshoot.maps import MAPS, find
from tshoot.maps.policy import MAP as POLICY

PINNED = [(cmap, pin.name.format(endpoint=2006)) for cmap in MAPS for pin in cmap.pins]


@pytest.mark.parametrize("cmap, name", PINNED, ids=[name for _, name in PINNED])
def test_every_pinned_name_of_every_version_finds_its_map(cmap, name):
    found, params = find(name)
    assert found is cmap
    assert params == ({"endpoint": 2006} if cmap is POLICY else {})


@pytest.mark.parametrize("name", [m.short for m in MAPS] + [a for m in MAPS for a in m.aliases])
def test_short_names_and_aliases(name):
    assert find(name)[1] == {}


@pytest.mark.parametrize("name", ["cilium_policy", "cilium_policystats", "cilium_policy_v2_", "cilium_policy_v2_2x",
                                  "cilium_lb4_backends_v4", "ct", "cilium_ct4_globals"])
def test_names_that_are_not_maps(name):
    with pytest.raises(UsageError, match="unknown map"):
        find(name)


@pytest.mark.parametrize("name, version", [
    ("cilium_lb4_backends", (1, 10, 999)), ("cilium_lb4_backends_v2", (1, 12, 999)), ("cilium_ipcache", (1, 17, 999)),
    ("cilium_policy_02006", (1, 16, 999)), ("cilium_tunnel_map", (1, 17, 999)), ("cilium_ipcache_v2", (1, 19, 4)),
    ("ipcache", (1, 19, 4)), ("tunnel", (1, 19, 4)),
])
def test_a_pinned_name_implies_the_newest_version_that_pins_it(name, version):
    cmap, _ = find(name)
    assert cmap.default_version(name) == version


def maps_json(tshoot, version):
    r = tshoot("maps", "--cilium-version", version, "-o", "json")
    assert r.code == 0, r
    obj = json.loads(r.out)
    return obj["cilium_version"], {m["map"]: m for m in obj["maps"]}


def test_maps_of_the_guides_version(tshoot):
    version, maps = maps_json(tshoot, "1.9.1")
    assert version == "1.9.1" and set(maps) == {m.short for m in MAPS}
    assert maps["lb4-backends"] | {"summary": ""} == {"map": "lb4-backends", "pinned_name": "cilium_lb4_backends",
                                                      "type": "hash", "key_size": 2, "value_size": 8,
                                                      "max_entries": 65536, "summary": ""}
    assert (maps["policy"]["pinned_name"], maps["policy"]["type"], maps["policy"]["key_size"],
            maps["policy"]["value_size"]) == ("cilium_policy_<endpoint>", "hash", 8, 24)
    assert (maps["ipcache"]["pinned_name"], maps["ipcache"]["value_size"]) == ("cilium_ipcache", 12)
    assert maps["tunnel"]["pinned_name"] == "cilium_tunnel_map"
    assert maps["ct-any4"]["type"] == "lru_hash" and maps["ct6"]["key_size"] == 38


def test_maps_of_1_19(tshoot):
    _, maps = maps_json(tshoot, "1.19")
    assert "tunnel" not in maps
    assert (maps["policy"]["pinned_name"], maps["policy"]["type"], maps["policy"]["key_size"],
            maps["policy"]["value_size"]) == ("cilium_policy_v2_<endpoint>", "lpm_trie", 12, 12)
    assert (maps["ipcache"]["pinned_name"], maps["ipcache"]["value_size"]) == ("cilium_ipcache_v2", 24)
    assert (maps["lb6-backends"]["pinned_name"], maps["lb6-backends"]["key_size"],
            maps["lb6-backends"]["value_size"]) == ("cilium_lb6_backends_v3", 4, 24)


def test_maps_table(tshoot):
    r = tshoot("maps", "--cilium-version", "1.18.0")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "Cilium 1.18.0 maps"
    assert lines[1].split() == ["MAP", "PINNED", "NAME", "TYPE", "KEY", "VALUE", "MAX", "ENTRIES"]
    assert ["policy", "cilium_policy_v2_<endpoint>", "lpm_trie", "12", "8", "16384"] in [line.split() for line in lines]
    assert lines[-1] == "not in Cilium 1.18.0: tunnel"


@pytest.mark.parametrize("args, message", [
    (["--cilium-version", "1.8"], "1.9 to 1.19"),
    (["--cilium-version", "x"], "expected X.Y"),
    (["-o", "xml"], "is not one of"),
])
def test_maps_bad_input(tshoot, args, message):
    r = tshoot("maps", *args)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r


@pytest.mark.parametrize("cmap", MAPS, ids=lambda m: m.short)
def test_field_kinds_name_fields_the_map_has(cmap):
    """Enrichment follows each map's field_kinds: a field renamed without it would go unexplained silently."""
    from tshoot.cluster.enrich import KINDS

    fields = set()
    for which, table in (("key", cmap.keys), ("value", cmap.values)):
        for versions, layout in table:
            fields |= set(cmap.decode(which, bytes(layout.size), min(low for low, _ in versions.intervals)).fields)
    assert set(cmap.field_kinds) <= fields, set(cmap.field_kinds) - fields
    assert set(cmap.field_kinds.values()) <= set(KINDS)
