"""The lazy name table in tshoot.maps (which module holds which name) agrees with the map modules."""

from tshoot import maps


def test_every_short_name_and_alias_is_in_the_table():
    names = {name: type(cmap).__module__.rsplit(".", 1)[1]
             for cmap in maps.MAPS for name in (cmap.short, *cmap.aliases)}
    assert names == maps.BY_NAME


def test_every_pinned_name_starts_with_its_modules_prefix():
    for cmap in maps.MAPS:
        module = type(cmap).__module__.rsplit(".", 1)[1]
        for pin in cmap.pins:
            stems = [m for prefix, m in maps.PINNED_PREFIXES if pin.name.startswith(prefix)]
            assert stems == [module], (pin.name, stems)
        assert maps.find(cmap.pins[-1].name.format(endpoint=2006))[0] is cmap
