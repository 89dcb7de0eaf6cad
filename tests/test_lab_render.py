"""What the lab creates and applies: the kind config and argv (golden), and the manifests, validated
against the Kubernetes OpenAPI schemas of the node image's version (kubernetes-validate, strict) and
checked for the consistency a schema cannot see (mounts, ConfigMap keys, RBAC references, pinned images)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from lab import kind
from lab.manifests import Target, documents, render_cilium, render_tshoot
from lab.releases import RELEASES, release

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = sorted(RELEASES)


# --- kind ---------------------------------------------------------------------------------------------

def test_default_kind_config_is_the_golden_file(lab):
    r = lab("render", "kind")
    assert r.code == 0 and r.err == ""
    assert r.out == (GOLDEN / "kind-k8s-guide.yaml").read_text()


def test_kind_config_options_are_the_golden_file(lab):
    r = lab("render", "kind", "--name", "lab2", "--workers", "1", "--kube-proxy-mode", "none",
            "--pod-subnet", "10.200.0.0/16", "--service-subnet", "10.201.0.0/16", "--cilium-version", "1.18")
    assert r.code == 0, r.err
    assert r.out == (GOLDEN / "kind-lab2-none.yaml").read_text()


@pytest.mark.parametrize("version", VERSIONS)
def test_kind_config_structure(version):
    spec = kind.ClusterSpec(cilium=release(version))
    config = yaml.safe_load(kind.render_config(spec))
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "k8s-guide"
    assert config["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "iptables",
                                    "podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"}
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    image = RELEASES[version].node_image.reference
    assert all(n["image"] == image for n in config["nodes"])
    assert "@sha256:" in image and image.startswith(f"kindest/node:v{RELEASES[version].node_image.kubernetes}@")
    assert spec.node_names == ["k8s-guide-control-plane", "k8s-guide-worker", "k8s-guide-worker2"]


def test_node_images_sit_in_the_kubernetes_range_each_release_is_tested_on():
    assert RELEASES["1.19.4"].node_image_tested() and RELEASES["1.18.3"].node_image_tested()
    # kind v0.32.0 has no image for 1.16's range: the lab says so instead of pretending.
    assert not RELEASES["1.16.15"].node_image_tested()
    assert kind.ClusterSpec(cilium=release("1.16")).warnings()
    assert kind.ClusterSpec().warnings() == []


def test_kind_argv():
    spec = kind.ClusterSpec()
    path = Path("/work/lab/kubeconfig")
    assert kind.create_argv(spec, path) == ["kind", "create", "cluster", "--name", "k8s-guide", "--config", "-",
                                            "--kubeconfig", "/work/lab/kubeconfig"]
    assert kind.delete_argv("k8s-guide", path) == ["kind", "delete", "cluster", "--name", "k8s-guide",
                                                   "--kubeconfig", "/work/lab/kubeconfig"]
    assert kind.export_kubeconfig_argv("k8s-guide", path) == ["kind", "export", "kubeconfig", "--name",
                                                              "k8s-guide", "--kubeconfig", "/work/lab/kubeconfig"]
    assert kind.get_clusters_argv() == ["kind", "get", "clusters"]


@pytest.mark.parametrize("args, message", [
    (["--name", "K8s_Guide"], "lower-case"),
    (["--pod-subnet", "10.244.0.0/33"], "--pod-subnet"),
    (["--pod-subnet", "10.96.0.0/12"], "overlaps --service-subnet"),
    (["--service-subnet", "fd00::/108"], "IPv4-only"),
    (["--kube-proxy-mode", "userspace"], "iptables, ipvs, nftables, none"),
    (["--node-image", "kindest/node:v1.34.8"], "pin it by digest"),
    (["--cilium-version", "1.17"], "1.19.4, 1.18.3, 1.16.15"),
    (["--cilium-version", "banana"], "cannot read Cilium version"),
])
def test_bad_lab_options_are_one_line_and_exit_2(lab, args, message):
    r = lab("render", "kind", *args)
    assert r.code == 2 and r.out == ""
    assert message in r.err and len(r.err.strip().splitlines()) == 1, r.err


# --- manifests ----------------------------------------------------------------------------------------

def stream(version: str, cluster: str = "k8s-guide") -> list[dict]:
    target = Target(cluster, RELEASES[version])
    return documents(render_cilium(target)) + documents(render_tshoot(target))


def pod_templates(objects):
    for obj in objects:
        if obj["kind"] in ("DaemonSet", "Deployment"):
            yield obj, obj["spec"]["template"]["spec"]


def containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def consistency_problems(objects: list[dict]) -> list[str]:
    """What a schema cannot check: references between objects and inside pod templates."""
    problems = []
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[(obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
    config_maps = by_kind.get("ConfigMap", {})
    for owner, spec in pod_templates(objects):
        ns, who = owner["metadata"]["namespace"], owner["metadata"]["name"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(spec):
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    problems.append(f"{who}/{container['name']}: mount {mount['name']} has no volume")
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    data = config_maps.get((ns, ref["name"]), {}).get("data", {})
                    if ref["key"] not in data and not ref.get("optional"):
                        problems.append(f"{who}/{container['name']}: {ref['name']}/{ref['key']} does not exist")
            image = container["image"]
            if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                problems.append(f"{who}/{container['name']}: image {image} is not pinned")
            if container.get("imagePullPolicy") != "IfNotPresent":
                problems.append(f"{who}/{container['name']}: imagePullPolicy is not IfNotPresent")
        for volume in volumes.values():
            if "configMap" in volume and (ns, volume["configMap"]["name"]) not in config_maps:
                problems.append(f"{who}: volume {volume['name']} names a missing ConfigMap")
        account = spec.get("serviceAccountName")
        if account and (ns, account) not in by_kind.get("ServiceAccount", {}):
            problems.append(f"{who}: service account {account} does not exist")
        namespaces = {name for _, name in by_kind.get("Namespace", {})} | {"default"}
        if ns not in namespaces:
            problems.append(f"{who}: namespace {ns} is not created")
    for kind_name, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        for (ns, name), binding in by_kind.get(kind_name, {}).items():
            if (ns, binding["roleRef"]["name"]) not in by_kind.get(role_kind, {}):
                problems.append(f"{kind_name} {name}: {role_kind} {binding['roleRef']['name']} does not exist")
            for subject in binding["subjects"]:
                if (subject["namespace"], subject["name"]) not in by_kind.get("ServiceAccount", {}):
                    problems.append(f"{kind_name} {name}: subject {subject['name']} does not exist")
    return problems


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_the_node_kubernetes_version(version):
    schema_version = RELEASES[version].node_image.minor + ".0"
    for obj in stream(version):
        try:
            kubernetes_validate.validate(obj, schema_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']} (Cilium {version}, Kubernetes {schema_version}): "
                        f"{exc.message} at {list(exc.path)}")


def test_the_schema_validation_can_fail():
    obj = next(o for o in stream("1.19.4") if o["kind"] == "DaemonSet")
    obj["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = "NET_ADMIN"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, "1.34.0", strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_are_consistent(version):
    assert consistency_problems(stream(version)) == []


@pytest.mark.parametrize("breakage, expected", [
    (lambda objs: _agent(objs)["volumes"].pop(), "has no volume"),
    (lambda objs: _agent(objs)["containers"][0]["env"].append(
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cilium-config", "key": "no-such-key"}}}),
     "no-such-key does not exist"),
    (lambda objs: _agent(objs)["containers"][0].update(image="quay.io/cilium/cilium:latest"), "is not pinned"),
    (lambda objs: objs.remove(next(o for o in objs if o["kind"] == "ServiceAccount")), "does not exist"),
])
def test_the_consistency_checks_can_fail(breakage, expected):
    objects = stream("1.19.4")
    breakage(objects)
    assert any(expected in p for p in consistency_problems(objects)), consistency_problems(objects)


def _agent(objects) -> dict:
    return next(o for o in objects if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "cilium")["spec"][
        "template"]["spec"]


@pytest.mark.parametrize("version", VERSIONS)
def test_cilium_objects_carry_the_lab_datapath(version):
    objects = stream(version)
    rel = RELEASES[version]
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    assert {k: config[k] for k in ("routing-mode", "tunnel-protocol", "ipam", "kube-proxy-replacement",
                                   "bpf-lb-sock-hostns-only", "enable-bpf-masquerade", "enable-hubble",
                                   "cni-exclusive", "bpf-root", "cgroup-root")} == {
        "routing-mode": "tunnel", "tunnel-protocol": "vxlan", "ipam": "kubernetes", "kube-proxy-replacement": "true",
        "bpf-lb-sock-hostns-only": "true", "enable-bpf-masquerade": "true", "enable-hubble": "false",
        "cni-exclusive": "true", "bpf-root": "/sys/fs/bpf", "cgroup-root": "/run/cilium/cgroupv2"}
    assert not [k for k in config if k.startswith("hubble-")]  # no Hubble server, no TLS files it would need
    assert all(isinstance(v, str) for v in config.values())

    cilium_objects = [o for o in objects if o["metadata"].get("name") not in ("net-tshoot", "net-echo")]
    assert {o["metadata"]["namespace"] for o in cilium_objects if "namespace" in o["metadata"]} <= {
        "cilium", "cilium-secrets"}
    agent = _agent(objects)
    assert [c["name"] for c in agent["initContainers"]] == [
        "config", "mount-cgroup", "apply-sysctl-overwrites", "mount-bpf-fs", "clean-cilium-state",
        "install-cni-binaries"]
    assert agent["initContainers"][0]["command"] == ["cilium-dbg", "build-config"]
    mount_bpf = agent["initContainers"][3]
    assert mount_bpf["securityContext"] == {"privileged": True}
    assert mount_bpf["volumeMounts"] == [{"name": "bpf-maps", "mountPath": "/sys/fs/bpf",
                                          "mountPropagation": "Bidirectional"}]
    main = agent["containers"][0]
    assert {m["mountPath"]: m.get("mountPropagation") for m in main["volumeMounts"]}["/sys/fs/bpf"] == "HostToContainer"
    assert "privileged" not in main["securityContext"]
    assert {"NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE", "IPC_LOCK"} <= set(main["securityContext"]["capabilities"]["add"])
    assert agent["hostNetwork"] is True and agent["tolerations"] == [{"operator": "Exists"}]
    volumes = {v["name"]: v.get("hostPath", {}).get("path") for v in agent["volumes"]}
    assert volumes["bpf-maps"] == "/sys/fs/bpf" and volumes["cilium-cgroup"] == "/run/cilium/cgroupv2"
    # kube-proxy replacement: every Cilium container that talks to the API goes to the control-plane container.
    for owner, spec in pod_templates(cilium_objects):
        for container in containers(spec):
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if "KUBERNETES_SERVICE_HOST" in env:
                assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (
                    "k8s-guide-control-plane", "6443")
            assert container["image"] in (rel.agent_image, rel.operator_image)
    operator = next(o for o in objects if o["kind"] == "Deployment")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"] == rel.operator_image


def test_the_api_server_follows_the_cluster_name():
    objects = stream("1.19.4", cluster="lab2")
    hosts = {e["value"] for _, spec in pod_templates(objects) for c in containers(spec) for e in c.get("env", [])
             if e["name"] == "KUBERNETES_SERVICE_HOST"}
    assert hosts == {"lab2-control-plane"}


def test_net_tshoot_runs_everywhere_with_a_pinned_image():
    tshoot = next(o for o in stream("1.19.4") if o["metadata"]["name"] == "net-tshoot")
    spec = tshoot["spec"]["template"]["spec"]
    assert tshoot["kind"] == "DaemonSet" and tshoot["metadata"]["namespace"] == "default"
    assert tshoot["spec"]["selector"]["matchLabels"] == {"name": "net-tshoot"}
    assert spec["tolerations"] == [{"operator": "Exists"}]
    container = spec["containers"][0]
    assert container["image"] == "nicolaka/netshoot:v0.16" and container["imagePullPolicy"] == "IfNotPresent"


def test_net_echo_answers_the_connectivity_check_behind_a_nodeport_service():
    objects = {(o["kind"], o["metadata"]["name"]): o for o in stream("1.19.4")}
    echo, service = objects[("DaemonSet", "net-echo")], objects[("Service", "net-echo")]
    spec = echo["spec"]["template"]["spec"]
    container = spec["containers"][0]
    # the same image as net-tshoot (nothing more to pull), an echo of the peer address on every node
    assert container["image"] == objects[("DaemonSet", "net-tshoot")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["command"] == ["socat", "TCP4-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR"]
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert service["spec"]["selector"] == echo["spec"]["selector"]["matchLabels"] == {"name": "net-echo"}
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"] == [{"name": "echo", "protocol": "TCP", "port": 8080, "targetPort": 8080,
                                         "nodePort": 30080}]


@pytest.mark.parametrize("what, render", [("cilium", render_cilium), ("tshoot", render_tshoot)])
def test_render_prints_exactly_the_stream(lab, what, render):
    r = lab("render", what)
    assert r.code == 0 and r.err == ""
    assert r.out == render(Target("k8s-guide", release()))
    assert [d["kind"] for d in yaml.safe_load_all(r.out) if d] == [d["kind"] for d in documents(r.out)]


def test_render_helm_values(lab):
    r = lab("render", "cilium", "--helm", "--name", "lab2")
    assert r.code == 0 and r.err == ""
    values = yaml.safe_load(r.out)
    assert values["k8sServiceHost"] == "lab2-control-plane" and values["k8sServicePort"] == 6443
    assert values["kubeProxyReplacement"] is True and values["socketLB"] == {"hostNamespaceOnly": True}
    assert (values["routingMode"], values["tunnelProtocol"], values["ipam"]["mode"]) == ("tunnel", "vxlan",
                                                                                         "kubernetes")
