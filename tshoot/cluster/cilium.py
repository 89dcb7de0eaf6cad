"""The Cilium agent of a cluster: which namespace it runs in, its pod on a node, its version.

The guide installs Cilium in namespace `cilium`; Helm and cilium-cli install it in `kube-system`.
Agents are the pods labelled k8s-app=cilium; the version is the tag of the agent image.
"""

from __future__ import annotations

import itertools

from tshoot.cluster import kube
from tshoot.core import version as versions
from tshoot.core.errors import TshootError, UsageError

AGENT_LABEL = "k8s-app=cilium"
AGENT_CONTAINER = "cilium-agent"
AGENT_NAMESPACES = ("cilium", "kube-system")


def agent_namespace(api, namespace: str | None = None, timeout: float = kube.REQUEST_TIMEOUT) -> str:
    """`namespace` when given, else the first of cilium, kube-system that has agent pods."""
    if namespace:
        return namespace
    for candidate in AGENT_NAMESPACES:
        if next(kube.list_objects(api, kube.PODS, candidate, AGENT_LABEL, limit=1, timeout=timeout), None):
            return candidate
    raise TshootError(f"no Cilium agent pods (label {AGENT_LABEL}) in namespace {' or '.join(AGENT_NAMESPACES)}: "
                      "is Cilium installed? (or pass --cilium-namespace)")


def agent_pods(api, namespace: str | None = None, timeout: float = kube.REQUEST_TIMEOUT) -> list[dict]:
    """Every agent pod, sorted by node name."""
    namespace = agent_namespace(api, namespace, timeout)
    pods = list(kube.list_objects(api, kube.PODS, namespace, AGENT_LABEL, timeout=timeout))
    return sorted(pods, key=lambda p: p.get("spec", {}).get("nodeName") or "")


def agent_pod(api, node: str, namespace: str | None = None, timeout: float = kube.REQUEST_TIMEOUT) -> dict:
    """The agent pod on `node` (the guide's `kubectl get -l k8s-app=cilium pods -n cilium
    --field-selector spec.nodeName=$NODE`); a running one when the DaemonSet is rolling."""
    pods = None if namespace else _usual_agent(api, node, timeout)
    if pods is None:
        namespace = agent_namespace(api, namespace, timeout)
        pods = list(kube.list_objects(api, kube.PODS, namespace, AGENT_LABEL, f"spec.nodeName={node}", timeout=timeout))
    if not pods:
        known = [n["metadata"]["name"] for n in kube.list_objects(api, kube.NODES, timeout=timeout)]
        if node not in known:
            raise kube.no_such_node(node, known)
        raise TshootError(f"no Cilium agent pod on node {node} (label {AGENT_LABEL}, namespace {namespace}): "
                          "is the cilium DaemonSet scheduled there?")
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    return (running or pods)[0]


def _usual_agent(api, node: str, timeout: float) -> list[dict] | None:
    """The node's agent pods where Cilium usually runs, asked in one round trip instead of agent_namespace()'s
    then the node's: the node's agents in cilium and in kube-system, and whether cilium has any, side by
    side. The answer agent_namespace() would lead to when these tell it (an agent on the node in cilium; or
    none in cilium and one on the node in kube-system); None when they do not (no agent there)."""
    from concurrent.futures import ThreadPoolExecutor

    first, second = AGENT_NAMESPACES
    with ThreadPoolExecutor(3) as pool:
        on_first, on_second, any_first = pool.map(lambda ask: list(ask()), [
            lambda: kube.list_objects(api, kube.PODS, first, AGENT_LABEL, f"spec.nodeName={node}", timeout=timeout),
            lambda: kube.list_objects(api, kube.PODS, second, AGENT_LABEL, f"spec.nodeName={node}", timeout=timeout),
            # one page of one pod: whether there is any (list_objects would page on through all of them)
            lambda: itertools.islice(kube.list_objects(api, kube.PODS, first, AGENT_LABEL, limit=1, timeout=timeout),
                                     1)])
    if on_first:
        return on_first
    if not any_first and on_second:
        return on_second
    return None


def agent_image(pod: dict) -> str:
    containers = pod.get("spec", {}).get("containers", [])
    chosen = next((c for c in containers if c.get("name") == AGENT_CONTAINER), None)
    chosen = chosen or next((c for c in containers if "cilium" in c.get("image", "")), None)
    if chosen is None:
        raise TshootError(f"pod {pod['metadata'].get('namespace')}/{pod['metadata']['name']} has no "
                          f"{AGENT_CONTAINER} container: is it a Cilium agent?")
    return chosen["image"]


def agent_version(pod: dict) -> versions.Version:
    """The Cilium version from the agent's image tag (quay.io/cilium/cilium:v1.19.4@sha256:… -> (1, 19, 4))."""
    image = agent_image(pod)
    try:
        return versions.parse(image)
    except UsageError as exc:
        raise TshootError(f"agent image {image}: {exc} (pass --cilium-version to choose the layouts)") from None
