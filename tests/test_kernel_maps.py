"""Real kernel maps with Cilium's geometry in a private bpffs: keys from `tshoot key`, bytes from bpftool,
decoded by `tshoot decode -`. Proves the keys are what the kernel (and so the datapath) matches on."""

import json

import pytest

from tests.conftest import bpftool
from tshoot.maps import ipcache, lxc
from tshoot.core.version import parse


def create(bpffs, name, kind, key, value, entries, flags=0):
    path = bpffs / "tc" / "globals" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    bpftool("map", "create", str(path), "type", kind, "key", str(key), "value", str(value),
            "entries", str(entries), "name", name[:15], "flags", str(flags))
    return path


def update(path, key_hex: str, value: bytes):
    bpftool("map", "update", "pinned", str(path), "key", "hex", *key_hex.split(), "value", "hex", *value.hex(" ").split())


@pytest.mark.parametrize("version, name, value_size", [("1.9.1", "cilium_ipcache", 12), ("1.19.4", "cilium_ipcache_v2", 24)])
def test_ipcache_lpm_lookup_and_decode(tshoot, bpffs, version, name, value_size):
    v = parse(version)
    path = create(bpffs, name, "lpm_trie", 24, value_size, 512000, flags=1)  # BPF_F_NO_PREALLOC
    entries = {
        "10.0.1.110": {"identity": 53731, "tunnel_endpoint": "172.18.0.5", "encrypt_key": 0, "flags": []},
        "10.0.0.0/8": {"identity": 2, "tunnel_endpoint": None, "encrypt_key": 0, "flags": []},
        "fd00::a": {"identity": 1, "tunnel_endpoint": None, "encrypt_key": 0, "flags": []},
    }
    for address, fields in entries.items():
        key = tshoot("key", "ipcache", address, "--cilium-version", version)
        assert key.code == 0
        update(path, key.out, ipcache.MAP.encode("value", fields, v))

    # An exact /32 entry; then an address only the /8 covers: the trie answers with the /8 entry.
    # (address looked up, identity of the entry that must match)
    for address, expect in [("10.0.1.110", 53731), ("10.9.9.9", 2), ("fd00::a", 1)]:
        cmd = tshoot("key", "ipcache", address, "--cilium-version", version, "--bpftool").out.split()
        assert cmd[4] == f"/sys/fs/bpf/tc/globals/{name}"
        out = bpftool("map", "lookup", "pinned", str(path), *cmd[5:]).stdout  # "key hex …"
        obj = json.loads(tshoot("decode", "ipcache", "-", "-o", "json", "--cilium-version", version, input=out).out)
        assert obj["key"]["prefix"] in (address + "/32", address + "/128")  # bpftool echoes the lookup key
        assert obj["value"]["identity"] == expect

    # bpftool's -j dump decodes entry by entry
    dumped = bpftool("-j", "map", "dump", "pinned", str(path)).stdout
    objs = json.loads(tshoot("decode", "ipcache", "-", "-o", "json", "--cilium-version", version, input=dumped).out)
    assert sorted(o["key"]["prefix"] for o in objs) == ["10.0.0.0/8", "10.0.1.110/32", "fd00::a/128"]


def test_lxc_hash_lookup_and_decode(tshoot, bpffs):
    path = create(bpffs, "cilium_lxc", "hash", 20, 48, 65535)
    fields = {"ifindex": 11, "lxc_id": 2006, "flags": [], "mac": "6a:8c:ee:3a:73:d5", "node_mac": "3e:43:da:fb:c7:04",
              "sec_id": 53731, "parent_ifindex": 0}
    key = tshoot("key", "lxc", "10.0.1.110").out
    update(path, key, lxc.MAP.encode("value", fields, parse("1.19.4")))
    out = bpftool("map", "lookup", "pinned", str(path), "key", "hex", *key.split()).stdout
    obj = json.loads(tshoot("decode", "lxc", "-", "-o", "json", "--cilium-version", "1.19.4", input=out).out)
    assert obj["key"] == {"ip": "10.0.1.110", "family": "ipv4", "cluster_id": 0}
    assert obj["value"] == fields
    # A key the datapath would not build (family byte missing) misses: the key bytes matter.
    wrong = key.split()
    wrong[16] = "00"
    miss = bpftool("map", "lookup", "pinned", str(path), "key", "hex", *wrong, check=False)
    assert miss.returncode != 0
    r = tshoot("decode", "lxc", "-", input=miss.stdout + miss.stderr)
    assert r.code == 1 and "bpftool:" in r.err
