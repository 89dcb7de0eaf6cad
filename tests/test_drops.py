"""`tshoot drops`: cilium_metrics read on this node (libbpf) and on every node through the agents (bpftool over
the test API server's exec), --watch printing what grew, and --monitor merging the agents' drop events.

The monitor's output is what Cilium prints: DropNotify.DumpJSON() (pkg/monitor/datapath_drop.go, Go's
DropNotifyVerbose with the DissectSummary of pkg/monitor/dissect.go), one object per line; the agent's
command line is checked as it reaches the agent."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from tests.kubeapi import NodeExec, SimNode, commands_of
from tests.kubeapi.objects import GUIDE_IDENTITY, guide_nodes
from tests.pinned import create_for
from tshoot.node import libbpf
from tshoot.maps import metrics
from tshoot.core.version import parse

NODES = {n.name: n for n in guide_nodes()}
CP, W1, W2 = "k8s-guide-control-plane", "k8s-guide-worker", "k8s-guide-worker2"


def key(reason: int, direction: int, line: int = 0, file: int = 0) -> bytes:
    """struct metrics_key (1.16+: reason, dir:2, line u16, file u8, 3 reserved)."""
    return struct.pack("<BBHB3x", reason, direction, line, file)


def put(path, k: bytes, packets: int, size: int) -> None:
    """The counter on CPU 0 only (the others zero), as one CPU's datapath would have counted it."""
    fd = libbpf.obj_get(str(path))
    try:
        n = libbpf.possible_cpus()
        libbpf.update(fd, k, struct.pack("<QQ", packets, size) + bytes(16 * (n - 1)))
    finally:
        os.close(fd)


@pytest.fixture
def local_metrics(bpffs):
    path = create_for(bpffs, metrics.MAP, parse("1.19"))
    put(path, key(133, 2, 1432, 2), 4, 392)  # DROP_POLICY egress at bpf_lxc.c:1432
    put(path, key(0, 2, 1180, 110), 50, 4900)  # REASON_FORWARDED egress at trace.h (1.19's 110)
    return bpffs, path


def test_local_counters_named_as_1_19(tshoot, local_metrics):
    bpffs, _ = local_metrics
    args = ("drops", "--backend", "local", "--bpffs", str(bpffs), "--cilium-version", "1.19")
    rows = json.loads(tshoot(*args, "-o", "json").out)
    assert [(r["reason"], r["direction"], r["file"], r["line"], r["packets"], r["bytes"], r["drop"]) for r in rows] == [
        ("DROP_POLICY", "EGRESS", "bpf_lxc.c", 1432, 4, 392, True),  # drops first
        ("REASON_FORWARDED", "EGRESS", "trace.h", 1180, 50, 4900, False),
    ]
    only = json.loads(tshoot(*args, "--drops-only", "-o", "json").out)
    assert [r["reason"] for r in only] == ["DROP_POLICY"]
    table = tshoot(*args)
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["NODE", "REASON", "DIRECTION", "PACKETS", "BYTES", "WHERE", "DESCRIPTION"]
    assert "DROP_POLICY" in lines[1] and "bpf_lxc.c:1432" in lines[1] and "Policy denied" in lines[1]


def test_watch_prints_what_grew_since_the_last_read(local_metrics):
    bpffs, path = local_metrics
    proc = subprocess.Popen([sys.executable, "-m", "tshoot.main", "drops", "--backend", "local", "--bpffs", str(bpffs),
                             "--cilium-version", "1.19", "--watch", "--interval", "0.3", "--duration", "8", "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "watching cilium_metrics" in proc.stderr.readline()  # the first read is done
        put(path, key(133, 2, 1432, 2), 7, 686)  # 3 more drops
        put(path, key(181, 1, 77, 2), 2, 196)  # a new counter: DROP_POLICY_DENY ingress
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    grown = {r["reason"]: (r["packets_added"], r["bytes_added"], r["packets"]) for r in (first, second)}
    assert grown == {"DROP_POLICY": (3, 294, 7), "DROP_POLICY_DENY": (2, 196, 2)}


# --- through the agents ------------------------------------------------------------------------------
@pytest.fixture
def lab(kubeapi_cluster, netns, tmp_path):
    """The guide's three nodes (Cilium 1.19.4 agents), each with its own cilium_metrics."""
    nodes, mounts = {}, []
    counted = {CP: [(key(133, 2, 1432, 2), 3, 294)], W1: [(key(203, 1, 655, 2), 1, 98)],  # EP_NOT_READY
               W2: [(key(0, 1, 1180, 110), 9, 900)]}
    try:
        for name in NODES:
            bpffs = tmp_path / f"bpffs-{name}"
            bpffs.mkdir()
            subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
            mounts.append(bpffs)
            nodes[name] = SimNode(netns("kl-drops"), bpffs)
            path = create_for(bpffs, metrics.MAP, parse("1.19.4"))
            for k, packets, size in counted[name]:
                put(path, k, packets, size)
        kubeapi_cluster.exec_handler = NodeExec(kubeapi_cluster, nodes)
        yield kubeapi_cluster
    finally:
        for bpffs in mounts:
            subprocess.run(["umount", "-l", str(bpffs)], check=False)


def test_every_node_through_its_agent(tshoot, lab):
    r = tshoot("drops", "--kubeconfig", str(lab.kubeconfig), "-o", "json")
    assert r.code == 0, r.err
    rows = {(x["node"], x["reason"]): x for x in json.loads(r.out)}
    assert set(rows) == {(CP, "DROP_POLICY"), (W1, "DROP_EP_NOT_READY"), (W2, "REASON_FORWARDED")}
    assert rows[(W1, "DROP_EP_NOT_READY")]["description"] == "Endpoint policy program not available"
    assert rows[(W2, "REASON_FORWARDED")]["file"] == "trace.h"  # 1.19's numbering, from the agent's image tag
    assert all(x["cilium_version"] == "1.19.4" for x in rows.values())
    execs = [e for e in lab.requests if e.path.endswith("/exec")]
    assert execs and all(c[:2] == ["bpftool", "-j"] for e in execs for c in commands_of(e.query["command"]))


# Three drops as `cilium-dbg monitor --type drop -j` prints them (1.19: Line, File, ExtError, Ifindex).
MONITOR = {
    CP: [
        {"cpu": "CPU 01:", "type": "drop", "mark": "0x6d3a2b1c", "reason": "Policy denied", "source": 100,
         "bytes": 98, "srcLabel": GUIDE_IDENTITY, "dstLabel": 2, "dstID": 0, "Line": 1432, "File": 2,
         "ExtError": 0, "Ifindex": 17,
         "summary": {"ethernet": "Ethernet{…}", "ipv4": "IPv4{…}", "icmpv4": "ICMPv4{…}",
                     "l2": {"src": "6a:8c:ee:3a:73:d5", "dst": "3e:43:da:fb:c7:04"},
                     "l3": {"src": "10.0.1.110", "dst": "10.0.2.99"}}},
    ],
    W1: [
        {"cpu": "CPU 00:", "type": "drop", "mark": "0x0", "reason": "Endpoint policy program not available",
         "source": 117, "bytes": 74, "srcLabel": 6, "dstLabel": GUIDE_IDENTITY, "dstID": 117, "Line": 655,
         "File": 2, "ExtError": 0, "Ifindex": 9,
         "summary": {"tcp": "TCP{…}", "l3": {"src": "172.18.0.5", "dst": "10.0.2.99"},
                     "l4": {"src": "41522", "dst": "80"}}},
        {"cpu": "CPU 01:", "type": "drop", "mark": "0x0", "reason": "Missed tail call, 7", "source": 117,
         "bytes": 74, "srcLabel": 0, "dstLabel": 0, "dstID": 0, "Line": 90, "File": 101, "ExtError": 7,
         "Ifindex": 9},
    ],
    W2: [],
}


def _monitor_handler(server):
    """The agents' side of the exec: what Cilium's monitor prints, with its start-up banner, then the end of
    the stream (the test API server answers an exec when the command ends)."""
    calls = []

    def handle(namespace, pod, container, argv):
        node = server.get("pods", name=pod, namespace=namespace)["spec"]["nodeName"]
        calls.append((node, container, argv))
        if argv[0] != "cilium-dbg":
            return 127, b"", f"exec: {argv[0]}: not found".encode()
        banner = "Listening for events on 2 CPUs with 64x4096 of shared memory\nPress Ctrl-C to quit\n"
        return 0, (banner + "".join(json.dumps(e) + "\n" for e in MONITOR[node])).encode(), b""

    return handle, calls


def test_monitor_merges_every_agent_and_names_what_events_number(tshoot, kubeapi_cluster):
    handle, calls = _monitor_handler(kubeapi_cluster)
    kubeapi_cluster.exec_handler = handle
    r = tshoot("drops", "--monitor", "--kubeconfig", str(kubeapi_cluster.kubeconfig), "--duration", "20", "-o", "json")
    events = [json.loads(line) for line in r.out.splitlines()]
    assert sorted(n for n, _, _ in calls) == sorted(NODES)
    assert all(argv == ["cilium-dbg", "monitor", "--type", "drop", "-j"] and c == "cilium-agent"
               for _, c, argv in calls)
    assert len(events) == 3
    policy = next(e for e in events if e["node"] == CP)
    assert (policy["reason"], policy["description"], policy["file"], policy["line"]) == \
        ("DROP_POLICY", "Policy denied", "bpf_lxc.c", 1432)
    assert (policy["src"], policy["dst"], policy["protocol"], policy["src_identity"]) == \
        ("10.0.1.110", "10.0.2.99", "icmpv4", GUIDE_IDENTITY)
    said = policy["enriched"]
    assert said["src"] == {"pod": "default/net-tshoot-4gmzr"} and said["dst"] == {"pod": "default/net-tshoot-xbw6q"}
    assert said["source_endpoint"]["pod"] == "default/net-tshoot-4gmzr"  # endpoint 100 on the control plane
    assert said["dst_identity"] == {"name": "reserved:world"}
    assert "k8s:io.kubernetes.pod.namespace=default" in said["src_identity"]["labels"]
    worker = [e for e in events if e["node"] == W1]
    assert [(e["reason"], e["sport"], e["dport"]) for e in worker] == \
        [("DROP_EP_NOT_READY", 41522, 80), ("DROP_MISSED_TAIL_CALL", None, None)]
    assert worker[0]["enriched"]["src"] == {"node": CP} and worker[0]["enriched"]["src_identity"] == \
        {"name": "reserved:remote-node"}
    assert worker[1]["file"] == "drop.h" and worker[1]["ext_error"] == 7  # 1.19 numbers drop.h 101
    # every agent's stream ended by itself: said per node, not hidden
    assert all(f"{n}: cilium-dbg monitor ended" in r.err for n in NODES)


def test_monitor_on_a_1_9_agent_runs_cilium(tshoot, kubeapi):
    from tests.kubeapi import objects

    kubeapi.add(*objects.kind_cluster(version="1.9.1"))  # the agent's CLI was `cilium` before 1.15
    calls = []

    def handle(namespace, pod, container, argv):
        calls.append(argv)
        return 0, b"", b""

    kubeapi.exec_handler = handle
    tshoot("drops", "--monitor", "--kubeconfig", str(kubeapi.kubeconfig), "--duration", "10")
    assert calls and all(argv[0] == "cilium" for argv in calls)


def test_monitor_needs_a_cluster(tshoot, bpffs):
    r = tshoot("drops", "--monitor", "--backend", "local", "--bpffs", str(bpffs))
    assert r.code == 2 and "needs a cluster" in r.err


def test_monitor_timeout_ends_streams_that_are_still_running(tshoot, kubeapi_cluster):
    """Agents whose monitor prints nothing keep their streams open: --duration closes them, without an error."""
    import time

    def handle(namespace, pod, container, argv):
        time.sleep(6)  # the command is still running when tshoot stops listening
        return 0, b"", b""

    kubeapi_cluster.exec_handler = handle
    started = time.monotonic()
    r = tshoot("drops", "--monitor", "--kubeconfig", str(kubeapi_cluster.kubeconfig), "--duration", "1.5")
    assert r.code == 0, r.err
    assert time.monotonic() - started < 5.5 and "0 drop events" in r.err and "ended" not in r.err
