"""Server-side apply of the lab's objects through the Kubernetes API (what `kubectl apply --server-side`
does, without kubectl): one PATCH of type application/apply-patch+yaml per object, field manager
`kindlab`. Applying twice changes nothing; applying a changed template updates exactly what changed.

The lab applies a handful of built-in kinds, so their REST paths are a table here rather than a discovery
round-trip per run.
"""

from __future__ import annotations

from dataclasses import dataclass

from tshoot.core.errors import TshootError

FIELD_MANAGER = "kindlab"


@dataclass(frozen=True)
class Kind:
    prefix: str  # /api/v1 or /apis/<group>/<version>
    plural: str
    namespaced: bool


KINDS: dict[tuple[str, str], Kind] = {
    ("v1", "Namespace"): Kind("/api/v1", "namespaces", False),
    ("v1", "ServiceAccount"): Kind("/api/v1", "serviceaccounts", True),
    ("v1", "ConfigMap"): Kind("/api/v1", "configmaps", True),
    ("v1", "Service"): Kind("/api/v1", "services", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): Kind("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        Kind("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): Kind("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): Kind("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    ("apps/v1", "Deployment"): Kind("/apis/apps/v1", "deployments", True),
    ("apps/v1", "DaemonSet"): Kind("/apis/apps/v1", "daemonsets", True),
}
# Namespaces before what lives in them, identities and permissions before the pods that use them, the
# configuration before its readers; the operator before the agents, since it creates the CRDs they wait for.
ORDER = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap",
         "Deployment", "DaemonSet", "Service"]


def kind_of(obj: dict) -> Kind:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if key not in KINDS:
        raise TshootError(f"the lab does not know how to apply {key[1]} ({key[0]}): known kinds are "
                          f"{', '.join(k for _, k in KINDS)}")
    return KINDS[key]


def path_of(obj: dict) -> str:
    kind = kind_of(obj)
    meta = obj["metadata"]
    if kind.namespaced:
        return f"{kind.prefix}/namespaces/{meta['namespace']}/{kind.plural}/{meta['name']}"
    return f"{kind.prefix}/{kind.plural}/{meta['name']}"


def ordered(objects: list[dict]) -> list[dict]:
    """The objects in apply order (stable within a kind: the templates' order)."""
    for obj in objects:
        kind_of(obj)
    return sorted(objects, key=lambda o: ORDER.index(o["kind"]))


def describe(obj: dict) -> str:
    """kubectl's way of naming an object: daemonset.apps/cilium."""
    kind = kind_of(obj)
    group = kind.prefix.split("/")[2] if kind.prefix.startswith("/apis/") else ""
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def apply(api, obj: dict) -> dict:
    """Server-side apply one object; the live object as the server returns it."""
    from tshoot.cluster import kube

    return kube.request(api, "PATCH", path_of(obj), [("fieldManager", FIELD_MANAGER), ("force", "true")], body=obj,
                        content_type="application/apply-patch+yaml", what=f"apply {describe(obj)}")
