"""`lab doctor` (the guide's `make check`): can this machine run the lab? Each check reads the machine
itself (the Docker engine's API, /proc, /sys, the routing table, the tools' own version output) and says
ok, warn or fail, with the fix when it is not ok.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from tshoot.core.errors import TshootError

from .kind import ClusterSpec
from .preflight import how_to_get
from .releases import KIND_VERSION

OK, WARN, FAIL = "ok", "warn", "fail"
INOTIFY = {"max_user_watches": 524288, "max_user_instances": 512}  # kind's known-issues values
MIN_DOCKER = (20, 10)  # private cgroup namespaces (kind enforces --cgroupns=private since v0.20)
TOOL_TIMEOUT = 10


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g or 0) for g in match.groups()) if match else ()


def _tool_output(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


# --- tools ------------------------------------------------------------------------------------------

def check_docker(client) -> Check:
    if client is None:
        if shutil.which("docker") is None:
            return Check("docker", FAIL, "not installed", how_to_get("docker"))
        return Check("docker", FAIL, "installed, but its engine does not answer",
                     "start it (sudo systemctl start docker), and make sure your user may use it "
                     "(sudo usermod -aG docker $USER, then log in again)")
    version = client.version().get("Version", "?")
    if _version_tuple(version)[:2] < MIN_DOCKER:
        return Check("docker", WARN, f"engine {version}: older than 20.10 (no private cgroup namespaces)",
                     "upgrade Docker Engine to 20.10 or newer")
    return Check("docker", OK, f"engine {version} answers")


def check_kind() -> Check:
    if shutil.which("kind") is None:
        return Check("kind", FAIL, "not installed", how_to_get("kind"))
    out = _tool_output(["kind", "version"])
    if out is None:
        return Check("kind", FAIL, "'kind version' failed", how_to_get("kind"))
    found = _version_tuple(out)
    if found < _version_tuple(KIND_VERSION):
        return Check("kind", FAIL, f"{out.split()[1] if len(out.split()) > 1 else out.strip()}: the pinned node "
                                   f"images need kind {KIND_VERSION} or newer", how_to_get("kind"))
    return Check("kind", OK, out.strip())


def check_kubectl(spec: ClusterSpec) -> Check:
    if shutil.which("kubectl") is None:
        return Check("kubectl", FAIL, "not installed", how_to_get("kubectl"))
    out = _tool_output(["kubectl", "version", "--client", "-o", "json"])
    try:
        version = json.loads(out or "")["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return Check("kubectl", WARN, "'kubectl version --client -o json' gave no version", how_to_get("kubectl"))
    node = _version_tuple(spec.cilium.node_image.kubernetes)
    client = _version_tuple(version)
    if abs(client[1] - node[1]) > 1 or client[0] != node[0]:
        return Check("kubectl", WARN, f"{version}: outside the ±1 minor skew Kubernetes supports for the lab's "
                                      f"{spec.cilium.node_image.kubernetes}", how_to_get("kubectl"))
    return Check("kubectl", OK, version)


def check_helm() -> Check:
    if shutil.which("helm") is None:
        return Check("helm", WARN, "not installed (only needed for 'lab cilium install --helm')", how_to_get("helm"))
    out = _tool_output(["helm", "version", "--short"])
    return Check("helm", OK, (out or "installed").strip())


# --- kernel and host --------------------------------------------------------------------------------

def check_inotify(proc: Path = Path("/proc/sys/fs/inotify")) -> Check:
    low = []
    values = {}
    for key, wanted in INOTIFY.items():
        values[key] = int((proc / key).read_text())
        if values[key] < wanted:
            low.append(f"fs.inotify.{key}={wanted}")
    detail = ", ".join(f"{k}={v}" for k, v in values.items())
    if low:
        return Check("inotify", WARN, f"{detail}: multi-node kind + Cilium runs out ('too many open files')",
                     f"sudo sysctl {' '.join(low)} (persist them in /etc/sysctl.d/)")
    return Check("inotify", OK, detail)


def _mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount of this mount namespace."""
    return [(fields[1], fields[2]) for fields in
            (line.split() for line in Path("/proc/mounts").read_text().splitlines()) if len(fields) > 2]


def cgroup_mode(mounts: list[tuple[str, str]]) -> str:
    """'v2' (unified), 'hybrid' (v1 controllers plus a v2 tree), or 'v1'."""
    types = {point: fstype for point, fstype in mounts}
    if types.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    if any(fstype == "cgroup2" for point, fstype in mounts if point.startswith("/sys/fs/cgroup/")):
        return "hybrid"
    return "v1"


def check_cgroup(mounts: list[tuple[str, str]]) -> Check:
    mode = cgroup_mode(mounts)
    if mode == "v2":
        return Check("cgroup v2", OK, "unified hierarchy at /sys/fs/cgroup")
    return Check("cgroup v2", WARN,
                 f"{'hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)' if mode == 'hybrid' else 'v1'}: Cilium's "
                 "socket LB on kind needs cgroup v2, or it acts on the host's sockets too",
                 "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2), then restart Docker")


def check_cgroupns(nodes: list, client) -> Check:
    """Each node container must have its own cgroup namespace (Cilium's kind guide compares
    /proc/self/ns/cgroup in a node and on the host); kind >= v0.20 creates them with --cgroupns=private."""
    if client is None:
        return Check("cgroup namespaces", FAIL, "cannot tell: the Docker engine does not answer",
                     "start Docker, then run 'lab doctor' again")
    if not nodes:
        return Check("cgroup namespaces", OK, f"no lab nodes yet; kind {KIND_VERSION} creates them with "
                                              f"--cgroupns=private")
    host = os.readlink("/proc/self/ns/cgroup")
    shared = []
    for node in nodes:
        attrs = client.api.inspect_container(node.id)
        pid = attrs.get("State", {}).get("Pid") or 0
        try:
            if pid and os.readlink(f"/proc/{pid}/ns/cgroup") == host:
                shared.append(node.name)
        except OSError:  # Docker runs elsewhere (a VM, another PID namespace): trust its configuration
            if (attrs.get("HostConfig", {}).get("CgroupnsMode") or "host") == "host":
                shared.append(node.name)
    if shared:
        return Check("cgroup namespaces", FAIL, f"{', '.join(shared)} share the host's cgroup namespace: Cilium's "
                                                f"socket programs would attach to the host's cgroup root",
                     f"recreate the lab with kind {KIND_VERSION} (make down && make up)")
    return Check("cgroup namespaces", OK, f"{len(nodes)} lab nodes, each in its own cgroup namespace")


def check_bpffs(mounts: list[tuple[str, str]]) -> Check:
    if "bpf" not in Path("/proc/filesystems").read_text().split():
        return Check("bpffs", FAIL, "this kernel has no bpf filesystem", "use a kernel built with CONFIG_BPF_SYSCALL")
    host = "mounted" if ("/sys/fs/bpf", "bpf") in mounts else "not mounted"
    return Check("bpffs", OK, f"supported (host /sys/fs/bpf {host}; the agents mount it inside every node)")


def check_kernel(spec: ClusterSpec, release: str | None = None) -> Check:
    release = release or platform.release()
    found = _version_tuple(release)
    need = spec.cilium.min_kernel
    if found < need:
        return Check("kernel", FAIL, f"{release}: Cilium {spec.cilium.version} needs {'.'.join(map(str, need))}+",
                     "upgrade the kernel, or pick an older --cilium-version")
    return Check("kernel", OK, f"{release} (Cilium {spec.cilium.version} needs {'.'.join(map(str, need))}+)")


def check_btf(path: Path = Path("/sys/kernel/btf/vmlinux")) -> Check:
    if path.exists():
        return Check("BTF", OK, f"{path} present")
    return Check("BTF", WARN, f"{path} missing: Cilium runs, but BTF-based features and tools (pwru) do not",
                 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y")


# --- addresses --------------------------------------------------------------------------------------

def host_networks() -> list[tuple[ipaddress.IPv4Network, str]]:
    """IPv4 destinations of this host's routes (all tables except local/broadcast ones), with a label."""
    from pyroute2 import IPRoute

    found = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for route in ipr.get_routes(family=socket.AF_INET):  # every table
            if route["type"] != 1 or route["dst_len"] == 0:  # unicast only; the default route clashes with nothing
                continue
            dst = route.get_attr("RTA_DST")
            if dst is None:
                continue
            net = ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False)
            found.append((net, f"route {net} dev {names.get(route.get_attr('RTA_OIF'), '?')}"))
    return found


def subnet_clashes(spec: ClusterSpec, networks: list[tuple[ipaddress.IPv4Network, str]]) -> list[str]:
    clashes = []
    for option, subnet in (("--pod-subnet", spec.pod_subnet), ("--service-subnet", spec.service_subnet)):
        ours = ipaddress.ip_network(subnet)
        clashes += [f"{option} {ours} overlaps {label}" for net, label in networks if net.overlaps(ours)]
    return clashes


def check_subnets(spec: ClusterSpec, networks) -> Check:
    clashes = subnet_clashes(spec, networks)
    if clashes:
        return Check("subnets", FAIL, "; ".join(clashes),
                     "pick ranges this host does not route, e.g. lab up --pod-subnet 10.244.0.0/16 "
                     "--service-subnet 10.96.0.0/16 (or other unused 10.x.0.0/16 ranges)")
    return Check("subnets", OK, f"pods {spec.pod_subnet} and services {spec.service_subnet} clash with no host route")


# --- all of them ------------------------------------------------------------------------------------

def docker_or_none():
    from .nodes import docker_client

    try:
        return docker_client(timeout=5)
    except TshootError:
        return None


def run(spec: ClusterSpec) -> list[Check]:
    from .nodes import node_containers

    client = docker_or_none()
    mounts = _mounts()
    nodes = node_containers(spec.name, client) if client else []
    return [
        check_docker(client), check_kind(), check_kubectl(spec), check_helm(),
        check_inotify(), check_cgroup(mounts), check_cgroupns(nodes, client), check_bpffs(mounts),
        check_kernel(spec), check_btf(), check_subnets(spec, host_networks()),
    ]
