"""tshoot trace's filters (pure Python: the expression language, what it matches, what the kernel may
pre-filter) and the record layout shared with the BPF side (read from the compiled object's BTF)."""

from __future__ import annotations

import json
import re
import os
import socket
import struct
import subprocess

import pytest

from tests.conftest import need_tracer_build
from tshoot.core.errors import UsageError
from tshoot.trace import filter as f
from tshoot.trace.events import RECORD, Event


def event(saddr, daddr, proto=17, sport=1000, dport=53, inner=None, kind=2) -> Event:
    """A record as trace.bpf.c writes it (struct event), through the same parser."""
    def packet(p):
        s, d, pr, sp, dp = p
        return [socket.inet_aton(s), socket.inet_aton(d), sp.to_bytes(2, "big"), dp.to_bytes(2, "big"), pr]
    outer = packet((saddr, daddr, proto, sport, dport))
    inner_fields = packet(inner) if inner else packet(("0.0.0.0", "0.0.0.0", 0, 0, 0))
    return Event(RECORD.pack(1, 2, 0, 4026531840, 2, 0, 60, 53731 if inner else 0, kind, 1 if inner else 0,
                             b"eth0", b"veth", *outer, *inner_fields, bytes(4), 0))


@pytest.mark.parametrize("text, hit, miss", [
    ("host 10.0.1.110", event("10.0.1.110", "10.0.2.99"), event("10.0.1.111", "10.0.2.99")),
    ("src host 10.0.1.110", event("10.0.1.110", "10.0.2.99"), event("10.0.2.99", "10.0.1.110")),
    ("dst port 53 and udp", event("1.1.1.1", "2.2.2.2"), event("1.1.1.1", "2.2.2.2", proto=6)),
    ("net 10.0.0.0/16 && !icmp", event("10.0.9.9", "8.8.8.8"), event("10.0.9.9", "8.8.8.8", proto=1)),
    ("tcp or (udp and port 1000)", event("1.1.1.1", "2.2.2.2"), event("1.1.1.1", "2.2.2.2", sport=9, dport=9)),
    ("proto 17", event("1.1.1.1", "2.2.2.2"), event("1.1.1.1", "2.2.2.2", proto=6)),
    # a VXLAN packet: addresses match outer or inner, ports and protocol the inner packet
    ("host 10.0.1.110 and icmp",
     event("172.18.0.5", "172.18.0.4", dport=8472, inner=("10.0.1.110", "10.0.2.99", 1, 0x0800, 0)),
     event("172.18.0.5", "172.18.0.4", dport=8472, inner=("10.0.1.110", "10.0.2.99", 6, 1, 2))),
    ("host 172.18.0.5 and not port 8472",
     event("172.18.0.5", "172.18.0.4", dport=8472, inner=("10.0.1.110", "10.0.2.99", 6, 40000, 80)),
     event("172.18.0.9", "172.18.0.4", dport=8472, inner=("10.0.1.110", "10.0.2.99", 6, 40000, 80))),
])
def test_matches(text, hit, miss):
    tree = f.parse(text)
    assert f.matches(tree, hit) and not f.matches(tree, miss)


@pytest.mark.parametrize("text, kernel", [
    ("host 10.0.1.110", (["10.0.1.110"], 0, 0)),
    ("host 10.0.1.110 and tcp and port 80", (["10.0.1.110"], 6, 80)),
    ("host 10.0.0.1 or host 10.0.0.2", (["10.0.0.1", "10.0.0.2"], 0, 0)),
    ("host 10.0.0.1 or tcp", ([], 0, 0)),  # either side may match without the address
    ("not host 10.0.0.1", ([], 0, 0)),
    ("udp or tcp", ([], 0, 0)),
])
def test_what_the_kernel_may_filter_never_drops_a_match(text, kernel):
    assert f.prefilter(f.parse(text)) == kernel


@pytest.mark.parametrize("text, message", [
    ("host 10.0.1", "not an IPv4 address"), ("port 70000", "not a port"), ("(host 1.1.1.1", "expected"),
    ("frobnicate", "unknown primitive"), ("host 1.1.1.1 1.1.1.2", "unexpected"), ("src tcp", "goes with host"),
])
def test_errors_name_the_problem(text, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        f.parse(text)


def test_the_record_layout_is_the_compiled_structs(tmp_path):
    """struct event and struct packet as clang laid them out (BTF of the object tshoot loads) = RECORD."""
    need_tracer_build()
    os.environ["XDG_CACHE_HOME"] = str(tmp_path)  # compiled afresh, as at a user's first use
    try:
        from tshoot.trace.build import object_path

        obj = object_path()
    finally:
        del os.environ["XDG_CACHE_HOME"]
    types = json.loads(subprocess.run(["bpftool", "-j", "btf", "dump", "file", str(obj)], check=True,
                                      capture_output=True, text=True).stdout)["types"]
    structs = {t["name"]: t for t in types if t["kind"] == "STRUCT"}
    event_t, packet_t = structs["event"], structs["packet"]
    offsets = {m["name"]: m["bits_offset"] // 8 for m in event_t["members"]}
    packet_offsets = {m["name"]: m["bits_offset"] // 8 for m in packet_t["members"]}
    assert event_t["size"] == RECORD.size and packet_t["size"] == 16
    # RECORD's fields, in order, with their byte offsets
    layout, at = [], 0
    for code in ["Q", "Q", "Q", "I", "I", "I", "I", "I", "B", "B", "2x", "16s", "8s"]:
        size = struct.calcsize("<" + code)
        if code != "2x":
            layout.append(at)
        at += size
    names = ["ts", "skb", "location", "netns", "ifindex", "reason", "len", "vni", "kind", "tunnel", "dev", "dev_kind"]
    assert {n: offsets[n] for n in names} == dict(zip(names, layout))
    assert (offsets["outer"], offsets["inner"], offsets["tunnel_remote"], offsets["redirected"]) == \
        (at, at + 16, at + 32, at + 36)
    assert packet_offsets == {"saddr": 0, "daddr": 4, "sport": 8, "dport": 10, "proto": 12, "pad": 13}
