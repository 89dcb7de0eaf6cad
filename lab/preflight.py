"""Are the tools the lab drives installed? Answered from PATH alone, in milliseconds, before any work:
one line per missing tool saying how to get it."""

from __future__ import annotations

import platform
import shutil

from tshoot.core.errors import Problems

from .releases import KIND_VERSION, RELEASES

REQUIRED = ("docker", "kind", "kubectl")  # what `lab up` and the guide's targets need; helm only for --helm


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")


def how_to_get(tool: str) -> str:
    arch = _arch()
    kubectl_version = max(r.node_image.kubernetes for r in RELEASES.values())
    return {
        "docker": "install Docker Engine (https://docs.docker.com/engine/install/, or your distribution's docker.io "
                  "package) and start it",
        "kind": f"go install sigs.k8s.io/kind@{KIND_VERSION}, or curl -Lo kind "
                f"https://kind.sigs.k8s.io/dl/{KIND_VERSION}/kind-linux-{arch} && chmod +x kind && "
                f"sudo mv kind /usr/local/bin/",
        "kubectl": f"curl -LO https://dl.k8s.io/release/v{kubectl_version}/bin/linux/{arch}/kubectl && "
                   f"sudo install kubectl /usr/local/bin/ (https://kubernetes.io/docs/tasks/tools/)",
        "helm": "curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash "
                "(https://helm.sh/docs/intro/install/)",
    }[tool]


def missing_line(tool: str) -> str:
    return f"{tool} is not installed (not on PATH): {how_to_get(tool)}"


def missing(tools=REQUIRED) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def require(tools=REQUIRED) -> None:
    """Stop before doing anything when a tool is missing, naming every missing one."""
    lines = [missing_line(tool) for tool in missing(tools)]
    if lines:
        raise Problems(lines)
