"""`tshoot decode`: the guide's dumps, every input form, layout choice, bad input."""

import json

import pytest

GUIDE_IPCACHE_VALUE = "e3 d1 00 00 ac 12 00 05 00 00 00 00"
GUIDE_LXC_LOOKUP = """key:
0a 00 01 6e 00 00 00 00  00 00 00 00 00 00 00 00
01 00 00 00
value:
0b 00 00 00 00 00 d6 07  00 00 00 00 00 00 00 00
6a 8c ee 3a 73 d5 00 00  3e 43 da fb c7 04 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
"""
GUIDE_IPCACHE_LOOKUP = """key:
40 00 00 00 00 00 00 01  0a 00 01 6e 00 00 00 00
00 00 00 00 00 00 00 00
value:
e3 d1 00 00 ac 12 00 05  00 00 00 00
"""


def as_json(r):
    assert r.code == 0, r
    return json.loads(r.out)


def test_guide_ipcache_value(tshoot):
    obj = as_json(tshoot("decode", "ipcache", "--value", GUIDE_IPCACHE_VALUE, "-o", "json"))
    assert obj == {"map": "ipcache", "cilium_version": None,
                   "value": {"identity": 53731, "tunnel_endpoint": "172.18.0.5", "encrypt_key": 0, "flags": []}}


def test_guide_ipcache_lookup_from_stdin(tshoot):
    obj = as_json(tshoot("decode", "ipcache", "-", "-o", "json", input=GUIDE_IPCACHE_LOOKUP))
    assert obj["key"] == {"prefix": "10.0.1.110/32", "family": "ipv4", "cluster_id": 0}
    assert obj["value"]["identity"] == 53731 and obj["value"]["tunnel_endpoint"] == "172.18.0.5"


def test_guide_lxc_lookup_from_stdin(tshoot):
    obj = as_json(tshoot("decode", "lxc", "-", "-o", "json", "--cilium-version", "1.9.1", input=GUIDE_LXC_LOOKUP))
    assert obj["cilium_version"] == "1.9.1"
    assert obj["key"] == {"ip": "10.0.1.110", "family": "ipv4", "cluster_id": 0}
    assert obj["value"] == {"ifindex": 11, "lxc_id": 2006, "flags": [], "mac": "6a:8c:ee:3a:73:d5",
                            "node_mac": "3e:43:da:fb:c7:04"}


def test_lxc_value_fields_per_version(tshoot):
    value = "0b000000 0000 d607 01000000 00000000 6a8cee3a73d50000 3e43dafbc7040000 e3d10000 05000000 0000000000000000"
    v14 = as_json(tshoot("decode", "lxc", "--value", value, "--cilium-version", "1.14", "-o", "json"))["value"]
    v17 = as_json(tshoot("decode", "lxc", "--value", value, "--cilium-version", "1.17.8", "-o", "json"))["value"]
    assert v14["sec_id"] == 53731 and "parent_ifindex" not in v14 and v14["flags"] == ["host"]
    assert v17["sec_id"] == 53731 and v17["parent_ifindex"] == 5


def test_ipcache_v2_value_with_ipv6_tunnel(tshoot):
    value = "e3d10000 fd000000000000000000000000000005 0000 03 06"
    obj = as_json(tshoot("decode", "ipcache", "--value", value, "-o", "json"))
    assert obj["value"] == {"identity": 53731, "tunnel_endpoint": "fd00::5", "encrypt_key": 3,
                            "flags": ["hastunnel", "ipv6tunnel"]}


def test_ipcache_v2_value_without_tunnel_flag_has_no_endpoint(tshoot):
    value = "02000000 ac120005000000000000000000000000 0000 00 01"
    obj = as_json(tshoot("decode", "ipcache", "--value", value, "-o", "json"))
    assert obj["value"]["tunnel_endpoint"] is None and obj["value"]["flags"] == ["skiptunnel"]


def test_ambiguous_value_asks_for_the_version(tshoot):
    # byte 8 = 1: layout A reads encrypt_key 1; layouts B/C read it from byte 10 (0)
    r = tshoot("decode", "ipcache", "--value", "e3 d1 00 00 ac 12 00 05 01 00 00 00")
    assert r.code == 2 and "--cilium-version" in r.err and "1.11.14" in r.err
    assert as_json(tshoot("decode", "ipcache", "--value", "e3 d1 00 00 ac 12 00 05 01 00 00 00",
                          "--cilium-version", "1.10", "-o", "json"))["value"]["encrypt_key"] == 1
    assert as_json(tshoot("decode", "ipcache", "--value", "e3 d1 00 00 ac 12 00 05 00 00 01 00",
                          "--cilium-version", "1.13", "-o", "json"))["value"]["encrypt_key"] == 1


def test_a_pinned_name_narrows_the_layouts_to_the_versions_that_pin_it(tshoot):
    key = "00 00 00 00 80 00 00 00" + " 00" * 16  # byte 4: padding up to 1.14, cluster_id from 1.15
    ambiguous = tshoot("decode", "ipcache", "--key", key)
    assert ambiguous.code == 2 and "pass --cilium-version" in ambiguous.err
    r = tshoot("decode", "cilium_ipcache_v2", "--key", key, "-o", "json", "-v")  # pinned so from 1.18 only
    assert r.code == 0, r
    assert json.loads(r.out)["key"]["cluster_id"] == 128
    assert "24-byte keys fit Cilium 1.18.0–1.19.x" in r.err
    r = tshoot("decode", "cilium_lb4_backends_v2", "--value", "0a 00 01 6e 00 50 06 00 00 00 00 00")
    assert (r.code, r.err) == (2, "tshoot: no lb4-backends value layout is 12 bytes (Cilium 1.11.0–1.12.x use "
                                  "8 bytes)\n")


def test_verbose_says_why(tshoot):
    r = tshoot("decode", "ipcache", "--value", GUIDE_IPCACHE_VALUE, "-v")
    assert r.code == 0 and "every layout of that size reads these bytes alike" in r.err


def test_table_marks_each_fields_bytes(tshoot):
    r = tshoot("decode", "ipcache", "-", input=GUIDE_IPCACHE_LOOKUP)
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0] == "key: struct ipcache_key, 24 bytes"
    assert lines[1] == "  40 00 00 00  00 00  00  01  0a 00 01 6e  00 00 00 00  00 00 00 00  00 00 00 00"
    assert any("0-3" in l and "lpm_key.prefixlen" in l and "64" in l for l in lines)
    assert any("8-11" in l and "ip4" in l and "10.0.1.110" in l for l in lines)
    assert any("4-7" in l and "tunnel_endpoint" in l and "172.18.0.5" in l for l in lines)
    assert any("9-11" in l and "(padding)" in l for l in lines)


def test_bpftool_json_input_and_dump_lists(tshoot):
    dump = json.dumps([
        {"key": ["0x40", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00", "0x01", "0x0a", "0x00", "0x01", "0x6e"] + ["0x00"] * 12,
         "value": ["0xe3", "0xd1", "0x00", "0x00", "0xac", "0x12", "0x00", "0x05", "0x00", "0x00", "0x00", "0x00"]},
        {"key": ["0x28", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00", "0x01", "0x0a"] + ["0x00"] * 15,
         "value": ["0x02", "0x00", "0x00", "0x00"] + ["0x00"] * 8},
    ])
    objs = as_json(tshoot("decode", "ipcache", "-", "-o", "json", input=dump))
    assert [o["key"]["prefix"] for o in objs] == ["10.0.1.110/32", "10.0.0.0/8"]
    assert objs[1]["value"]["identity"] == 2


def test_yaml_output(tshoot):
    r = tshoot("decode", "ipcache", "--value", GUIDE_IPCACHE_VALUE, "-o", "yaml")
    assert r.code == 0 and "identity: 53731" in r.out and "tunnel_endpoint: 172.18.0.5" in r.out


@pytest.mark.parametrize("args, stdin, code, message", [
    (["--value", "zz"], None, 2, "is not hex bytes"),
    (["--value", "0a0"], None, 2, "odd count of hex digits"),
    (["--value", "00 00"], None, 2, "no ipcache value layout is 2 bytes"),
    (["--value", GUIDE_IPCACHE_VALUE, "--cilium-version", "1.19"], None, 2, "is 24 bytes, got 12"),
    ([], None, 2, "nothing to decode"),
    (["-"], "", 2, "nothing on standard input"),
    (["-"], "hello world\n", 2, "no 'key:' or 'value:'"),
    (["-"], "Error: bpf map lookup elem failed: No such file or directory\n", 1, "No such file"),
    (["-", "--key", "00"], None, 2, "not both"),
    (["-o", "xml", "--value", "00"], None, 2, "invalid choice"),
])
def test_bad_input(tshoot, args, stdin, code, message):
    r = tshoot("decode", "ipcache", *args, input=stdin)
    assert r.code == code, r
    assert message in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
