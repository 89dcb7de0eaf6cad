"""Every destructive command proves it targets the lab before anything else, or refuses: one line, exit 2,
whatever the flags, and not one request reaches the API server (every context in these kubeconfigs
points at the test server, so any request a command sent would be recorded)."""

from __future__ import annotations

import uuid

import pytest

from lab import guard
from lab.nodes import CLUSTER_LABEL, ROLE_LABEL

COMMANDS = [("nuke", "kube-proxy"), ("nuke", "kube-proxy", "--dry-run"), ("nuke", "pods"),
            ("nuke", "pods", "--include-cni", "--dry-run"), ("cilium", "unhook"), ("cilium", "unhook", "--via", "docker"),
            ("cilium", "unhook", "--dry-run")]


def foreign_contexts(kind_lab) -> dict[str, str]:
    """Context name -> server: other clusters a user's kubeconfig holds, and the lab's name on a wrong server."""
    api = kind_lab.api.url
    return {"kind-other-lab": kind_lab.server,  # another kind cluster (even at the lab's address)
            "minikube": api, "docker-desktop": api, "gke_proj-1_europe-west1-b_prod": api,
            kind_lab.cluster.context: api}  # the lab's name, pointing at a server that is not the lab's


def test_a_missing_or_broken_kubeconfig_is_a_usage_error(lab, tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("not: [a kubeconfig")
    for argv in (("nuke", "pods", "--kubeconfig", str(tmp_path / "none")), ("nuke", "pods", "--kubeconfig", str(bad))):
        r = lab(*argv)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and r.out == "", r


@pytest.mark.docker
@pytest.mark.parametrize("context", ["kind-other-lab", "minikube", "docker-desktop", "gke_proj-1_europe-west1-b_prod",
                                     "lab-name-on-another-server"])
def test_foreign_contexts_are_refused_before_any_request(kind_lab, lab, tmp_path, context):
    contexts = foreign_contexts(kind_lab)
    name = kind_lab.cluster.context if context == "lab-name-on-another-server" else context
    path = kind_lab.write_kubeconfig(tmp_path / "user-kubeconfig", contexts, current=name)
    # Each command (with a rotating choice of its flags) named the context explicitly, and one relying on the
    # kubeconfig's current context: the refusal comes from the one proof every command starts with.
    shift = list(foreign_contexts(kind_lab)).index(name)
    runs = [[*COMMANDS[(i * 3 + shift) % len(COMMANDS)], "--context", name] for i in range(3)] + [list(COMMANDS[shift])]
    for argv in runs:
        r = lab(*argv, "--kubeconfig", str(path), "--name", kind_lab.cluster.name)
        assert r.code == 2, (argv, r)
        assert r.out == "" and len(r.err.strip().splitlines()) == 1 and r.err.startswith("lab: refusing: "), r
    assert kind_lab.api.requests == []


@pytest.mark.docker
def test_a_lookalike_control_plane_without_kind_labels_is_refused(docker_engine, kind_lab, lab, tmp_path):
    """A container named like a kind control plane and publishing 6443, but not labelled as kind labels its nodes."""
    fake = f"kl-{uuid.uuid4().hex[:8]}"
    impostor = docker_engine.containers.run(kind_lab.cluster.nodes[0].image.id, name=f"{fake}-control-plane",
                                            detach=True, ports={"6443/tcp": ("127.0.0.1", None)})
    kind_lab.cluster.extra.append(impostor)
    impostor.reload()
    port = impostor.attrs["NetworkSettings"]["Ports"]["6443/tcp"][0]["HostPort"]
    path = kind_lab.write_kubeconfig(tmp_path / "kc", {f"kind-{fake}": f"https://127.0.0.1:{port}"})
    r = lab("nuke", "kube-proxy", "--kubeconfig", str(path), "--name", fake)
    assert r.code == 2 and "no running control-plane container" in r.err and f"{CLUSTER_LABEL}={fake}" in r.err, r
    assert kind_lab.api.requests == []


@pytest.mark.docker
def test_the_lab_is_proven_by_context_published_address_and_labels(kind_lab):
    proven = guard.prove(kind_lab.cluster.name, str(kind_lab.kubeconfig))
    assert proven.context == kind_lab.cluster.context
    assert proven.server == kind_lab.server
    assert proven.api_container.name == kind_lab.cluster.control_plane.name
    assert [n.name for n in proven.nodes] == [n.name for n in kind_lab.cluster.nodes]
    assert all(n.labels[CLUSTER_LABEL] == kind_lab.cluster.name and n.labels[ROLE_LABEL] in guard.NODE_ROLES
               for n in proven.nodes)
    assert kind_lab.api.requests == []  # proving reads the kubeconfig and docker, never the API


@pytest.mark.docker
def test_another_lab_name_needs_its_own_context(kind_lab, lab):
    r = lab("cilium", "unhook", "--kubeconfig", str(kind_lab.kubeconfig), "--name", "k8s-guide")
    assert r.code == 2 and "kind-k8s-guide" in r.err and kind_lab.cluster.context in r.err, r
    assert kind_lab.api.requests == []
