"""`lab cilium unhook` on real cgroup v2: Cilium-named programs (bpf/progs/cgroup_sock.bpf.c) attached to kind-like
node containers' cgroups the way Cilium attaches them (half through pinned bpf_links in the node's bpffs, half
the pre-1.14 way), beside a program that is not Cilium's and must stay attached."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.bpflink import link_cgroup
from tests.conftest import bpftool

LINK_DIR = "/sys/fs/bpf/cilium/socketlb/links/cgroup"
OLD_WAY = {"cil_sock4_connect": "connect4", "cil_sock4_sendmsg": "sendmsg4", "cil_sock4_recvmsg": "recvmsg4",
           "cil_sock4_getpeername": "getpeername4", "cil_sock4_post_bind": "post_bind4"}
LINKED = {"cil_sock6_connect": "cgroup/connect6", "cil_sock6_sendmsg": "cgroup/sendmsg6",
          "cil_sock6_recvmsg": "cgroup/recvmsg6", "cil_sock6_getpeername": "cgroup/getpeername6",
          "cil_sock6_post_bind": "cgroup/post_bind6"}


@pytest.fixture
def programs(bpffs, bpf_objects):
    bpftool("prog", "loadall", str(bpf_objects["cgroup_sock"]), str(bpffs / "cil"))
    bpftool("prog", "loadall", str(bpf_objects["foreign"]), str(bpffs / "other"))
    return bpffs


def hook(cluster, node, progs) -> str:
    """What Cilium does on a kind node: mount the cgroup2 root (in the node's cgroup namespace) and a bpffs,
    attach its socket-LB programs there, pin the links; plus another tool's program. Returns the cgroup."""
    cluster.sh(node, "mkdir -p /run/cilium/cgroupv2")
    cluster.nsenter(node, "mount", "-t", "cgroup2", "none", "/run/cilium/cgroupv2", cgroupns=True)
    cluster.nsenter(node, "mount", "-t", "bpf", "bpf", "/sys/fs/bpf")
    cgroup = str(cluster.node_cgroup(node))
    for name, attach in OLD_WAY.items():
        bpftool("cgroup", "attach", cgroup, attach, "pinned", str(progs / "cil" / name), "multi")
    root = f"/proc/{cluster.pid(node)}/root"
    for name, section in LINKED.items():
        link_cgroup(str(progs / "cil" / name), cgroup, section, f"{root}{LINK_DIR}/{name}")
    bpftool("cgroup", "attach", cgroup, "connect4", "pinned", str(progs / "other" / "other_connect4"), "multi")
    return cgroup


def names(cgroup: str) -> list[str]:
    out = bpftool("-j", "cgroup", "show", cgroup).stdout
    return sorted(p["name"] for p in json.loads(out)) if out.strip() else []


def cgroup_links(cgroup: str) -> list[dict]:
    ino = os.stat(cgroup).st_ino
    return [link for link in json.loads(bpftool("-j", "link", "show").stdout or "[]")
            if link.get("type") == "cgroup" and link.get("cgroup_id") == ino]


def pins(cluster, node) -> list[str]:
    directory = f"/proc/{cluster.pid(node)}/root{LINK_DIR}"
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


CILIUM = sorted([*OLD_WAY, *LINKED])


@pytest.mark.docker
def test_unhook_through_docker_detaches_only_cilium_and_removes_its_pins(kind_lab, programs, lab):
    cluster = kind_lab.cluster
    hooked = {node.name: hook(cluster, node, programs) for node in cluster.nodes}
    assert all(names(cg) == sorted([*CILIUM, "other_connect4"]) for cg in hooked.values())
    assert all(pins(cluster, node) == sorted(LINKED) for node in cluster.nodes)

    r = lab("cilium", "unhook", "--via", "docker", "--kubeconfig", str(kind_lab.kubeconfig), "--name", cluster.name)

    assert r.code == 0, r
    for node in cluster.nodes:
        assert names(hooked[node.name]) == ["other_connect4"]
        assert cgroup_links(hooked[node.name]) == []
        assert pins(cluster, node) == []
        removed = sorted(line.split()[2] for line in r.out.splitlines() if line.split()[:1] == [node.name])
        assert removed == CILIUM, r.out
    assert r.out.count("link ") >= len(LINKED) * len(cluster.nodes)
    assert "other_connect4" in r.out and "left attached" in r.out
    assert kind_lab.api.requests == []  # through docker: the API server is not needed

    again = lab("cilium", "unhook", "--via", "docker", "--kubeconfig", str(kind_lab.kubeconfig), "--name", cluster.name)
    assert again.code == 0 and "nothing to do" in again.out, again
    assert all(names(cg) == ["other_connect4"] for cg in hooked.values())


@pytest.mark.docker
def test_unhook_through_the_agent_and_dry_run(kind_lab, programs, lab):
    cluster = kind_lab.cluster
    node = cluster.nodes[1]
    cgroup = hook(cluster, node, programs)
    pid = cluster.pid(node)

    def in_agent(namespace, pod, container, argv):
        """bpftool & co. in the agent pod: it sees the node's /run/cilium/cgroupv2 and /sys/fs/bpf (hostPath)."""
        spec = kind_lab.api.get("pods", pod, namespace)["spec"]
        assert spec["nodeName"] == node.name and container == "cilium-agent"
        argv = [f"/proc/{pid}/root{a}" if a.startswith(("/run/cilium", "/sys/fs/bpf")) else a for a in argv]
        proc = subprocess.run(argv, capture_output=True)
        return proc.returncode, proc.stdout, proc.stderr

    kind_lab.api.exec_handler = in_agent
    # Only the hooked node's agent runs: the control plane is reached through docker instead (nothing is
    # attached there), and worker2, without an agent and with its container gone, cannot be reached at all.
    gone = cluster.nodes[2]
    for pod in kind_lab.api.list("pods", "cilium", "k8s-app=cilium"):
        if pod["spec"]["nodeName"] != node.name:
            kind_lab.api.put({**pod, "status": {**pod["status"], "phase": "Pending"}})
    gone.kill()

    dry = lab("cilium", "unhook", "--dry-run", "--kubeconfig", str(kind_lab.kubeconfig), "--name", cluster.name)

    assert names(cgroup) == sorted([*CILIUM, "other_connect4"]) and pins(cluster, node) == sorted(LINKED)
    assert dry.code == 1, dry  # worker2 cannot be unhooked, and it says so
    assert f"{node.name}: bpftool cgroup detach /run/cilium/cgroupv2 connect4 id" in dry.out or \
           f"{node.name}: bpftool cgroup detach /run/cilium/cgroupv2 cgroup_inet4_connect id" in dry.out, dry.out
    assert dry.out.count(f"{node.name}: bpftool link detach id") == len(LINKED)
    assert dry.out.count(f"{node.name}: rm -f {LINK_DIR}/cil_sock6_") == len(LINKED)
    assert "agent cilium/" in dry.out
    assert kind_lab.api.writes() == []

    r = lab("cilium", "unhook", "--kubeconfig", str(kind_lab.kubeconfig), "--name", cluster.name)

    assert r.code == 1, r
    assert names(cgroup) == ["other_connect4"] and cgroup_links(cgroup) == [] and pins(cluster, node) == []
    failed = [line.split()[0] for line in r.out.splitlines() if "failed:" in line]
    assert failed == [gone.name] and "not running" in r.out, r.out
    assert f"{cluster.control_plane.name}  docker" not in r.out  # nothing was attached there: no row
    assert kind_lab.api.requests_to("/api/v1/namespaces/cilium/pods/*/exec")
    assert kind_lab.api.writes() == []
