"""`lab shell --node N`: a shell in the net-tshoot pod on node N, the guide's `NODE=… make tshoot`.

The pod is found through the API (label name=net-tshoot, field selector spec.nodeName); the terminal
session itself is `kubectl exec -it`, which owns the TTY (raw mode, window resizes, Ctrl-C to the
remote shell) in a way the API's exec stream alone does not give a Python client.
"""

from __future__ import annotations

import os
import shutil
import sys

from tshoot.cluster import kube
from tshoot.core.errors import TshootError, UsageError

from .manifests import TSHOOT_LABEL, TSHOOT_NAMESPACE


def tshoot_pod(api, node: str) -> str:
    """The running net-tshoot pod on `node`."""
    pods = [p for p in kube.list_objects(api, kube.PODS, TSHOOT_NAMESPACE, TSHOOT_LABEL, f"spec.nodeName={node}")
            if not p["metadata"].get("deletionTimestamp")]
    if not pods:
        nodes = sorted(n["metadata"]["name"] for n in kube.list_objects(api, kube.NODES))
        if node not in nodes:
            raise UsageError(f"--node {node}: no such node (nodes: {', '.join(nodes) or 'none'})")
        raise TshootError(f"no net-tshoot pod on {node}: install it with 'make cilium' (lab cilium install)")
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    if not running:
        pod = pods[0]
        raise TshootError(f"net-tshoot pod {pod['metadata']['name']} on {node} is {pod.get('status', {}).get('phase')}"
                          f": it starts once Cilium gives it a network (lab cilium wait)")
    return running[0]["metadata"]["name"]


def kubectl_argv(pod: str, kubeconfig: str, context: str, command: list[str], tty: bool) -> list[str]:
    return ["kubectl", "--kubeconfig", kubeconfig, "--context", context, "-n", TSHOOT_NAMESPACE, "exec",
            "-it" if tty else "-i", pod, "--", *command]


def run_shell(node: str, command: list[str], kubeconfig: str | None, context: str | None) -> int:
    path = kube.kubeconfig_path(kubeconfig)
    name, _ = kube.current_context(path, context)
    pod = tshoot_pod(kube.api_client(path, name), node)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        from .preflight import missing_line

        raise TshootError(missing_line("kubectl"))
    argv = kubectl_argv(pod, path, name, command, tty=sys.stdin.isatty())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(kubectl, argv)  # the terminal belongs to kubectl from here on
    return 0  # not reached
