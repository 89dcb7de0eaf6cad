"""`lab cilium wait`: poll the agents until every node has a ready one (and the operator is available),
showing per node how far its agent got: scheduled, image pulled, init containers done, ready.

The default timeout is long on purpose: a first run pulls the agent image on every node, and slow links
take minutes (cilium-cli's 5-minute default is a known trap). A crash-looping container is reported with
its last termination message and the command to read its logs, and ends the wait once it has restarted
CRASH_RESTARTS times: waiting longer would not fix it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tshoot.core.errors import TshootError

from .podstate import FATAL, PodState, pod_state, terminating

DEFAULT_TIMEOUT = 15 * 60
POLL_INTERVAL = 2.0
CRASH_RESTARTS = 3


@dataclass
class Snapshot:
    """What one poll read from the API server."""

    nodes: list[str]
    agents: list[dict]  # pods of the cilium DaemonSet
    daemonset: dict | None
    operator: list[dict] = field(default_factory=list)  # pods of the cilium-operator Deployment


@dataclass(frozen=True)
class Row:
    node: str
    state: PodState | None  # None: no agent pod on that node yet
    role: str = "agent"


def rows(snapshot: Snapshot) -> list[Row]:
    """One row per node (its current agent pod, terminating ones ignored), then the operator's pods."""
    current = {}
    for pod in snapshot.agents:
        if terminating(pod):
            continue
        state = pod_state(pod)
        if state.node:
            previous = current.get(state.node)
            # During a rollout a node briefly has two pods: the newest is the one to follow.
            if previous is None or pod["metadata"].get("creationTimestamp", "") >= previous[0]:
                current[state.node] = (pod["metadata"].get("creationTimestamp", ""), state)
    result = [Row(node, current[node][1] if node in current else None) for node in snapshot.nodes]
    unscheduled = [pod_state(p) for p in snapshot.agents if not terminating(p) and not pod_state(p).node]
    result += [Row("(unscheduled)", state) for state in unscheduled]
    result += [Row(pod_state(p).node or "(unscheduled)", pod_state(p), "operator")
               for p in snapshot.operator if not terminating(p)]
    return result


def rollout_done(daemonset: dict | None) -> bool:
    """The DaemonSet controller has caught up with the latest template on every node."""
    if not daemonset:
        return False
    meta, status = daemonset.get("metadata", {}), daemonset.get("status", {})
    desired = status.get("desiredNumberScheduled", 0)
    return (status.get("observedGeneration", 0) >= meta.get("generation", 1) and desired > 0
            and status.get("updatedNumberScheduled", 0) == desired and status.get("numberReady", 0) == desired)


def done(snapshot: Snapshot) -> bool:
    table = rows(snapshot)
    agents = [r for r in table if r.role == "agent"]
    operators = [r for r in table if r.role == "operator"]
    return (bool(agents) and all(r.state is not None and r.state.ready for r in agents)
            and any(r.state.ready for r in operators) and rollout_done(snapshot.daemonset))


def failure(snapshot: Snapshot, namespace: str) -> str | None:
    """A problem waiting will not fix: no DaemonSet at all, a crash loop that keeps restarting, an image name
    that is invalid."""
    if snapshot.daemonset is None:
        return f"there is no cilium DaemonSet in namespace {namespace}: install Cilium first (make cilium)"
    for row in rows(snapshot):
        problem = row.state.problem if row.state else None
        if problem and (problem.reason in FATAL
                        or (problem.reason == "CrashLoopBackOff" and problem.restarts >= CRASH_RESTARTS)):
            return problem.describe(row.state.name, row.state.node, namespace)
    return None


def wait(fetch, namespace: str, timeout: float = DEFAULT_TIMEOUT, interval: float = POLL_INTERVAL,
         show=lambda snapshot: None) -> Snapshot:
    """Poll `fetch()` until done; `show(snapshot)` after every poll. Raises TshootError on failure or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = fetch()
        show(snapshot)
        if done(snapshot):
            return snapshot
        problem = failure(snapshot, namespace)
        if problem:
            raise TshootError(problem)
        if time.monotonic() >= deadline:
            raise TshootError(f"timed out after {timeout:.0f}s: {summary(snapshot, namespace)} "
                              f"(wait longer with --timeout, or look: kubectl -n {namespace} get pods -o wide)")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def summary(snapshot: Snapshot, namespace: str) -> str:
    table = rows(snapshot)
    waiting = [f"{r.node}: {r.state.phase if r.state else 'no agent pod'}" for r in table
               if r.role == "agent" and not (r.state and r.state.ready)]
    problems = [r.state.problem.describe(r.state.name, r.state.node, namespace) for r in table
                if r.state and r.state.problem]
    if not any(r.role == "operator" and r.state.ready for r in table):
        waiting.append("cilium-operator: not available")
    if not rollout_done(snapshot.daemonset) and not waiting:
        waiting.append("the DaemonSet rollout is not complete")
    return "; ".join(waiting + problems) or "not ready"
