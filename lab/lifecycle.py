"""`lab up`, `lab down`: the kind cluster's life, each step safe to repeat.

`up` reuses a healthy lab (its containers run and its API server answers) and refuses to paper over a
broken one; `down` removes nothing but the named kind cluster, after offering to detach Cilium's cgroup
programs from the host (the guide's `make cilium-unhook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tshoot.core.errors import TshootError

from . import kind, preflight
from .kind import ClusterSpec

READY_TIMEOUT = 20  # seconds for the API server of an existing lab to answer


@dataclass(frozen=True)
class Outcome:
    action: str  # "created", "reused", "deleted", "absent", "would delete"
    message: str


def _docker():
    from .nodes import docker_client

    return docker_client()


def api_answers(kubeconfig: Path, context: str) -> str | None:
    """None when the API server answers /readyz, else why not."""
    from tshoot.cluster import kube

    try:
        kube.request(kube.api_client(str(kubeconfig), context), "GET", "/readyz", timeout=READY_TIMEOUT,
                     what="its API server (/readyz)")
    except TshootError as exc:
        return f"{exc}"
    return None


def lab_problem(spec: ClusterSpec, kubeconfig: Path, client) -> str | None:
    """Why an existing lab cannot be reused, or None when it is healthy."""
    from .nodes import node_containers

    nodes = node_containers(spec.name, client, all_states=True)
    stopped = [f"{c.name} ({c.status})" for c in nodes if c.status != "running"]
    if not nodes:
        return "it has no node containers"
    if stopped:
        return f"nodes are not running: {', '.join(stopped)}"
    kind.export_kubeconfig(spec.name, kubeconfig)
    return api_answers(kubeconfig, spec.context)


def up(spec: ClusterSpec, kubeconfig: Path) -> Outcome:
    preflight.require()
    client = _docker()
    if spec.name in kind.clusters():
        problem = lab_problem(spec, kubeconfig, client)
        if problem:
            raise TshootError(f"kind cluster {spec.name} exists but {problem}: recreate it with 'make down' then "
                              f"'make up' (kind clusters do not reliably survive a Docker restart)")
        return Outcome("reused", f"kind cluster {spec.name} is up and healthy: reused; kubeconfig {kubeconfig} "
                                 f"(context {spec.context})")
    from .doctor import host_networks, subnet_clashes

    clashes = subnet_clashes(spec, host_networks())
    if clashes:
        raise TshootError(f"{'; '.join(clashes)}: pass free ranges with --pod-subnet/--service-subnet")
    kind.create(spec, kubeconfig)
    return Outcome("created", f"kind cluster {spec.name} created ({len(spec.node_names)} nodes: "
                              f"{', '.join(spec.node_names)}); kubeconfig {kubeconfig} (context {spec.context})")


def offer_unhook(name: str, kubeconfig: Path, dry_run: bool) -> str:
    """Detach Cilium's cgroup programs before the nodes go (lab.unhook, also `lab cilium unhook`). A lab
    that cannot be unhooked (API server gone, nodes stopped) is still deleted: the programs live in the
    nodes' own cgroup namespaces (kind >= v0.20) and go with them."""
    from .guard import prove
    from .unhook import unhook_cluster

    try:
        lab = prove(name, str(kubeconfig))
        nodes = unhook_cluster(lab, lab.api_client(), dry_run=dry_run)
    except TshootError as exc:
        return f"cilium-unhook skipped ({exc})"
    failed = [f"{n.node}: {n.error}" for n in nodes if n.error]
    done = f"cilium-unhook {'would run' if dry_run else 'done'} on {len(nodes) - len(failed)} of {len(nodes)} nodes"
    return done + (f" (failed: {'; '.join(failed)})" if failed else "")


def down(name: str, kubeconfig: Path, dry_run: bool = False, unhook: bool = True) -> list[Outcome]:
    preflight.require(("docker", "kind"))
    _docker()
    if name not in kind.clusters():
        return [Outcome("absent", f"kind cluster {name} does not exist: nothing to delete")]
    outcomes = []
    if unhook:
        outcomes.append(Outcome("unhook", offer_unhook(name, kubeconfig, dry_run)))
    if dry_run:
        outcomes.append(Outcome("would delete", f"would run: {' '.join(kind.delete_argv(name, kubeconfig))}"))
        return outcomes
    kind.delete(name, kubeconfig)
    outcomes.append(Outcome("deleted", f"kind cluster {name} deleted"))
    return outcomes
