"""The local Kubernetes API server, driven by the real `kubernetes` client, and the shared client
functions of tshoot.cluster.kube / tshoot.cluster.cilium against it. Exec runs real commands in real network
namespaces with a private bpffs: a real kernel map is read through the API's exec stream."""

from __future__ import annotations

import ssl
import threading
import time

import pytest
import yaml
from kubernetes import client, config, dynamic, watch
from kubernetes.stream import stream

from tests.conftest import bpftool
from tests.kubeapi import ExecStartError, NodeExec, SimNode, objects
from tshoot.cluster import cilium, kube
from tshoot.core.errors import TshootError, UsageError

IPCACHE_KEY = "40 00 00 00 00 00 00 01 0a 00 01 6e 00 00 00 00 00 00 00 00 00 00 00 00".split()
IPCACHE_VALUE = "e3 d1 00 00 ac 12 00 05 00 00 00 00".split()


def official(server) -> client.ApiClient:
    """The kubernetes client configured from the fixture's kubeconfig, as any user's tool would be."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def status_of(exc: client.ApiException) -> dict:
    """The metav1.Status the server sent with an error."""
    return yaml.safe_load(exc.body)


def names(items) -> list[str]:
    return sorted(i["metadata"]["name"] if isinstance(i, dict) else i.metadata.name for i in items)


# --- discovery, kubeconfig --------------------------------------------------------------------------

def test_kubeconfig_names_the_context_and_verifies_the_servers_certificate(kubeapi, tmp_path):
    path = kubeapi.write_kubeconfig(tmp_path / "kc", context="kind-k8s-guide")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "kind-k8s-guide"
    assert doc["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    api = kube.api_client(str(path), "kind-k8s-guide")
    assert api.verify and api.context.verify_mode == ssl.CERT_REQUIRED and api.context.get_ca_certs()
    assert kube.request(api, "GET", "/version")["gitVersion"] == "v1.34.8"
    with pytest.raises(UsageError, match="kind-other"):
        kube.api_client(str(path), "kind-other")


def test_discovery_serves_cilium_types_only_once_their_crds_exist(kubeapi):
    api = official(kubeapi)
    groups = [g.name for g in client.ApisApi(api).get_api_versions().groups]
    assert "apps" in groups and "cilium.io" not in groups
    with pytest.raises(client.ApiException) as missing:
        client.CustomObjectsApi(api).list_cluster_custom_object("cilium.io", "v2", "ciliumendpoints")
    assert missing.value.status == 404 and missing.value.body == "404 page not found\n"

    client.ApiextensionsV1Api(api).create_custom_resource_definition(objects.cilium_crds()[0])
    resources = dynamic.DynamicClient(api).resources
    cep = resources.get(api_version="cilium.io/v2", kind="CiliumEndpoint")
    assert cep.namespaced and cep.name == "ciliumendpoints" and "cep" in cep.short_names
    assert resources.get(api_version="v1", kind="Pod").subresources["exec"]


# --- reads: selectors and pagination -----------------------------------------------------------------

def test_label_and_field_selectors_select_like_the_api_server(kubeapi_cluster):
    v1 = client.CoreV1Api(official(kubeapi_cluster))
    agents = v1.list_namespaced_pod("cilium", label_selector="k8s-app=cilium",
                                    field_selector="spec.nodeName=k8s-guide-worker2").items
    assert len(agents) == 1 and agents[0].spec.node_name == "k8s-guide-worker2"
    everywhere = v1.list_pod_for_all_namespaces
    assert len(everywhere(label_selector="k8s-app in (cilium,kube-dns)").items) == 5
    assert len(everywhere(label_selector="k8s-app notin (cilium),name").items) == 4  # net-tshoot, operator
    assert len(everywhere(label_selector="name,!io.cilium/app").items) == 3
    assert len(everywhere(label_selector="!k8s-app,!io.cilium/app").items) == 3
    assert len(everywhere(label_selector="k8s-app!=cilium").items) == 6  # includes pods without the label
    assert len(everywhere(field_selector="status.phase=Running,metadata.namespace!=cilium").items) == 5
    assert names(everywhere(field_selector="metadata.name=net-tshoot-l8vwz").items) == ["net-tshoot-l8vwz"]
    with pytest.raises(client.ApiException) as bad:
        everywhere(field_selector="spec.containers=x")
    assert bad.value.status == 400 and "field label not supported: spec.containers" in bad.value.body
    with pytest.raises(client.ApiException) as bad:
        everywhere(label_selector="k8s-app in ()")
    assert bad.value.status == 400


def test_5000_endpoints_are_listed_page_by_page_with_real_continue_tokens(kubeapi):
    kubeapi.add(*objects.cilium_crds(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}})
    kubeapi.add(*objects.many_endpoints(5000))
    custom = client.CustomObjectsApi(official(kubeapi))
    seen, token, pages = [], None, 0
    while True:
        page = custom.list_namespaced_custom_object("cilium.io", "v2", "load", "ciliumendpoints", limit=700,
                                                    _continue=token)
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 5000 - len(seen)
    assert pages == 8 and len(seen) == len(set(seen)) == 5000 and seen == sorted(seen)
    requests = kubeapi.requests_to("/apis/cilium.io/v2/namespaces/load/ciliumendpoints")
    assert [r.query["limit"] for r in requests] == [["700"]] * 8
    with pytest.raises(client.ApiException) as bad:
        custom.list_namespaced_custom_object("cilium.io", "v2", "load", "ciliumendpoints", _continue="garbage")
    assert bad.value.status == 400 and "continue key is not valid" in bad.value.body

    through_tshoot = list(kube.list_objects(kube.api_client(str(kubeapi.kubeconfig)), kube.CILIUM_ENDPOINTS, "load",
                                            limit=1000))
    assert names(through_tshoot) == seen


# --- writes ----------------------------------------------------------------------------------------

def _apply(api, body: dict, manager: str, force: bool = False):
    return client.CoreV1Api(api).patch_namespaced_config_map(
        body["metadata"]["name"], "default", body, field_manager=manager, force=force,
        _content_type="application/apply-patch+yaml")


def test_server_side_apply_creates_merges_owns_and_conflicts(kubeapi):
    api = official(kubeapi)
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config"},
                  "data": {"tunnel-protocol": "vxlan", "ipam": "kubernetes"}}
    created = _apply(api, config_map, "lab")
    assert created.data == config_map["data"] and created.metadata.uid
    assert [(m.manager, m.operation) for m in created.metadata.managed_fields] == [("lab", "Apply")]
    version = created.metadata.resource_version

    assert _apply(api, config_map, "lab").metadata.resource_version == version  # idempotent: no write
    changed = _apply(api, {**config_map, "data": {"tunnel-protocol": "geneve"}}, "lab")
    assert changed.data == {"tunnel-protocol": "geneve"}  # "ipam" is no longer applied by its only owner

    with pytest.raises(client.ApiException) as conflict:
        _apply(api, {**config_map, "data": {"tunnel-protocol": "vxlan"}}, "someone-else")
    assert conflict.value.status == 409
    assert status_of(conflict.value)["message"] == ('Apply failed with 1 conflict: conflict with "lab" using v1: '
                                                    '.data.tunnel-protocol')
    forced = _apply(api, {**config_map, "data": {"tunnel-protocol": "vxlan"}}, "someone-else", force=True)
    assert forced.data == {"tunnel-protocol": "vxlan"}
    assert {m.manager for m in forced.metadata.managed_fields} == {"someone-else"}

    with pytest.raises(client.ApiException) as unnamed:
        client.CoreV1Api(api).patch_namespaced_config_map("cilium-config", "default", config_map,
                                                          _content_type="application/apply-patch+yaml")
    assert unnamed.value.status == 422 and "fieldManager: Required value" in status_of(unnamed.value)["message"]


def test_dynamic_client_server_side_apply_of_a_daemonset(kubeapi):
    daemonsets = dynamic.DynamicClient(official(kubeapi)).resources.get(api_version="apps/v1", kind="DaemonSet")
    manifest = objects.daemonset("net-tshoot", "default", {"name": "net-tshoot"}, objects.NETSHOOT_IMAGE,
                                 "netshoot", 3)
    for field in ("uid", "creationTimestamp", "generation"):
        manifest["metadata"].pop(field)
    manifest.pop("status")
    first = daemonsets.server_side_apply(body=manifest, namespace="default", field_manager="lab")
    assert first.metadata.generation == 1 and "status" not in first.to_dict()  # status belongs to /status
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "nicolaka/netshoot:v0.15"
    second = daemonsets.server_side_apply(body=manifest, namespace="default", field_manager="lab")
    assert second.metadata.generation == 2
    assert second.spec.template.spec.containers[0].image == "nicolaka/netshoot:v0.15"


def test_restart_by_strategic_merge_patch_and_patches_on_custom_resources(kubeapi_cluster):
    api = official(kubeapi_cluster)
    apps = client.AppsV1Api(api)
    stamp = "2026-05-20T10:00:00Z"
    restarted = apps.patch_namespaced_daemon_set("cilium", "cilium", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})
    assert restarted.spec.template.metadata.annotations == {"kubectl.kubernetes.io/restartedAt": stamp}
    assert restarted.metadata.generation == 2
    assert restarted.spec.template.spec.containers[0].name == "cilium-agent"  # list merged by name, not replaced

    custom = client.CustomObjectsApi(api)
    merged = custom.patch_namespaced_custom_object("cilium.io", "v2", "default", "ciliumendpoints",
                                                   "net-tshoot-xbw6q", {"status": {"state": "regenerating"}})
    assert merged["status"]["state"] == "regenerating" and merged["status"]["id"] == 117
    with pytest.raises(client.ApiException) as unsupported:
        custom.patch_namespaced_custom_object("cilium.io", "v2", "default", "ciliumendpoints", "net-tshoot-xbw6q",
                                              {"status": {"id": 1}},
                                              _content_type="application/strategic-merge-patch+json")
    assert unsupported.value.status == 415
    patched = client.CoreV1Api(api).patch_namespaced_pod(
        "net-tshoot-l8vwz", "default", [{"op": "add", "path": "/metadata/labels/extra", "value": "yes"}])
    assert patched.metadata.labels["extra"] == "yes"


def test_create_delete_and_their_errors(kubeapi_cluster):
    v1 = client.CoreV1Api(official(kubeapi_cluster))
    body = {"metadata": {"name": "probe"}, "data": {"a": "1"}}
    assert v1.create_namespaced_config_map("default", body).metadata.resource_version
    with pytest.raises(client.ApiException) as exists:
        v1.create_namespaced_config_map("default", body)
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"
    with pytest.raises(client.ApiException) as invalid:
        v1.create_namespaced_config_map("default", {"metadata": {"name": "Not_Valid"}})
    assert invalid.value.status == 422 and status_of(invalid.value)["reason"] == "Invalid"
    with pytest.raises(client.ApiException) as no_namespace:
        v1.create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert status_of(no_namespace.value)["message"] == 'namespaces "nowhere" not found'
    v1.delete_namespaced_config_map("probe", "default")
    with pytest.raises(client.ApiException) as gone:
        v1.read_namespaced_config_map("probe", "default")
    assert gone.value.status == 404

    v1.delete_collection_namespaced_pod("default", label_selector="name=net-tshoot")
    assert v1.list_namespaced_pod("default").items == []
    assert len(v1.list_namespaced_pod("cilium").items) == 4
    client.AppsV1Api(v1.api_client).delete_namespaced_daemon_set("cilium", "cilium")
    assert names(v1.list_namespaced_pod("cilium").items) == [kubeapi_cluster.list("pods", "cilium")[0]["metadata"]["name"]]
    assert "operator" in kubeapi_cluster.list("pods", "cilium")[0]["metadata"]["name"]  # agents went with their DaemonSet


def test_dry_run_and_the_request_log_show_whether_anything_was_written(kubeapi_cluster):
    v1 = client.CoreV1Api(official(kubeapi_cluster))
    v1.list_namespaced_pod("cilium")
    v1.read_node("k8s-guide-worker")
    assert kubeapi_cluster.writes() == []
    v1.delete_namespaced_pod("net-tshoot-l8vwz", "default", dry_run="All")
    assert v1.read_namespaced_pod("net-tshoot-l8vwz", "default").metadata.name == "net-tshoot-l8vwz"
    assert [(w.method, w.path, w.query["dryRun"]) for w in kubeapi_cluster.writes()] == [
        ("DELETE", "/api/v1/namespaces/default/pods/net-tshoot-l8vwz", ["All"])]


# --- faults ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, reason", [(403, "Forbidden"), (404, "NotFound"), (500, "InternalError")])
def test_injected_errors_are_real_status_objects(kubeapi_cluster, code, reason):
    kubeapi_cluster.fail("/api/v1/namespaces/cilium/pods", code, times=1)
    v1 = client.CoreV1Api(official(kubeapi_cluster))
    with pytest.raises(client.ApiException) as failed:
        v1.list_namespaced_pod("cilium")
    status = status_of(failed.value)
    assert (failed.value.status, status["kind"], status["reason"], status["code"]) == (code, "Status", reason, code)
    assert len(v1.list_namespaced_pod("cilium").items) == 4  # times=1: the next request succeeds


def test_a_hanging_server_trips_the_clients_timeout_and_one_clear_line(kubeapi_cluster):
    kubeapi_cluster.hang("/apis/cilium.io/v2/*")
    api = kube.api_client(str(kubeapi_cluster.kubeconfig))
    started = time.monotonic()
    with pytest.raises(TshootError) as hung:
        next(kube.list_objects(api, kube.CILIUM_NODES, timeout=0.5))
    assert time.monotonic() - started < 5  # one attempt, not urllib3's retries
    assert str(hung.value) == (f"list ciliumnodes.cilium.io: the API server at {kubeapi_cluster.url} did not "
                               "answer within 0.5s (overloaded or unreachable?)")
    assert len(kubeapi_cluster.requests_to("/apis/cilium.io/v2/ciliumnodes")) == 1


def test_client_errors_are_one_line_each(kubeapi_cluster, tmp_path):
    api = kube.api_client(str(kubeapi_cluster.kubeconfig))
    with pytest.raises(TshootError, match=r'^get pods default/nope: pods "nope" not found$'):
        kube.get_object(api, kube.PODS, "nope", "default")
    kubeapi_cluster.fail("/api/v1/nodes", 403)
    with pytest.raises(TshootError, match=r'^list nodes: 403 Forbidden: nodes is forbidden: User "kubernetes-admin" '
                                          r'cannot list resource "nodes" in API group "" at the cluster scope'):
        list(kube.list_objects(api, kube.NODES))
    wrong = kube.api_client(str(kubeapi_cluster.write_kubeconfig(tmp_path / "stale", token="expired")))
    with pytest.raises(TshootError, match="401 Unauthorized"):
        kube.get_object(wrong, kube.NODES, "k8s-guide-worker")
    kubeapi_cluster.delete("customresourcedefinitions", "ciliumidentities.cilium.io")
    with pytest.raises(TshootError, match=r"does not serve ciliumidentities.cilium.io \(cilium.io/v2\): is Cilium"):
        list(kube.list_objects(api, kube.CILIUM_IDENTITIES))
    kubeapi_cluster.stop()
    with pytest.raises(TshootError, match="connection refused"):
        kube.get_object(api, kube.NODES, "k8s-guide-worker")


def test_watch_streams_existing_objects_then_changes(kubeapi_cluster):
    v1 = client.CoreV1Api(official(kubeapi_cluster))

    def relabel():
        time.sleep(0.3)
        v1.patch_namespaced_pod("net-tshoot-l8vwz", "default", {"metadata": {"labels": {"seen": "yes"}}})

    threading.Thread(target=relabel).start()
    events = []
    for event in watch.Watch().stream(v1.list_namespaced_pod, "default", timeout_seconds=3):
        events.append((event["type"], event["object"].metadata.name))
        if event["type"] == "MODIFIED":
            break
    assert sorted(events[:3]) == [("ADDED", "net-tshoot-4gmzr"), ("ADDED", "net-tshoot-l8vwz"),
                                  ("ADDED", "net-tshoot-xbw6q")]
    assert events[3:] == [("MODIFIED", "net-tshoot-l8vwz")]


# --- the agent ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("namespace", ["cilium", "kube-system"])
def test_agent_on_a_node_and_its_version(kubeapi, namespace):
    kubeapi.add(*objects.kind_cluster(namespace=namespace))
    api = kube.api_client(str(kubeapi.kubeconfig))
    assert cilium.agent_namespace(api) == namespace
    pod = cilium.agent_pod(api, "k8s-guide-worker2")
    assert pod["spec"]["nodeName"] == "k8s-guide-worker2" and pod["metadata"]["namespace"] == namespace
    assert cilium.agent_version(pod) == (1, 19, 4)
    assert [p["spec"]["nodeName"] for p in cilium.agent_pods(api)] == [
        "k8s-guide-control-plane", "k8s-guide-worker", "k8s-guide-worker2"]
    with pytest.raises(TshootError, match=r"no node named 'k8s-guide-worker9' \(nodes: k8s-guide-control-plane, "):
        cilium.agent_pod(api, "k8s-guide-worker9")


def test_agent_version_of_the_guides_cilium_and_no_agent(kubeapi):
    kubeapi.add(*objects.kind_cluster(version="1.9.1"))
    api = kube.api_client(str(kubeapi.kubeconfig))
    assert cilium.agent_version(cilium.agent_pod(api, "k8s-guide-worker")) == (1, 9, 1)
    kubeapi.delete("pods", cilium.agent_pod(api, "k8s-guide-worker")["metadata"]["name"], "cilium")
    with pytest.raises(TshootError, match="no Cilium agent pod on node k8s-guide-worker"):
        cilium.agent_pod(api, "k8s-guide-worker")


# --- exec ------------------------------------------------------------------------------------------

@pytest.fixture
def node_maps(kubeapi_cluster, bpffs, netns):
    """k8s-guide-worker as a real network namespace with a private bpffs holding the guide's ipcache entry."""
    pinned = bpffs / "tc" / "globals" / "cilium_ipcache"
    pinned.parent.mkdir(parents=True)
    bpftool("map", "create", str(pinned), "type", "lpm_trie", "key", "24", "value", "12", "entries", "64",
            "name", "cilium_ipcache", "flags", "1")
    bpftool("map", "update", "pinned", str(pinned), "key", "hex", *IPCACHE_KEY, "value", "hex", *IPCACHE_VALUE)
    name = netns("kw")
    kubeapi_cluster.exec_handler = NodeExec(kubeapi_cluster, {"k8s-guide-worker": SimNode(name, bpffs)})
    api = kube.api_client(str(kubeapi_cluster.kubeconfig))
    return kubeapi_cluster, api, cilium.agent_pod(api, "k8s-guide-worker")["metadata"]["name"], name


LOOKUP = ["bpftool", "-j", "map", "lookup", "pinned", "/sys/fs/bpf/tc/globals/cilium_ipcache", "key", "hex",
          *IPCACHE_KEY]


def test_exec_runs_bpftool_in_the_agent_against_the_nodes_real_map(node_maps):
    server, api, agent, _ = node_maps
    code, out, err = kube.exec_in_pod(api, "cilium", agent, "cilium-agent", LOOKUP)
    assert (code, err) == (0, "")
    entry = yaml.safe_load(out)
    assert entry["value"] == [f"0x{b}" for b in IPCACHE_VALUE]
    [request] = server.requests_to(f"/api/v1/namespaces/cilium/pods/{agent}/exec")
    assert request.query["command"] == LOOKUP and request.method == "GET"


def test_exec_through_kubernetes_stream_with_either_channel_protocol(node_maps):
    server, api, agent, name = node_maps
    v1 = client.CoreV1Api(official(server))
    for protocols in (("v5.channel.k8s.io",), ("v4.channel.k8s.io",)):
        server.exec_protocols = protocols
        ws = stream(v1.connect_get_namespaced_pod_exec, agent, "cilium", command=["ip", "netns", "identify"],
                    container="cilium-agent", stdout=True, stderr=True, stdin=False, tty=False,
                    _preload_content=False)
        ws.run_forever(timeout=10)
        assert ws.subprotocol == protocols[0]
        assert ws.read_stdout().strip() == name  # the command ran in the node's network namespace
        assert ws.returncode == 0


def test_exec_separates_streams_reports_exit_codes_and_start_failures(node_maps):
    server, api, agent, _ = node_maps
    code, out, err = kube.exec_in_pod(api, "cilium", agent, "cilium-agent",
                                      ["sh", "-c", "echo to-out; echo to-err >&2; exit 7"])
    assert (code, out, err) == (7, "to-out\n", "to-err\n")
    code, out, err = kube.exec_in_pod(api, "cilium", agent, "cilium-agent",
                                      ["bpftool", "map", "lookup", "pinned", "/sys/fs/bpf/tc/globals/cilium_lxc",
                                       "key", "hex", "00"])
    assert code != 0 and "cilium_lxc" in err  # no such pin on this node's bpffs
    server.exec_handler.missing = {"bpftool"}
    with pytest.raises(kube.ExecError) as missing:
        kube.exec_in_pod(api, "cilium", agent, "cilium-agent", LOOKUP)
    assert missing.value.status["reason"] == "InternalError"
    assert 'exec: "bpftool": executable file not found in $PATH' in str(missing.value)
    with pytest.raises(TshootError, match=f"400 BadRequest: container nope is not valid for pod {agent}$"):
        kube.exec_in_pod(api, "cilium", agent, "nope", ["true"])
    tshoot_pod = server.get("pods", "net-tshoot-l8vwz", "default")
    tshoot_pod["spec"]["containers"].append({"name": "sidecar", "image": objects.NETSHOOT_IMAGE})
    server.put(tshoot_pod)
    with pytest.raises(TshootError, match=r"a container name must be specified for pod net-tshoot-l8vwz, choose one "
                                          r"of: \[netshoot sidecar\]"):
        kube.exec_in_pod(api, "default", "net-tshoot-l8vwz", None, ["true"])


def test_exec_latency_and_exec_faults(node_maps):
    server, api, agent, _ = node_maps
    server.exec_latency = 0.2
    started = time.monotonic()
    assert kube.exec_in_pod(api, "cilium", agent, "cilium-agent", ["true"])[0] == 0
    assert time.monotonic() - started >= 0.2
    server.fail("*/exec", 403, times=1)
    with pytest.raises(TshootError, match=r'403 Forbidden: pods "cilium-\w+" is forbidden: User "kubernetes-admin" '
                                          r'cannot get resource "pods/exec"'):
        kube.exec_in_pod(api, "cilium", agent, "cilium-agent", ["true"])
    server.hang("*/exec")
    with pytest.raises(TshootError, match="did not answer within 0.5s"):
        kube.exec_in_pod(api, "cilium", agent, "cilium-agent", ["true"], timeout=0.5)


def test_exec_handlers_are_pluggable(kubeapi_cluster):
    calls = []

    def handler(namespace, pod, container, argv):
        calls.append((namespace, pod, container, argv))
        if argv[0] == "cilium-dbg":
            raise ExecStartError('exec: "cilium-dbg": executable file not found in $PATH')
        return 0, b"\x00\xffbinary", b""

    kubeapi_cluster.exec_handler = handler
    api = kube.api_client(str(kubeapi_cluster.kubeconfig))
    assert kube.exec_in_pod(api, "default", "net-tshoot-l8vwz", None, ["cat", "x"], text=False) == (
        0, b"\x00\xffbinary", b"")
    with pytest.raises(kube.ExecError, match="cilium-dbg"):
        kube.exec_in_pod(api, "default", "net-tshoot-l8vwz", "netshoot", ["cilium-dbg", "status"])
    assert calls == [("default", "net-tshoot-l8vwz", "netshoot", ["cat", "x"]),
                     ("default", "net-tshoot-l8vwz", "netshoot", ["cilium-dbg", "status"])]


def test_pod_logs_and_routes_that_do_not_exist(kubeapi_cluster):
    agent = kubeapi_cluster.list("pods", "cilium", "k8s-app=cilium")[0]["metadata"]["name"]
    kubeapi_cluster.logs[("cilium", agent, "cilium-agent")] = "level=info msg=one\nlevel=info msg=two\n"
    v1 = client.CoreV1Api(official(kubeapi_cluster))
    assert v1.read_namespaced_pod_log(agent, "cilium", container="cilium-agent", tail_lines=1) == "level=info msg=two\n"
    api = kube.api_client(str(kubeapi_cluster.kubeconfig))
    assert kube.request(api, "GET", f"/api/v1/namespaces/cilium/pods/{agent}")["metadata"]["name"] == agent
    for path in (f"/api/v1/pods/{agent}", "/api/v1/namespaces/cilium/nodes", "/apis/cilium.io/v9/ciliumnodes"):
        with pytest.raises(TshootError, match=f"^GET {path}: 404 page not found$"):
            kube.request(api, "GET", path)
