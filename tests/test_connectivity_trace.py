"""`lab check connectivity` explains a failure with the real packet too: run as root on the host whose kernel
the lab's nodes share (here, the simulated cluster's), each failed probe is retried while tshoot trace
watches, and the explanation says where that packet was last seen; without root it says once how to get it."""

from __future__ import annotations

import json
import subprocess

from lab import connectivity
from tests.test_connectivity import WORKER, from_pod, lab_sim, pod, run  # noqa: F401 (lab_sim: the fixture)
from tests.conftest import need_tracer

LAST_SEEN = "the real packet (the probe retried, traced on this kernel): "


def traced(row) -> str:
    found = [f for f in row.explanation.findings if f.startswith(LAST_SEEN)]
    assert len(found) == 1, row.to_dict()
    return found[0].removeprefix(LAST_SEEN)


def test_a_policy_drop_is_found_at_the_lxc_by_its_program(lab_sim, kubeapi):
    need_tracer()
    s, world = lab_sim()
    client = pod(s, "net-tshoot", WORKER)
    node = s.nodes[WORKER]
    # the source endpoint's egress allow-all gone: from-container on its lxc drops every packet it sends
    s.update_map(WORKER, "policy", {"identity": 0, "direction": "egress", "protocol": "ANY", "port": 0},
                 endpoint=client.endpoint_id)
    report = run(kubeapi, world)
    failed = [r for r in report.rows if not r.ok]
    assert failed and all(from_pod(r, WORKER) for r in failed), [r.to_dict() for r in failed]
    assert report.notes == []
    shown = json.loads(subprocess.run(["ip", "netns", "exec", node.netns, "bpftool", "-j", "net", "show", "dev",
                                       client.lxc_name], capture_output=True, text=True, check=True).stdout)
    prog_id = next(h["id"] for e in shown for h in e["tc"] if h["kind"] == "clsact/ingress")
    where = f"dropped at {node.netns} {client.lxc_name}: TC_INGRESS at __netif_receive_skb_core"
    program = f"by tc ingress program cil_from_container (id {prog_id}) on {client.lxc_name}"
    for row in failed:
        # every path from that pod, to pods, Services (after their DNAT), the world and DNS, ends there
        last = traced(row)
        assert last.startswith(where) and last.endswith(program), (row.probe.destination, last)
    assert all(r.explanation is None for r in report.rows if r.ok)
    as_json = report.to_dict()
    assert as_json["notes"] == [] and all(LAST_SEEN + traced(r) in row["explanation"]["findings"]
                                          for r, row in zip(report.rows, as_json["rows"]) if not r.ok)


def test_without_root_the_trace_is_skipped_once_saying_how(lab_sim, kubeapi, monkeypatch):
    s, world = lab_sim()
    client = pod(s, "net-tshoot", WORKER)
    s.update_map(WORKER, "policy", {"identity": 0, "direction": "egress", "protocol": "ANY", "port": 0},
                 endpoint=client.endpoint_id)
    monkeypatch.setattr(connectivity.os, "geteuid", lambda: 1000)  # the check's own test of who runs it
    report = run(kubeapi, world)
    failed = [r for r in report.rows if not r.ok]
    assert failed and report.notes == [connectivity.TRACE_SKIPPED]
    assert "needs root on the kind host" in report.notes[0] and "sudo lab check connectivity" in report.notes[0]
    assert not [f for r in failed for f in r.explanation.findings if f.startswith(LAST_SEEN)]
    # the walk still explains every row
    assert all(f"policy denies egress for endpoint {client.endpoint_id}" in (r.explanation.reason or "")
               + " ".join(r.explanation.findings) + str(r.explanation.step) for r in failed)


def test_the_table_prints_the_last_hop(lab_sim, kubeapi, lab):
    need_tracer()
    s, world = lab_sim()
    client = pod(s, "net-tshoot", WORKER)
    s.update_map(WORKER, "policy", {"identity": 0, "direction": "egress", "protocol": "ANY", "port": 0},
                 endpoint=client.endpoint_id)
    with world:
        r = lab("check", "connectivity", "--kubeconfig", str(kubeapi.kubeconfig), "--world",
                f"{world.address}:{world.port}")
    assert r.code == 1, r
    assert f"- {LAST_SEEN}dropped at {s.nodes[WORKER].netns} {client.lxc_name}: TC_INGRESS" in r.out
    assert "note:" not in r.out




def test_an_unanswered_packet_is_last_seen_where_it_arrived(lab_sim, kubeapi):
    """Without the node's masquerade rule the world receives the pod's own address and cannot answer it: the
    traced retry was last seen arriving in the world's namespace, its source unchanged."""
    need_tracer()
    s, world = lab_sim()
    client = pod(s, "net-tshoot", WORKER)
    subprocess.run(["ip", "netns", "exec", s.nodes[WORKER].netns, "iptables", "-t", "nat", "-F", "POSTROUTING"],
                   check=True)
    report = run(kubeapi, world)
    udp = next(r for r in report.rows if from_pod(r, WORKER) and r.probe.path == connectivity.WORLD
               and r.probe.protocol == "udp")
    assert not udp.ok and report.notes == []
    assert traced(udp) == f"last seen at {world.netns} eth0 (received) and never answered"
    assert client.ip in world.arrivals()  # it arrived from the pod's own address
