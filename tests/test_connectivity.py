"""`lab check connectivity` on the simulated cluster: every row passes on a healthy cluster, and taking away
one thing at a time (a policy entry, an ipcache entry, a Service's backends, the masquerade rule, the tunnel
device) fails exactly the rows that need it, each explained by a walk that names what is missing."""

import json
import shutil
import subprocess
import time

import pytest

from lab import connectivity
from tests import simconnectivity

WORKER, CONTROL_PLANE, WORKER2 = "k8s-guide-worker", "k8s-guide-control-plane", "k8s-guide-worker2"


@pytest.fixture
def lab_sim(sim, kubeapi):
    """start(version) -> (sim, world): the guide's cluster with net-echo, its workloads running."""
    # what the check runs in the pods, here this machine's binaries in the pods' namespaces
    missing = [tool for tool in ("ping", "dig", "bash", "timeout", "head") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the connectivity check's probes need {', '.join(missing)} (scripts/install-test-deps)")
    made = []

    def start(version="1.19.4"):
        scenario = simconnectivity.scenario(version)
        s = sim(scenario)
        workloads = simconnectivity.Workloads(s, scenario["objects"]).__enter__()
        made.append(workloads)
        return s, simconnectivity.NetnsWorld(s)

    yield start
    for workloads in made:
        workloads.__exit__()


def run(kubeapi, world):
    return connectivity.check(str(kubeapi.kubeconfig), None, world)


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])
def test_every_row_passes_on_a_healthy_cluster(lab_sim, kubeapi, version):
    s, world = lab_sim(version)
    report = run(kubeapi, world)
    assert report.passed, [r.to_dict() for r in report.rows if not r.ok]
    nodes = len(s.nodes)
    # the matrix: per pod ICMP+TCP to every net-echo, ClusterIP, a NodePort per node, world ICMP+UDP, DNS;
    # per node TCP to every net-echo
    assert len(report.rows) == nodes * (2 * nodes + 1 + nodes + 2 + 1) + nodes * nodes
    same = [r for r in report.rows if r.probe.path == connectivity.SAME_NODE and r.probe.protocol == "tcp"]
    assert {r.seen for r in same} == {r.probe.source.ip for r in same}  # pod to pod: no NAT
    world_rows = [r for r in report.rows if r.probe.path == connectivity.WORLD and r.probe.protocol == "udp"]
    assert {r.seen for r in world_rows} == {n.spec.ip for n in s.nodes.values()}  # masqueraded to each node
    assert world.arrivals() and set(world.arrivals()) <= {n.spec.ip for n in s.nodes.values()}
    assert report.seconds < 20


# --- one thing broken at a time ---------------------------------------------------------------------------

def pod(s, prefix, node):
    return next(p for p in s.pods.values() if p.name.startswith(prefix) and p.node == node)


def text(row) -> str:
    why = row.explanation
    assert why is not None, row.to_dict()
    return " ".join([why.reason or "", (why.step or {}).get("says") or "", *why.findings])


def assert_fails_exactly(report, must_fail, may_fail, named):
    """must_fail(row) rows fail and their explanation names the broken thing; may_fail(row) rows (a Service
    picks its backend at random, as lb4_select_backend_id() does) either pass or fail the same way; every
    other row passes."""
    for row in report.rows:
        if must_fail(row):
            assert not row.ok, row.to_dict()
        elif not may_fail(row):
            assert row.ok, (row.to_dict(), [r.probe.destination for r in report.rows if not r.ok])
        if not row.ok:
            assert named.lower() in text(row).lower(), (named, row.to_dict())
    assert any(must_fail(r) for r in report.rows)


def from_pod(row, node):
    return not row.probe.source.is_node and row.probe.source.node == node


def service_path(row):
    return row.probe.path in (connectivity.CLUSTER_IP, connectivity.NODE_PORT, connectivity.DNS)


def test_a_missing_policy_entry_fails_the_pods_rows(lab_sim, kubeapi):
    s, world = lab_sim()
    client = pod(s, "net-tshoot", WORKER)
    s.update_map(WORKER, "policy", {"identity": 0, "direction": "egress", "protocol": "ANY", "port": 0},
                 endpoint=client.endpoint_id)
    report = run(kubeapi, world)
    assert_fails_exactly(report, lambda r: from_pod(r, WORKER), lambda r: False,
                         f"policy denies egress for endpoint {client.endpoint_id}")


def test_a_missing_ipcache_entry_fails_the_rows_to_that_pod(lab_sim, kubeapi):
    s, world = lab_sim()
    target = pod(s, "net-echo", CONTROL_PLANE)
    s.update_map(WORKER, "ipcache", {"prefix": target.ip})
    report = run(kubeapi, world)
    to_target = lambda r: r.probe.source.node == WORKER and r.probe.address == target.ip  # noqa: E731
    assert_fails_exactly(report, to_target, lambda r: from_pod(r, WORKER) and service_path(r), "ipcache")
    row = next(r for r in report.rows if to_target(r) and r.probe.protocol == "tcp" and not r.probe.source.is_node)
    assert "0.0.0.0/0" in text(row) and row.explanation.verdict == "left"


def test_a_service_without_backends_fails_its_rows(lab_sim, kubeapi):
    s, world = lab_sim()
    from tshoot.maps import find

    cmap = find("lb4-backends")[0]
    path = s.map_path(WORKER, cmap.pin(s.version).name)
    echo_ips = {p.ip for p in s.pods.values() if p.name.startswith("net-echo")}
    dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)], capture_output=True,
                                     text=True, check=True).stdout)
    for entry in dump:
        key, value = (bytes(int(b, 16) for b in entry[k]) for k in ("key", "value"))
        if cmap.decode("value", value, s.version).fields["address"] in echo_ips:
            s.update_map(WORKER, "lb4-backends", cmap.decode("key", key, s.version).fields)
    report = run(kubeapi, world)
    assert_fails_exactly(report, lambda r: from_pod(r, WORKER) and r.probe.path in (
        connectivity.CLUSTER_IP, connectivity.NODE_PORT), lambda r: False, "backend")


def test_without_the_masquerade_rule_the_world_sees_the_pod(lab_sim, kubeapi):
    s, world = lab_sim()
    node = s.nodes[WORKER]
    subprocess.run(["ip", "netns", "exec", node.netns, "iptables", "-t", "nat", "-F", "POSTROUTING"], check=True)
    report = run(kubeapi, world)
    assert_fails_exactly(report, lambda r: from_pod(r, WORKER) and r.probe.path == connectivity.WORLD,
                         lambda r: False, "masquerade")
    udp = next(r for r in report.rows if from_pod(r, WORKER) and r.probe.protocol == "udp")
    client = pod(s, "net-tshoot", WORKER)
    assert f"received {client.ip}, the pod's own address" in text(udp)


def test_without_the_tunnel_device_cross_node_rows_fail(lab_sim, kubeapi):
    s, world = lab_sim()
    subprocess.run(["ip", "-n", s.nodes[WORKER].netns, "link", "del", "cilium_vxlan"], check=True)
    report = run(kubeapi, world)
    echo_node = {p.ip: p.node for p in s.pods.values() if p.name.startswith("net-echo")}

    def crosses_worker(r):
        node = echo_node.get(r.probe.address)
        return node is not None and node != r.probe.source.node and WORKER in (node, r.probe.source.node)

    assert_fails_exactly(report, crosses_worker, lambda r: service_path(r) and not r.probe.source.is_node,
                         "vxlan")


def test_the_cli_prints_rows_json_and_explanations(lab_sim, kubeapi, lab):
    s, world = lab_sim()
    with world:  # an existing target for --world IP:PORT
        args = ["check", "connectivity", "--kubeconfig", str(kubeapi.kubeconfig), "--world",
                f"{world.address}:{world.port}"]
        r = lab(*args, "-o", "json")
        assert r.code == 0, r
        data = json.loads(r.out)
        paths = {row["path"] for row in data["rows"]}
        assert paths == set(connectivity.PATHS) and data["failed"] == 0 and data["seconds"] < 20
        assert all(row["latency_ms"] is not None for row in data["rows"])
        client = pod(s, "net-tshoot", WORKER)
        s.update_map(WORKER, "policy", {"identity": 0, "direction": "egress", "protocol": "ANY", "port": 0},
                     endpoint=client.endpoint_id)
        r = lab(*args)
    assert r.code == 1, r
    lines = r.out.splitlines()
    assert lines[0].split()[:5] == ["SOURCE", "DESTINATION", "PATH", "PROTO", "RESULT"]
    failed = [line for line in lines[1:len(data["rows"]) + 1] if " FAIL " in line]
    assert failed and all(line.startswith(f"default/{client.name}") for line in failed)
    assert f"{len(data['rows']) - len(failed)}/{len(data['rows'])} passed" in r.out
    assert f"policy denies egress for endpoint {client.endpoint_id}" in r.out
    assert f"tshoot walk {client.name} " in r.out and "bpftool map lookup pinned" in r.out


def test_usage_errors_are_one_line(lab):
    r = lab("check", "connectivity", "--world", "banana")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "banana" in r.err
    r = lab("check", "connectivity", "--timeout", "soon")
    assert r.code == 2 and "--timeout" in r.err


def test_the_docker_world_is_a_container_on_the_labs_network(kind_cluster, docker_engine):
    """The lab's world target on the real Docker engine: started from the nodes' image on their network,
    it answers a datagram with its source and keeps it; leaving the check removes it."""
    import socket

    cluster = kind_cluster(workers=0)
    with connectivity.DockerWorld(cluster.name) as world:
        node = cluster.nodes[0]
        node.reload()
        container = world.container
        assert container.image.id == node.image.id
        assert set(container.attrs["NetworkSettings"]["Networks"]) == set(node.attrs["NetworkSettings"]["Networks"])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        sock.connect((world.address, world.port))
        sock.send(b"kindlab\n")
        seen = sock.recv(512).decode().strip()
        assert seen == sock.getsockname()[0]
        deadline = time.monotonic() + 5  # the engine's log collection is asynchronous
        while not world.arrivals() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.arrivals() == [seen]
        name = container.name
    assert docker_engine.containers.list(all=True, filters={"name": name}) == []


def test_no_world_without_the_lab(docker_engine):
    with pytest.raises(connectivity.TshootError, match="no node containers of kind cluster 'kl-absent'"):
        connectivity.DockerWorld("kl-absent").__enter__()


def test_a_lab_without_net_echo_is_told_how_to_get_it(kubeapi_cluster, lab):
    r = lab("check", "connectivity", "--kubeconfig", str(kubeapi_cluster.kubeconfig), "--world", "none")
    assert r.code == 1 and r.out == "" and len(r.err.strip().splitlines()) == 1, r
    assert "no running net-echo pod (label name=net-echo)" in r.err and "lab cilium install" in r.err
