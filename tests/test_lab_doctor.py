"""`lab doctor` against this machine's real facts, each read here by another route than doctor's own
(the Docker CLI instead of the SDK, `stat -f` instead of /proc/mounts, `ip -j route` instead of
netlink), so that a wrong reading in doctor shows up as a mismatch."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def report(docker_engine):
    from tests.conftest import run_cli

    r = run_cli("lab", "doctor", "-o", "json")
    assert r.code in (0, 1), r
    return r, {c["name"]: c for c in json.loads(r.out)}


def test_exit_code_follows_the_failures(report):
    r, checks = report
    assert r.code == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)
    assert all(c["status"] in ("ok", "warn", "fail") for c in checks.values())
    assert all(c["fix"] for c in checks.values() if c["status"] != "ok")


def test_docker(report):
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True, check=True).stdout.strip()
    check = report[1]["docker"]
    assert check["status"] == "ok" and version in check["detail"]


def test_kind_and_helm_presence(report):
    checks = report[1]
    if shutil.which("kind") is None:
        assert checks["kind"]["status"] == "fail" and "sigs.k8s.io/kind@v0.32.0" in checks["kind"]["fix"]
    else:
        out = subprocess.run(["kind", "version"], capture_output=True, text=True).stdout
        assert out.split()[1] in checks["kind"]["detail"]
    assert checks["helm"]["status"] == ("warn" if shutil.which("helm") is None else "ok")


def test_kubectl_version_and_skew(report):
    check = report[1]["kubectl"]
    if shutil.which("kubectl") is None:
        assert check["status"] == "fail"
        return
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True).stdout
    version = json.loads(out)["clientVersion"]
    assert version["gitVersion"] in check["detail"]
    minor = int("".join(ch for ch in version["minor"] if ch.isdigit()))
    assert check["status"] == ("ok" if abs(minor - 34) <= 1 else "warn")  # the lab's nodes run 1.34


def test_inotify(report):
    check = report[1]["inotify"]
    watches = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    instances = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    assert f"max_user_watches={watches}" in check["detail"] and f"max_user_instances={instances}" in check["detail"]
    assert check["status"] == ("ok" if watches >= 524288 and instances >= 512 else "warn")


def test_cgroup_version(report):
    fstype = subprocess.run(["stat", "-f", "-c", "%T", "/sys/fs/cgroup"], capture_output=True, text=True,
                            check=True).stdout.strip()
    check = report[1]["cgroup v2"]
    assert check["status"] == ("ok" if fstype == "cgroup2fs" else "warn")
    if fstype != "cgroup2fs" and os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        assert "hybrid" in check["detail"]


def test_bpffs_kernel_btf(report):
    checks = report[1]
    supported = "bpf" in Path("/proc/filesystems").read_text().split()
    assert checks["bpffs"]["status"] == ("ok" if supported else "fail")
    host_bpffs = subprocess.run(["stat", "-f", "-c", "%T", "/sys/fs/bpf"], capture_output=True,
                                text=True).stdout.strip() == "bpf_fs"
    assert ("/sys/fs/bpf mounted" if host_bpffs else "/sys/fs/bpf not mounted") in checks["bpffs"]["detail"]
    assert os.uname().release in checks["kernel"]["detail"]
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    assert checks["kernel"]["status"] == ("ok" if (major, minor) >= (5, 10) else "fail")
    assert checks["BTF"]["status"] == ("ok" if Path("/sys/kernel/btf/vmlinux").exists() else "warn")


def host_routes() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                         check=True).stdout
    nets = []
    for route in json.loads(out):
        dst = route.get("dst")
        if route.get("type", "unicast") != "unicast" or dst in (None, "default"):
            continue
        nets.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets


def test_default_subnets_against_the_host_routes(report):
    ours = [ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("10.96.0.0/16")]
    clash = any(net.overlaps(o) for net in host_routes() for o in ours)
    assert report[1]["subnets"]["status"] == ("fail" if clash else "ok")


def test_a_pod_subnet_on_a_host_route_fails(lab, docker_engine):
    routes = [net for net in host_routes() if net.prefixlen <= 24]
    if not routes:
        pytest.fail("this machine has no IPv4 route of /24 or larger to collide with")
    route = routes[0]
    r = lab("doctor", "--pod-subnet", str(route), "--service-subnet", "10.96.0.0/16", "-o", "json")
    subnets = next(c for c in json.loads(r.out) if c["name"] == "subnets")
    assert r.code == 1 and subnets["status"] == "fail"
    assert f"--pod-subnet {route} overlaps route {route}" in subnets["detail"]


def test_table_output_lists_the_fixes(lab, docker_engine):
    r = lab("doctor")
    assert r.code in (0, 1)
    assert "check" in r.out and "subnets" in r.out
    if "warn" in r.out or "fail" in r.out:
        assert "to fix:" in r.out


def test_lab_nodes_in_private_cgroup_namespaces(lab, kind_cluster):
    cluster = kind_cluster(workers=1)
    r = lab("doctor", "--name", cluster.name, "-o", "json")
    check = next(c for c in json.loads(r.out) if c["name"] == "cgroup namespaces")
    assert check == {"name": "cgroup namespaces", "status": "ok",
                     "detail": "2 lab nodes, each in its own cgroup namespace", "fix": ""}


def test_a_node_in_the_host_cgroup_namespace_fails(lab, kind_cluster, docker_engine):
    from lab.nodes import CLUSTER_LABEL, ROLE_LABEL

    cluster = kind_cluster(workers=0)
    image = cluster.control_plane.image.id
    extra = docker_engine.containers.run(image, name=f"{cluster.name}-worker", detach=True, cgroupns="host",
                                         labels={CLUSTER_LABEL: cluster.name, ROLE_LABEL: "worker"},
                                         cap_add=["ALL"], cap_drop=["SYS_RESOURCE"])
    try:
        host_ns = os.readlink("/proc/self/ns/cgroup")
        extra.reload()
        assert os.readlink(f"/proc/{extra.attrs['State']['Pid']}/ns/cgroup") == host_ns  # what doctor must see
        r = lab("doctor", "--name", cluster.name, "-o", "json")
        check = next(c for c in json.loads(r.out) if c["name"] == "cgroup namespaces")
        assert r.code == 1 and check["status"] == "fail"
        assert check["detail"].startswith(f"{cluster.name}-worker share the host's cgroup namespace")
    finally:
        extra.remove(force=True)
