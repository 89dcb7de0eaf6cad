"""tshoot endpoints / endpoint get / identity / nodes / whois: the real console script against the local
Kubernetes API server, with Cilium 1.9's objects (the guide's) and 1.19's (dual-stack)."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.kubeapi import objects

SERVER_FILLED = ("uid", "resourceVersion", "creationTimestamp", "generation")


def table(out: str) -> list[list[str]]:
    """Table lines split into cells (cells are separated by 3+ spaces, as printed)."""
    import re

    return [re.split(r"\s{3,}", line.strip()) for line in out.splitlines() if line.strip()]


def details(out: str) -> list[str]:
    """`Key:   value` lines as "Key: value", continuation lines (more labels) as they are."""
    import re

    lines = []
    for line in out.splitlines():
        match = re.match(r"^(\S[^:]*):\s+(.*)$", line)
        lines.append(f"{match[1]}: {match[2]}" if match else line.strip())
    return lines


def row_of(out: str, first: str) -> list[str]:
    return next(r for r in table(out) if r[0] == first)


@pytest.fixture
def guide_cluster(kubeapi):
    """The guide's lab on Cilium 1.9, net-tshoot-l8vwz's endpoint stored exactly as the guide prints it."""
    everything = objects.kind_cluster(version="1.9.1")
    kubeapi.add(*[o for o in everything if o["kind"] != "CiliumEndpoint" or o["metadata"]["name"] != "net-tshoot-l8vwz"])
    kubeapi.add(objects.guide_endpoint(), fill=False)
    return kubeapi


@pytest.fixture
def dual_stack(kubeapi):
    kubeapi.add(*objects.kind_cluster(ipv6=True))
    return kubeapi


def run(tshoot, server, *args, **kw):
    return tshoot(*args, "--kubeconfig", str(server.kubeconfig), **kw)


# --- the guide's endpoint ----------------------------------------------------------------------------

def test_the_guides_endpoint_prints_exactly_as_the_guide_shows_it(tshoot, guide_cluster):
    r = run(tshoot, guide_cluster, "endpoint", "get", "net-tshoot-l8vwz", "-o", "yaml")
    assert r.code == 0, r
    assert r.out == objects.GUIDE_ENDPOINT_YAML
    assert guide_cluster.writes() == []


def test_the_guides_endpoint_served_with_a_clusters_metadata(tshoot, kubeapi):
    kubeapi.add(*objects.kind_cluster(version="1.9.1"))
    r = run(tshoot, kubeapi, "endpoint", "get", "net-tshoot-l8vwz", "-o", "yaml")
    served = yaml.safe_load(r.out)
    filled = {field: served["metadata"].pop(field) for field in SERVER_FILLED}
    assert all(filled.values()) and filled["generation"] == 1
    assert served == objects.guide_endpoint()
    wide = run(tshoot, kubeapi, "endpoints", "-o", "wide")
    assert row_of(wide.out, "net-tshoot-l8vwz") == [
        "net-tshoot-l8vwz", "92", "53731", "10.0.0.210", "-", "k8s-guide-worker2", "ready", "172.18.0.6",
        "default/net-tshoot-l8vwz", ",".join(objects.GUIDE_LABELS)]


def test_endpoint_details_of_the_guides_pod(tshoot, guide_cluster):
    r = run(tshoot, guide_cluster, "endpoint", "get", "net-tshoot-l8vwz")
    assert r.code == 0, r
    assert details(r.out) == [
        "Name: net-tshoot-l8vwz", "Namespace: default", "Endpoint ID: 92", "Identity: 53731", *objects.GUIDE_LABELS,
        "IPv4: 10.0.0.210", "IPv6: -", "Node: k8s-guide-worker2 (172.18.0.6)", "State: ready",
        "Pod: default/net-tshoot-l8vwz", "Container ID: d6effe0cc6d567e4776a3701851d9ab278ff128adede9419c8fda34daf6b46ef"]


# --- current releases, dual-stack ------------------------------------------------------------------------

def test_current_endpoints_with_ipv6_on_one_node(tshoot, dual_stack):
    r = run(tshoot, dual_stack, "endpoints", "-A", "--node", "k8s-guide-worker2")
    assert r.code == 0, r
    assert table(r.out) == [
        ["NAMESPACE", "NAME", "ENDPOINT ID", "IDENTITY", "IPV4", "IPV6", "NODE", "STATE"],
        ["default", "net-tshoot-l8vwz", "92", "53731", "10.0.0.210", "fd00::2d7", "k8s-guide-worker2", "ready"],
        ["kube-system", next(p["metadata"]["name"] for p in dual_stack.list("pods", "kube-system")
                             if p["spec"]["nodeName"] == "k8s-guide-worker2"),
         "301", "18203", "10.0.0.44", "fd00::244", "k8s-guide-worker2", "ready"]]
    by_ip = run(tshoot, dual_stack, "endpoints", "-A", "--node", "172.18.0.6")
    assert by_ip.out == r.out


def test_current_endpoint_as_served_and_as_details(tshoot, dual_stack):
    served = json.loads(run(tshoot, dual_stack, "endpoint", "get", "net-tshoot-xbw6q", "-o", "json").out)
    assert served == dual_stack.get("ciliumendpoints", "net-tshoot-xbw6q", "default")
    assert served["status"]["networking"] == {"addressing": [{"ipv4": "10.0.2.99", "ipv6": "fd00::1d6"}],
                                              "node": "172.18.0.4"}
    assert served["metadata"]["ownerReferences"][0]["kind"] == "Pod"
    shown = details(run(tshoot, dual_stack, "endpoint", "get", "net-tshoot-xbw6q").out)
    assert "IPv4: 10.0.2.99" in shown and "IPv6: fd00::1d6" in shown and "Node: k8s-guide-worker (172.18.0.4)" in shown
    assert "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default" in shown
    listed = yaml.safe_load(run(tshoot, dual_stack, "endpoints", "-o", "yaml").out)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == [
        "net-tshoot-4gmzr", "net-tshoot-l8vwz", "net-tshoot-xbw6q"]


def test_namespace_defaults_to_the_contexts(tshoot, dual_stack, tmp_path):
    kubeconfig = dual_stack.write_kubeconfig(tmp_path / "kc", namespace="kube-system")
    r = tshoot("endpoints", "--kubeconfig", str(kubeconfig))
    assert [row[0] for row in table(r.out)[1:]] == sorted(
        p["metadata"]["name"] for p in dual_stack.list("pods", "kube-system") if "coredns" in p["metadata"]["name"])


def test_5000_endpoints_are_read_page_by_page(tshoot, kubeapi):
    kubeapi.add(*objects.kind_cluster(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}})
    kubeapi.add(*objects.many_endpoints(5000, ipv6=True))
    r = run(tshoot, kubeapi, "endpoints", "-n", "load")
    assert r.code == 0, r
    rows = table(r.out)[1:]
    assert len(rows) == 5000 and len({row[0] for row in rows}) == 5000
    assert rows[-1][4:] == ["fd00:64::1397", "k8s-guide-worker", "ready"]
    pages = kubeapi.requests_to("/apis/cilium.io/v2/namespaces/load/ciliumendpoints")
    assert len(pages) == 10 and all(p.query["limit"] == ["500"] for p in pages)
    assert ["continue" in p.query for p in pages] == [False] + [True] * 9


# --- failures: one line, exit 1 ------------------------------------------------------------------------

@pytest.mark.parametrize("code, expected", [
    (403, 'list ciliumendpoints.cilium.io in namespace default: 403 Forbidden: ciliumendpoints.cilium.io is '
          'forbidden: User "kubernetes-admin" cannot list resource "ciliumendpoints" in API group "cilium.io" in '
          'the namespace "default" (ask for RBAC permission or use another --context)'),
    (404, "list ciliumendpoints.cilium.io in namespace default: the server could not find the requested resource"),
    (500, "list ciliumendpoints.cilium.io in namespace default: the API server answered 500 InternalError: "
          "Internal error occurred: etcdserver: request timed out"),
])
def test_api_errors_are_one_line_and_exit_1(tshoot, dual_stack, code, expected):
    dual_stack.fail("/apis/cilium.io/v2/namespaces/default/ciliumendpoints", code)
    r = run(tshoot, dual_stack, "endpoints")
    assert (r.code, r.out, r.err) == (1, "", f"tshoot: {expected}\n")


def test_a_hanging_api_server_is_one_line_and_exit_1(tshoot, dual_stack):
    dual_stack.hang("/apis/cilium.io/*")
    r = run(tshoot, dual_stack, "endpoints", "-A", "--request-timeout", "1s", timeout=30)
    assert (r.code, r.out) == (1, "")
    assert r.err == (f"tshoot: list ciliumendpoints.cilium.io: the API server at {dual_stack.url} did not answer "
                     "within 1s (overloaded or unreachable?)\n")


def test_missing_objects_and_missing_crds(tshoot, dual_stack):
    r = run(tshoot, dual_stack, "endpoint", "get", "nope")
    assert (r.code, r.err) == (1, 'tshoot: get ciliumendpoints.cilium.io default/nope: ciliumendpoints.cilium.io '
                                  '"nope" not found\n')
    dual_stack.delete("customresourcedefinitions", "ciliumendpoints.cilium.io")
    r = run(tshoot, dual_stack, "endpoints", "-A")
    assert (r.code, r.err) == (1, "tshoot: list ciliumendpoints.cilium.io: the API server does not serve "
                                  "ciliumendpoints.cilium.io (cilium.io/v2): is Cilium installed? Its operator "
                                  "registers this CRD at start-up\n")


def test_usage_errors_exit_2_before_any_request(tshoot, dual_stack):
    for args in (["whois", "10.0.0.300"], ["endpoints", "-o", "wider"], ["identity", "get", "abc"],
                 ["endpoints", "--request-timeout", "soon"], ["endpoints", "-n", "default", "-A"]):
        r = run(tshoot, dual_stack, *args)
        assert r.code == 2 and len(r.err.splitlines()) == 1 and "Traceback" not in r.err, r
    assert dual_stack.requests == []
    bare = tshoot("identity")  # a group without its command: its help, and no error line
    assert (bare.code, bare.err) == (2, "") and "identity get" not in bare.out and "list" in bare.out
    unknown = run(tshoot, dual_stack, "endpoints", "--node", "k8s-guide-worker9")  # a fact about the cluster
    assert unknown.code == 1 and unknown.err == ("tshoot: no node named 'k8s-guide-worker9' (nodes: "
                                                 "k8s-guide-control-plane, k8s-guide-worker, k8s-guide-worker2)\n")


# --- identities ----------------------------------------------------------------------------------------

def test_identity_get_names_labels_and_reserved_identities(tshoot, guide_cluster, tmp_path):
    r = run(tshoot, guide_cluster, "identity", "get", "53731")
    assert table(r.out) == [["ID", "LABELS"], ["53731", objects.GUIDE_LABELS[0]], *[[l] for l in objects.GUIDE_LABELS[1:]]]
    served = yaml.safe_load(run(tshoot, guide_cluster, "identity", "get", "53731", "-o", "yaml").out)
    assert served == guide_cluster.get("ciliumidentities", "53731")
    assert served["security-labels"]["k8s:name"] == "net-tshoot"

    requests = len(guide_cluster.requests)
    nowhere = {"KUBECONFIG": str(tmp_path / "absent")}
    for ask, number, name in (("6", 6, "remote-node"), ("world", 2, "world"), ("10", 10, "world-ipv6")):
        r = tshoot("identity", "get", ask, env=nowhere)
        assert r.code == 0 and table(r.out)[1] == [str(number), f"reserved:{name}"], r
    assert len(guide_cluster.requests) == requests  # reserved identities need no cluster

    local = run(tshoot, guide_cluster, "identity", "get", str((1 << 24) + 5))
    assert local.code == 1 and "is node-local (bit 24 set" in local.err
    absent = run(tshoot, guide_cluster, "identity", "get", "40000")
    assert absent.code == 1 and absent.err.startswith("tshoot: identity 40000 is not allocated in this cluster")


def test_identity_list(tshoot, dual_stack):
    r = run(tshoot, dual_stack, "identity", "list")
    ids = [row[0] for row in table(r.out)[1:] if row[0].isdigit()]
    assert ids == [str(n) for n in range(1, 11)] + ["18203", "53731"]
    assert row_of(r.out, "7") == ["7", "-", "reserved:kube-apiserver"]
    only = run(tshoot, dual_stack, "identity", "list", "-l", "io.kubernetes.pod.namespace=kube-system", "-o", "json")
    assert [(i["id"], i["namespace"]) for i in json.loads(only.out)] == [(18203, "kube-system")]


# --- nodes ---------------------------------------------------------------------------------------------

def test_nodes_join_nodes_and_ciliumnodes(tshoot, dual_stack):
    r = run(tshoot, dual_stack, "nodes")
    assert table(r.out) == [
        ["NAME", "READY", "INTERNAL-IP", "POD CIDRS", "CILIUM-HOST", "HEALTH", "INGRESS"],
        ["k8s-guide-control-plane", "Ready", "172.18.0.5", "10.0.1.0/24,fd00::/120", "10.0.1.197,fd00::c5",
         "10.0.1.12", "-"],
        ["k8s-guide-worker", "Ready", "172.18.0.4", "10.0.2.0/24,fd00::100/120", "10.0.2.184,fd00::1c5",
         "10.0.2.61", "-"],
        ["k8s-guide-worker2", "Ready", "172.18.0.6", "10.0.0.0/24,fd00::200/120", "10.0.0.215,fd00::2c5",
         "10.0.0.97", "-"]]
    dual_stack.delete("ciliumnodes", "k8s-guide-worker")
    wide = run(tshoot, dual_stack, "nodes", "-o", "wide")
    assert row_of(wide.out, "k8s-guide-worker") == [
        "k8s-guide-worker", "Ready", "172.18.0.4", "10.244.1.0/24", "-", "-", "-", "-", "-", "10.244.1.0/24",
        "v1.34.8", "no CiliumNode: the agent has not registered this node"]
    rows = json.loads(run(tshoot, dual_stack, "nodes", "-o", "json").out)
    assert rows[0]["roles"] == ["control-plane"] and rows[2]["health_ips"] == ["10.0.0.97"]


# --- whois ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, kind, name, node, identity", [
    ("10.0.1.110", "endpoint", "default/net-tshoot-4gmzr", "k8s-guide-control-plane", "53731"),
    ("fd00::2d7", "endpoint", "default/net-tshoot-l8vwz", "k8s-guide-worker2", "53731"),
    ("172.18.0.5", "node", "k8s-guide-control-plane", "k8s-guide-control-plane", "1 (host)"),
    ("10.0.0.215", "cilium-host", "k8s-guide-worker2", "k8s-guide-worker2", "1 (host)"),
    ("10.0.2.61", "health", "k8s-guide-worker", "k8s-guide-worker", "4 (health)"),
    ("10.96.0.10", "service", "kube-system/kube-dns", "-", "-"),
    ("10.0.2.77", "pod-cidr", "10.0.2.0/24", "k8s-guide-worker", "-"),
    ("8.8.8.8", "world", "8.8.8.8", "-", "2 (world)"),
])
def test_whois(tshoot, dual_stack, address, kind, name, node, identity):
    r = run(tshoot, dual_stack, "whois", address)
    assert r.code == 0, r
    assert table(r.out)[1][:4] == [kind, name, node, identity]


def test_whois_details_and_json(tshoot, dual_stack):
    result = json.loads(run(tshoot, dual_stack, "whois", "10.96.0.10", "-o", "json").out)
    [service] = result["matches"]
    backends = sorted(p["status"]["podIP"] for p in dual_stack.list("pods", "kube-system"))
    assert all(f"{ip}:53/9153" in service["detail"] for ip in backends)
    pod = json.loads(run(tshoot, dual_stack, "whois", "10.0.0.210", "-o", "json").out)["matches"][0]
    assert pod["identity_labels"][-1] == "k8s:name=net-tshoot" and "stale" not in pod["detail"]
    dual_stack.delete("pods", "net-tshoot-l8vwz", "default", propagation="Orphan")  # the agent never cleaned up
    stale = json.loads(run(tshoot, dual_stack, "whois", "10.0.0.210", "-o", "json").out)["matches"][0]
    assert stale["detail"].endswith("its pod is gone (a stale endpoint?)")
    assert dual_stack.writes() == []  # whois only reads


# --- kubeconfig resolution -------------------------------------------------------------------------------

def test_lab_kubeconfig_in_the_working_directory_and_contexts(tshoot, dual_stack, tmp_path, monkeypatch):
    lab = tmp_path / "lab"
    lab.mkdir()
    kubeconfig = dual_stack.write_kubeconfig(lab / "kubeconfig", context="kind-k8s-guide")
    config = yaml.safe_load(kubeconfig.read_text())
    dead = {"name": "kind-other", "cluster": {"server": "https://127.0.0.1:1"}}
    config["clusters"].append(dead)
    config["contexts"].append({"name": "kind-other", "context": {"cluster": "kind-other", "user": "kind-k8s-guide"}})
    kubeconfig.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    monkeypatch.chdir(lab)
    import subprocess
    import sys
    from pathlib import Path

    binary = str(Path(sys.executable).parent / "tshoot")
    here = subprocess.run([binary, "nodes"], capture_output=True, text=True, env={**env, "NO_COLOR": "1"})
    assert here.returncode == 0 and "k8s-guide-worker2" in here.stdout, here
    other = subprocess.run([binary, "nodes", "--context", "kind-other"], capture_output=True, text=True,
                           env={**env, "NO_COLOR": "1"})
    assert other.returncode == 1 and "https://127.0.0.1:1: connection refused" in other.stderr


def test_whois_takes_ipcache_entries_from_a_map_reader(dual_stack):
    """The boundary the map readers (tshoot.mapio.read.ipcache_entries) plug into: entries per node, identities named from the API."""
    from tshoot.cluster import kube, objects as tshoot_objects

    def ipcache(address):
        return [{"node": "k8s-guide-worker", "prefix": f"{address}/32", "identity": 53731,
                 "tunnel_endpoint": "172.18.0.5"},
                {"node": "k8s-guide-control-plane", "prefix": f"{address}/32", "identity": 6, "tunnel_endpoint": None}]

    result = tshoot_objects.whois(kube.api_client(str(dual_stack.kubeconfig)), "10.0.1.110", ipcache=ipcache)
    assert [(e["node"], e["identity_labels"][-1]) for e in result["ipcache"]] == [
        ("k8s-guide-worker", "k8s:name=net-tshoot"), ("k8s-guide-control-plane", "reserved:remote-node")]
    assert result["matches"][0]["name"] == "default/net-tshoot-4gmzr"
