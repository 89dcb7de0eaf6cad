"""`lab up` / `lab down` up to the kind process boundary: the exact argv and config kind receives, the
idempotency decisions taken on kind's answers, and kind's failures turned into one line. (kind itself
cannot run here: no registry serves its node images.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakebin import fake_bin

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def kindbin(tmp_path, docker_engine):
    return fake_bin(tmp_path).install("kind").link("docker", "kubectl")


@pytest.fixture
def source_kubeconfig(tmp_path):
    path = tmp_path / "kind-written-kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: kind-k8s-guide\n")
    return path


def test_up_creates_the_cluster_with_the_rendered_config(lab, kindbin, tmp_path, source_kubeconfig):
    kubeconfig = tmp_path / "kubeconfig"
    r = lab("up", "--kubeconfig", str(kubeconfig), env=kindbin.env(source_kubeconfig))
    assert r.code == 0, r
    calls = kindbin.calls("kind")
    assert [c["argv"] for c in calls] == [
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--name", "k8s-guide", "--config", "-", "--kubeconfig", str(kubeconfig)],
    ]
    assert calls[1]["stdin"] == (GOLDEN / "kind-k8s-guide.yaml").read_text()
    assert kubeconfig.read_text() == source_kubeconfig.read_text()
    assert "kind cluster k8s-guide created (3 nodes: k8s-guide-control-plane, k8s-guide-worker, " \
           "k8s-guide-worker2)" in r.out
    assert 'Creating cluster "k8s-guide"' in r.err  # kind's own progress reaches the user


def test_up_options_reach_kind(lab, kindbin, tmp_path, source_kubeconfig):
    r = lab("up", "--kubeconfig", str(tmp_path / "kc"), "--name", "lab2", "--workers", "1",
            "--kube-proxy-mode", "none", "--pod-subnet", "10.200.0.0/16", "--service-subnet", "10.201.0.0/16",
            "--cilium-version", "1.18", env=kindbin.env(source_kubeconfig))
    assert r.code == 0, r
    create = kindbin.calls("kind")[-1]
    assert create["argv"][:5] == ["kind", "create", "cluster", "--name", "lab2"]
    assert create["stdin"] == (GOLDEN / "kind-lab2-none.yaml").read_text()


def test_a_broken_existing_cluster_is_not_reused(lab, kindbin, tmp_path):
    """kind knows the cluster but no node container runs: up refuses, and says how to recover."""
    kindbin.clusters("k8s-guide-broken")
    r = lab("up", "--name", "k8s-guide-broken", "--kubeconfig", str(tmp_path / "kc"), env=kindbin.env())
    assert r.code == 1
    assert r.err.strip() == ("lab: kind cluster k8s-guide-broken exists but it has no node containers: recreate it "
                             "with 'make down' then 'make up' (kind clusters do not reliably survive a Docker "
                             "restart)")
    assert [c["argv"][1:3] for c in kindbin.calls("kind")] == [["get", "clusters"]]  # nothing created


def test_kind_failure_is_one_line(lab, kindbin, tmp_path, source_kubeconfig):
    env = kindbin.env(source_kubeconfig, fail="create:1:ERROR: failed to create cluster: failed to pull image "
                                               "\"kindest/node:v1.34.8\"")
    r = lab("up", "--kubeconfig", str(tmp_path / "kc"), env=env)
    assert r.code == 1
    assert r.err.strip().splitlines()[-1] == ("lab: 'kind create cluster' failed with exit code 1 (see its output "
                                              "above)")
    assert "failed to pull image" in r.err  # kind's own message went to the user's stderr


def test_a_subnet_on_a_host_route_stops_up_before_kind_runs(lab, kindbin, tmp_path):
    if not Path("/sys/class/net/docker0").exists():
        pytest.fail("this test needs the docker0 bridge (172.17.0.0/16) that dockerd creates")
    r = lab("up", "--kubeconfig", str(tmp_path / "kc"), "--pod-subnet", "172.17.0.0/16", env=kindbin.env())
    assert r.code == 1 and "--pod-subnet 172.17.0.0/16 overlaps route 172.17.0.0/16 dev docker0" in r.err
    assert not [c for c in kindbin.calls("kind") if c["argv"][1] == "create"]


def test_down_is_idempotent_and_has_a_dry_run(lab, kindbin, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kindbin.clusters("k8s-guide")
    r = lab("down", "--dry-run", "--no-unhook", "--kubeconfig", str(kubeconfig), env=kindbin.env())
    assert r.code == 0 and f"would run: kind delete cluster --name k8s-guide --kubeconfig {kubeconfig}" in r.out
    assert [c["argv"][1:3] for c in kindbin.calls("kind")] == [["get", "clusters"]]

    r = lab("down", "--no-unhook", "--kubeconfig", str(kubeconfig), env=kindbin.env())
    assert r.code == 0 and "kind cluster k8s-guide deleted" in r.out
    assert kindbin.calls("kind")[-1]["argv"] == ["kind", "delete", "cluster", "--name", "k8s-guide",
                                                 "--kubeconfig", str(kubeconfig)]

    r = lab("down", "--no-unhook", "--kubeconfig", str(kubeconfig), env=kindbin.env())
    assert r.code == 0 and "kind cluster k8s-guide does not exist: nothing to delete" in r.out
    assert kindbin.calls("kind")[-1]["argv"] == ["kind", "get", "clusters"]


# --- an existing lab: node containers on the real engine, its API server reached at their published port ---

def test_up_reuses_a_healthy_lab(lab, kind_lab, tmp_path):
    name = kind_lab.cluster.name
    fake = fake_bin(tmp_path).install("kind").link("docker", "kubectl").clusters(name)
    kubeconfig = tmp_path / "lab-dir" / "kubeconfig"
    kubeconfig.parent.mkdir()
    r = lab("up", "--name", name, "--kubeconfig", str(kubeconfig), env=fake.env(kind_lab.kubeconfig))
    assert r.code == 0, r
    assert r.out.strip() == (f"kind cluster {name} is up and healthy: reused; kubeconfig {kubeconfig} "
                             f"(context kind-{name})")
    assert [c["argv"] for c in fake.calls("kind")] == [
        ["kind", "get", "clusters"], ["kind", "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)]]
    assert kubeconfig.read_text() == kind_lab.kubeconfig.read_text()
    assert kind_lab.api.requests_to("/readyz", "GET")  # asked through the control plane's published port


def test_up_refuses_a_lab_with_a_stopped_node(lab, kind_lab, tmp_path):
    name = kind_lab.cluster.name
    worker2 = kind_lab.cluster.nodes[2]
    worker2.stop(timeout=1)
    fake = fake_bin(tmp_path).install("kind").link("docker", "kubectl").clusters(name)
    r = lab("up", "--name", name, "--kubeconfig", str(tmp_path / "kc"), env=fake.env(kind_lab.kubeconfig))
    assert r.code == 1
    assert f"kind cluster {name} exists but nodes are not running: {name}-worker2 (exited)" in r.err
    assert not [c for c in fake.calls("kind") if c["argv"][1] in ("create", "export")]


def test_status_of_a_running_lab(lab, kind_lab, tmp_path):
    import json

    name = kind_lab.cluster.name
    fake = fake_bin(tmp_path).install("kind").link("docker").clusters(name)
    r = lab("status", "--name", name, "--kubeconfig", str(kind_lab.kubeconfig), "-o", "json", env=fake.env())
    report = json.loads(r.out)
    parts = {p["name"]: p for p in report["parts"]}
    assert r.code == 0 and report["healthy"] is True, r
    assert parts["kind cluster"]["detail"] == f"{name} exists"
    assert parts["node containers"]["detail"] == (f"{name}-control-plane running, {name}-worker running, "
                                                  f"{name}-worker2 running")
    assert parts["API server"]["state"] == "ok"
