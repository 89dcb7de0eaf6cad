"""Cilium in the lab against the local Kubernetes API server (tests/kubeapi): install (server-side apply,
its order and idempotency), wait (progress per node, crash loops, time-outs), check (cilium-dbg status
in every agent over the API's exec), restart, the net-tshoot shell (real kubectl), and status.

The server plays the cluster; where a cluster would act on its own (the kubelet starting pods, the
DaemonSet controller rolling them) the test writes the objects those controllers would write, step by
step, in lockstep with the command's polls."""

from __future__ import annotations

import json
import threading
import time

import pytest
import yaml

from lab.manifests import Target, documents, render_cilium, render_tshoot
from lab.releases import release
from tests import cilium_status, podfixtures
from tests.fakebin import fake_bin
from tests.kubeapi import objects
from tests.kubeapi.execution import ExecStartError

NODES = ["k8s-guide-control-plane", "k8s-guide-worker", "k8s-guide-worker2"]
APPLY = "application/apply-patch+yaml"


def nodes_only(kubeapi):
    kubeapi.add(*[objects.node(n) for n in objects.guide_nodes()])


def run_lab(kubeapi, *args, env=None, timeout=60):
    from tests.conftest import run_cli

    return run_cli("lab", *args, "--kubeconfig", str(kubeapi.kubeconfig), env=env, timeout=timeout)


def installed(kubeapi, name: str = "k8s-guide"):
    """What `lab cilium install` applies, applied the same way (lab.apply), for the tests of what follows."""
    from lab import apply
    from tshoot.cluster import kube

    api = kube.api_client(str(kubeapi.kubeconfig))
    for obj in apply.ordered(documents(render_cilium(Target(name, release()))) +
                             documents(render_tshoot(Target(name, release())))):
        apply.apply(api, obj)


@pytest.fixture
def new_lab(kind_cluster, kubeapi, tmp_path):
    """A lab before Cilium: kind-like node containers on the real engine, the test API server behind the
    control plane's published port holding only their Node objects. `lab cilium install|restart` write, so
    they must prove it is the lab (lab.guard), as `lab nuke` does."""
    from tests.kindnodes import connect

    cluster = kind_cluster(workers=2)
    lab = connect(cluster, kubeapi, tmp_path, [objects.node(n, cluster.name) for n in objects.guide_nodes(cluster.name)])
    lab.nodes = [n.name for n in objects.guide_nodes(cluster.name)]
    lab.run = lambda *args, env=None: _run_in(lab, *args, env=env)
    yield lab
    lab.close()


def _run_in(lab, *args, env=None):
    from tests.conftest import run_cli

    return run_cli("lab", *args, "--name", lab.cluster.name, "--kubeconfig", str(lab.kubeconfig), env=env, timeout=60)


# --- install -------------------------------------------------------------------------------------------

@pytest.mark.docker
def test_install_applies_everything_server_side_in_order(new_lab, kubeapi):
    name = new_lab.cluster.name
    r = new_lab.run("cilium", "install")
    assert r.code == 0, r
    writes = kubeapi.writes()
    assert {(w.method, w.content_type) for w in writes} == {("PATCH", APPLY)}
    assert all(w.query.get("fieldManager") == ["kindlab"] and w.query.get("force") == ["true"] for w in writes)
    kinds = [yaml.safe_load(w.body)["kind"] for w in writes]
    order = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap",
             "Deployment", "DaemonSet", "Service"]
    assert kinds == sorted(kinds, key=order.index) and kinds[0] == "Namespace" and kinds[-1] == "Service"
    expected = documents(render_cilium(Target(name, release()))) + documents(render_tshoot(Target(name, release())))
    assert len(writes) == len(expected) == len(r.out.strip().splitlines())
    live = kubeapi.get("daemonsets", "cilium", "cilium")
    rendered = next(o for o in expected if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "cilium")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == release().agent_image
    assert live["spec"]["template"]["spec"]["initContainers"] == rendered["spec"]["template"]["spec"]["initContainers"]
    assert kubeapi.get("configmaps", "cilium-config", "cilium")["data"] == next(
        o for o in expected if o["kind"] == "ConfigMap")["data"]
    assert kubeapi.get("daemonsets", "net-tshoot", "default")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "nicolaka/netshoot:v0.16"
    assert "daemonset.apps/cilium serverside-applied" in r.out
    # what lab check connectivity talks to: net-echo on every node, behind a NodePort Service
    assert kubeapi.get("services", "net-echo", "default")["spec"]["ports"][0]["nodePort"] == 30080
    assert "service/net-echo serverside-applied" in r.out


@pytest.mark.docker
def test_install_is_idempotent_and_puts_back_what_was_changed(new_lab, kubeapi):
    assert new_lab.run("cilium", "install").code == 0
    before = kubeapi.get("daemonsets", "cilium", "cilium")
    edited = json.loads(json.dumps(before))
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/cilium/cilium:v1.19.0"
    kubeapi.put(edited)
    assert kubeapi.get("daemonsets", "cilium", "cilium")["metadata"]["generation"] == 2
    r = new_lab.run("cilium", "install")
    assert r.code == 0, r
    after = kubeapi.get("daemonsets", "cilium", "cilium")
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == release().agent_image
    assert after["metadata"]["generation"] == 3  # changed back once, nothing else
    assert new_lab.run("cilium", "install").code == 0
    assert kubeapi.get("daemonsets", "cilium", "cilium")["metadata"]["generation"] == 3  # a no-op now


@pytest.mark.docker
def test_install_dry_run_writes_nothing(new_lab, kubeapi):
    r = new_lab.run("cilium", "install", "--dry-run")
    assert r.code == 0 and kubeapi.writes() == []
    assert "daemonset.apps/cilium would be applied (server-side, field manager kindlab)" in r.out


def test_install_refuses_a_context_that_is_not_the_lab(kubeapi, tmp_path):
    other = kubeapi.write_kubeconfig(tmp_path / "prod", context="prod-cluster")
    from tests.conftest import run_cli

    r = run_cli("lab", "cilium", "install", "--kubeconfig", str(other))
    assert r.code == 2 and kubeapi.requests == []
    assert r.err.strip() == ("lab: refusing: context 'prod-cluster' is not the lab's kind context 'kind-k8s-guide' "
                             "(use --context kind-k8s-guide, or --name <cluster> for another kind lab)")


@pytest.mark.docker
@pytest.mark.parametrize("command", [["cilium", "install"], ["cilium", "install", "--dry-run"],
                                     ["cilium", "restart", "--timeout", "5s"]])
def test_install_and_restart_refuse_the_labs_context_name_on_another_server(new_lab, kubeapi, tmp_path, command):
    """A kubeconfig whose context is called kind-<lab> but points elsewhere (here: straight at the test
    server, not the address the lab's control plane publishes): refused before any request."""
    stale = new_lab.write_kubeconfig(tmp_path / "stale", {new_lab.cluster.context: kubeapi.url})
    from tests.conftest import run_cli

    r = run_cli("lab", *command, "--name", new_lab.cluster.name, "--kubeconfig", str(stale))
    assert r.code == 2 and kubeapi.requests == [], r
    assert r.err.startswith(f"lab: refusing: context {new_lab.cluster.context!r} points at {kubeapi.url}, but the "
                            f"lab's {new_lab.cluster.name}-control-plane publishes its API server at ")


@pytest.mark.docker
def test_install_with_helm_hands_cilium_to_the_chart(new_lab, kubeapi, tmp_path):
    helm = fake_bin(tmp_path).install("helm")
    import os

    r = new_lab.run("cilium", "install", "--helm", env={"PATH": f"{helm.dir}:{os.environ['PATH']}"})
    assert r.code == 0, r
    (call,) = helm.calls("helm")
    assert call["argv"][:10] == ["helm", "upgrade", "--install", "cilium", "cilium", "--repo",
                                 "https://helm.cilium.io/", "--version", "1.19.4", "--namespace"]
    assert call["argv"][call["argv"].index("--kubeconfig") + 1] == str(new_lab.kubeconfig)
    assert call["argv"][call["argv"].index("--kube-context") + 1] == new_lab.cluster.context
    assert yaml.safe_load(call["values"])["k8sServiceHost"] == f"{new_lab.cluster.name}-control-plane"
    # Only the tshoot manifests (net-echo, net-tshoot) went through the API: the chart owns Cilium's objects.
    assert sorted(yaml.safe_load(w.body)["metadata"]["name"] for w in kubeapi.writes()) == [
        "net-echo", "net-echo", "net-tshoot"]


# --- wait ----------------------------------------------------------------------------------------------

class Cluster(threading.Thread):
    """Writes the next state of the cluster each time `lab cilium wait` finishes a poll (its last request
    is the DaemonSet's GET), so every state is seen by exactly one poll."""

    def __init__(self, kubeapi, steps):
        super().__init__(daemon=True)
        self.kubeapi, self.steps, self.stop = kubeapi, list(steps), threading.Event()

    def polls(self) -> int:
        return len(self.kubeapi.requests_to("/apis/apps/v1/namespaces/cilium/daemonsets/cilium", "GET"))

    def run(self):
        seen = 0
        while self.steps and not self.stop.is_set():
            if self.polls() > seen:
                seen = self.polls()
                self.steps.pop(0)()
            time.sleep(0.005)


def put_all(kubeapi, *objs):
    return lambda: [kubeapi.put(o) for o in objs]


def ready_status(kubeapi, desired=3):
    def step():
        ds = kubeapi.get("daemonsets", "cilium", "cilium")
        generation = ds["metadata"].get("generation", 1)
        ds["status"] = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired,
                        "numberAvailable": desired, "numberMisscheduled": 0, "numberReady": desired,
                        "observedGeneration": generation, "updatedNumberScheduled": desired}
        kubeapi.put(ds)
    return step


def test_wait_follows_every_node_to_ready(kubeapi):
    nodes_only(kubeapi)
    installed(kubeapi)
    lifecycles = [podfixtures.agent_lifecycle(f"cilium-{i}{i}{i}{i}{i}", node) for i, node in enumerate(NODES)]
    steps = [put_all(kubeapi, *(life[k] for life in lifecycles)) for k in range(6)]
    steps += [put_all(kubeapi, podfixtures.ready_operator("cilium-operator-7d9f8-x2x4k", NODES[0])),
              ready_status(kubeapi)]
    cluster = Cluster(kubeapi, steps)
    cluster.start()
    r = run_lab(kubeapi, "cilium", "wait", "--interval", "0.25", "--timeout", "60s")
    cluster.stop.set()
    assert r.code == 0, r
    assert r.out.startswith("all 3 Cilium agents are ready")
    worker = [line for line in r.err.splitlines() if line.startswith("k8s-guide-worker:")]
    assert worker == ["k8s-guide-worker: no agent pod yet",
                      "k8s-guide-worker: agent cilium-11111 scheduled (init 0/6)",
                      "k8s-guide-worker: agent cilium-11111 image pulled (init 0/6)",
                      "k8s-guide-worker: agent cilium-11111 image pulled (init 3/6)",
                      "k8s-guide-worker: agent cilium-11111 init done",
                      "k8s-guide-worker: agent cilium-11111 ready"]
    assert "(unscheduled): agent cilium-11111 pending (init 0/6)" in r.err


def test_wait_stops_on_a_crash_loop_with_its_last_words(kubeapi):
    nodes_only(kubeapi)
    installed(kubeapi)
    kubeapi.put(podfixtures.ready_agent("cilium-aaaaa", NODES[0]))
    kubeapi.put(podfixtures.ready_agent("cilium-bbbbb", NODES[1]))
    kubeapi.put(podfixtures.crash_looping("cilium-ccccc", NODES[2], restarts=3))
    kubeapi.put(podfixtures.ready_operator("cilium-operator-7d9f8-x2x4k", NODES[0]))
    r = run_lab(kubeapi, "cilium", "wait", "--interval", "0.1", "--timeout", "60s")
    assert r.code == 1
    message = r.err.strip().splitlines()[-1]
    assert message.startswith("lab: cilium-ccccc on k8s-guide-worker2: container cilium-agent is in CrashLoopBackOff "
                              "(3 restarts), exited with code 1: ")
    assert 'level=fatal msg="Unable to initialize Kubernetes subsystem"' in message
    assert message.endswith("read its logs: kubectl -n cilium logs cilium-ccccc -c cilium-agent --previous")


def test_wait_times_out_saying_where_each_node_is(kubeapi):
    nodes_only(kubeapi)
    installed(kubeapi)
    pods = [podfixtures.ready_agent("cilium-aaaaa", NODES[0]),
            podfixtures.pod("cilium-bbbbb", NODES[1], podfixtures.agent_template(), 0, "waiting", pulling=True)]
    for pod in pods:
        kubeapi.put(pod)
    r = run_lab(kubeapi, "cilium", "wait", "--interval", "0.1", "--timeout", "1s")
    assert r.code == 1
    assert r.err.strip().splitlines()[-1] == (
        "lab: timed out after 1s: k8s-guide-worker: scheduled; k8s-guide-worker2: no agent pod; cilium-operator: "
        "not available (wait longer with --timeout, or look: kubectl -n cilium get pods -o wide)")


# --- check ---------------------------------------------------------------------------------------------

def exec_status(kubeapi, outputs: dict[str, str], calls: list):
    """Agents answer `cilium-dbg status` with the text given for their node."""
    def handler(namespace, pod, container, argv):
        calls.append((namespace, pod, container, argv))
        node = kubeapi.get("pods", pod, namespace)["spec"]["nodeName"]
        text = outputs[node]
        if isinstance(text, Exception):
            raise text
        return 0, text.encode(), b""
    kubeapi.exec_handler = handler


def test_check_all_healthy(kubeapi_cluster):
    calls = []
    exec_status(kubeapi_cluster, {n: cilium_status.healthy(n) for n in NODES}, calls)
    r = run_lab(kubeapi_cluster, "cilium", "check")
    assert r.code == 0, r
    assert sorted(c[3] for c in calls) == [["cilium-dbg", "status"]] * 3
    assert {c[2] for c in calls} == {"cilium-agent"} and {c[0] for c in calls} == {"cilium"}
    rows = [line for line in r.out.splitlines() if line.startswith("k8s-guide-")]
    assert len(rows) == 3 and all("40/40 healthy" in row and "3/3 reachable" in row and "True" in row
                                  and "none" in row for row in rows)


def test_check_names_the_unhealthy_agents_and_exits_1(kubeapi_cluster):
    calls = []
    exec_status(kubeapi_cluster, {
        NODES[0]: cilium_status.healthy(NODES[0]),
        NODES[1]: cilium_status.failing_controllers(NODES[1]),
        NODES[2]: ExecStartError('failed to exec in container: exec: "cilium-dbg": executable file not found'),
    }, calls)
    r = run_lab(kubeapi_cluster, "cilium", "check", "-o", "json")
    assert r.code == 1, r
    report = {s["node"]: s for s in json.loads(r.out)}
    assert report[NODES[0]]["healthy"] is True
    assert report[NODES[1]]["problems"] == ["1 controllers failing"]
    assert report[NODES[1]]["controllers"] == {"healthy": 39, "total": 40}
    assert report[NODES[2]]["healthy"] is False and "executable file not found" in report[NODES[2]]["error"]


def test_check_uses_cilium_status_before_1_15(kubeapi):
    kubeapi.add(*objects.kind_cluster("1.9.1"))
    calls = []
    exec_status(kubeapi, {n: cilium_status.GUIDE_1_10 for n in NODES}, calls)
    r = run_lab(kubeapi, "cilium", "check")
    assert r.code == 0, r
    assert {tuple(c[3]) for c in calls} == {("cilium", "status")}


# --- restart -------------------------------------------------------------------------------------------

@pytest.mark.docker
def test_restart_rolls_the_daemonset_and_waits_for_new_agents(new_lab, kubeapi):
    installed(kubeapi, new_lab.cluster.name)
    nodes = new_lab.nodes
    old = [podfixtures.ready_agent(f"cilium-old{i}", node) for i, node in enumerate(nodes)]
    for pod in old + [podfixtures.ready_operator("cilium-operator-7d9f8-x2x4k", nodes[0])]:
        kubeapi.put(pod)
    ready_status(kubeapi)()

    def controller(server, verb, resource, obj):
        """The DaemonSet controller: a new template means new pods, then a caught-up status."""
        if resource.plural != "daemonsets" or obj["metadata"]["name"] != "cilium" or verb != "patch":
            return
        def roll():
            for i, node in enumerate(nodes):
                server.delete("pods", f"cilium-old{i}", "cilium")
                server.put(podfixtures.ready_agent(f"cilium-new{i}", node, created="2026-08-02T20:00:00Z"))
            ready_status(server)()
        threading.Timer(0.3, roll).start()

    kubeapi.reactors.append(controller)
    r = new_lab.run("cilium", "restart", "--interval", "0.1", "--timeout", "30s")
    assert r.code == 0, r
    (patch,) = [w for w in kubeapi.writes() if w.method == "PATCH" and w.path.endswith("/daemonsets/cilium")
                and w.content_type != APPLY]
    annotations = json.loads(patch.body)["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["kubectl.kubernetes.io/restartedAt"]
    assert r.out.startswith("daemonset.apps/cilium restarted; all 3 Cilium agents are ready")
    assert {p["metadata"]["name"] for p in kubeapi.list("pods", "cilium", "k8s-app=cilium")} == {
        "cilium-new0", "cilium-new1", "cilium-new2"}


# --- shell ---------------------------------------------------------------------------------------------

def test_shell_runs_in_the_nodes_net_tshoot_pod_through_kubectl(kubeapi_cluster):
    """The real kubectl, run by `lab shell`, execs through the test server into the right pod."""
    calls = []

    def handler(namespace, pod, container, argv):
        calls.append((namespace, pod, argv))
        return 0, b"eth0@if24        UP             10.0.0.210/32\n", b""
    kubeapi_cluster.exec_handler = handler
    from tests.conftest import run_cli

    r = run_cli("lab", "shell", "--node", "k8s-guide-worker2", "--kubeconfig", str(kubeapi_cluster.kubeconfig), "--",
                "ip", "-4", "-br", "addr", "show", "dev", "eth0")
    assert r.code == 0, r
    assert calls == [("default", "net-tshoot-l8vwz", ["ip", "-4", "-br", "addr", "show", "dev", "eth0"])]
    assert r.out == "eth0@if24        UP             10.0.0.210/32\n"
    assert any("kubectl/" in (q.user_agent or "") for q in kubeapi_cluster.requests_to("*/exec"))


def test_shell_on_an_unknown_node(kubeapi_cluster):
    r = run_lab(kubeapi_cluster, "shell", "--node", "k8s-guide-worker3")
    assert r.code == 2
    assert r.err.strip() == ("lab: --node k8s-guide-worker3: no such node (nodes: k8s-guide-control-plane, "
                             "k8s-guide-worker, k8s-guide-worker2)")


def test_shell_before_cilium(kubeapi):
    nodes_only(kubeapi)
    r = run_lab(kubeapi, "shell", "--node", "k8s-guide-worker")
    assert r.code == 1
    assert r.err.strip() == "lab: no net-tshoot pod on k8s-guide-worker: install it with 'make cilium' (lab cilium install)"


# --- status --------------------------------------------------------------------------------------------

def test_status_reads_the_cluster(kubeapi_cluster):
    r = run_lab(kubeapi_cluster, "status", "-o", "json")
    parts = {p["name"]: p for p in json.loads(r.out)["parts"]}
    assert parts["API server"]["state"] == "ok" and "v1.34.8" in parts["API server"]["detail"]
    assert parts["nodes"] == {"name": "nodes", "state": "ok", "detail": "3/3 Ready"}
    assert parts["cilium agents"]["detail"] == "3/3 ready" and parts["net-tshoot"]["detail"] == "3/3 ready"
    assert parts["kube-proxy"]["detail"] == "absent (Cilium replaces it)"


def test_status_without_an_api_server(lab, tmp_path, kubeapi):
    kubeconfig = kubeapi.kubeconfig
    kubeapi.stop()
    r = lab("status", "--kubeconfig", str(kubeconfig), "-o", "json")
    assert r.code == 1
    parts = {p["name"]: p for p in json.loads(r.out)["parts"]}
    assert parts["API server"]["state"] == "fail" and "connection refused" in parts["API server"]["detail"]
    assert "nodes" not in parts


def test_wait_before_install_says_so_at_once(kubeapi):
    nodes_only(kubeapi)
    r = run_lab(kubeapi, "cilium", "wait", "--interval", "0.1", "--timeout", "60s")
    assert r.code == 1
    assert r.err.strip().splitlines()[-1] == ("lab: there is no cilium DaemonSet in namespace cilium: install Cilium "
                                              "first (make cilium)")
