"""Connecting to a Kubernetes API server the way kubectl does: --kubeconfig, --context, KUBECONFIG,
and the lab's ./kubeconfig when nothing else is given. The kubernetes client is imported lazily."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import TshootError, UsageError

LAB_KUBECONFIG = Path("kubeconfig")  # written by `lab up` in the directory it runs from, like the guide's lab
REQUEST_TIMEOUT = 20  # seconds per API request: a hanging server must not hang the tool


def kubeconfig_path(explicit: str | None = None) -> str:
    """--kubeconfig, else $KUBECONFIG (first file of the list), else ./kubeconfig, else ~/.kube/config."""
    if explicit:
        if not Path(explicit).is_file():
            raise UsageError(f"--kubeconfig {explicit}: no such file")
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        for candidate in env.split(os.pathsep):
            if candidate and Path(candidate).is_file():
                return candidate
    if LAB_KUBECONFIG.is_file():
        return str(LAB_KUBECONFIG)
    home = Path.home() / ".kube" / "config"
    if home.is_file():
        return str(home)
    raise TshootError("no kubeconfig found (run 'make up' to create the lab's ./kubeconfig, or pass --kubeconfig)")


def kubeconfig_reachable(explicit: str | None = None) -> bool:
    try:
        kubeconfig_path(explicit)
        return True
    except TshootError:
        return False


def api_client(kubeconfig: str | None = None, context: str | None = None):
    """A kubernetes.client.ApiClient for that kubeconfig and context."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig_path(kubeconfig)
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=path, context=context, client_configuration=configuration,
                                persist_config=False)
    except ConfigException as exc:
        raise UsageError(f"kubeconfig {path}: {exc}") from None
    return client.ApiClient(configuration)


def current_context(kubeconfig: str | None = None, context: str | None = None) -> tuple[str, dict]:
    """(context name, its cluster entry) as the kubeconfig resolves them."""
    from kubernetes import config

    path = kubeconfig_path(kubeconfig)
    contexts, active = config.list_kube_config_contexts(config_file=path)
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    if chosen is None:
        raise UsageError(f"context {context!r} is not in {path} (known: {', '.join(c['name'] for c in contexts)})")
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    cluster = next((c.get("cluster", {}) for c in doc.get("clusters", []) if c["name"] == chosen["context"]["cluster"]), {})
    return chosen["name"], cluster
