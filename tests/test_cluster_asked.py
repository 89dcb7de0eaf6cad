"""tshoot.cluster.model.Cluster(api): a cluster asked only what a command names, against the tests' API server."""

from tshoot.cluster import kube
from tshoot.cluster.model import Cluster

GUIDE_IDENTITY = 53731


def test_each_name_is_one_small_request_asked_once(kubeapi_cluster):
    cluster = Cluster(kube.api_client(str(kubeapi_cluster.kubeconfig)))
    since = len(kubeapi_cluster.requests)
    for _ in range(2):
        assert "k8s:name=net-tshoot" in cluster.identity_labels.get(GUIDE_IDENTITY)
        assert cluster.pod_by_ip.get("10.0.1.110") == "default/net-tshoot-4gmzr"
        assert cluster.node_by_ip.get("172.18.0.5") == "k8s-guide-control-plane"  # its agent's hostNetwork pod
        assert cluster.identity_labels.get(99999) is None and cluster.pod_by_ip.get("10.9.9.9") is None
    assert cluster.labels(2) == ["reserved:world"] and cluster.asks and cluster.node_by_ip
    paths = [r.path for r in kubeapi_cluster.requests[since:]]
    assert sorted(paths) == sorted([f"/apis/cilium.io/v2/ciliumidentities/{GUIDE_IDENTITY}", "/api/v1/pods",
                                    "/api/v1/pods", "/api/v1/nodes/k8s-guide-control-plane",
                                    "/apis/cilium.io/v2/ciliumidentities/99999", "/api/v1/pods"])


def test_a_node_whose_object_is_gone_is_no_node_even_while_its_pods_remain(kubeapi_cluster):
    kubeapi_cluster.delete("nodes", "k8s-guide-control-plane")
    assert Cluster(kube.api_client(str(kubeapi_cluster.kubeconfig))).node_by_ip.get("172.18.0.5") is None


def test_a_node_address_no_pod_has_is_found_in_the_nodes_list(kubeapi_cluster):
    node = next(n for n in kubeapi_cluster.list("nodes") if n["metadata"]["name"] == "k8s-guide-worker")
    node["status"]["addresses"].append({"type": "ExternalIP", "address": "203.0.113.7"})
    kubeapi_cluster.put(node)
    cluster = Cluster(kube.api_client(str(kubeapi_cluster.kubeconfig)))
    assert cluster.node_by_ip.get("203.0.113.7") == "k8s-guide-worker"
    assert cluster.node_by_ip.get("198.51.100.1") is None
    assert len(kubeapi_cluster.requests_to("/api/v1/nodes")) == 1  # listed once, for both


def test_pod_cidrs_and_configuration_are_asked_by_name(kubeapi_cluster):
    kubeapi_cluster.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config",
                         "namespace": "cilium"}, "data": {"tunnel-protocol": "vxlan"}})
    cluster = Cluster(kube.api_client(str(kubeapi_cluster.kubeconfig)))
    eager = Cluster.fetch(kube.api_client(str(kubeapi_cluster.kubeconfig)))
    assert cluster.pod_cidrs.get("k8s-guide-worker") == eager.pod_cidrs["k8s-guide-worker"]
    assert cluster.config == eager.config == {"tunnel-protocol": "vxlan"}


def test_naming_never_fails_when_the_api_refuses(kubeapi_cluster):
    kubeapi_cluster.fail("/apis/cilium.io/v2/ciliumidentities/*", 403)
    cluster = Cluster(kube.api_client(str(kubeapi_cluster.kubeconfig)))
    assert cluster.identity_labels.get(GUIDE_IDENTITY) is None
