"""Cilium in the lab: install (the rendered manifests by server-side apply, or the official chart), wait
for the agents, check them, restart them. The API server is reached through tshoot.cluster.kube. The commands that
write (install, restart) first prove that they aim at the lab (lab.guard: its kind context, the API address
its control-plane container publishes, the containers' kind labels), so nothing lands on another cluster;
wait and check only read."""

from __future__ import annotations

import datetime

from tshoot.cluster import kube
from tshoot.core.errors import TshootError

from . import apply, guard, wait
from .check import AgentStatus, parse_status, status_command
from .manifests import AGENT_LABEL, CILIUM_NAMESPACE, Target, documents, render_cilium, render_tshoot

OPERATOR_LABEL = "io.cilium/app=operator"


def read_api(kubeconfig: str | None, context: str | None):
    """An API client for the commands that only read (wait, check): any cluster may be watched."""
    name, _ = kube.current_context(kubeconfig, context)
    return kube.api_client(kubeconfig, name)


def install(target: Target, kubeconfig: str | None, context: str | None, helm: bool = False,
            dry_run: bool = False) -> list[str]:
    """Apply Cilium and net-tshoot; one line per object (kubectl's `… serverside-applied`)."""
    cilium = documents(render_cilium(target))
    tshoot = documents(render_tshoot(target))
    lab = guard.prove(target.cluster, kubeconfig, context)
    api = lab.api_client()
    lines = []
    if helm:
        from . import helm as chart

        config = kube.kubeconfig_path(kubeconfig)
        if dry_run:
            lines.append(f"would run: {' '.join(chart.argv(target, '<values.yaml>', config, lab.context))}")
        else:
            chart.install(target, config, lab.context)
            lines.append(f"helm release cilium {target.cilium.version} installed in namespace {CILIUM_NAMESPACE}")
        to_apply = tshoot
    else:
        to_apply = cilium + tshoot
    for obj in apply.ordered(to_apply):
        if dry_run:
            lines.append(f"{apply.describe(obj)} would be applied (server-side, field manager {apply.FIELD_MANAGER})")
        else:
            apply.apply(api, obj)
            lines.append(f"{apply.describe(obj)} serverside-applied")
    return lines


def snapshot(api, namespace: str = CILIUM_NAMESPACE):
    """Everything one poll of `lab cilium wait` needs, read in four requests."""
    nodes = [n["metadata"]["name"] for n in kube.list_objects(api, kube.NODES)
             if (n["metadata"].get("labels") or {}).get("kubernetes.io/os", "linux") == "linux"]
    agents = list(kube.list_objects(api, kube.PODS, namespace, AGENT_LABEL))
    operator = list(kube.list_objects(api, kube.PODS, namespace, OPERATOR_LABEL))
    try:
        daemonset = kube.get_object(api, kube.DAEMONSETS, "cilium", namespace)
    except TshootError:
        daemonset = None  # not created yet: the rows say so, the wait goes on
    return wait.Snapshot(sorted(nodes), agents, daemonset, operator)


def wait_ready(kubeconfig: str | None, context: str | None, timeout: float, show=lambda s: None,
               interval: float = wait.POLL_INTERVAL) -> str:
    api = read_api(kubeconfig, context)
    started = datetime.datetime.now()
    final = wait.wait(lambda: snapshot(api), CILIUM_NAMESPACE, timeout, interval, show)
    agents = [r for r in wait.rows(final) if r.role == "agent"]
    took = (datetime.datetime.now() - started).total_seconds()
    return f"all {len(agents)} Cilium agents are ready ({took:.0f}s)"


def restart(cluster: str, kubeconfig: str | None, context: str | None, timeout: float, show=lambda s: None,
            interval: float = wait.POLL_INTERVAL) -> str:
    """`kubectl rollout restart daemonset/cilium`: a new template annotation, so the DaemonSet controller
    replaces the agents at its own pace (maxUnavailable 2), then wait until every node runs a new one."""
    lab = guard.prove(cluster, kubeconfig, context)
    api = lab.api_client()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}
    kube.request(api, "PATCH", kube.DAEMONSETS.path(CILIUM_NAMESPACE, "cilium"), body=patch,
                 content_type="application/strategic-merge-patch+json",
                 what="restart daemonset.apps/cilium", resource=kube.DAEMONSETS)
    message = wait_ready(kubeconfig, lab.context, timeout, show, interval)
    return f"daemonset.apps/cilium restarted; {message}"


def check(kubeconfig: str | None, context: str | None) -> list[AgentStatus]:
    """`cilium-dbg status` in every agent, in parallel; one AgentStatus per agent (failures included)."""
    from tshoot.cluster.cilium import agent_pods, agent_version
    from tshoot.node.agent import Agent
    from tshoot.node.fanout import fan_out

    api = read_api(kubeconfig, context)
    pods = [p for p in agent_pods(api) if not p["metadata"].get("deletionTimestamp")]

    def one(pod: dict) -> AgentStatus:
        name, node = pod["metadata"]["name"], pod["spec"].get("nodeName") or "(unscheduled)"
        try:
            argv = status_command(agent_version(pod) >= (1, 15, 0))
            code, out, err = Agent(api, pod, instead="is it a Cilium agent image?").exec(argv, "the status check")
        except TshootError as exc:
            return AgentStatus(node=node, pod=name, error=str(exc))
        status = parse_status(out, node, name)
        if code != 0 and status.cilium is None:
            last = ((err or out).strip().splitlines() or ["no output"])[-1]
            status.error = f"{' '.join(argv)} exited with {code}: {last}"
        return status

    return fan_out(pods, one, node_of=lambda pod: pod["spec"].get("nodeName") or pod["metadata"]["name"])
