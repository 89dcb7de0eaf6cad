"""`tshoot walk` on a simulated cluster (tests/simdatapath.py): the guide's pod-to-pod walk across the VXLAN
tunnel and seed 003's Service walk, through the API server's real exec path into real kernel maps."""

import json
import subprocess

import pytest

from tests import simdatapath, simtraffic
from tests.kubeapi import batched_of, commands_of, script_mark


def walk(tshoot, kubeapi, *args):
    r = tshoot("walk", *args, "--kubeconfig", str(kubeapi.kubeconfig), "-o", "json")
    assert r.out, r
    return r, json.loads(r.out)


def steps(result):
    return {s["id"]: s for s in result["steps"]}


@pytest.mark.parametrize("version", ["1.9.1", "1.16.15", "1.18.3", "1.19.4"])
def test_guide_walk_across_the_tunnel(sim, kubeapi, tshoot, version):
    s = sim(simdatapath.guide_scenario(version))
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    by = steps(result)
    pod = by["source-route"]["result"]
    assert pod["interface"] == "eth0@if24" and pod["route"]["gateway"] == "10.0.2.184"
    lxc = by["source-endpoint"]["result"]
    assert lxc["lxc"] == {"name": "lxcda722d56d553", "ifindex": 24}
    assert lxc["program"]["section"] == "from-container"
    ipcache = by["destination-identity"]["result"]
    assert (ipcache["identity"], ipcache["tunnel_endpoint"], ipcache["tunnel_node"]) == \
        (53731, "172.18.0.5", "k8s-guide-control-plane")
    assert "k8s:name=net-tshoot" in ipcache["labels"]
    decision = by["forwarding"]["result"]
    assert decision["decision"] == "tunnel"
    overlay = by["overlay"]
    assert overlay["node"] == "k8s-guide-control-plane" and overlay["result"]["device"] == "cilium_vxlan(5)"
    entry = by["destination-endpoint"]["result"]
    assert (entry["ifindex"], entry["lxc_id"], entry["mac"], entry["node_mac"]) == \
        (11, 2006, "6a:8c:ee:3a:73:d5", "3e:43:da:fb:c7:04")
    assert entry["pod"] == "default/net-tshoot-4gmzr"
    assert by["ingress-policy"]["result"]["verdict"] == "allowed"
    # delivered: the forward counter of the destination's to-container (TO_LXC: REASON_FORWARDED, ingress)
    assert {k: result["counter"][k] for k in ("node", "reason", "code", "direction")} == \
        {"node": "k8s-guide-control-plane", "reason": "REASON_FORWARDED", "code": 0, "direction": "INGRESS"}
    # every lookup shows the command that ran in the agent
    assert any("bpftool map lookup pinned /sys/fs/bpf/tc/globals/cilium_ipcache" in c
               for c in by["destination-identity"]["commands"])
    assert_ping_arrives(s, "net-tshoot-xbw6q", "net-tshoot-4gmzr")


def test_walk_to_a_pod_by_name_and_the_table(sim, kubeapi, tshoot):
    s = sim(simdatapath.guide_scenario("1.19.4"))
    r = tshoot("walk", "net-tshoot-xbw6q", "net-tshoot-4gmzr", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 0, r
    assert "10.0.2.99 on k8s-guide-worker" in r.out and "delivered" in r.out.splitlines()[-1]
    assert "encapsulated in VXLAN to 172.18.0.5 (k8s-guide-control-plane)" in r.out
    assert_ping_arrives(s, "net-tshoot-xbw6q", "net-tshoot-4gmzr")


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])  # the protocol joined the service key in 1.17
def test_service_walk_reproduces_seed_003(sim, kubeapi, tshoot, version):
    s = sim(simdatapath.service_scenario(version))
    r, result = walk(tshoot, kubeapi, "client-7d9f8-x2v4q", "10.32.0.10:53/udp", "--slot", "2")
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    by = steps(result)
    lb = by["service"]["result"]
    assert lb["frontend"]["backends"] == 2 and lb["frontend"]["rev_nat_index"] == 6
    chosen = next(s for s in lb["slots"] if s["slot"] == lb["chosen"])
    assert (chosen["slot"], chosen["backend"]["address"], chosen["backend"]["port"]) == (2, "10.200.0.44", 53)
    assert lb["rev_nat"] == {"address": "10.32.0.10", "port": 53}
    ipcache = by["destination-identity"]["result"]
    assert ipcache["identity"] == 18203 and ipcache["tunnel_endpoint"] is None
    assert by["forwarding"]["result"]["decision"] == "local"
    assert by["delivery"]["result"]["pod"].startswith("kube-system/coredns-")
    # the load balancer's reads asked together (tshoot.walk.walker Walker._service): the frontend's keys, then
    # every slot and the reverse-NAT entry, then every slot's backend, one exec each
    # (bpftool's arguments, as run alone or in a `bpftool -j batch`)
    asked = [[argv[2:] for argv in commands_of(e.query["command"])] + batched_of(e.query["command"])
             for e in kubeapi.requests_to("/api/v1/namespaces/cilium/pods/*/exec")]
    looked_up = [[args[3].rsplit("/", 1)[1] for args in exec_args if args[:2] == ["map", "lookup"]]
                 for exec_args in asked]
    lb = [[n.split("_lb4_")[1].split("_v")[0] for n in names] for names in looked_up if any("_lb4_" in n for n in names)]
    # the frontend with the packet's protocol and with any (from 1.17); two slots and the reverse NAT; two backends
    assert lb == [["services"] * (2 if version == "1.19.4" else 1), ["services", "services", "reverse_nat"],
                  ["backends", "backends"]], lb
    assert_query_reaches(s, "client-7d9f8-x2v4q", by["delivery"]["result"]["pod"].split("/")[1])


def test_walk_stops_at_a_policy_deny(sim, kubeapi, tshoot):
    s = sim(simdatapath.guide_scenario("1.19.4"))
    # remove the destination endpoint's allow-all ingress entry: nothing allows the source any more
    path = s.map_path("k8s-guide-control-plane", "cilium_policy_v2_02006")
    key = tshoot("key", "policy", "--identity", "0", "--direction", "ingress").out.split()
    subprocess.run(["bpftool", "map", "delete", "pinned", str(path), "key", "hex", *key], check=True)
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (1, "stopped")
    assert "policy denies ingress for endpoint 2006" in result["reason"]
    assert result["steps"][-1]["id"] == "ingress-policy"
    # the counter Cilium bumps: DROP_POLICY (133, bpf/lib/common.h), ingress, in the policy program of bpf_lxc
    assert {k: result["counter"][k] for k in ("reason", "code", "direction", "program", "file")} == \
        {"reason": "DROP_POLICY", "code": 133, "direction": "INGRESS", "program": "bpf_lxc.c", "file": "bpf_lxc.c"}
    assert_ping_dropped(s, "net-tshoot-xbw6q", "10.0.1.110", "k8s-guide-control-plane",
                        simtraffic.DROP_POLICY, simtraffic.METRIC_INGRESS)


def test_walk_stops_without_a_service_backend(sim, kubeapi, tshoot):
    s = sim(simdatapath.service_scenario("1.19.4"))
    path = s.map_path("k8s-guide-worker", "cilium_lb4_services_v2")
    key = tshoot("key", "lb4-services", "10.32.0.10:53/udp").out.split()
    zero_count = subprocess.run(["bpftool", "map", "lookup", "pinned", str(path), "key", "hex", *key],
                                capture_output=True, text=True).stdout.split("value:")[1].split()
    zero_count[4:6] = ["00", "00"]  # count (u16 at bytes 4-5) = 0: the Service lost its backends
    subprocess.run(["bpftool", "map", "update", "pinned", str(path), "key", "hex", *key, "value", "hex",
                    *zero_count], check=True)
    r, result = walk(tshoot, kubeapi, "client-7d9f8-x2v4q", "10.32.0.10:53/udp")
    assert (r.code, result["verdict"]) == (1, "stopped") and "has no backend" in result["reason"]
    # the packet: lb4_local() drops the new flow (1.19) with DROP_NO_SERVICE on the client's node
    metrics = s.map_path("k8s-guide-worker", "cilium_metrics")
    before = simtraffic.metrics(metrics)
    assert simtraffic.exchange(s.pods["client-7d9f8-x2v4q"].netns, "udp", "10.32.0.10", 53, timeout=0.5) is None
    after = simtraffic.metrics(metrics)
    key = (simtraffic.DROP_NO_SERVICE, simtraffic.METRIC_EGRESS)
    assert after[key] - before[key] >= 1, (before, after)


def test_walk_errors_are_one_line(sim, kubeapi, tshoot):
    sim(simdatapath.guide_scenario("1.19.4"))
    r = tshoot("walk", "no-such-pod", "10.0.1.110", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "no-such-pod" in r.err
    r = tshoot("walk", "net-tshoot-xbw6q", "10.0.1.110:http", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 2 and "is not ADDRESS:PORT" in r.err and len(r.err.strip().splitlines()) == 1


def test_local_backend_walks_one_node(sim, kubeapi, tshoot):
    s = sim(simdatapath.service_scenario("1.19.4"))
    node = s.nodes["k8s-guide-worker"]
    client = s.pods["client-7d9f8-x2v4q"]
    local = ["--backend", "local", "--bpffs", str(node.bpffs), "--netns", node.netns, "--pod-netns", client.netns,
             "--cilium-version", "1.19.4", "-o", "json"]
    r = tshoot("walk", client.ip, "10.32.0.10:53/udp", "--slot", "2", *local)
    result = json.loads(r.out)
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    assert steps(result)["delivery"]["result"]["interface"] == s.pods["coredns-6f6b679f8f-wx7tl"].lxc_name
    assert_query_reaches(s, "client-7d9f8-x2v4q", "coredns-6f6b679f8f-wx7tl")
    # slot 1 is the CoreDNS pod on the other node: the local backend says where the walk would continue
    r = tshoot("walk", client.ip, "10.32.0.10:53/udp", "--slot", "1", *local)
    result = json.loads(r.out)
    assert (r.code, result["verdict"]) == (0, "left") and "cannot reach" in result["reason"]


def test_walk_stops_where_a_map_is_missing(sim, kubeapi, tshoot):
    s = sim(simdatapath.guide_scenario("1.19.4"))
    s.map_path("k8s-guide-control-plane", "cilium_lxc").unlink()  # the destination node lost its endpoint map
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (1, "stopped")
    assert result["reason"].startswith("lxc on k8s-guide-control-plane: map cilium_lxc is not pinned")
    assert result["steps"][-1]["id"] == "destination-endpoint"
    # No drop: the walk cannot read an unpinned map, but the loaded programs still hold it.
    assert_ping_arrives(s, "net-tshoot-xbw6q", "net-tshoot-4gmzr")


def test_the_by_hand_commands_run_as_shown_with_kubectl(sim, kubeapi, tshoot):
    """Every command a walk step shows, pasted into a shell with a real kubectl (1.34, as scripts/install-kubectl
    installs it), succeeds; the map lookups answer what the step decoded."""
    from tests.conftest import kubectl_shell

    shell = kubectl_shell(kubeapi.kubeconfig)
    sim(simdatapath.guide_scenario("1.19.4"))
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert r.code == 0, r
    ran = 0
    for step in result["steps"]:
        for command in step["commands"]:
            done = shell(command)
            if "   # no entry" in command:  # shown as a lookup of the datapath's that found nothing
                assert done.returncode != 0 and "Not found" in done.stdout, (step["title"], command, done)
                continue
            assert done.returncode == 0 and done.stderr == "", (step["title"], command, done.stderr)
            ran += 1
            if "bpftool map lookup pinned" in command and "cilium_ipcache" in command:
                decoded = tshoot("decode", command.split("pinned ")[1].split()[0].rsplit("/", 1)[1], "-",
                                 "-o", "json", "--cilium-version", "1.19.4", input=done.stdout)
                assert json.loads(decoded.out)["value"]["identity"] == step["result"]["identity"], command
    assert ran >= 5


# --- the walk checked against the packet (tests/simtraffic.py) --------------------------------------------

def assert_ping_arrives(s, source: str, target: str, count: int = 3):
    """The walk said delivered: echo requests from source reach target (counted on its eth0) and are answered."""
    dst = s.pods[target]
    before = simtraffic.rx_packets(dst.netns, "eth0")
    assert simtraffic.ping(s.pods[source].netns, dst.ip, count=count)
    assert simtraffic.rx_packets(dst.netns, "eth0") - before >= count


def assert_ping_dropped(s, source: str, address: str, node: str, reason: int, direction: int, count: int = 2):
    """The walk stopped at a drop: the echo requests die, counted under that reason in the node's cilium_metrics."""
    path = s.map_path(node, "cilium_metrics")
    before = simtraffic.metrics(path)
    assert not simtraffic.ping(s.pods[source].netns, address, count=count, wait=0.5)
    after = simtraffic.metrics(path)
    assert after[(reason, direction)] - before[(reason, direction)] >= count, (before, after)


def assert_query_reaches(s, client: str, backend: str, attempts: int = 24):
    """The walk said the Service delivers to `backend` (its --slot): a DNS-port query reaches it and its answer
    comes back from the Service's address. Cilium picks a slot at random per new flow, so new flows (new source
    ports) are tried until one lands on that backend."""
    dns = [p for p in s.pods if p.startswith("coredns-")]
    target = s.pods[backend]
    before = simtraffic.rx_packets(target.netns, "eth0")
    wanted, answers = f"{backend} {s.pods[client].ip} hello", []
    servers = [simtraffic.Server(s.pods[name].netns, "udp", 53, name) for name in dns]
    try:
        for sport in range(40000, 40000 + attempts):
            answers.append(simtraffic.exchange(s.pods[client].netns, "udp", "10.32.0.10", 53, sport=sport))
            if answers[-1] == wanted:
                break
    finally:
        for server in servers:
            server.close()
    assert wanted in answers, answers
    assert simtraffic.rx_packets(target.netns, "eth0") - before >= 1


def test_a_walk_reads_each_maps_metadata_once_per_node(sim, kubeapi, tshoot):
    """Map info and BTF cross the exec stream once per node per command, however many lookups a walk makes."""
    import collections

    sim(simdatapath.guide_scenario("1.19.4"))
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    per_node = collections.defaultdict(collections.Counter)
    map_reads = collections.defaultdict(set)  # node -> the exec_many calls (rounds) that read maps
    for request in kubeapi.requests_to("/api/v1/namespaces/cilium/pods/*/exec"):
        node = kubeapi.get("pods", name=request.path.split("/")[6], namespace="cilium")["spec"]["nodeName"]
        ran = commands_of(request.query["command"])
        if any(argv[2:3] == ["map"] or "batch" in argv[1:3] for argv in ran):
            map_reads[node].add(script_mark(request.query["command"]) or id(request))
        for argv in ran:
            if argv[:4] == ["bpftool", "-j", "map", "show"] or argv[2:3] == ["btf"]:
                per_node[node][" ".join(argv[2:])] += 1
    # each map once per node, however many lookups: the source node its lxc, ipcache, the source endpoint's
    # calls and policy maps; the destination its lxc, the overlay's calls map, cilium_call_policy and the
    # destination endpoint's policy map
    read = {node: {argv.rsplit("/", 1)[-1]: n for argv, n in counts.items()} for node, counts in per_node.items()}
    assert {node: set(counts.values()) for node, counts in read.items()} == \
        {"k8s-guide-worker": {1}, "k8s-guide-control-plane": {1}}, read
    assert set(read["k8s-guide-worker"]) == {"cilium_lxc", "cilium_ipcache_v2", "cilium_calls_00117",
                                             "cilium_policy_v2_00117"}, read  # the source is endpoint 117
    assert set(read["k8s-guide-control-plane"]) == {"cilium_lxc", "cilium_calls_overlay_2", "cilium_call_policy",
                                                    "cilium_policy_v2_02006"}, read
    # and in two round trips per node (tshoot.walk.ahead): what the walk knows at the start (the endpoints'
    # cilium_lxc entries, the ipcache entries of both ends, the overlay's tail-call slot), then what those
    # answers name (the source endpoint's tail-call slot and egress policy, the destination endpoint's policy
    # slot and ingress policy)
    assert {node: len(calls) for node, calls in map_reads.items()} == {"k8s-guide-worker": 2,
                                                                       "k8s-guide-control-plane": 2}, map_reads
    # every exec, its script in the query, fits the 8 KB request line of common proxies (nginx's default)
    longest = max(len(q.target) for q in kubeapi.requests_to("/api/v1/namespaces/*/pods/*/exec"))
    assert longest <= 8000, longest


def test_a_destination_node_without_agent_fails_as_the_walk_says(sim, kubeapi, tshoot):
    """The destination node's reads are asked ahead of the walk; where its agent is gone, that failure is the
    walk's when it needs the destination, with the message the walk alone gives (one line, exit 1)."""
    sim(simdatapath.guide_scenario("1.19.4"))
    agent = next(p["metadata"]["name"] for p in kubeapi.list("pods", "cilium", "k8s-app=cilium")
                 if p["spec"]["nodeName"] == "k8s-guide-control-plane")
    kubeapi.delete("pods", agent, "cilium")
    r = tshoot("walk", "net-tshoot-xbw6q", "10.0.1.110", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 1 and r.err.count("\n") == 1, r
    assert r.err.startswith("tshoot: no Cilium agent pod on node k8s-guide-control-plane"), r.err


# --- the datapath's own decisions, per version ------------------------------------------------------------

@pytest.mark.parametrize("version,via", [("1.9.1", "cilium_tunnel_map"), ("1.16.15", "cilium_tunnel_map"),
                                         ("1.19.4", None)])
def test_tunnel_map_fallback_before_1_18(sim, kubeapi, tshoot, version, via):
    """An ipcache entry without a tunnel endpoint: bpf_lxc (encap_and_redirect_lxc, bpf/lib/encap.h) falls back
    to cilium_tunnel_map up to 1.17 (key: the destination under the local pod-CIDR mask); from 1.18 there is
    no such map and the packet goes to the stack."""
    s = sim(simdatapath.guide_scenario(version))
    s.clear_tunnel_endpoint("k8s-guide-worker", "10.0.1.110")
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    by = steps(result)
    assert by["destination-identity"]["result"]["tunnel_endpoint"] is None
    if via is None:
        assert (r.code, result["verdict"]) == (0, "left") and "host stack" in result["reason"]
        assert not any("cilium_tunnel_map" in c for c in by["forwarding"]["commands"])
        return
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    forwarding = by["forwarding"]
    assert (forwarding["result"]["via"], forwarding["result"]["tunnel_endpoint"], forwarding["result"]["node"]) == \
        (via, "172.18.0.5", "k8s-guide-control-plane")
    assert forwarding["result"]["tunnel_map_key"].startswith("10.0.1.0 ")  # 10.0.1.110 under the worker's /24
    assert any("bpftool map lookup pinned /sys/fs/bpf/tc/globals/cilium_tunnel_map" in c for c in forwarding["commands"])


@pytest.mark.parametrize("version,reason,code", [("1.9.1", "DROP_MISSED_TAIL_CALL", 140),
                                                 ("1.16.15", "DROP_EP_NOT_READY", 203),
                                                 ("1.19.4", "DROP_EP_NOT_READY", 203)])
def test_empty_policy_slot_stops_the_walk(sim, kubeapi, tshoot, version, reason, code):
    """Local delivery tail-calls cilium_call_policy[lxc_id]; an empty slot drops the packet with the reason of
    the version (bpf/lib/l3.h ep_tail_call -> DROP_MISSED_TAIL_CALL; tail_call_policy -> DROP_EP_NOT_READY)."""
    s = sim(simdatapath.guide_scenario(version))
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    slot = steps(result)["policy-program"]
    assert slot["result"]["slot"] == 2006 and isinstance(slot["result"]["program_id"], int)
    assert result["counter"]["reason"] == "REASON_FORWARDED" and result["counter"]["direction"] == "INGRESS"
    path = s.map_path("k8s-guide-control-plane", "cilium_call_policy")
    subprocess.run(["bpftool", "map", "delete", "pinned", str(path), "key", *map(str, (2006).to_bytes(4, "little"))],
                   check=True)
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (1, "stopped"), result
    assert result["steps"][-1]["id"] == "policy-program" and "cilium_call_policy[2006] is empty" in result["reason"]
    assert (result["counter"]["reason"], result["counter"]["code"], result["counter"]["direction"],
            result["counter"]["program"]) == (reason, code, "INGRESS", "bpf_overlay.c")
    assert ("file" in result["counter"]) == (version != "1.9.1")  # metrics keys name the file from 1.16


def _host_firewall_config(kubeapi, enabled: bool) -> None:
    kubeapi.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config", "namespace": "cilium"},
                 "data": {"enable-host-firewall": "true" if enabled else "false"}})


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])
def test_to_the_node_without_host_firewall_no_host_policy(sim, kubeapi, tshoot, version):
    """pod -> its node's IP: without the host firewall bpf_lxc passes it to the stack; no host policy is read."""
    s = sim(simdatapath.guide_scenario(version))
    s.add_host_endpoint("k8s-guide-worker", 3391, allow=False)  # a host policy that would deny, were it enforced
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "172.18.0.4")
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    assert result["steps"][-1]["id"] == "host" and "ingress-policy" not in steps(result)
    assert result["assumes"]["enable-host-firewall"] is False and "cilium-config has no" in result["assumes"]["from"]
    assert "host firewall off" in result["reason"]
    _host_firewall_config(kubeapi, enabled=True)
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "172.18.0.4")
    assert (r.code, result["verdict"]) == (1, "stopped"), result
    assert result["assumes"] == {"enable-host-firewall": True, "from": "cilium-config enable-host-firewall=true"}
    assert steps(result)["host"]["result"]["host_endpoint"] == 3391
    assert "policy denies ingress for endpoint 3391" in result["reason"]
    assert (result["counter"]["reason"], result["counter"]["program"]) == ("DROP_POLICY", "bpf_host.c")
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "172.18.0.4", "--host-firewall", "off")
    assert result["verdict"] == "delivered" and result["assumes"]["from"] == "--host-firewall off"


def test_tunnel_endpoint_of_a_node_without_node_object(sim, kubeapi, tshoot):
    """A tunnel endpoint whose ipcache identity is remote-node is a node even when no Node object names it."""
    sim(simdatapath.guide_scenario("1.19.4"))
    kubeapi.delete("nodes", "k8s-guide-control-plane")
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    ipcache = steps(result)["destination-identity"]["result"]
    assert ipcache["tunnel_node"].startswith("a node: identity 6 (reserved:remote-node)"), ipcache
    assert (r.code, result["verdict"]) == (0, "left") and "without a Node object" in result["reason"]


def test_by_hand_commands_for_a_tcx_hook_work_on_old_bpftool():
    """bpftool < 7.3 lists no tcx hook in `net show`: the walk also shows `bpftool link show id N` (and the pin)."""
    from tshoot.inspect.netshow import Hook
    from tshoot.node.local import LocalBackend
    from tshoot.walk.walker import Node, Packet, Source, Step, WalkContext, Walker

    node = Node("n1", LocalBackend("/sys/fs/bpf"), None, None)
    walker = Walker(WalkContext(lambda name: node, Source("endpoint 10.0.0.1", "10.0.0.1", "n1"), Packet("10.0.0.2")))
    step = Step("source-endpoint", "t")
    tcx = Hook(hook="tcx", attach="tcx/ingress", prog_id=7, direction="ingress", link_id=12,
               pinned=["/sys/fs/bpf/cilium/devices/lxc1/links/cil_from_container"])
    walker._hook_commands(node, step, "lxc1", tcx)
    assert step.commands[0] == "bpftool net show dev lxc1"
    assert step.commands[1].startswith("bpftool link show id 12   # tcx link (pinned at /sys/fs/bpf/cilium/devices/")
    step = Step("source-endpoint", "t")
    walker._hook_commands(node, step, "lxc1", Hook(hook="tc", attach="clsact/ingress", prog_id=7))
    assert step.commands == ["bpftool net show dev lxc1"]


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])
@pytest.mark.parametrize("node,calls,step_id,program,direction", [
    ("k8s-guide-worker", "cilium_calls_{source:05d}", "source-tail-call", "bpf_lxc.c", "EGRESS"),
    ("k8s-guide-control-plane", "cilium_calls_overlay_2", "overlay-tail-call", "bpf_overlay.c", "INGRESS")])
def test_an_empty_entry_tail_call_drops(sim, kubeapi, tshoot, version, node, calls, step_id, program, direction):
    """from-container and from-overlay tail-call CILIUM_CALL_IPV4_FROM_LXC (slot 7) first; an empty slot is
    DROP_MISSED_TAIL_CALL (140) in every version."""
    s = sim(simdatapath.guide_scenario(version))
    name = calls.format(source=s.pods["net-tshoot-xbw6q"].endpoint_id)
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert steps(result)[step_id]["result"]["slot"] == 7 and steps(result)[step_id]["result"]["program_id"]
    subprocess.run(["bpftool", "map", "delete", "pinned", str(s.map_path(node, name)), "key", "7", "0", "0", "0"],
                   check=True)
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"], result["steps"][-1]["id"]) == (1, "stopped", step_id), result
    assert f"{name}[7] is empty" in result["reason"]
    assert (result["counter"]["reason"], result["counter"]["code"], result["counter"]["direction"],
            result["counter"]["program"]) == ("DROP_MISSED_TAIL_CALL", 140, direction, program)
