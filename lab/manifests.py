"""What the lab applies: the manifests/ templates rendered for one Cilium release and one kind cluster, as
the multi-document YAML stream `lab render` prints and as the objects `lab cilium install` applies."""

from __future__ import annotations

from dataclasses import dataclass

from .kind import API_SERVER_PORT
from .releases import NETSHOOT_IMAGE, Release

CILIUM_NAMESPACE = "cilium"  # the guide's namespace (kubectl -n cilium …), not the chart's kube-system
TSHOOT_NAMESPACE = "default"
AGENT_LABEL = "k8s-app=cilium"
TSHOOT_LABEL = "name=net-tshoot"
ECHO_LABEL = "name=net-echo"  # manifests/tshoot/net-echo.yaml.j2: the pods and the Service the connectivity check talks to
ECHO_SERVICE = "net-echo"


@dataclass(frozen=True)
class Tshoot:
    image: str = NETSHOOT_IMAGE
    namespace: str = TSHOOT_NAMESPACE
    echo_port: int = 8080
    node_port: int = 30080  # in kube-apiserver's default NodePort range 30000-32767


@dataclass(frozen=True)
class Target:
    """The cluster the manifests are rendered for: the agents reach its API server by the control-plane
    container's name on the kind network (kube-proxy replacement leaves no kube-proxy to do it)."""

    cluster: str
    cilium: Release

    @property
    def api_host(self) -> str:
        return f"{self.cluster}-control-plane"


def _context(target: Target) -> dict:
    return {"cilium": target.cilium, "namespace": CILIUM_NAMESPACE, "api_host": target.api_host,
            "api_port": API_SERVER_PORT, "tshoot": Tshoot()}


def _stream(directory: str, target: Target) -> str:
    from .templates import render, templates

    parts = [render(name, **_context(target)).strip("\n") for name in templates(directory)]
    return "\n---\n".join(parts) + "\n"


def render_cilium(target: Target) -> str:
    return _stream("manifests/cilium", target)


def render_tshoot(target: Target) -> str:
    return _stream("manifests/tshoot", target)


def documents(stream: str) -> list[dict]:
    """The objects of a YAML stream, comments and empty documents dropped."""
    import yaml

    return [doc for doc in yaml.safe_load_all(stream) if doc]
