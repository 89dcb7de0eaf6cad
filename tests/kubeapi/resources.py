"""The resource types the test server serves, and the discovery documents that describe them.

Built-in types are listed here with what their real discovery entry says (plural, singular, kind,
scope, short names, subresources). Custom resources appear when a CustomResourceDefinition is stored,
exactly as on a real cluster: before Cilium's operator registers its CRDs, /apis/cilium.io does not exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "exec": ["create", "get"], "log": ["get"],
                     "scale": ["get", "patch", "update"], "token": ["create"], "finalize": ["update"],
                     "eviction": ["create"], "binding": ["create"], "attach": ["create", "get"],
                     "portforward": ["create", "get"], "proxy": ["create", "delete", "get", "patch", "update"],
                     "ephemeralcontainers": ["get", "patch", "update"]}
SUBRESOURCE_KINDS = {"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions",
                     "proxy": "PodProxyOptions", "eviction": "Eviction", "binding": "Binding", "scale": "Scale",
                     "token": "TokenRequest"}


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    custom: bool = False  # served from a CRD: no strategic merge patch, Status replies to DELETE

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How errors name the type: "pods", "deployments.apps", "ciliumendpoints.cilium.io"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored per group and plural: every served version sees the same objects."""
        return self.group, self.plural


def _r(group, version, plural, kind, namespaced, short=(), categories=(), sub=("status",)):
    return Resource(group, version, plural, kind.lower(), kind, namespaced, tuple(short), tuple(categories), tuple(sub))


BUILTIN = [
    _r("", "v1", "pods", "Pod", True, ["po"], ["all"],
       ["attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy", "status"]),
    _r("", "v1", "nodes", "Node", False, ["no"], [], ["proxy", "status"]),
    _r("", "v1", "namespaces", "Namespace", False, ["ns"], [], ["finalize", "status"]),
    _r("", "v1", "services", "Service", True, ["svc"], ["all"], ["proxy", "status"]),
    _r("", "v1", "endpoints", "Endpoints", True, ["ep"], [], []),
    _r("", "v1", "configmaps", "ConfigMap", True, ["cm"], [], []),
    _r("", "v1", "secrets", "Secret", True, [], [], []),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"], [], ["token"]),
    _r("", "v1", "events", "Event", True, ["ev"], [], []),
    _r("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], ["all"], ["status"]),
    _r("apps", "v1", "deployments", "Deployment", True, ["deploy"], ["all"], ["scale", "status"]),
    _r("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], ["all"], ["scale", "status"]),
    _r("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], ["all"], ["scale", "status"]),
    _r("apps", "v1", "controllerrevisions", "ControllerRevision", True, [], [], []),
    _r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, [], [], []),
    _r("coordination.k8s.io", "v1", "leases", "Lease", True, [], [], []),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True, [], [], []),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, [], [], []),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, [], [], []),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, [], [], []),
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ["crd", "crds"], [], ["status"]),
]
# Resources whose objects carry metadata.generation (bumped on spec changes); custom resources always do.
GENERATION_TRACKED = {"pods", "daemonsets", "deployments", "replicasets", "statefulsets", "customresourcedefinitions"}

CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


def from_crd(crd: dict) -> list[Resource]:
    """The resources a CustomResourceDefinition serves: one per served version."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        out.append(Resource(
            group=spec["group"], version=version["name"], plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(), kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames", ())), categories=tuple(names.get("categories", ())),
            subresources=tuple(sorted(version.get("subresources", {}))), custom=True))
    return out


def _hash(resource: Resource) -> str:
    return hashlib.sha256(f"{resource.group_version}/{resource.plural}".encode()).digest()[:8].hex()


def resource_list(group_version: str, resources: list[Resource]) -> dict:
    """The APIResourceList of /api/v1 or /apis/GROUP/VERSION."""
    entries = []
    for res in sorted(resources, key=lambda r: r.plural):
        entry = {"name": res.plural, "singularName": res.singular, "namespaced": res.namespaced, "kind": res.kind,
                 "verbs": VERBS, "storageVersionHash": _hash(res)}
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        entries.append(entry)
        for sub in res.subresources:
            entries.append({"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced,
                            "kind": SUBRESOURCE_KINDS.get(sub, res.kind), "verbs": SUBRESOURCE_VERBS[sub]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def api_group(group: str, versions: list[str]) -> dict:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}
