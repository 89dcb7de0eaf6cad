"""`lab nuke pods`: restart every pod so that it gets its network from the new CNI, and see them back.

The guide runs `kubectl delete --all pods --all-namespaces` and moves on. That also deletes the CNI's own
agents (Cilium restarting itself while it wires the others), loses pods no controller will recreate, and
never says whether anything came back. Here:
  * the CNI's agents stay unless --include-cni;
  * pods without a controller (nothing would recreate them), finished pods (nothing to restart) and
    static pods' mirrors (kubelet owns them: deleting the mirror restarts nothing) are left alone and
    listed;
  * every other pod is deleted, then the command waits until each controller has as many replacement
    pods as it lost (Ready when the lost ones were), and names the stragglers when time runs out.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tshoot.cluster import kube
from tshoot.core.errors import TshootError

# The node agents of the CNIs the guide installs (and kind's own), by the labels their DaemonSets give them.
CNI_AGENT_LABELS = {("k8s-app", "cilium"): "Cilium agent", ("k8s-app", "cilium-envoy"): "Cilium Envoy",
                    ("app", "kindnet"): "kindnet", ("k8s-app", "calico-node"): "Calico node",
                    ("app", "flannel"): "flannel", ("name", "weave-net"): "Weave Net"}
TERMINAL_PHASES = ("Succeeded", "Failed")
DELETE_WORKERS = 8


@dataclass
class PodRef:
    namespace: str
    name: str
    uid: str
    owner: tuple[str, str, str] | None  # (namespace, kind, name) of its controller
    owner_uid: str | None
    ready: bool

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Straggler:
    owner: str     # "kube-system/ReplicaSet/coredns-5d78c9869d"
    expected: int  # replacements it owes
    back: int      # replacements there (ready when the deleted ones were)
    states: list[str]


def _ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _controller(pod: dict) -> dict | None:
    return next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)


def _ref(pod: dict) -> PodRef:
    meta = pod["metadata"]
    owner = _controller(pod)
    return PodRef(meta.get("namespace", ""), meta["name"], meta.get("uid", ""),
                  (meta.get("namespace", ""), owner["kind"], owner["name"]) if owner else None,
                  owner.get("uid") if owner else None, _ready(pod))


def why_skip(pod: dict, include_cni: bool) -> str | None:
    labels = pod["metadata"].get("labels") or {}
    agent = next((what for (key, value), what in CNI_AGENT_LABELS.items() if labels.get(key) == value), None)
    if agent and not include_cni:
        return f"{agent}: the CNI's own agent (--include-cni restarts it too)"
    if pod.get("status", {}).get("phase") in TERMINAL_PHASES:
        return f"{pod['status']['phase']}: finished, nothing to restart"
    owner = _controller(pod)
    if owner is None:
        return "no controller would recreate it: deleting it would lose it"
    if owner.get("kind") == "Node":
        return "static pod: kubelet runs it from a manifest; deleting its mirror restarts nothing"
    return None


def select(api, include_cni: bool = False) -> tuple[list[PodRef], list[tuple[str, str]]]:
    """(pods to restart, (pod, why) left alone), over every namespace."""
    chosen, skipped = [], []
    for pod in kube.list_objects(api, kube.PODS):
        reason = why_skip(pod, include_cni)
        if reason:
            skipped.append((f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}", reason))
        else:
            chosen.append(_ref(pod))
    return chosen, skipped


def delete(api, pods: list[PodRef]) -> list[tuple[str, str]]:
    """Delete them (several at once); the failures, a pod already gone is not one."""
    def one(ref: PodRef):
        try:
            kube.request(api, "DELETE", kube.PODS.path(ref.namespace, ref.name),
                         body={"preconditions": {"uid": ref.uid}}, content_type="application/json",
                         what=f"delete pod {ref.key}", resource=kube.PODS)
        except kube.NotFound:
            return None  # already gone
        except TshootError as exc:
            return ref.key, str(exc)
        return None

    with ThreadPoolExecutor(max_workers=DELETE_WORKERS) as pool:
        return [r for r in pool.map(one, pods) if r]


def missing(api, deleted: list[PodRef]) -> list[Straggler]:
    """Controllers that do not yet have their replacements: as many new pods as they lost, and Ready
    ones for every lost pod that was Ready."""
    gone = {ref.uid for ref in deleted}
    lost = Counter(ref.owner_uid for ref in deleted)
    lost_ready = Counter(ref.owner_uid for ref in deleted if ref.ready)
    names = {ref.owner_uid: "/".join(ref.owner) for ref in deleted}
    new: dict[str, list[dict]] = {}
    for pod in kube.list_objects(api, kube.PODS):
        owner = _controller(pod)
        if owner and owner.get("uid") in lost and pod["metadata"].get("uid") not in gone \
                and not pod["metadata"].get("deletionTimestamp"):
            new.setdefault(owner["uid"], []).append(pod)
    stragglers = []
    for owner_uid, count in lost.items():
        pods = new.get(owner_uid, [])
        ready = sum(1 for p in pods if _ready(p))
        if len(pods) < count or ready < lost_ready[owner_uid]:
            stragglers.append(Straggler(names[owner_uid], count, ready if lost_ready[owner_uid] else len(pods),
                                        sorted(_state(p) for p in pods)))
    return sorted(stragglers, key=lambda s: s.owner)


def _state(pod: dict) -> str:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason") or "Waiting"
    return pod.get("status", {}).get("phase") or "Unknown"


def wait_back(api, deleted: list[PodRef], timeout: float, on_progress=None, interval: float = 1.0) -> list[Straggler]:
    """Poll until every controller has its replacements; the stragglers when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    total = len(deleted)
    while True:
        stragglers = missing(api, deleted)
        if on_progress:
            on_progress(total - sum(max(0, s.expected - s.back) for s in stragglers), total)
        if not stragglers or time.monotonic() >= deadline:
            return stragglers
        time.sleep(interval)
