"""`tshoot map` with the pod backend, end to end: tshoot -> the local Kubernetes API server (tests/kubeapi)
-> websocket exec into the node's Cilium agent -> real bpftool in the node's network namespace with the
node's own bpffs -> the kernel map -> decode -> enrichment from the cluster's objects.

The cluster is the guide's lab as the API returns it (Cilium 1.19.4 agents in namespace cilium, the
net-tshoot DaemonSet, CiliumEndpoints and CiliumIdentities); each of its three nodes has a private bpffs
with the maps its agent would have pinned.
"""

from __future__ import annotations

import json
import shlex
import os
import subprocess

import pytest

from tests.conftest import BIN, kubectl_shell
from tests.kubeapi import NodeExec, SimNode, batched_of, commands_of, script_mark
from tests.kubeapi.objects import GUIDE_IDENTITY, guide_nodes
from tests.pinned import create_for, fill
from tshoot.maps import ipcache, lxc
from tshoot.node.backend import lpm_key
from tshoot.core.version import parse

V = parse("1.19.4")
NODES = {n.name: n for n in guide_nodes()}
CP, W1, W2 = "k8s-guide-control-plane", "k8s-guide-worker", "k8s-guide-worker2"
LXC_DEV = "lxc473b3117af85"  # the host side of the control plane's net-tshoot veth


def _ipcache(prefix: str, identity: int, tunnel: str | None):
    family = "ipv6" if ":" in prefix else "ipv4"
    return (ipcache.MAP.encode("key", {"prefix": prefix, "family": family, "cluster_id": 0}, V),
            ipcache.MAP.encode("value", {"identity": identity, "tunnel_endpoint": tunnel, "encrypt_key": 0,
                                         "flags": ["hastunnel"] if tunnel else []}, V))


@pytest.fixture
def lab(kubeapi_cluster, netns, tmp_path):
    """The guide's three nodes, each with a netns and a private bpffs holding its agent's maps: every node's
    ipcache knows the control plane's net-tshoot pod (10.0.1.110, identity 53731); the control plane has it
    in its endpoint map, on veth lxc473b3117af85."""
    nodes, mounts = {}, []
    try:
        for name, spec in NODES.items():
            bpffs = tmp_path / f"bpffs-{name}"
            bpffs.mkdir()
            subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
            mounts.append(bpffs)
            ns = netns("kl-node")
            nodes[name] = SimNode(ns, bpffs)
            local = name == CP
            fill(create_for(bpffs, ipcache.MAP, V), [
                _ipcache("10.0.1.110/32", GUIDE_IDENTITY, None if local else NODES[CP].ip),
                _ipcache(f"{spec.ip}/32", 1, None),  # the node itself: reserved:host
                _ipcache("0.0.0.0/0", 2, None),
            ])
        subprocess.run(["ip", "-n", nodes[CP].netns, "link", "add", LXC_DEV, "type", "veth", "peer", "name", "tmp0"],
                       check=True)
        ifindex = int(subprocess.run(["ip", "-n", nodes[CP].netns, "-o", "link", "show", LXC_DEV], check=True,
                                     capture_output=True, text=True).stdout.split(":")[0])
        fill(create_for(nodes[CP].bpffs, lxc.MAP, V), [(
            lxc.MAP.encode("key", {"ip": "10.0.1.110", "family": "ipv4", "cluster_id": 0}, V),
            lxc.MAP.encode("value", {"ifindex": ifindex, "lxc_id": 100, "flags": [], "mac": "6a:8c:ee:3a:73:d5",
                                     "node_mac": "3e:43:da:fb:c7:04", "sec_id": GUIDE_IDENTITY, "parent_ifindex": 0}, V))])
        kubeapi_cluster.exec_handler = NodeExec(kubeapi_cluster, nodes)
        kubeapi_cluster.nodes = nodes
        kubeapi_cluster.lxc_ifindex = ifindex
        yield kubeapi_cluster
    finally:
        for bpffs in mounts:
            subprocess.run(["umount", "-l", str(bpffs)], check=False)


def _map(tshoot, server, *args):
    return tshoot("map", *args, "--kubeconfig", str(server.kubeconfig))


def _agent(server, node: str) -> str:
    return next(p["metadata"]["name"] for p in server.list("pods", "cilium", "k8s-app=cilium")
                if p["spec"]["nodeName"] == node)


def test_lookup_on_a_node_is_decode_plus_node_and_enrichment(tshoot, lab):
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1, "-o", "json")
    assert r.code == 0, r
    obj = json.loads(r.out)
    key, value = _ipcache("10.0.1.110/32", GUIDE_IDENTITY, NODES[CP].ip)
    decoded = json.loads(tshoot("decode", "ipcache", "--key", key.hex(" "), "--value", value.hex(" "),
                                "-o", "json", "--cilium-version", "1.19.4").out)
    labels = next(i for i in lab.list("ciliumidentities") if i["metadata"]["name"] == str(GUIDE_IDENTITY))
    assert obj == {**decoded, "node": W1, "enriched": {
        "prefix": {"pod": "default/net-tshoot-4gmzr"},
        "identity": {"labels": [f"{k}={v}" for k, v in sorted(labels["security-labels"].items())]},
        "tunnel_endpoint": {"node": CP},
    }}
    assert obj["cilium_version"] == "1.19.4"  # from the agent's image tag
    # It went through the agent on that node, with bpftool, over the exec stream: in one round trip and one
    # bpftool process, the map's info, the datapath's lookup and the search for the prefix that answered (the
    # getnexts from the first key and from each prefix of the address, the longest first).
    execs = lab.requests_to(f"/api/v1/namespaces/cilium/pods/{_agent(lab, W1)}/exec")
    assert len(execs) == 1, [e.query["command"] for e in execs]
    assert commands_of(execs[0].query["command"]) == [["bpftool", "-j", "batch", "file", "-"]]
    batched = batched_of(execs[0].query["command"])
    assert [c[:2] for c in batched] == [["map", "show"], ["map", "lookup"]] + [["map", "getnext"]] * 34, batched
    assert batched[1][4:] == ["key", "hex", *key.hex(" ").split()[:24]] and batched[2][4:] == []
    assert batched[3][4:] == batched[1][4:]  # the /32 is the first candidate


def test_a_lookup_asks_the_cluster_only_what_it_names(tshoot, lab):
    """No list of every identity, pod, endpoint or node (megabytes on a 500-node cluster): the identity by its
    name, the pod and the tunnel endpoint's node by the pods' status.podIP field selector, each once."""
    since = len(lab.requests)
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--all-nodes", "-o", "json")
    assert r.code == 0, r
    named = {o["node"]: o["enriched"] for o in json.loads(r.out)}
    assert named[W1]["prefix"] == {"pod": "default/net-tshoot-4gmzr"} and named[W1]["tunnel_endpoint"] == {"node": CP}
    asked = [(q.path, q.query.get("fieldSelector", [""])[0]) for q in lab.requests[since:] if q.method == "GET"]
    lists = {(path, selector) for path, selector in asked if not path.endswith("/exec") and "/pods/" not in path}
    assert lists == {
        ("/api/v1/namespaces/cilium/pods", ""),  # the agents (tshoot.node.agent.agents), and the nodes:
        ("/api/v1/nodes", ""),                   # every node is asked (--all-nodes)
        (f"/apis/cilium.io/v2/ciliumidentities/{GUIDE_IDENTITY}", ""),
        ("/api/v1/pods", "status.podIP=10.0.1.110"),
        ("/api/v1/pods", f"status.podIP={NODES[CP].ip},spec.hostNetwork=true"),
        (f"/api/v1/nodes/{CP}", "")}  # the node that pod named, read to confirm it has the address
    assert sum(path.startswith("/apis/cilium.io/v2/ciliumidentities/") for path, _ in asked) == 1


def test_a_lookup_on_a_node_finds_its_agent_in_one_round_of_small_requests(tshoot, lab):
    """The node's agent in cilium and in kube-system, and whether cilium has any agent (one pod: not a paging
    through every agent of a 500-node cluster), side by side."""
    since = len(lab.requests)
    assert _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1).code == 0
    agents = [(q.path, q.query.get("fieldSelector", [""])[0], q.query.get("limit")) for q in lab.requests[since:]
              if q.path.endswith("/pods") and "namespaces" in q.path]
    assert sorted(agents) == [("/api/v1/namespaces/cilium/pods", "", ["1"]),
                              ("/api/v1/namespaces/cilium/pods", f"spec.nodeName={W1}", ["500"]),
                              ("/api/v1/namespaces/kube-system/pods", f"spec.nodeName={W1}", ["500"])], agents


def test_lookup_without_a_node_asks_every_node(tshoot, lab):
    r = _map(tshoot, lab, "lookup", "ipcache", "172.18.0.4", "-o", "json")
    assert r.code == 0, r
    objs = json.loads(r.out)
    # Each node's ipcache differs: the worker's own address is reserved:host there, world elsewhere.
    got = {o["node"]: (o["key"]["prefix"], o["enriched"]["identity"]) for o in objs}
    assert got == {CP: ("0.0.0.0/0", {"name": "reserved:world"}), W1: ("172.18.0.4/32", {"name": "reserved:host"}),
                   W2: ("0.0.0.0/0", {"name": "reserved:world"})}
    table = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110")
    assert table.code == 0 and table.out.splitlines()[0].split()[:2] == ["NODE", "PREFIX"]
    assert sum(line.startswith("k8s-guide-") for line in table.out.splitlines()) == 3


def _held_back(lab, node: str):
    """An exec handler that keeps `node`'s agent from answering until the returned event is set (at most 30 s)."""
    import threading

    release, inner, agent = threading.Event(), lab.exec_handler, _agent(lab, node)

    def handler(namespace, pod, container, argv):
        if pod == agent:
            release.wait(30)
        return inner(namespace, pod, container, argv)

    lab.exec_handler = handler
    return release


def test_rows_stream_as_nodes_answer_and_a_slow_node_holds_back_only_its_row(lab):
    """--all-nodes in table mode prints each node's row as it answers: the fast nodes' rows are on stdout while
    the slow node has not answered yet; its row follows once it does. No progress line where stderr is not a
    terminal."""
    release = _held_back(lab, W2)
    proc = subprocess.Popen([str(BIN / "tshoot"), "map", "lookup", "ipcache", "10.0.1.110", "--all-nodes",
                             "--kubeconfig", str(lab.kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        header = proc.stdout.readline()
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert header.split()[:2] == ["NODE", "PREFIX"]
        assert {first.split()[0], second.split()[0]} == {CP, W1} and not release.is_set()
    finally:
        release.set()
        out, err = proc.communicate(timeout=60)
    assert out.split()[0] == W2 and proc.returncode == 0, (out, err)
    assert err == ""


def test_a_node_that_times_out_is_its_own_line_and_the_exit_code_is_1(lab):
    _held_back(lab, W2)  # never released: W2 answers after --timeout
    r = subprocess.run([str(BIN / "tshoot"), "map", "lookup", "ipcache", "10.0.1.110", "--all-nodes",
                        "--timeout", "1s", "--kubeconfig", str(lab.kubeconfig)], capture_output=True, text=True,
                       env={**os.environ, "NO_COLOR": "1"}, timeout=60)
    assert r.returncode == 1, r
    assert sorted(line.split()[0] for line in r.stdout.splitlines()[1:]) == [CP, W1]
    assert r.stderr.startswith(f"tshoot: {W2}: ") and "did not answer within 1s" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_the_progress_line_is_drawn_on_a_terminal_and_cleared(lab):
    """On a terminal, stderr shows "N/3 nodes answered" redrawn in place, and the line is cleared at the end."""
    import pty

    master, slave = pty.openpty()
    try:
        r = subprocess.run([str(BIN / "tshoot"), "map", "lookup", "ipcache", "10.0.1.110", "--all-nodes", "-o",
                            "json", "--kubeconfig", str(lab.kubeconfig)], stdout=subprocess.PIPE, stderr=slave,
                           text=True, env={**os.environ, "NO_COLOR": "1"}, timeout=60)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 3
    text = shown.decode()
    assert "3/3 nodes answered" in text and text.endswith("\r\x1b[K"), text


def test_lxc_lookup_names_the_interface_and_endpoint(tshoot, lab):
    r = _map(tshoot, lab, "lookup", "lxc", "10.0.1.110", "--node", CP, "-o", "json")
    assert r.code == 0, r
    enriched = json.loads(r.out)["enriched"]
    assert enriched["ifindex"] == {"interface": LXC_DEV}  # `ip link` on that node (its netns)
    assert enriched["lxc_id"] == {"endpoint": "default/net-tshoot-4gmzr", "pod": "default/net-tshoot-4gmzr"}
    assert enriched["sec_id"]["labels"]


def test_show_commands_are_kubectl_exec_bpftool(tshoot, lab):
    r = _map(tshoot, lab, "lookup", "lxc", "10.0.1.110", "--node", CP, "--show-commands")
    assert r.code == 0, r
    agent = _agent(lab, CP)
    assert f"$ kubectl -n cilium get pods -l k8s-app=cilium --field-selector spec.nodeName={CP} -o name" in r.err
    assert (f"$ kubectl -n cilium exec {agent} -c cilium-agent -- bpftool map lookup pinned "
            f"/sys/fs/bpf/tc/globals/cilium_lxc key hex 0a 00 01 6e") in r.err
    assert "interface: " + LXC_DEV in r.out or LXC_DEV in r.out


def test_dump_all_nodes_keeps_going_when_a_node_fails(tshoot, lab):
    (lab.nodes[W2].bpffs / "tc/globals/cilium_ipcache_v2").unlink()
    r = _map(tshoot, lab, "dump", "ipcache", "--all-nodes", "-o", "json", "--filter", "identity=53731")
    assert r.code == 1
    assert {o["node"] for o in json.loads(r.out)} == {CP, W1}
    assert r.err.strip() == (f"tshoot: {W2}: map cilium_ipcache_v2 is not pinned at "
                             f"/sys/fs/bpf/tc/globals/cilium_ipcache_v2 on {W2} (this Cilium version or "
                             f"configuration does not use it)")


def test_list_on_a_node(tshoot, lab):
    r = _map(tshoot, lab, "list", "--node", CP, "-o", "json")
    assert r.code == 0, r
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert set(rows) == {"cilium_ipcache_v2", "cilium_lxc"}
    assert rows["cilium_ipcache_v2"]["entries"] == 3 and rows["cilium_lxc"]["entries"] == 1
    assert rows["cilium_lxc"]["layout"]["by"] == "Cilium 1.19.4 uses struct endpoint_info"
    assert rows["cilium_ipcache_v2"]["path"] == "/sys/fs/bpf/tc/globals/cilium_ipcache_v2"


def test_no_agent_on_that_node(tshoot, lab):
    lab.delete("pods", _agent(lab, W2), "cilium")
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W2)
    assert r.code == 1 and r.err.startswith(f"tshoot: no Cilium agent pod on node {W2}") and r.err.count("\n") == 1
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "-o", "json")  # every node: W2 reported, others shown
    assert r.code == 1 and {o["node"] for o in json.loads(r.out)} == {CP, W1}
    assert f"tshoot: {W2}: no Cilium agent pod on node {W2}" in r.err


def test_unknown_node_is_one_line_and_exit_1_as_for_net_show(tshoot, lab):
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", "k8s-guide-worker9")
    assert (r.code, r.err) == (1, f"tshoot: no node named 'k8s-guide-worker9' (nodes: {CP}, {W1}, {W2})\n")


def test_exec_forbidden(tshoot, lab):
    lab.fail("/api/v1/namespaces/cilium/pods/*/exec", 403,
             'pods "x" is forbidden: User "tshoot" cannot create resource "pods/exec" in API group "" in the namespace "cilium"')
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1)
    assert r.code == 1 and "403 Forbidden" in r.err and "pods/exec" in r.err and r.err.count("\n") == 1


def test_bpftool_missing_in_the_image(tshoot, lab):
    lab.exec_handler.missing = {"bpftool"}
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1)
    assert r.code == 1 and r.err.count("\n") == 1
    assert "bpftool is not in the agent image" in r.err and "--backend local" in r.err


def test_bpftool_not_found_by_a_shell_exit_127(tshoot, lab):
    """Images whose exec goes through a shell report a missing binary as exit 127 instead."""
    lab.exec_handler = lambda namespace, pod, container, argv: (127, b"", f"sh: 1: {argv[0]}: not found\n".encode())
    r = _map(tshoot, lab, "dump", "lxc", "--node", CP)
    assert r.code == 1 and "bpftool is not in the agent image" in r.err and "exit 127" in r.err


def test_no_entry_for_that_key(tshoot, lab):
    r = _map(tshoot, lab, "lookup", "lxc", "10.0.2.99", "--node", CP)
    assert r.code == 1
    assert r.err.strip() == f"tshoot: no entry for ip=10.0.2.99 family=ipv4 in cilium_lxc on {CP}"


def test_value_size_not_matching_the_agent_version(tshoot, lab):
    """An agent that says 1.17 with a 24-byte ipcache (1.18's) pinned under the old name: which version fits is said."""
    pod = lab.get("pods", _agent(lab, W1), "cilium")
    pod["spec"]["containers"][0]["image"] = "quay.io/cilium/cilium:v1.17.8"
    lab.put(pod)
    old = lab.nodes[W1].bpffs / "tc/globals/cilium_ipcache"
    (lab.nodes[W1].bpffs / "tc/globals/cilium_ipcache_v2").rename(old)
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1)
    assert r.code == 1 and r.err.count("\n") == 1
    assert "ipcache values of Cilium 1.17.8 are 12 bytes, the map's are 24" in r.err and "fits Cilium 1.18" in r.err
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1, "--cilium-version", "1.19", "-o", "json")
    assert r.code == 1 and "cilium_ipcache_v2 is not pinned" in r.err  # 1.19 pins the new name


def test_btf_read_in_the_agent_chooses_the_layout(tshoot, lab, tmp_path):
    """An agent whose image tag says no version ('latest'): the map's own BTF, read by bpftool in the agent,
    says which struct it holds (here Cilium 1.16's, with the flags byte the 1.12 layout lacks)."""
    from tests.bpfobj import BPF_DIR, compile_bpf
    from tests.conftest import bpftool

    pod = lab.get("pods", _agent(lab, W1), "cilium")
    pod["spec"]["containers"][0]["image"] = "quay.io/cilium/cilium:latest"
    lab.put(pod)
    bpffs = lab.nodes[W1].bpffs
    (bpffs / "tc/globals/cilium_ipcache_v2").unlink()
    obj = compile_bpf(BPF_DIR / "oracle" / "cilium_maps.bpf.c", tmp_path / "oracle.o", {"CILIUM_VERSION": "11600"})
    bpftool("prog", "loadall", str(obj), str(bpffs / "oracle"), "pinmaps", str(bpffs / "oracle-maps"))
    bpftool("map", "pin", "pinned", str(bpffs / "oracle-maps" / "ipcache"), str(bpffs / "tc/globals/cilium_ipcache"))
    v = parse("1.16")
    fill(bpffs / "tc/globals/cilium_ipcache", [(
        ipcache.MAP.encode("key", {"prefix": "10.0.1.110/32", "family": "ipv4", "cluster_id": 0}, v),
        ipcache.MAP.encode("value", {"identity": GUIDE_IDENTITY, "tunnel_endpoint": None, "encrypt_key": 0,
                                     "flags": ["skiptunnel"]}, v))])
    r = _map(tshoot, lab, "lookup", "ipcache", "10.0.1.110", "--node", W1, "-o", "json", "-v")
    assert r.code == 0, r
    obj = json.loads(r.out)
    assert obj["cilium_version"] is None and obj["value"]["flags"] == ["skiptunnel"]
    assert "cannot read Cilium version" in r.err and "the map's BTF describes value type remote_endpoint_info" in r.err


# --- what --show-commands prints runs as shown -------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("lookup", "lxc", "10.0.1.110", "--node", CP),
    ("lookup", "ipcache", "10.0.1.110", "--node", W1),   # LPM: the datapath's lookup answers
    ("lookup", "ipcache", "10.0.1.110", "--node", CP, "--exact"),
    ("dump", "ipcache", "--node", W2),
    ("list", "--node", W1),
], ids=lambda a: "-".join(a[:2]))
def test_shown_commands_run_as_shown_with_kubectl_and_return_what_tshoot_decoded(tshoot, lab, args):
    """Every command --show-commands prints, pasted into a shell with a real kubectl (1.34: exec over the
    websocket v5 channel protocol, discovery), succeeds, and its answer decodes to what tshoot printed."""
    shell = kubectl_shell(lab.kubeconfig)
    node = args[args.index("--node") + 1]
    r = _map(tshoot, lab, *args, "--show-commands", "-o", "json")
    assert r.code == 0, r
    shown = json.loads(r.out)
    entries = shown if isinstance(shown, list) else [shown]
    commands = [line[2:] for line in r.err.splitlines() if line.startswith("$ ")]
    assert commands and all(c.startswith("kubectl ") for c in commands), r.err
    for command in commands:
        done = shell(command)
        assert done.returncode == 0 and done.stderr == "", (command, done)
        if " get pods " in command:
            assert done.stdout.split() == [f"pod/{_agent(lab, node)}"], command
        elif " map list" in command or " map show" in command:
            names = {e["name"] for e in entries}
            assert names and all(name in done.stdout for name in names), command
        else:  # bpftool map lookup/dump: the same bytes, decoded by tshoot from what kubectl printed
            cmap = args[1]
            decoded = tshoot("decode", cmap, "-", "-o", "json", "--cilium-version", "1.19.4", input=done.stdout)
            assert decoded.code == 0, (command, decoded)
            got = json.loads(decoded.out)
            got = got if isinstance(got, list) else [got]
            if " lookup " in command:  # the value the datapath's lookup answers
                assert [g["value"] for g in got] == [e["value"] for e in entries], command
            else:  # the dump holds the entry tshoot showed
                pairs = [(g["key"], g["value"]) for g in got]
                assert all((e["key"], e["value"]) in pairs for e in entries), command


def test_an_lpm_lookup_moves_kilobytes_not_the_map(tshoot, lab):
    """On a 100k-entry ipcache the entry that answered is found by asking the kernel about the key's own
    prefixes, not by dumping the map: exact where nested prefixes hold equal values, and a few KiB per lookup."""
    from tests.pinned import bpftool

    path = lab.nodes[W1].bpffs / "tc/globals/cilium_ipcache_v2"
    path.unlink()
    entries = [_ipcache(f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}/32", 256 + i % 3000, NODES[CP].ip)
               for i in range(100_000)]
    entries += [_ipcache("10.0.1.110/32", GUIDE_IDENTITY, NODES[CP].ip), _ipcache("0.0.0.0/0", 2, None),
                _ipcache("172.16.0.0/12", 2, None), _ipcache("172.16.0.0/16", 2, None)]  # nested, equal values
    fill(create_for(lab.nodes[W1].bpffs, ipcache.MAP, V, max_entries=131072), entries)
    moved = []
    inner = lab.exec_handler

    def counting(namespace, pod, container, argv):
        code, out, err = inner(namespace, pod, container, argv)
        moved.append(len(out) + len(err))
        return code, out, err

    lab.exec_handler = counting
    for address, prefix in (("10.0.1.110", "10.0.1.110/32"), ("172.16.5.5", "172.16.0.0/16"),
                            ("172.20.0.1", "172.16.0.0/12"), ("8.8.8.8", "0.0.0.0/0")):
        moved.clear()
        r = _map(tshoot, lab, "lookup", "ipcache", address, "--node", W1, "-o", "json")
        assert r.code == 0, r
        assert json.loads(r.out)["key"]["prefix"] == prefix
        assert sum(moved) <= 64 * 1024, (address, sum(moved), len(moved))
    dumped = len(bpftool("-j", "map", "dump", "pinned", str(path)).stdout)
    assert dumped > 100 * sum(moved)  # what reading the map to find the entry used to move


# --- several commands in one exec (Agent.exec_many) --------------------------------------------------------

def _agent_of(lab, node: str):
    from tshoot.cluster import kube
    from tshoot.node.agent import find_agent

    return find_agent(kube.api_client(str(lab.kubeconfig)), node)


def test_exec_many_answers_each_command_as_if_it_ran_alone(lab):
    """One exec through the API server and a real shell: each command's exit code, stdout and stderr exactly as
    its own exec gives them, whether its output ends with a newline or not, is empty, is not text, or it fails
    (a lookup that finds nothing does not stop the commands after it)."""
    agent = _agent_of(lab, W1)
    ipcache_path = "/sys/fs/bpf/tc/globals/cilium_ipcache_v2"
    commands = [
        ["printf", "no newline at the end"],
        ["printf", "two lines\nand a newline\n"],
        ["true"],
        ["sh", "-c", "echo to stderr >&2; printf partial; exit 3"],
        ["printf", "\\001\\377\\376 binary\\000ish\\n\\n"],
        ["bpftool", "-j", "map", "lookup", "pinned", ipcache_path, "key", "hex", *["ff"] * 24],  # no such entry
        ["bpftool", "-j", "map", "show", "pinned", ipcache_path],
        ["sh", "-c", "printf 'stderr without newline' >&2"],
    ]
    before = len(lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec"))
    together = agent.exec_many(commands, "the test's commands")
    assert len(lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec")) == before + 1  # one round trip
    alone = [agent.exec(argv, "the test's command") for argv in commands]
    assert together == alone
    assert together[0] == (0, "no newline at the end", "")
    assert together[3] == (3, "partial", "to stderr\n")
    assert together[5][0] != 0 and together[6][0] == 0 and json.loads(together[6][1])["type"] == "lpm_trie"
    assert together[7] == (0, "", "stderr without newline")


def test_a_script_longer_than_a_request_line_is_cut_into_execs_side_by_side(lab):
    """An exec's command travels in its request line: past ~8 KB, proxies in front of API servers refuse it.
    A long exec_many is cut into execs each within it (one call's execs share its mark), answers in order."""
    agent = _agent_of(lab, W1)
    commands = [["printf", f"{i:03d} {'x' * 150}"] for i in range(200)]  # ~34 KB of script
    before = len(lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec"))
    answers = agent.exec_many(commands, "the test's commands")
    assert answers == [(0, f"{i:03d} {'x' * 150}", "") for i in range(200)]
    execs = lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec")[before:]
    assert len(execs) > 4 and len({script_mark(e.query["command"]) for e in execs}) == 1
    assert max(len(e.target) for e in execs) <= 8000


@pytest.mark.parametrize("text", ["", "bpftool -j map show pinned /sys/fs/bpf/tc/globals/cilium_lxc </dev/null; e $?\n",
                                  "printf '\\n%s %s\\n' tshoot-0f $1 >&2; ~_.-+&=%", "é ü 名前 \x01\x7f"])
def test_a_scripts_size_in_the_query_is_counted_as_the_transport_encodes_it(text):
    """The transport's table-driven quoting writes what quote_plus writes (client-go's encoding), and the
    script's budget (tshoot.node.agent.SCRIPT_BUDGET) counts exactly that."""
    from urllib.parse import quote_plus

    from tshoot.cluster.transport import query_length, query_quote

    every_ascii = "".join(map(chr, range(128)))
    assert query_quote(text + every_ascii) == quote_plus(text + every_ascii)
    assert query_length(text) == len(quote_plus(text))


@pytest.mark.parametrize("argv", [["bpftool", "-j", "map", "getnext", "pinned", "/sys/fs/bpf/tc/globals/x", "key", "hex",
                                   "0a"], ["a b"], ["", "x"], ["it's"], ["tab\there"], ["é"], ["$HOME", "*"], []])
def test_a_command_line_reads_back_as_its_arguments(argv):
    """A script's and a bpftool batch's lines are shlex.join's, also where the fast path takes them."""
    from tshoot.node.agent import command_line

    assert command_line(argv) == shlex.join(argv) and shlex.split(command_line(argv)) == argv


def test_exec_many_reads_standard_input_from_a_here_document(lab):
    agent = _agent_of(lab, W1)
    text = "first line\n'quoted' $HOME `not run`\nEOF\n"
    assert agent.exec_many([(["cat"], text), ["printf", "after"]], "cat") == [(0, text, ""), (0, "after", "")]


def test_exec_many_names_a_program_missing_from_the_image(lab):
    from tshoot.node.agent import NotInImage

    agent = _agent_of(lab, W1)
    lab.exec_handler.missing = {"bpftool"}
    with pytest.raises(NotInImage, match=r"^bpftool is not in the agent image of cilium/.* \(node k8s-guide-worker; "
                                         r"exit 127: .*not found\): bpftool -j map show needs it; run tshoot on the "
                                         r"node as root with --backend local instead$"):
        agent.exec_many([["true"], ["bpftool", "-j", "map", "show"]], "two commands")
    lab.exec_handler.missing = {"sh"}
    with pytest.raises(NotInImage, match=r"^sh is not in the agent image of cilium/.*: two commands needs it"):
        agent.exec_many([["true"], ["true"]], "two commands")


def test_the_pod_backend_finds_the_entry_that_answered_as_the_local_backend_does(lab):
    """The search for the entry that answered (one `bpftool batch` of getnexts in the agent) against the local
    backend's own get_next_key on the same map, for every kind of answer: the host's /32, nested prefixes
    with equal values, the map's last key (the batch stops there: bpftool fails on it), no entry at all."""
    from tshoot.mapio import read as mapread
    from tshoot.node.agent import PodBackend
    from tshoot.node.local import LocalBackend

    path = lab.nodes[W1].bpffs / "tc/globals/cilium_ipcache_v2"
    path.unlink()
    prefixes = ["10.0.1.110/32", "172.16.0.0/12", "172.16.0.0/16", "172.16.5.0/24", "192.168.0.0/16"]
    fill(create_for(lab.nodes[W1].bpffs, ipcache.MAP, V), [_ipcache(p, 2, None) for p in prefixes])
    local = LocalBackend(str(lab.nodes[W1].bpffs), V)
    for address in ("10.0.1.110", "172.16.5.9", "172.16.6.1", "172.31.0.1", "192.168.1.1", "8.8.8.8"):
        pod = PodBackend(_agent_of(lab, W1))
        answers = []
        for backend in (pod, local):
            try:
                answers.append(mapread.lookup(backend, ipcache.MAP, {}, {"address": address}).obj["key"]["prefix"])
            except mapread.NoEntry:
                answers.append(None)
        assert answers[0] == answers[1], (address, answers)
        key = ipcache.MAP.encode("key", {"prefix": f"{address}/32", "family": "ipv4", "cluster_id": 0}, V)
        candidates = [lpm_key(key, n) for n in range(64, -1, -1)]
        pod = PodBackend(_agent_of(lab, W1))
        before = len(lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec"))
        found = pod.first_entry(pod.info("cilium_ipcache_v2"), candidates)
        assert found == local.first_entry(local.info("cilium_ipcache_v2"), candidates)
        # the info, then one round trip for the getnexts from every candidate: 66 lines of batch, longer than
        # a request line allows, so in two execs side by side (one exec_many call: one mark)
        execs = lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec")[before:]
        assert [script_mark(e.query["command"]) is None for e in execs] == [True, False, False]
        assert len({script_mark(e.query["command"]) for e in execs[1:]}) == 1
        assert max(len(e.target) for e in execs) <= 8000
    assert answers == [None, None]  # 8.8.8.8: no world entry in this map


def test_a_bpftool_without_batches_from_stdin_answers_the_same_one_getnext_each(lab):
    """A bpftool that cannot read a batch from its standard input (it opens a file named "-"): the lookup asks
    each command on its own, still in one exec, and finds the same entries."""
    from tshoot.mapio import read as mapread
    from tshoot.node.agent import PodBackend

    inner = lab.exec_handler

    def no_stdin_batches(namespace, pod, container, argv):
        return inner(namespace, pod, container, [a.replace("bpftool -j batch file -", "bpftool -j batch file ./-")
                                                 for a in argv])

    lab.exec_handler = no_stdin_batches
    for address, prefix in (("10.0.1.110", "10.0.1.110/32"), ("8.8.8.8", "0.0.0.0/0")):
        backend = PodBackend(_agent_of(lab, W1))
        before = len(lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec"))
        assert mapread.lookup(backend, ipcache.MAP, {}, {"address": address}).obj["key"]["prefix"] == prefix
        assert backend._no_batch
        assert len(lab.requests_to("/api/v1/namespaces/cilium/pods/*/exec")) - before == 2  # the batch, then one more


def test_a_policy_lookup_asks_every_datapath_key_in_one_exec(tshoot, lab):
    """bpf/lib/policy.h asks the remote identity's rule, then any identity's (CiliumMap.datapath_keys); through
    the agent the map's info and every key's lookup and search go in one exec, and the first key that an
    entry answers decides, as the datapath's order says. The commands shown stay the lookups one by one."""
    from tshoot.core.addr import parse_protocol
    from tshoot.maps import policy

    def key(identity: int, proto: str, port: int) -> bytes:
        return policy.MAP.encode("key", {"identity": identity, "direction": "ingress", "protocol": proto, "port": port,
                                         "port_end": port,
                                         "prefix_len": policy.prefix_len(V, parse_protocol(proto), port, port)}, V)

    allow = policy.MAP.encode("value", policy.MAP.decode("value", bytes(policy.MAP.layout_for("value", V).size),
                                                         V).fields, V)
    fill(create_for(lab.nodes[W1].bpffs, policy.MAP, V, endpoint=2006),
         [(key(53731, "ANY", 0), allow), (key(0, "TCP", 80), allow)])
    agent_execs = f"/api/v1/namespaces/cilium/pods/{_agent(lab, W1)}/exec"
    for identity, expected in (("53731", [53731, "ANY", 0]), ("12345", [0, "TCP", 80])):
        before = len(lab.requests_to(agent_execs))
        r = _map(tshoot, lab, "lookup", "policy", "--endpoint", "2006", "--identity", identity, "--proto", "tcp",
                 "--port", "80", "--node", W1, "-o", "json", "--show-commands")
        assert r.code == 0, r
        found = json.loads(r.out)["key"]
        assert [found["identity"], found["protocol"], found["port"]] == expected
        execs = lab.requests_to(agent_execs)[before:]
        # one round trip: one exec_many (its script, longer than a request line, in execs side by side)
        assert len({script_mark(e.query["command"]) for e in execs}) == 1, [e.query["command"] for e in execs]
        ran = [argv for e in execs for argv in commands_of(e.query["command"])]
        assert [c[3] for c in ran].count("lookup") == 2, ran  # both keys, whichever answers
        asked = [line for line in r.err.splitlines() if "bpftool map lookup pinned" in line and
                 ("# the datapath's lookup" in line or "# no entry" in line)]
        assert len(asked) == (1 if identity == "53731" else 2), r.err  # the keys the datapath asked until one answered
