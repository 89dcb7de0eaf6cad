"""`lab cilium install --helm`: the official chart with values equivalent to the lab's manifests.

Everything the lab's templates decide is a value here (same namespace, tunnel, IPAM, kube-proxy
replacement with the control-plane container as API server, socket LB kept to the host namespace, BPF
masquerade, one operator, no Envoy DaemonSet, no Hubble); the chart pins its images by digest itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tshoot.core.errors import TshootError

from .kind import API_SERVER_PORT
from .manifests import CILIUM_NAMESPACE, Target

REPOSITORY = "https://helm.cilium.io/"
RELEASE_NAME = "cilium"
INSTALL_TIMEOUT = 600  # seconds: helm itself does not wait for the pods (lab cilium wait does)


def values(target: Target) -> dict:
    return {
        "kubeProxyReplacement": True,
        "k8sServiceHost": target.api_host,
        "k8sServicePort": API_SERVER_PORT,
        "routingMode": "tunnel",
        "tunnelProtocol": "vxlan",
        "ipam": {"mode": "kubernetes"},
        "bpf": {"masquerade": True},
        "socketLB": {"hostNamespaceOnly": True},
        "image": {"pullPolicy": "IfNotPresent"},
        "operator": {"replicas": 1, "image": {"pullPolicy": "IfNotPresent"}},
        "envoy": {"enabled": False},
        "hubble": {"enabled": False},
    }


def render_values(target: Target) -> str:
    import yaml

    return yaml.safe_dump(values(target), sort_keys=False)


def argv(target: Target, values_file: Path, kubeconfig: str, context: str | None) -> list[str]:
    """`helm upgrade --install`: installs the first time, upgrades in place after (idempotent)."""
    command = ["helm", "upgrade", "--install", RELEASE_NAME, "cilium", "--repo", REPOSITORY,
               "--version", target.cilium.version, "--namespace", CILIUM_NAMESPACE, "--create-namespace",
               "--values", str(values_file), "--kubeconfig", kubeconfig]
    if context:
        command += ["--kube-context", context]
    return command


def install(target: Target, kubeconfig: str, context: str | None) -> None:
    helm = shutil.which("helm")
    if helm is None:
        from .preflight import missing_line

        raise TshootError(f"--helm: {missing_line('helm')}")
    with tempfile.TemporaryDirectory(prefix="kindlab-helm-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(render_values(target))
        command = argv(target, values_file, kubeconfig, context)
        try:
            proc = subprocess.run([helm, *command[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TshootError(f"helm did not finish within {INSTALL_TIMEOUT}s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TshootError(f"helm upgrade --install failed (exit {proc.returncode}): {last}")
