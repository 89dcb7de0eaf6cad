"""`lab cilium install --helm` at the process boundary: the exact helm command line and the values file
it reads (helm's chart repository cannot be reached here). The values must describe the same datapath
as the lab's own manifests."""

from __future__ import annotations

import pytest
import yaml

from lab import helm
from lab.manifests import Target, documents, render_cilium
from lab.releases import release
from tests.fakebin import fake_bin
from tshoot.core.errors import TshootError


@pytest.fixture
def helmbin(tmp_path, monkeypatch):
    fake = fake_bin(tmp_path).install("helm")
    monkeypatch.setenv("PATH", str(fake.dir))
    return fake


def test_helm_argv_and_values(helmbin, tmp_path):
    target = Target("k8s-guide", release("1.18"))
    helm.install(target, str(tmp_path / "kubeconfig"), "kind-k8s-guide")
    (call,) = helmbin.calls("helm")
    argv = call["argv"]
    values_file = argv[argv.index("--values") + 1]
    assert argv == ["helm", "upgrade", "--install", "cilium", "cilium", "--repo", "https://helm.cilium.io/",
                    "--version", "1.18.3", "--namespace", "cilium", "--create-namespace", "--values", values_file,
                    "--kubeconfig", str(tmp_path / "kubeconfig"), "--kube-context", "kind-k8s-guide"]
    assert yaml.safe_load(call["values"]) == helm.values(target)


def test_helm_values_match_the_manifests():
    """Each value the chart turns into cilium-config says what the lab's own ConfigMap says."""
    target = Target("lab2", release())
    values = helm.values(target)
    config = next(o for o in documents(render_cilium(target)) if o["kind"] == "ConfigMap")["data"]
    agent = next(o for o in documents(render_cilium(target)) if o["kind"] == "DaemonSet")
    env = {e["name"]: e.get("value") for e in agent["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert config["kube-proxy-replacement"] == str(values["kubeProxyReplacement"]).lower()
    assert (config["routing-mode"], config["tunnel-protocol"]) == (values["routingMode"], values["tunnelProtocol"])
    assert config["ipam"] == values["ipam"]["mode"]
    assert config["enable-bpf-masquerade"] == str(values["bpf"]["masquerade"]).lower()
    assert config["bpf-lb-sock-hostns-only"] == str(values["socketLB"]["hostNamespaceOnly"]).lower()
    assert config["enable-hubble"] == str(values["hubble"]["enabled"]).lower()
    assert config["external-envoy-proxy"] == str(values["envoy"]["enabled"]).lower()
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (
        values["k8sServiceHost"], str(values["k8sServicePort"]))


def test_helm_failure_is_one_line(helmbin, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "upgrade:1:Error: UPGRADE FAILED: Kubernetes cluster unreachable")
    with pytest.raises(TshootError) as failure:
        helm.install(Target("k8s-guide", release()), str(tmp_path / "kc"), None)
    assert str(failure.value) == ("helm upgrade --install failed (exit 1): Error: UPGRADE FAILED: Kubernetes cluster "
                                  "unreachable")
    assert "--kube-context" not in helmbin.calls("helm")[0]["argv"]


def test_without_helm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TshootError, match=r"^--helm: helm is not installed \(not on PATH\): curl -fsSL"):
        helm.install(Target("k8s-guide", release()), str(tmp_path / "kc"), None)
