"""`tshoot key`: the guide's keys, CIDR entries, cluster ids per version, pinned names, bad input."""

import pytest

GUIDE_IPCACHE_KEY = "40 00 00 00 00 00 00 01 0a 00 01 6e 00 00 00 00 00 00 00 00 00 00 00 00"
GUIDE_LXC_KEY = "0a 00 01 6e 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00"


@pytest.mark.parametrize("args, expected", [
    (["ipcache", "10.0.1.110"], GUIDE_IPCACHE_KEY),
    (["ipcache", "10.0.1.110", "--cilium-version", "1.9.1"], GUIDE_IPCACHE_KEY),
    (["ipcache", "10.0.0.0/8"], "28 00 00 00 00 00 00 01 0a 00 00 00" + " 00" * 12),
    (["ipcache", "10.0.0.7/8"], "28 00 00 00 00 00 00 01 0a 00 00 00" + " 00" * 12),  # host bits cleared
    (["ipcache", "0.0.0.0/0"], "20 00 00 00 00 00 00 01" + " 00" * 16),
    (["ipcache", "fd00::1"], "a0 00 00 00 00 00 00 02 fd 00" + " 00" * 13 + " 01"),
    (["ipcache", "fd00:10::/64"], "60 00 00 00 00 00 00 02 fd 00 00 10" + " 00" * 12),
    (["lxc", "10.0.1.110"], GUIDE_LXC_KEY),
    (["endpoints", "10.0.1.110", "--cilium-version", "1.9"], GUIDE_LXC_KEY),
    (["cilium_lxc", "10.0.1.110"], GUIDE_LXC_KEY),
    (["lxc", "fd00::a"], "fd 00" + " 00" * 13 + " 0a 02 00 00 00"),
])
def test_golden_keys(tshoot, args, expected):
    r = tshoot("key", *args)
    assert (r.code, r.out, r.err) == (0, expected + "\n", "")


@pytest.mark.parametrize("version, expected", [
    ("1.14.4", "40 00 00 00 00 00 07 01 0a 00 01 6e"),  # u8 at byte 6
    ("1.15.7", "40 00 00 00 07 00 00 01 0a 00 01 6e"),  # u16 LE at bytes 4-5
    ("1.19.4", "40 00 00 00 07 00 00 01 0a 00 01 6e"),
])
def test_ipcache_cluster_id_placement(tshoot, version, expected):
    r = tshoot("key", "ipcache", "10.0.1.110", "--cluster-id", "7", "--cilium-version", version)
    assert r.code == 0 and r.out.startswith(expected + " 00")


@pytest.mark.parametrize("version", ["1.15", "1.16", "1.19"])
def test_ipcache_cluster_ids_up_to_511_from_1_15(tshoot, version):
    """max-connected-clusters=511 (1.15+): the agent writes keys of clusters 256-511."""
    r = tshoot("key", "ipcache", "10.0.1.110", "--cluster-id", "511", "--cilium-version", version)
    assert r.out.startswith("40 00 00 00 ff 01 00 01")
    r = tshoot("key", "ipcache", "10.0.1.110", "--cluster-id", "300", "--cilium-version", version)
    assert r.code == 0 and r.out.startswith("40 00 00 00 2c 01 00 01"), r


@pytest.mark.parametrize("version, cluster_id, message", [
    ("1.13", "1", "no cluster_id"),
    ("1.14", "256", "1 to 255 (max-connected-clusters=511 arrived in 1.15)"),
    ("1.15", "512", "1 to 255, or up to 511 with max-connected-clusters=511"),
    ("1.19", "65535", "1 to 255, or up to 511 with max-connected-clusters=511"),
    ("1.19", "-1", "1 to 255"),
])
def test_cluster_id_the_version_cannot_hold(tshoot, version, cluster_id, message):
    r = tshoot("key", "ipcache", "10.0.1.110", "--cluster-id", cluster_id, "--cilium-version", version)
    assert r.code == 2 and message in r.err and r.out == ""
    assert len(r.err.strip().splitlines()) == 1


def test_lxc_cluster_id_placement(tshoot):
    r14 = tshoot("key", "lxc", "10.0.1.110", "--cluster-id", "9", "--cilium-version", "1.14")
    r15 = tshoot("key", "lxc", "10.0.1.110", "--cluster-id", "300", "--cilium-version", "1.16")
    assert r14.out.split()[16:] == ["01", "00", "09", "00"]
    assert r15.out.split()[16:] == ["01", "00", "2c", "01"]


@pytest.mark.parametrize("version, name", [
    ("1.9.1", "cilium_ipcache"), ("1.17.8", "cilium_ipcache"), ("1.18.0", "cilium_ipcache_v2"), (None, "cilium_ipcache_v2"),
])
def test_bpftool_command_names_the_pinned_map(tshoot, version, name):
    args = ["key", "ipcache", "10.0.1.110", "--bpftool"] + (["--cilium-version", version] if version else [])
    r = tshoot(*args)
    assert r.out == f"bpftool map lookup pinned /sys/fs/bpf/tc/globals/{name} key hex {GUIDE_IPCACHE_KEY}\n"


@pytest.mark.parametrize("args, message", [
    (["ipcache", "10.0.1"], "is not an IP address"),
    (["ipcache", "10.0.0.0/33"], "prefix length must be 0 to 32"),
    (["ipcache", "fd00::/129"], "prefix length must be 0 to 128"),
    (["ipcache", "10.0.0.0/x"], "prefix length"),
    (["lxc", "10.0.0.0/8"], "not prefixes"),
    (["nosuchmap", "1.2.3.4"], "unknown map 'nosuchmap'"),
    (["ipcache"], "required"),
    ([], "map is missing"),
    (["ipcache", "1.2.3.4", "--cilium-version", "1.8"], "1.9 to 1.19"),
    (["ipcache", "1.2.3.4", "--cilium-version", "banana"], "expected X.Y"),
    (["ipcache", "1.2.3.4", "--bogus"], "unknown option --bogus"),
])
def test_bad_input_is_one_line_and_exit_2(tshoot, args, message):
    r = tshoot("key", *args)
    assert r.code == 2, r
    assert message in r.err and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_help_lists_maps_and_examples(tshoot):
    r = tshoot("key", "--help")
    assert r.code == 0 and "ipcache" in r.out and "lxc (endpoints)" in r.out and "--bpftool" in r.out
    r = tshoot("key", "ipcache", "--help")
    assert r.code == 0 and "--cluster-id" in r.out and "examples:" in r.out


def test_lab_tshoot_is_the_same_app(lab):
    r = lab("tshoot", "key", "ipcache", "10.0.1.110")
    assert (r.code, r.out) == (0, GUIDE_IPCACHE_KEY + "\n")
    r = lab("tshoot", "key", "ipcache", "10.0.1")
    assert r.code == 2 and "not an IP address" in r.err
