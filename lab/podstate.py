"""Where a pod is on its way to Ready, read from the pod object as the API server returns it (JSON):
scheduled, image pulled, init containers done, ready, and what is wrong when it is stuck.

Pure functions of the pod dict: `lab cilium wait` polls and shows them, tests feed them real API objects.
"""

from __future__ import annotations

from dataclasses import dataclass

# Waiting reasons that mean "stuck", not "on its way" (ContainerCreating, PodInitializing are on the way).
STUCK = {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
         "CreateContainerError", "InvalidImageName", "RunContainerError", "PreCreateHookError",
         "PostStartHookError"}
# Stuck reasons that waiting longer cannot fix.
FATAL = {"InvalidImageName", "CreateContainerConfigError"}
MESSAGE_LINES = 5  # how much of a termination message to quote


@dataclass(frozen=True)
class Problem:
    container: str
    reason: str
    restarts: int
    message: str  # the waiting message, or the last termination's message and exit code
    exit_code: int | None = None

    def describe(self, pod: str, node: str | None, namespace: str) -> str:
        where = f"{pod} on {node}" if node else pod
        if self.reason == "CrashLoopBackOff":
            code = f", exited with code {self.exit_code}" if self.exit_code is not None else ""
            text = f": {self.message}" if self.message else ""
            return (f"{where}: container {self.container} is in CrashLoopBackOff ({self.restarts} restarts){code}"
                    f"{text}; read its logs: kubectl -n {namespace} logs {pod} -c {self.container} --previous")
        text = f": {self.message}" if self.message else ""
        return f"{where}: container {self.container} is {self.reason}{text}"


@dataclass(frozen=True)
class PodState:
    name: str
    node: str | None
    scheduled: bool
    pulled: bool
    init_done: int
    init_total: int
    ready: bool
    problem: Problem | None

    @property
    def phase(self) -> str:
        """The furthest step reached, in the order a pod goes through them."""
        if self.ready:
            return "ready"
        if self.init_total and self.init_done == self.init_total:
            return "init done"
        if self.pulled:
            return "image pulled"
        if self.scheduled:
            return "scheduled"
        return "pending"


def _condition(pod: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in pod.get("status", {}).get("conditions") or [])


def _tail(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " | ".join(lines[-MESSAGE_LINES:])


def _problem(statuses: list[dict]) -> Problem | None:
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in STUCK:
            continue
        last = (status.get("lastState") or {}).get("terminated") or {}
        if reason == "CrashLoopBackOff" and last:
            message = _tail(last.get("message") or last.get("reason") or "")
            return Problem(status["name"], reason, status.get("restartCount", 0), message, last.get("exitCode"))
        return Problem(status["name"], reason, status.get("restartCount", 0), _tail(waiting.get("message") or ""))
    return None


def pod_state(pod: dict) -> PodState:
    spec, status = pod.get("spec", {}), pod.get("status", {})
    init_statuses = status.get("initContainerStatuses") or []
    statuses = status.get("containerStatuses") or []
    # All of Cilium's containers share one image: any container with an image ID means it is on the node.
    pulled = any(s.get("imageID") for s in init_statuses + statuses)
    init_done = sum(1 for s in init_statuses
                    if ((s.get("state") or {}).get("terminated") or {}).get("exitCode") == 0)
    return PodState(
        name=pod["metadata"]["name"],
        node=spec.get("nodeName"),
        scheduled=bool(spec.get("nodeName")) or _condition(pod, "PodScheduled"),
        pulled=pulled,
        init_done=init_done,
        init_total=len(spec.get("initContainers") or []),
        ready=_condition(pod, "Ready"),
        problem=_problem(init_statuses + statuses),
    )


def terminating(pod: dict) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))
