"""`lab status`: the lab at a glance, each part read from where it lives (kind, Docker, the API server).
A part that cannot be read says why; the exit code is 1 when a part is broken."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field

from tshoot.cluster import kube
from tshoot.core.errors import TshootError

from .manifests import CILIUM_NAMESPACE, TSHOOT_NAMESPACE

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Part:
    name: str
    state: str
    detail: str


@dataclass
class Report:
    parts: list[Part] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(p.state != FAIL for p in self.parts)

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "parts": [asdict(p) for p in self.parts]}


def _kind_part(name: str) -> Part:
    from . import kind

    if shutil.which("kind") is None:
        return Part("kind cluster", WARN, "kind is not installed: cannot list kind clusters")
    try:
        present = name in kind.clusters()
    except TshootError as exc:
        return Part("kind cluster", FAIL, str(exc))
    return Part("kind cluster", OK, f"{name} exists") if present else \
        Part("kind cluster", FAIL, f"{name} does not exist (make up)")


def _nodes_part(name: str) -> Part:
    from .doctor import docker_or_none
    from .nodes import node_containers

    client = docker_or_none()
    if client is None:
        return Part("node containers", FAIL, "the Docker engine does not answer")
    nodes = node_containers(name, client, all_states=True)
    if not nodes:
        return Part("node containers", FAIL, f"none labelled for kind cluster {name}")
    stopped = [c for c in nodes if c.status != "running"]
    detail = ", ".join(f"{c.name} {c.status}" for c in nodes)
    return Part("node containers", FAIL if stopped else OK, detail)


def _workload(api, resource, name: str, namespace: str, label: str, fix: str) -> Part:
    try:
        obj = kube.get_object(api, resource, name, namespace)
    except TshootError:
        return Part(label, WARN, f"not installed ({fix})")
    status = obj.get("status", {})
    if resource is kube.DAEMONSETS:
        want, have = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    else:
        want, have = obj.get("spec", {}).get("replicas", 1), status.get("availableReplicas", 0)
    return Part(label, OK if want and have == want else WARN, f"{have}/{want} ready")


def _cluster_parts(api) -> list[Part]:
    nodes = list(kube.list_objects(api, kube.NODES))
    not_ready = [n["metadata"]["name"] for n in nodes
                 if not any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in n.get("status", {}).get("conditions") or [])]
    parts = [Part("nodes", OK if nodes and not not_ready else WARN,
                  f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready"
                  + (f" (not ready: {', '.join(not_ready)}; no CNI until Cilium runs)" if not_ready else ""))]
    parts.append(_workload(api, kube.DAEMONSETS, "cilium", CILIUM_NAMESPACE, "cilium agents", "make cilium"))
    parts.append(_workload(api, kube.DEPLOYMENTS, "cilium-operator", CILIUM_NAMESPACE, "cilium operator",
                           "make cilium"))
    parts.append(_workload(api, kube.DAEMONSETS, "net-tshoot", TSHOOT_NAMESPACE, "net-tshoot", "make cilium"))
    try:
        kube.get_object(api, kube.DAEMONSETS, "kube-proxy", "kube-system")
        parts.append(Part("kube-proxy", OK, "running (make nuke-kube-proxy removes it)"))
    except TshootError:
        parts.append(Part("kube-proxy", OK, "absent (Cilium replaces it)"))
    return parts


def collect(name: str, kubeconfig: str | None, context: str | None) -> Report:
    report = Report([_kind_part(name), _nodes_part(name)])
    try:
        api = kube.api_client(kubeconfig, context)
        version = kube.request(api, "GET", "/version", what="the API server's version")
    except TshootError as exc:
        report.parts.append(Part("API server", FAIL, str(exc)))
        return report
    report.parts.append(Part("API server", OK, f"{version.get('gitVersion', '?')} at {api.host}"))
    report.parts += _cluster_parts(api)
    return report
