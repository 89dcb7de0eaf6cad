"""`lab check connectivity` on the simulated cluster: every row passes on a healthy cluster, and taking away
one thing at a time (a policy entry, an ipcache entry, a Service's backends, the masquerade rule, the tunnel
device) fails exactly the rows that need it, each explained by a walk that names what is missing."""

import json
import subprocess

import pytest

from lab import connectivity
from tests import simconnectivity

WORKER, CONTROL_PLANE, WORKER2 = "k8s-guide-worker", "k8s-guide-control-plane", "k8s-guide-worker2"


@pytest.fixture
def lab_sim(sim, kubeapi):
    """start(version) -> (sim, world): the guide's cluster with net-echo, its workloads running."""
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


@pytest.mark.parametrize("version", ["1.19.4"])
def test_every_row_passes_on_a_healthy_cluster(lab_sim, kubeapi, version):
    s, world = lab_sim(version)
    report = run(kubeapi, world)
    for row in report.rows:
        print(row.to_dict())
    assert report.passed, [r.to_dict() for r in report.rows if not r.ok]


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
