"""`tshoot key` / `tshoot decode` for the LB, conntrack, policy and tunnel maps: the guide's and the
reference's example bytes (shared/reference/cilium-map-layouts.md §6.1, §7.2, §7.3, §9.5), version
differences, and bad input (one line, exit 2)."""

import json

import pytest

# tkng "eBPF ClusterIP" page, Cilium 1.10.3 (reference §9.5)
TKNG_SVC_MASTER_KEY = "0a 60 20 1c 00 50 00 00 00 00 00 00"
TKNG_SVC_MASTER_VALUE = "00 00 00 00 03 00 00 07 00 00 00 00"
TKNG_SVC_SLOT3_KEY = "0a 60 20 1c 00 50 03 00 00 00 00 00"
TKNG_BACKEND_KEY = "0a 00"
TKNG_BACKEND_VALUE = "0a 00 00 1b 00 50 00 00"
V6 = "fd 00" + " 00" * 13


def as_json(r):
    assert r.code == 0, r
    return json.loads(r.out)


@pytest.mark.parametrize("args, expected", [
    # services: slot 0 is the master entry; the protocol is in the key from 1.17
    (["lb4-services", "10.96.32.28:80", "--cilium-version", "1.10.3"], TKNG_SVC_MASTER_KEY),
    (["lb4-services", "10.96.32.28:80", "--slot", "3", "--cilium-version", "1.10.3"], TKNG_SVC_SLOT3_KEY),
    (["cilium_lb4_services_v2", "10.96.32.28:80/tcp", "--cilium-version", "1.16"], TKNG_SVC_MASTER_KEY),
    (["lb4-services", "10.96.32.28:80"], "0a 60 20 1c 00 50 00 00 06 00 00 00"),  # 1.19: /tcp assumed
    (["lb4-services", "10.32.0.10:53/udp", "--cilium-version", "1.17.0"], "0a 20 00 0a 00 35 00 00 11 00 00 00"),
    (["lb4-services", "10.96.32.28:80/any", "--scope", "internal"], "0a 60 20 1c 00 50 00 00 00 01 00 00"),
    (["lb6-services", "[fd00::a]:443/tcp", "--slot", "2"], V6 + " 0a 01 bb 02 00 06 00 00 00"),
    # backends: a u16 key up to 1.10, u32 from 1.11
    (["lb4-backends", "10", "--cilium-version", "1.10.3"], TKNG_BACKEND_KEY),
    (["cilium_lb4_backends", "10"], TKNG_BACKEND_KEY),  # the 1.9-1.10 name implies the u16 key
    (["lb4-backends", "10", "--cilium-version", "1.11"], "0a 00 00 00"),
    (["lb6-backends", "70000"], "70 11 01 00"),
    # rev-NAT: the index in network order
    (["lb4-revnat", "7"], "00 07"),
    (["lb6-revnat", "258"], "01 02"),
    # conntrack (§6.1): forward entries reversed, service entries not
    (["ct4", "10.0.0.1:40000", "10.0.0.2:80"], "0a 00 00 01 0a 00 00 02 00 50 9c 40 06 00"),
    (["ct4", "10.0.0.1:40000", "10.0.0.2:80", "--direction", "ingress"], "0a 00 00 01 0a 00 00 02 00 50 9c 40 06 01"),
    (["ct4", "10.0.0.1:40000", "10.0.0.2:80", "--direction", "service"], "0a 00 00 02 0a 00 00 01 9c 40 00 50 06 04"),
    (["ct-any4", "10.0.0.1:5353", "10.0.0.2:53", "--related"], "0a 00 00 01 0a 00 00 02 00 35 14 e9 11 02"),
    (["ct-any4", "10.0.0.1:1234", "10.0.0.2:0", "--proto", "icmp"], "0a 00 00 01 0a 00 00 02 00 00 04 d2 01 00"),
    (["cilium_ct6_global", "[fd00::1]:40000", "[fd00::2]:80"],
     "fd 00" + " 00" * 13 + " 01 fd 00" + " 00" * 13 + " 02 00 50 9c 40 06 00"),
    # policy, HASH era (§7.2) and LPM era (§7.3)
    (["policy", "--identity", "53731", "--proto", "tcp", "--port", "80", "--cilium-version", "1.9.1"],
     "e3 d1 00 00 00 50 06 00"),
    (["policy", "--identity", "53731", "--proto", "tcp", "--port", "80", "--direction", "egress",
      "--cilium-version", "1.13"], "e3 d1 00 00 00 50 06 01"),
    (["policy", "--identity", "53731", "--proto", "tcp", "--port", "80"], "40 00 00 00 e3 d1 00 00 00 06 00 50"),
    (["policy", "--identity", "53731", "--proto", "tcp", "--cilium-version", "1.14"], "30 00 00 00 e3 d1 00 00 00 06 00 00"),
    (["policy", "--identity", "53731"], "28 00 00 00 e3 d1 00 00 00 00 00 00"),
    (["policy", "--identity", "53731", "--proto", "tcp", "--port", "8080-8083", "--cilium-version", "1.17"],
     "3e 00 00 00 e3 d1 00 00 00 06 1f 90"),
    (["policy", "--identity", "world", "--direction", "egress", "--proto", "udp", "--port", "53"],
     "40 00 00 00 02 00 00 00 01 11 00 35"),
    (["policy", "--identity", "1", "--proto", "icmp", "--port", "8"], "40 00 00 00 01 00 00 00 00 01 00 08"),
    # tunnel: the masked pod CIDR; cluster id u8 at 17 (1.11.14-1.14), u16 at 18 (1.15-1.17)
    (["tunnel", "10.0.1.110/24", "--cilium-version", "1.9.1"], "0a 00 01 00" + " 00" * 12 + " 01 00 00 00"),
    (["tunnel", "10.0.1.0/24", "--cluster-id", "5", "--cilium-version", "1.14"], "0a 00 01 00" + " 00" * 12 + " 01 05 00 00"),
    (["tunnel", "10.0.1.0/24", "--cluster-id", "5", "--cilium-version", "1.15"], "0a 00 01 00" + " 00" * 12 + " 01 00 05 00"),
    (["cilium_tunnel_map", "10.0.1.0/24"], "0a 00 01 00" + " 00" * 12 + " 01 00 00 00"),  # the name implies <= 1.17
])
def test_golden_keys(tshoot, args, expected):
    r = tshoot("key", *args)
    assert (r.code, r.out, r.err) == (0, expected + "\n", "")


@pytest.mark.parametrize("args, name", [
    (["lb4-backends", "6", "--cilium-version", "1.10"], "cilium_lb4_backends"),
    (["lb4-backends", "6", "--cilium-version", "1.12.8"], "cilium_lb4_backends_v2"),
    (["lb4-backends", "6", "--cilium-version", "1.13"], "cilium_lb4_backends_v3"),
    (["ct-any6", "[fd00::1]:1", "[fd00::2]:2"], "cilium_ct_any6_global"),
    (["lb6-revnat", "7"], "cilium_lb6_reverse_nat"),
    (["policy", "--identity", "1", "--endpoint", "2006", "--cilium-version", "1.16"], "cilium_policy_02006"),
    (["policy", "--identity", "1", "--endpoint", "7"], "cilium_policy_v2_00007"),
    (["cilium_policy_v2_02006", "--identity", "1"], "cilium_policy_v2_02006"),
    (["cilium_policy_02006", "--identity", "1"], "cilium_policy_02006"),  # the name implies <= 1.16
    (["tunnel", "10.0.1.0/24", "--cilium-version", "1.17"], "cilium_tunnel_map"),
])
def test_bpftool_command_names_the_pinned_map(tshoot, args, name):
    r = tshoot("key", *args, "--bpftool")
    assert r.code == 0, r
    assert r.out.startswith(f"bpftool map lookup pinned /sys/fs/bpf/tc/globals/{name} key hex ")


def test_old_policy_name_builds_the_lpm_key_of_1_16(tshoot):
    r = tshoot("key", "cilium_policy_02006", "--identity", "53731", "--proto", "tcp", "--port", "80")
    assert r.out == "40 00 00 00 e3 d1 00 00 00 06 00 50\n"
    r = tshoot("key", "cilium_policy_02006", "--identity", "53731", "--proto", "tcp", "--port", "80",
               "--cilium-version", "1.12")
    assert r.out == "e3 d1 00 00 00 50 06 00\n"


@pytest.mark.parametrize("args, expected", [
    (["lb4-services", "--key", TKNG_SVC_MASTER_KEY, "--value", TKNG_SVC_MASTER_VALUE],
     {"key": {"address": "10.96.32.28", "port": 80, "proto": "ANY", "slot": 0, "scope": "external"},
      "value": {"role": "frontend", "affinity_timeout": 0, "count": 3, "rev_nat_index": 7, "flags": [],
                "flags2": []}}),
    (["lb4-services", "--value", "0b 00 00 00 00 00 00 07 00 00 00 00", "--cilium-version", "1.10.3"],
     {"value": {"role": "backend", "backend_id": 11, "count": 0, "rev_nat_index": 7, "flags": [], "flags2": []}}),
    # an L7 LB master entry: the proxy port in network order in bytes 0-1 (reference §1, gotcha 2), not a
    # backend id (bpf/lib/lb.h: a frontend's first word is its affinity timeout, or this port when L7-balanced)
    (["lb4-services", "--value", "00 50 00 00 00 00 00 05 20 04 00 00", "--cilium-version", "1.17"],
     {"value": {"role": "frontend", "l7_lb_proxy_port": 80, "count": 0, "rev_nat_index": 5,
                "flags": ["loadbalancer"], "flags2": ["l7_loadbalancer"], "qcount": 0}}),
    (["lb4-backends", "--key", TKNG_BACKEND_KEY, "--value", TKNG_BACKEND_VALUE],
     {"key": {"backend_id": 10}, "value": {"address": "10.0.0.27", "port": 80, "proto": "ANY"}}),
    (["lb4-backends", "--value", TKNG_BACKEND_VALUE, "--cilium-version", "1.12"],
     {"value": {"address": "10.0.0.27", "port": 80, "proto": "ANY", "flags": "active"}}),
    (["lb4-backends", "--value", "0a 00 00 1b 1f 90 06 01 07 00 02 00", "--cilium-version", "1.16"],
     {"value": {"address": "10.0.0.27", "port": 8080, "proto": "TCP", "flags": "terminating", "cluster_id": 7,
                "zone": 2}}),
    (["lb6-revnat", "--key", "00 07", "--value", "fd00000000000000000000000000000a 0035"],
     {"key": {"rev_nat_index": 7}, "value": {"address": "fd00::a", "port": 53}}),
    (["ct4", "--key", "0a 00 00 01 0a 00 00 02 00 50 9c 40 06 00"],
     {"key": {"src_addr": "10.0.0.1", "src_port": 40000, "dst_addr": "10.0.0.2", "dst_port": 80, "proto": "TCP",
              "direction": "egress", "related": False}}),
    (["ct4", "--key", "0a 00 00 02 0a 00 00 01 9c 40 00 50 06 04"],
     {"key": {"src_addr": "10.0.0.1", "src_port": 40000, "dst_addr": "10.0.0.2", "dst_port": 80, "proto": "TCP",
              "direction": "service", "related": False}}),
    (["policy", "--key", "40 00 00 00 e3 d1 00 00 00 06 00 50"],
     {"key": {"identity": 53731, "direction": "ingress", "protocol": "TCP", "port": 80, "port_end": 80,
              "prefix_len": 64}}),
    (["policy", "--key", "3e 00 00 00 e3 d1 00 00 00 06 1f 90"],
     {"key": {"identity": 53731, "direction": "ingress", "protocol": "TCP", "port": 8080, "port_end": 8083,
              "prefix_len": 62}}),
    # bits past prefixlen are wildcards whatever they hold
    (["policy", "--key", "28 00 00 00 e3 d1 00 00 01 06 00 50"],
     {"key": {"identity": 53731, "direction": "egress", "protocol": "ANY", "port": 0, "port_end": 0,
              "prefix_len": 40}}),
    (["policy", "--key", "e3 d1 00 00 00 50 06 00"],
     {"key": {"identity": 53731, "direction": "ingress", "protocol": "TCP", "port": 80}}),
    (["policy", "--value", "00 00 01 00 00 00 00 00 05 00 00 00 00 00 00 00 e8 03 00 00 00 00 00 00",
      "--cilium-version", "1.9.1"],
     {"value": {"proxy_port": 0, "deny": True, "packets": 5, "bytes": 1000}}),
    (["policy", "--value", "4e 21 09 81 01 00 00 00"],
     {"value": {"proxy_port": 20001, "deny": True, "lpm_prefix_length": 1, "auth_type": 1,
                "has_explicit_auth_type": True, "proxy_port_priority": 1}}),
    (["policy", "--value", "00 50 80 00 0a 00 00 00 07 00 00 00"],
     {"value": {"proxy_port": 80, "deny": False, "lpm_prefix_length": 16, "auth_type": 0,
                "has_explicit_auth_type": False, "precedence": 10, "cookie": 7}}),
    (["tunnel", "--key", "0a 00 01 00" + " 00" * 12 + " 01 00 00 00",
      "--value", "ac 12 00 05" + " 00" * 12 + " 01 00 00 00", "--cilium-version", "1.9.1"],
     {"key": {"ip": "10.0.1.0", "family": "ipv4", "cluster_id": 0},
      "value": {"endpoint": "172.18.0.5", "encrypt_key": 0}}),
    (["tunnel", "--value", "ac 12 00 05" + " 00" * 12 + " 01 02 07 00", "--cilium-version", "1.13.0"],
     {"value": {"endpoint": "172.18.0.5", "encrypt_key": 2, "node_id": 7}}),
])
def test_golden_decodes(tshoot, args, expected):
    obj = as_json(tshoot("decode", *args, "-o", "json"))
    assert {k: v for k, v in obj.items() if k in ("key", "value")} == expected


CT_VALUE_1_16 = ("00" * 8 + "0600000000000000" + "0a00000000000000" + "dc05000000000000"  # reserved0, backend_id, packets, bytes
                 + "39300000" + "3104" + "0007" + "0b00" + "12" + "10" + "e3d10000" + "01000000" + "02000000")


def test_conntrack_value_per_version(tshoot):
    v16 = as_json(tshoot("decode", "ct4", "--value", CT_VALUE_1_16, "--cilium-version", "1.16", "-o", "json"))["value"]
    assert v16 == {"backend_id": 6, "packets": 10, "bytes": 1500,
                   "flags": ["rx_closing", "seen_non_syn", "node_port", "from_tunnel"],
                   "lifetime": 12345, "rev_nat_index": 7, "ifindex": 11, "src_sec_id": 53731, "last_tx_report": 1,
                   "last_rx_report": 2, "tx_flags_seen": ["syn", "ack"], "rx_flags_seen": ["ack"]}
    # the same bytes in 1.13: rx/tx counters, and bit 10 is reserved (from_tunnel came in 1.14)
    v13 = as_json(tshoot("decode", "ct4", "--value", CT_VALUE_1_16, "--cilium-version", "1.13", "-o", "json"))["value"]
    assert (v13["rx_bytes"], v13["tx_packets"], v13["flags"]) == (6, 10, ["rx_closing", "seen_non_syn", "node_port"])
    v19 = as_json(tshoot("decode", "ct4", "--value", CT_VALUE_1_16, "--cilium-version", "1.19", "-o", "json"))["value"]
    assert v19["nat_port"] == 0x0b00 and "ifindex" not in v19
    r = tshoot("decode", "ct4", "--value", CT_VALUE_1_16)
    assert r.code == 2 and "--cilium-version" in r.err and len(r.err.strip().splitlines()) == 1


def test_table_names_c_members_and_hides_unused_union_members(tshoot):
    r = tshoot("decode", "lb4-services", "--value", "00 50 00 00 00 00 00 05 20 04 00 00", "--cilium-version", "1.17")
    assert r.code == 0, r
    assert "value: struct lb4_service, 12 bytes" in r.out
    assert "l7_lb_proxy_port" in r.out and "affinity_timeout" not in r.out
    assert "means: role=frontend, l7_lb_proxy_port=80" in r.out and "backend_id" not in r.out
    r = tshoot("decode", "lb4-revnat", "--key", "00 07")
    assert r.out.startswith("key: __u16, 2 bytes")


@pytest.mark.parametrize("args, why", [
    (["lb4-backends", "--key", "0a 00", "-v"], "2-byte keys fit Cilium 1.9.0–1.10.x"),
    (["lb4-backends", "--key", "0a 00 00 00", "--cilium-version", "1.12", "-v"], "Cilium 1.12 uses __u32"),
    (["policy", "--value", "00" * 24, "--cilium-version", "1.16.4", "-v"], "Cilium 1.16.4 uses struct policy_entry"),
])
def test_verbose_says_which_rule_chose_the_layout(tshoot, args, why):
    r = tshoot("decode", *args)
    assert r.code == 0 and why in r.err, r


@pytest.mark.parametrize("args, message", [
    (["lb4-services", "10.96.0.10"], "is not ADDRESS:PORT"),
    (["lb4-services", "[fd00::a]:53"], "IPv6 frontend: use lb6-services"),
    (["lb4-services", "10.96.0.10:53", "--slot", "70000"], "slots are 0"),
    (["lb4-services", "10.96.0.10:53/bogus"], "unknown protocol"),
    (["lb4-services", "10.96.0.10:53", "--scope", "sideways"], "invalid choice"),
    (["lb4-backends", "0"], "backend ids are 1 to"),
    (["lb4-backends", "70000", "--cilium-version", "1.10"], "1 to 65535"),
    (["lb4-backends", "six"], "invalid int value"),
    (["lb4-revnat", "0"], "indexes are 1 to 65535"),
    (["ct4", "10.0.0.1:1", "10.0.0.2:2", "--proto", "udp"], "UDP connections are in ct-any4"),
    (["ct-any4", "10.0.0.1:1", "10.0.0.2:2", "--proto", "tcp"], "TCP connections are in ct4"),
    (["ct4", "[fd00::1]:1", "[fd00::2]:2"], "connections are in ct6"),
    (["ct4", "10.0.0.1", "10.0.0.2:80"], "is not ADDRESS:PORT"),
    (["ct4", "10.0.0.1:1", "10.0.0.2:2", "--direction", "sideways"], "invalid choice"),
    (["ct4", "10.0.0.1:1"], "required"),
    (["policy", "--proto", "tcp"], "required: --identity"),
    (["policy", "--identity", "bogus"], "expected a number"),
    (["policy", "--identity", "1", "--port", "80"], "needs a protocol"),
    (["policy", "--identity", "1", "--proto", "tcp", "--port", "80-90"], "not one prefix"),
    (["policy", "--identity", "1", "--proto", "tcp", "--port", "8080-8083", "--cilium-version", "1.16.3"],
     "port ranges are stored as prefixes from Cilium 1.16.4"),
    (["policy", "--identity", "1", "--proto", "tcp", "--port", "99999"], "ports are 1 to 65535"),
    (["policy", "--identity", "1", "--proto", "tcp", "--port", "x"], "expected a port"),
    (["policy", "--identity", "1", "--bpftool"], "policy maps are per endpoint"),
    (["policy", "--identity", "1", "--endpoint", "70000"], "endpoint ids are 0 to 65535"),
    (["cilium_policy_02006", "--identity", "1", "--cilium-version", "1.19"],
     "Cilium 1.19 pins cilium_policy_v2_02006"),
    (["cilium_lb4_backends_v3", "6", "--cilium-version", "1.10"], "cilium_lb4_backends_v3 is the name Cilium 1.13.0–1.19.x pins"),
    (["tunnel", "10.0.1.0/24", "--cilium-version", "1.18"], "removed in 1.18.0"),
    (["tunnel", "10.0.1.0/24"], "removed in 1.18.0"),
    (["tunnel", "10.0.1.0/24", "--cluster-id", "3", "--cilium-version", "1.12.7"], "clustermesh ids need 1.12.8+"),
    (["cilium_policystats", "--identity", "1"], "unknown map 'cilium_policystats'"),
])
def test_bad_key_input_is_one_line_and_exit_2(tshoot, args, message):
    r = tshoot("key", *args)
    assert r.code == 2, r
    assert message in r.err and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


@pytest.mark.parametrize("args, message", [
    (["lb4-backends", "--key", "00 00 00"], "no lb4-backends key layout is 3 bytes"),
    (["lb4-backends", "--key", "00 00", "--cilium-version", "1.13"], "is 4 bytes, got 2"),
    (["policy", "--value", "00" * 8, "--cilium-version", "1.17"], "is 24 bytes, got 8"),
    (["tunnel", "--key", "00" * 20, "--cilium-version", "1.19"], "removed in 1.18.0"),
    (["cilium_policy_v2_00001", "--key", "00" * 12, "--cilium-version", "1.16"], "Cilium 1.16 pins cilium_policy_00001"),
])
def test_bad_decode_input_is_one_line_and_exit_2(tshoot, args, message):
    r = tshoot("decode", *args)
    assert r.code == 2, r
    assert message in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_help_lists_every_map_and_its_arguments(tshoot):
    r = tshoot("key", "--help")
    assert r.code == 0
    for short in ("lb4-services", "lb6-backends", "lb4-revnat", "ct-any6", "policy", "tunnel"):
        assert short in r.out
    r = tshoot("key", "policy", "--help")
    assert r.code == 0 and "--identity" in r.out and "--endpoint" in r.out and "remote-node" in r.out
    r = tshoot("key", "ct4", "--help")
    assert r.code == 0 and "TUPLE_F_SERVICE" in r.out
