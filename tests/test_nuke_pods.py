"""`lab nuke pods` end to end, against the test API server holding the guide's cluster, with the test acting as
the cluster's controllers: a deleted pod whose owner still exists gets a replacement (Pending, then Ready)."""

from __future__ import annotations

import copy
import threading
import uuid

import pytest

from tests.kubeapi import objects

WEB_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.53"


class Controllers:
    """Replace deleted pods the way the ReplicaSet/DaemonSet controllers and kubelet do, a moment later;
    owners listed in `stuck` get replacements that never start."""

    def __init__(self, lab, stuck: tuple[str, ...] = ()):
        self.api, self.nodes, self.stuck, self.timers = lab.api, objects.guide_nodes(lab.cluster.name), stuck, []
        self.api.reactors.append(self.react)

    def react(self, server, verb, resource, obj) -> None:
        if verb != "delete" or resource.plural != "pods":
            return
        owner = next((o for o in obj["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
        if owner is None or owner["kind"] == "Node":
            return
        replacement = copy.deepcopy(obj)
        meta = replacement["metadata"]
        base = meta["name"].rsplit("-", 1)[0]
        meta.update(name=f"{base}-{uuid.uuid4().hex[:5]}", uid=str(uuid.uuid4()))
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        replacement["status"] = {"phase": "Pending", "containerStatuses": [
            {"name": c["name"], "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
            for c in replacement["spec"]["containers"]]}
        self.later(0.1, lambda: self.api.add(replacement, fill=False))
        if owner["name"] not in self.stuck:
            self.later(0.5, lambda: self.api.put(objects.pod(
                meta["name"], meta.get("namespace"), self.node(replacement), meta.get("labels") or {},
                [(c["name"], c["image"]) for c in replacement["spec"]["containers"]], ip="10.244.1.77",
                owner={"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                       "metadata": {"name": owner["name"], "uid": owner["uid"]}},
                host_network=bool(replacement["spec"].get("hostNetwork"))) | {"metadata": meta}))

    def node(self, pod):
        return next(n for n in self.nodes if n.name == pod["spec"].get("nodeName"))

    def later(self, seconds: float, fn) -> None:
        timer = threading.Timer(seconds, fn)
        self.timers.append(timer)
        timer.start()

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()


def add_workloads(lab) -> dict[str, str]:
    """A web ReplicaSet (2 pods), a bare debug pod, a finished Job pod, a static pod's mirror."""
    nodes = objects.guide_nodes(lab.cluster.name)
    web_rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "web-7d4b9c", "namespace": "default", "uid": str(uuid.uuid4())},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "default",
                                                                 "uid": str(uuid.uuid4())}}
    lab.api.add(web_rs)
    web = [objects.pod(f"web-7d4b9c-{s}", "default", nodes[i + 1], {"app": "web"}, [("web", WEB_IMAGE)],
                       ip=f"10.244.{i + 1}.20", owner=web_rs) for i, s in enumerate(("abcde", "fghjk"))]
    bare = objects.pod("debug", "default", nodes[1], {"run": "debug"}, [("debug", WEB_IMAGE)], ip="10.244.1.30")
    done = objects.pod("migrate-x7k2p", "default", nodes[2], {"job-name": "migrate"}, [("migrate", WEB_IMAGE)],
                       ip="10.244.2.31", owner=job, phase="Succeeded")
    node_obj = lab.api.get("nodes", nodes[0].name)
    mirror = objects.pod(f"kube-apiserver-{nodes[0].name}", "kube-system", nodes[0], {"component": "kube-apiserver"},
                         [("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.34.8")], owner=node_obj,
                         host_network=True)
    mirror["metadata"]["ownerReferences"][0]["controller"] = True
    lab.api.add(*web, bare, done, mirror)
    return {"bare": "default/debug", "done": "default/migrate-x7k2p", "mirror": f"kube-system/{mirror['metadata']['name']}"}


def nuke_with_controllers(lab, run, timeout: str, stuck: tuple[str, ...] = ()):
    """`lab nuke pods` while the test plays the controllers."""
    controllers = Controllers(lab, stuck)
    try:
        return run("nuke", "pods", "--timeout", timeout, "--kubeconfig", str(lab.kubeconfig), "--name",
                   lab.cluster.name)
    finally:
        controllers.stop()


def pod_names(lab, selector=None, namespace=None):
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in lab.api.list("pods", namespace, selector))


@pytest.mark.docker
def test_restarts_every_restartable_pod_and_waits_until_they_are_back(kind_lab, lab):
    kept = add_workloads(kind_lab)
    agents = pod_names(kind_lab, "k8s-app=cilium")
    before = pod_names(kind_lab)
    r = nuke_with_controllers(kind_lab, lab, "30")

    assert r.code == 0, r
    deleted = sorted(w.path.split("/namespaces/")[1].replace("/pods/", "/") for w in kind_lab.api.writes())
    assert all(w.method == "DELETE" for w in kind_lab.api.writes())
    restartable = [p for p in before if p not in agents and p not in kept.values()
                   and not p.startswith("kube-system/coredns-")]  # the guide's CoreDNS pods have no owner here
    assert deleted == sorted(restartable)
    assert f"all {len(restartable)} pod(s) are back" in r.out
    for key, why in (("bare", "no controller"), ("done", "Succeeded"), ("mirror", "static pod")):
        assert any(kept[key] in line and why in line for line in r.out.splitlines()), (key, r.out)
    assert all(a in pod_names(kind_lab) for a in agents)  # the CNI's agents were not touched
    assert len(pod_names(kind_lab, "app=web")) == 2 and not set(pod_names(kind_lab, "app=web")) & set(before)


@pytest.mark.docker
def test_stragglers_are_named_and_exit_1(kind_lab, lab):
    add_workloads(kind_lab)
    r = nuke_with_controllers(kind_lab, lab, "3", stuck=("web-7d4b9c",))

    assert r.code == 1, r
    rows = [line for line in r.out.splitlines() if line.startswith("default/ReplicaSet/")]
    assert len(rows) == 1 and "web-7d4b9c" in rows[0] and "ContainerCreating" in rows[0], r.out
    assert "net-tshoot" not in "\n".join(rows)


@pytest.mark.docker
def test_dry_run_lists_exactly_what_it_would_delete(kind_lab, lab):
    add_workloads(kind_lab)
    agents = pod_names(kind_lab, "k8s-app=cilium")

    r = lab("nuke", "pods", "--dry-run", "--include-cni", "--kubeconfig", str(kind_lab.kubeconfig), "--name",
            kind_lab.cluster.name)

    assert r.code == 0, r
    assert kind_lab.api.writes() == []
    would = sorted(line.removeprefix("would delete pod ") for line in r.out.splitlines()
                   if line.startswith("would delete pod "))
    assert set(agents) <= set(would)  # --include-cni: the agents too
    assert "default/debug" not in would and "default/web-7d4b9c-abcde" in would
