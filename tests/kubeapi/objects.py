"""Objects shaped as a real cluster returns them, for the test server.

`kind_cluster()` is the guide's lab: kind cluster k8s-guide (control-plane, worker, worker2 on the
docker network 172.18.0.0/16), Cilium in namespace `cilium` with its agent DaemonSet and operator,
the net-tshoot DaemonSet, CoreDNS, and Cilium's own objects: CRDs, CiliumNodes, CiliumIdentities and
CiliumEndpoints. Addresses, identities and names that the guide prints are the guide's (seed 000):
pod 10.0.0.210 on worker2 (172.18.0.6) is net-tshoot-l8vwz, identity 53731, endpoint 92; 10.0.2.99 on
worker; 10.0.1.110 on the control plane (172.18.0.5). Everything else is made up consistently.

Two CiliumEndpoint shapes:
- Cilium 1.9 (the guide's `kubectl get cep -oyaml`, reproduced exactly by `guide_endpoint()`):
  status.networking.addressing[{ipv4}], node as an IP, status.identity, no ownerReferences.
- current releases (1.19, pkg/endpoint/endpoint_status.go GetCiliumEndpointStatus): the same status
  fields plus external-identifiers.cni-attachment-id, addressing pairs with ipv6 when dual-stack,
  named-ports; metadata carries the pod's labels and an ownerReference to the pod. The node is still
  the node's IP (EndpointNetworking.NodeIP, json "node").
Image references come from shared/reference/cilium-on-kind.md (never invented); Cilium 1.9 images
are referenced by tag only because no digest is on record.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

CLUSTER = "k8s-guide"
CILIUM_NAMESPACE = "cilium"
STANDARD_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")  # every cluster has them
CILIUM_IMAGES = {
    "1.19.4": "quay.io/cilium/cilium:v1.19.4@sha256:2eb67991eaa9368ba199c2fac2c573cb0ffdeb79184533344f42fc9a7ff6af3c",
    "1.18.3": "quay.io/cilium/cilium:v1.18.3@sha256:5649db451c88d928ea585514746d50d91e6210801b300c897283ea319d68de15",
    "1.16.15": "quay.io/cilium/cilium:v1.16.15@sha256:c0fa87d70a7ba624fbe581d40a7b7e9e8773a6efd4bb17d0bd14ff854039ec75",
    "1.9.1": "quay.io/cilium/cilium:v1.9.1",
}
OPERATOR_IMAGES = {
    "1.19.4": "quay.io/cilium/operator-generic:v1.19.4@sha256:1aa2b62735e7d8ab49ee840ae59c346932024c88901579121395c1271b435f71",
    "1.18.3": "quay.io/cilium/operator-generic:v1.18.3@sha256:b5a0138e1a38e4437c5215257ff4e35373619501f4877dbaf92c89ecfad81797",
    "1.16.15": "quay.io/cilium/operator-generic:v1.16.15@sha256:fea37022f858272c27cefe6b4959d45e2ca03d957decbfa210ce35931f346ecd",
    "1.9.1": "quay.io/cilium/operator-generic:v1.9.1",
}
NETSHOOT_IMAGE = "nicolaka/netshoot:v0.16"
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.12.1"
KUBELET_VERSION = "v1.34.8"
CREATED = "2026-05-20T09:52:11Z"
GUIDE_IDENTITY = 53731
GUIDE_LABELS = ["k8s:io.cilium.k8s.policy.cluster=default", "k8s:io.cilium.k8s.policy.serviceaccount=default",
                "k8s:io.kubernetes.pod.namespace=default", "k8s:name=net-tshoot"]
COREDNS_IDENTITY = 18203  # the CoreDNS identity seed 003 shows
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of generated name suffixes (k8s.io/apimachinery rand)


def suffix(seed: str, length: int = 5) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SUFFIX[b % len(_SUFFIX)] for b in digest[:length])


def uid(seed: str) -> str:
    h = hashlib.sha256(("uid:" + seed).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def container_id(seed: str) -> str:
    return hashlib.sha256(("ctr:" + seed).encode()).hexdigest()


@dataclass
class NodeSpec:
    name: str
    role: str  # control-plane | worker
    ip: str  # InternalIP on the kind docker network
    pod_cidr: str  # Cilium cluster-pool CIDR (CiliumNode.spec.ipam.podCIDRs)
    k8s_pod_cidr: str  # what kube-controller-manager allocated (Node.spec.podCIDR)
    router_ip: str  # cilium_host, the pods' default gateway
    health_ip: str
    pod_cidr6: str | None = None
    router_ip6: str | None = None
    tshoot_pod: str = ""
    tshoot_ip: str = ""


def guide_nodes(cluster: str = CLUSTER, ipv6: bool = False) -> list[NodeSpec]:
    """The guide's three nodes. Pod CIDRs follow Cilium's cluster-pool (10.0.N.0/24 per node)."""
    nodes = [
        NodeSpec(f"{cluster}-control-plane", "control-plane", "172.18.0.5", "10.0.1.0/24", "10.244.0.0/24",
                 "10.0.1.197", "10.0.1.12", tshoot_pod="net-tshoot-4gmzr", tshoot_ip="10.0.1.110"),
        NodeSpec(f"{cluster}-worker", "worker", "172.18.0.4", "10.0.2.0/24", "10.244.1.0/24",
                 "10.0.2.184", "10.0.2.61", tshoot_pod="net-tshoot-xbw6q", tshoot_ip="10.0.2.99"),
        NodeSpec(f"{cluster}-worker2", "worker", "172.18.0.6", "10.0.0.0/24", "10.244.2.0/24",
                 "10.0.0.215", "10.0.0.97", tshoot_pod="net-tshoot-l8vwz", tshoot_ip="10.0.0.210"),
    ]
    if ipv6:  # Cilium's cluster-pool IPv6 default fd00::/104, /120 per node
        for index, node in enumerate(nodes):
            base = ipaddress.IPv6Address("fd00::") + (index << 8)
            node.pod_cidr6 = f"{base}/120"
            node.router_ip6 = str(base + 0xC5)
    return nodes


def _meta(name: str, namespace: str | None = None, labels: dict | None = None, owner: dict | None = None,
          annotations: dict | None = None) -> dict:
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["uid"] = uid(f"{namespace}/{name}")
    meta["creationTimestamp"] = CREATED
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True, "blockOwnerDeletion": True}]
    return meta


# --- Kubernetes objects --------------------------------------------------------------------------

def node(spec: NodeSpec, cluster: str = CLUSTER) -> dict:
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux"}
    taints = []
    if spec.role == "control-plane":
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        taints = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    obj = {"apiVersion": "v1", "kind": "Node",
           "metadata": _meta(spec.name, labels=labels, annotations={
               "node.alpha.kubernetes.io/ttl": "0",
               "volumes.kubernetes.io/controller-managed-attach-detach": "true"}),
           "spec": {"podCIDR": spec.k8s_pod_cidr, "podCIDRs": [spec.k8s_pod_cidr],
                    "providerID": f"kind://docker/{cluster}/{spec.name}"},
           "status": {
               "addresses": [{"address": spec.ip, "type": "InternalIP"}, {"address": spec.name, "type": "Hostname"}],
               "allocatable": {"cpu": "8", "ephemeral-storage": "102626232Ki", "memory": "16283576Ki", "pods": "110"},
               "capacity": {"cpu": "8", "ephemeral-storage": "102626232Ki", "memory": "16283576Ki", "pods": "110"},
               "conditions": [
                   {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                    "message": "kubelet has sufficient memory available"},
                   {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
                    "message": "kubelet has no disk pressure"},
                   {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
                    "message": "kubelet has sufficient PID available"},
                   {"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status"}],
               "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
               "nodeInfo": {"architecture": "amd64", "bootID": uid("boot:" + spec.name),
                            "containerRuntimeVersion": "containerd://2.1.4", "kernelVersion": "6.18.0",
                            "kubeProxyVersion": "", "kubeletVersion": KUBELET_VERSION,
                            "machineID": container_id(spec.name)[:32], "operatingSystem": "linux",
                            "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": uid("sys:" + spec.name)}}}
    if taints:
        obj["spec"]["taints"] = taints
    return obj


def daemonset(name: str, namespace: str, labels: dict, image: str, container: str, scheduled: int,
              host_network: bool = False) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {**_meta(name, namespace, labels), "generation": 1},
            "spec": {"selector": {"matchLabels": labels}, "revisionHistoryLimit": 10,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": container, "image": image,
                                                           "imagePullPolicy": "IfNotPresent"}],
                                           "hostNetwork": host_network, "tolerations": [{"operator": "Exists"}]}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 2}}},
            "status": {"currentNumberScheduled": scheduled, "desiredNumberScheduled": scheduled,
                       "numberAvailable": scheduled, "numberMisscheduled": 0, "numberReady": scheduled,
                       "observedGeneration": 1, "updatedNumberScheduled": scheduled}}


def pod(name: str, namespace: str, node_spec: NodeSpec, labels: dict, containers: list[tuple[str, str]],
        ip: str | None = None, ip6: str | None = None, owner: dict | None = None, service_account: str = "default",
        host_network: bool = False, init_containers: list[tuple[str, str]] = (), phase: str = "Running") -> dict:
    """A pod scheduled on `node_spec`, running (ready) unless `phase` says otherwise."""
    pod_ip = node_spec.ip if host_network else ip
    running = phase == "Running"

    def status_of(cname: str, image: str, init: bool) -> dict:
        digest = image.split("@", 1)[1] if "@" in image else "sha256:" + container_id(image)
        state = ({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": CREATED, "finishedAt": CREATED,
                                 "containerID": f"containerd://{container_id(name + cname)}"}} if init
                 else {"running": {"startedAt": CREATED}} if running else {"waiting": {"reason": "ContainerCreating"}})
        return {"name": cname, "image": image, "imageID": f"{image.split('@')[0].rsplit(':', 1)[0]}@{digest}",
                "containerID": f"containerd://{container_id(name + cname)}", "ready": running or init,
                "restartCount": 0, "started": running and not init, "state": state}

    ips = [{"ip": pod_ip}] if pod_ip else []
    if ip6 and not host_network:
        ips.append({"ip": ip6})
    spec = {"containers": [{"name": c, "image": img, "imagePullPolicy": "IfNotPresent"} for c, img in containers],
            "nodeName": node_spec.name, "serviceAccountName": service_account, "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "tolerations": [{"operator": "Exists"}]}
    if host_network:
        spec["hostNetwork"] = True
    if init_containers:
        spec["initContainers"] = [{"name": c, "image": img} for c, img in init_containers]
    status = {"phase": phase, "hostIP": node_spec.ip, "hostIPs": [{"ip": node_spec.ip}], "qosClass": "BestEffort",
              "startTime": CREATED,
              "conditions": [{"type": t, "status": "True" if running else "False", "lastTransitionTime": CREATED}
                             for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                       "PodScheduled")],
              "containerStatuses": [status_of(c, img, False) for c, img in containers]}
    if ips:
        status["podIP"], status["podIPs"] = ips[0]["ip"], ips
    if init_containers:
        status["initContainerStatuses"] = [status_of(c, img, True) for c, img in init_containers]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, labels, owner),
            "spec": spec, "status": status}


def service(name: str, namespace: str, cluster_ip: str, ports: list[dict], selector: dict | None = None,
            labels: dict | None = None) -> dict:
    spec = {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": ports, "sessionAffinity": "None",
            "type": "ClusterIP"}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels), "spec": spec,
            "status": {"loadBalancer": {}}}


def endpoints(name: str, namespace: str, addresses: list[tuple[str, dict]], ports: list[dict]) -> dict:
    """core/v1 Endpoints: (ip, pod or node object) pairs."""
    subset = {"addresses": [], "ports": ports}
    for ip, target in addresses:
        entry = {"ip": ip}
        if target.get("kind") == "Pod":
            entry["nodeName"] = target["spec"]["nodeName"]
            entry["targetRef"] = {"kind": "Pod", "name": target["metadata"]["name"],
                                  "namespace": target["metadata"]["namespace"], "uid": target["metadata"]["uid"]}
        subset["addresses"].append(entry)
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": _meta(name, namespace), "subsets": [subset]}


# --- Cilium objects ------------------------------------------------------------------------------

def cilium_crds() -> list[dict]:
    """The CRDs the operator registers for the resources tshoot reads (schema abridged to "any object")."""
    def crd(plural, kind, scope, short, columns=(), status_subresource=False):
        version = {"name": "v2", "served": True, "storage": True,
                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
        if columns:
            version["additionalPrinterColumns"] = list(columns)
        if status_subresource:
            version["subresources"] = {"status": {}}
        names = {"categories": ["cilium"], "kind": kind, "listKind": f"{kind}List", "plural": plural,
                 "shortNames": list(short), "singular": kind.lower()}
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": _meta(f"{plural}.cilium.io", labels={"io.cilium.k8s.crd.schema.version": "1.33.0"}),
                "spec": {"group": "cilium.io", "names": names, "scope": scope, "versions": [version]},
                "status": {"acceptedNames": names, "storedVersions": ["v2"], "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]}}

    return [
        crd("ciliumendpoints", "CiliumEndpoint", "Namespaced", ["cep", "ciliumep"], [
            {"jsonPath": ".status.identity.id", "name": "Security Identity", "type": "integer"},
            {"jsonPath": ".status.state", "name": "Endpoint State", "type": "string"},
            {"jsonPath": ".status.networking.addressing[0].ipv4", "name": "IPv4", "type": "string"},
            {"jsonPath": ".status.networking.addressing[0].ipv6", "name": "IPv6", "type": "string"}]),
        crd("ciliumidentities", "CiliumIdentity", "Cluster", ["ciliumid"], status_subresource=True),
        crd("ciliumnodes", "CiliumNode", "Cluster", ["cn", "ciliumn"], status_subresource=True),
    ]


def identity(number: int, labels: list[str]) -> dict:
    """A CiliumIdentity: named by its number; k8s-sourced labels as metadata.labels, all as security-labels."""
    security = dict(label.split("=", 1) if "=" in label else (label, "") for label in labels)
    k8s = {key.split(":", 1)[1]: value for key, value in security.items() if key.startswith("k8s:")}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumIdentity",
            "metadata": _meta(str(number), labels=k8s), "security-labels": security}


def pod_identity_labels(namespace: str, pod_labels: dict, service_account: str = "default",
                        cluster: str = "default", namespace_labels: bool = True) -> list[str]:
    """The security labels the agent derives from a pod (sorted, as the CEP stores them)."""
    labels = [f"k8s:{k}={v}" for k, v in pod_labels.items()
              if k not in ("controller-revision-hash", "pod-template-generation", "pod-template-hash")]
    labels += [f"k8s:io.cilium.k8s.policy.cluster={cluster}",
               f"k8s:io.cilium.k8s.policy.serviceaccount={service_account}",
               f"k8s:io.kubernetes.pod.namespace={namespace}"]
    if namespace_labels:
        labels.append(f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={namespace}")
    return sorted(labels)


GUIDE_ENDPOINT_YAML = """\
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata:
  name: net-tshoot-l8vwz
  namespace: default
status:
  encryption: {}
  external-identifiers:
    container-id: d6effe0cc6d567e4776a3701851d9ab278ff128adede9419c8fda34daf6b46ef
    k8s-namespace: default
    k8s-pod-name: net-tshoot-l8vwz
    pod-name: default/net-tshoot-l8vwz
  id: 92
  identity:
    id: 53731
    labels:
    - k8s:io.cilium.k8s.policy.cluster=default
    - k8s:io.cilium.k8s.policy.serviceaccount=default
    - k8s:io.kubernetes.pod.namespace=default
    - k8s:name=net-tshoot
  networking:
    addressing:
    - ipv4: 10.0.0.210
    node: 172.18.0.6
  state: ready
"""  # seed 000, "4. Control plane information": kubectl get ciliumendpoints.cilium.io net-tshoot-l8vwz -oyaml


def guide_endpoint() -> dict:
    """The guide's `kubectl get ciliumendpoints.cilium.io net-tshoot-l8vwz -oyaml`, exactly as printed."""
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumEndpoint",
        "metadata": {"name": "net-tshoot-l8vwz", "namespace": "default"},
        "status": {
            "encryption": {},
            "external-identifiers": {
                "container-id": "d6effe0cc6d567e4776a3701851d9ab278ff128adede9419c8fda34daf6b46ef",
                "k8s-namespace": "default",
                "k8s-pod-name": "net-tshoot-l8vwz",
                "pod-name": "default/net-tshoot-l8vwz",
            },
            "id": 92,
            "identity": {"id": GUIDE_IDENTITY, "labels": list(GUIDE_LABELS)},
            "networking": {"addressing": [{"ipv4": "10.0.0.210"}], "node": "172.18.0.6"},
            "state": "ready",
        },
    }


def endpoint(pod_obj: dict, node_ip: str, endpoint_id: int, identity_id: int, identity_labels: list[str],
             shape: str = "1.19") -> dict:
    """The CiliumEndpoint an agent writes for a pod, in the 1.9 shape or the current one."""
    meta, status = pod_obj["metadata"], pod_obj["status"]
    name, namespace = meta["name"], meta["namespace"]
    cid = status["containerStatuses"][0]["containerID"].split("://", 1)[1]
    pair = {}
    for entry in status.get("podIPs", []):
        pair["ipv6" if ":" in entry["ip"] else "ipv4"] = entry["ip"]
    identifiers = {"container-id": cid, "k8s-namespace": namespace, "k8s-pod-name": name,
                   "pod-name": f"{namespace}/{name}"}
    body = {"encryption": {}, "external-identifiers": identifiers, "id": endpoint_id,
            "identity": {"id": identity_id, "labels": sorted(identity_labels)},
            "networking": {"addressing": [pair], "node": node_ip}, "state": "ready"}
    if shape == "1.9":
        return {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint",
                "metadata": {"name": name, "namespace": namespace}, "status": body}
    identifiers["cni-attachment-id"] = f"{cid}:eth0"
    body["external-identifiers"] = dict(sorted(identifiers.items()))
    ports = [{"name": p["name"], "port": p["containerPort"], "protocol": p.get("protocol", "TCP")}
             for c in pod_obj["spec"]["containers"] for p in c.get("ports", []) if p.get("name")]
    if ports:
        body["named-ports"] = ports
    metadata = {"name": name, "namespace": namespace, "uid": uid(f"cep:{namespace}/{name}"),
                "creationTimestamp": CREATED, "generation": 1, "labels": dict(meta.get("labels", {})),
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": meta["uid"]}]}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint", "metadata": metadata, "status": body}


def cilium_node(spec: NodeSpec, node_obj: dict) -> dict:
    addresses = [{"ip": spec.ip, "type": "InternalIP"}, {"ip": spec.router_ip, "type": "CiliumInternalIP"}]
    ipam = {"podCIDRs": [spec.pod_cidr], "pools": {}}
    if spec.pod_cidr6:
        addresses.append({"ip": spec.router_ip6, "type": "CiliumInternalIP"})
        ipam["podCIDRs"].append(spec.pod_cidr6)
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
            "metadata": {**_meta(spec.name, labels=node_obj["metadata"]["labels"], owner=node_obj), "generation": 1},
            "spec": {"addresses": addresses, "alibaba-cloud": {}, "azure": {},
                     "bootid": node_obj["status"]["nodeInfo"]["bootID"], "encryption": {}, "eni": {},
                     "health": {"ipv4": spec.health_ip}, "ingress": {}, "ipam": ipam},
            "status": {"alibaba-cloud": {}, "azure": {}, "eni": {}, "ipam": {"operator-status": {}}}}


# --- the whole lab -------------------------------------------------------------------------------

def agent_pods(nodes: list[NodeSpec], version: str = "1.19.4", namespace: str = CILIUM_NAMESPACE) -> list[dict]:
    """The cilium DaemonSet and its pods (label k8s-app=cilium, hostNetwork), one per node."""
    image = CILIUM_IMAGES[version]
    labels = {"app.kubernetes.io/name": "cilium-agent", "app.kubernetes.io/part-of": "cilium", "k8s-app": "cilium"}
    ds = daemonset("cilium", namespace, labels, image, "cilium-agent", len(nodes), host_network=True)
    init = [(c, image) for c in ("config", "mount-cgroup", "apply-sysctl-overwrites", "mount-bpf-fs",
                                  "clean-cilium-state", "install-cni-binaries")]
    pods = [pod(f"cilium-{suffix('cilium' + n.name)}", namespace, n,
                {**labels, "controller-revision-hash": suffix("rev" + version, 10), "pod-template-generation": "1"},
                [("cilium-agent", image)], owner=ds, service_account="cilium", host_network=True, init_containers=init)
            for n in nodes]
    return [ds, *pods]


def kind_cluster(version: str = "1.19.4", cluster: str = CLUSTER, namespace: str = CILIUM_NAMESPACE,
                 ipv6: bool = False) -> list[dict]:
    """Every object of the guide's lab running `version` of Cilium (1.9.1 gives the guide's 1.9 shapes)."""
    nodes = guide_nodes(cluster, ipv6)
    shape = "1.9" if version.startswith("1.9") else "1.19"
    node_objs = [node(n, cluster) for n in nodes]
    objs: list[dict] = [*node_objs, *cilium_crds()]
    if namespace not in STANDARD_NAMESPACES:
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace, labels={
            "kubernetes.io/metadata.name": namespace}), "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}})
    objs += agent_pods(nodes, version, namespace)
    operator_labels = {"app.kubernetes.io/name": "cilium-operator", "app.kubernetes.io/part-of": "cilium",
                       "io.cilium/app": "operator", "name": "cilium-operator"}
    operator_rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": _meta(f"cilium-operator-{suffix('op', 10)}", namespace, operator_labels)}
    objs.append(operator_rs)
    objs.append(pod(f"cilium-operator-{suffix('op', 10)}-{suffix('op-pod')}", namespace, nodes[0], operator_labels,
                    [("cilium-operator", OPERATOR_IMAGES[version])], owner=operator_rs,
                    service_account="cilium-operator", host_network=True))

    tshoot_labels = {"name": "net-tshoot"}
    tshoot_ds = daemonset("net-tshoot", "default", tshoot_labels, NETSHOOT_IMAGE, "netshoot", len(nodes))
    objs.append(tshoot_ds)
    tshoot_identity = GUIDE_IDENTITY
    tshoot_security = (GUIDE_LABELS if shape == "1.9"
                       else pod_identity_labels("default", tshoot_labels))
    objs.append(identity(tshoot_identity, tshoot_security))
    for index, n in enumerate(nodes):
        ip6 = str(ipaddress.IPv6Address(n.router_ip6) + 0x10 + index) if n.router_ip6 else None
        tshoot = pod(n.tshoot_pod, "default", n, {**tshoot_labels, "controller-revision-hash": suffix("tshoot", 10),
                                                  "pod-template-generation": "1"},
                     [("netshoot", NETSHOOT_IMAGE)], ip=n.tshoot_ip, ip6=ip6, owner=tshoot_ds)
        if n.tshoot_pod == "net-tshoot-l8vwz":  # the guide's pod, with the container the guide's endpoint names
            guide_container = guide_endpoint()["status"]["external-identifiers"]["container-id"]
            tshoot["status"]["containerStatuses"][0]["containerID"] = f"containerd://{guide_container}"
        objs.append(tshoot)
        if n.tshoot_pod == "net-tshoot-l8vwz" and shape == "1.9":
            objs.append(guide_endpoint())
        else:
            ep_id = 92 if n.tshoot_pod == "net-tshoot-l8vwz" else 100 + index * 17
            objs.append(endpoint(tshoot, n.ip, ep_id, tshoot_identity, tshoot_security, shape))
        objs.append(cilium_node(n, node_objs[index]))

    # CoreDNS behind the kube-dns Service, and the API server's own Service.
    dns_labels = {"k8s-app": "kube-dns", "pod-template-hash": suffix("coredns", 10)}
    dns_security = (["k8s:io.cilium.k8s.policy.cluster=default", "k8s:io.cilium.k8s.policy.serviceaccount=coredns",
                     "k8s:io.kubernetes.pod.namespace=kube-system", "k8s:k8s-app=kube-dns"] if shape == "1.9"
                    else pod_identity_labels("kube-system", dns_labels, "coredns"))
    objs.append(identity(COREDNS_IDENTITY, dns_security))
    dns_pods = []
    for index, n in enumerate(nodes[1:]):
        ip = str(ipaddress.IPv4Network(n.pod_cidr)[44])
        ip6 = str(ipaddress.IPv6Network(n.pod_cidr6)[0x44]) if n.pod_cidr6 else None
        dns = pod(f"coredns-{suffix('coredns', 10)}-{suffix('dns' + n.name)}", "kube-system", n, dns_labels,
                  [("coredns", COREDNS_IMAGE)], ip=ip, ip6=ip6, service_account="coredns")
        dns["spec"]["containers"][0]["ports"] = [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                                 {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                                 {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}]
        dns_pods.append(dns)
        objs.append(dns)
        objs.append(endpoint(dns, n.ip, 300 + index, COREDNS_IDENTITY, dns_security, shape))
    dns_ports = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                 {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                 {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]
    objs.append(service("kube-dns", "kube-system", "10.96.0.10", dns_ports, {"k8s-app": "kube-dns"},
                        {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}))
    objs.append(endpoints("kube-dns", "kube-system", [(p["status"]["podIP"], p) for p in dns_pods],
                          [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]} for p in dns_ports]))
    api_ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]
    objs.append(service("kubernetes", "default", "10.96.0.1", api_ports,
                        labels={"component": "apiserver", "provider": "kubernetes"}))
    objs.append(endpoints("kubernetes", "default", [(nodes[0].ip, node_objs[0])],
                          [{"name": "https", "port": 6443, "protocol": "TCP"}]))
    return objs


def many_endpoints(count: int, namespace: str = "load", node_ip: str = "172.18.0.4", shape: str = "1.19",
                   ipv6: bool = False) -> list[dict]:
    """`count` CiliumEndpoints (with their pods' addresses), for pagination at scale."""
    spec = NodeSpec("k8s-guide-worker", "worker", node_ip, "10.64.0.0/10", "10.244.1.0/24", "10.64.0.1", "10.64.0.2")
    out = []
    for index in range(count):
        name = f"load-{index:05d}-{suffix('load' + str(index))}"
        ip = str(ipaddress.IPv4Address("10.64.0.10") + index)
        ip6 = str(ipaddress.IPv6Address("fd00:64::10") + index) if ipv6 else None
        p = pod(name, namespace, spec, {"app": "load"}, [("app", NETSHOOT_IMAGE)], ip=ip, ip6=ip6)
        out.append(endpoint(p, node_ip, 1000 + index, 40000 + index % 50,
                            pod_identity_labels(namespace, {"app": "load"}), shape))
    return out
