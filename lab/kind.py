"""The lab's kind cluster: its spec, its rendered config, and the kind binary that creates and deletes it.

kind is driven as a program (its Go API is not reachable from Python); every command line is built by a
function of its own so that tests check the exact argv without running kind.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tshoot.core.errors import TshootError, UsageError

from .releases import KIND_VERSION, Release, release

DEFAULT_CLUSTER = "k8s-guide"
# kind's own defaults: away from the ranges home and office networks use (192.168/16, 10.0/16, 10.1/16,
# 172.16/12 of Docker) and disjoint from each other. `lab doctor` checks them against this host's routes.
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"
KUBE_PROXY_MODES = ("iptables", "ipvs", "nftables", "none")
API_SERVER_PORT = 6443  # kind's API server port inside the control-plane container
NAME_PATTERN = re.compile(r"^[a-z0-9.-]+$")  # kind's rule for cluster names
CREATE_TIMEOUT = 900  # seconds: kind pulls a ~1 GB node image on the first run


@dataclass(frozen=True)
class ClusterSpec:
    name: str = DEFAULT_CLUSTER
    workers: int = 2
    kube_proxy_mode: str = "iptables"
    pod_subnet: str = DEFAULT_POD_SUBNET
    service_subnet: str = DEFAULT_SERVICE_SUBNET
    cilium: Release = field(default_factory=release)
    node_image_override: str | None = None

    def __post_init__(self):
        if not NAME_PATTERN.match(self.name):
            raise UsageError(f"--name {self.name!r}: kind cluster names are lower-case letters, digits, '.' and '-'")
        if not 0 <= self.workers <= 10:
            raise UsageError(f"--workers {self.workers}: a lab has 0 to 10 workers")
        if self.kube_proxy_mode not in KUBE_PROXY_MODES:
            raise UsageError(f"--kube-proxy-mode {self.kube_proxy_mode!r}: use one of {', '.join(KUBE_PROXY_MODES)}")
        pods = _network("--pod-subnet", self.pod_subnet)
        services = _network("--service-subnet", self.service_subnet)
        if pods.overlaps(services):
            raise UsageError(f"--pod-subnet {pods} overlaps --service-subnet {services}: pick disjoint ranges")
        if self.node_image_override is not None and "@sha256:" not in self.node_image_override:
            raise UsageError(f"--node-image {self.node_image_override}: pin it by digest "
                             f"(kindest/node:vX.Y.Z@sha256:…), as kind's release notes ask")

    @property
    def node_image(self) -> str:
        return self.node_image_override or self.cilium.node_image.reference

    @property
    def control_plane(self) -> str:
        """The control-plane container: its name is resolvable on the kind network, and is the node name."""
        return f"{self.name}-control-plane"

    @property
    def node_names(self) -> list[str]:
        """kind's node naming: <name>-control-plane, <name>-worker, <name>-worker2, …"""
        return [self.control_plane] + [f"{self.name}-worker{i if i > 1 else ''}" for i in range(1, self.workers + 1)]

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    def warnings(self) -> list[str]:
        if self.node_image_override is None and not self.cilium.node_image_tested():
            low, high = self.cilium.tested_kubernetes
            return [f"Cilium {self.cilium.version} is tested on Kubernetes {low}-{high}; kind {KIND_VERSION} has no "
                    f"node image in that range, so the lab uses Kubernetes {self.cilium.node_image.kubernetes}"]
        return []


def _network(option: str, text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise UsageError(f"{option} {text}: {exc} (write it like 10.244.0.0/16)") from None
    if net.version != 4:
        raise UsageError(f"{option} {text}: the lab is IPv4-only")
    if net.prefixlen > 24:
        raise UsageError(f"{option} {text}: too small for a cluster (use /24 or larger, e.g. /16)")
    return net


def render_config(spec: ClusterSpec) -> str:
    from .templates import render

    return render("kind/cluster.yaml.j2", spec=spec)


# --- the kind program -------------------------------------------------------------------------------

def binary() -> str:
    path = shutil.which("kind")
    if path is None:
        from .preflight import missing_line

        raise TshootError(missing_line("kind"))
    return path


def create_argv(spec: ClusterSpec, kubeconfig: Path) -> list[str]:
    """kind reads the config from stdin ('--config -'): what `lab render kind` prints is exactly what it gets."""
    return ["kind", "create", "cluster", "--name", spec.name, "--config", "-", "--kubeconfig", str(kubeconfig)]


def delete_argv(name: str, kubeconfig: Path) -> list[str]:
    return ["kind", "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]


def export_kubeconfig_argv(name: str, kubeconfig: Path) -> list[str]:
    return ["kind", "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)]


def get_clusters_argv() -> list[str]:
    return ["kind", "get", "clusters"]


def _run(argv: list[str], *, input: str | None = None, capture: bool = True, timeout: float = 120) -> str:
    """Run kind; its progress goes to the user's stderr when not captured. Failures are one TshootError."""
    argv = [binary(), *argv[1:]]
    try:
        proc = subprocess.run(argv, input=input, text=True, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired:
        raise TshootError(f"'{' '.join(argv[:4])}' did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
        reason = f": {detail[0]}" if detail else " (see its output above)"
        raise TshootError(f"'kind {' '.join(argv[1:3])}' failed with exit code {proc.returncode}{reason}")
    return proc.stdout


def clusters() -> list[str]:
    """The kind clusters on this Docker engine ('No kind clusters found.' goes to stderr: empty list)."""
    return [line.strip() for line in _run(get_clusters_argv()).splitlines() if line.strip()]


def create(spec: ClusterSpec, kubeconfig: Path) -> None:
    _run(create_argv(spec, kubeconfig), input=render_config(spec), capture=False, timeout=CREATE_TIMEOUT)


def delete(name: str, kubeconfig: Path) -> None:
    _run(delete_argv(name, kubeconfig), capture=False, timeout=300)


def export_kubeconfig(name: str, kubeconfig: Path) -> None:
    _run(export_kubeconfig_argv(name, kubeconfig))
