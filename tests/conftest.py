"""Shared fixtures: the real CLI, a private bpffs, network namespaces, the Docker engine.

Tests run as root on the real kernel. `/sys/fs/bpf` is not a bpffs on these machines and must never
be touched: every test mounts its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest_plugins = ["tests.kubeapi.fixture"]  # kubeapi, kubeapi_cluster: the local Kubernetes API server

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out[:400]!r}, err={self.err[:400]!r})"


def run_cli(program: str, *args: str, input: str | None = None, env: dict | None = None, timeout: float = 120) -> Result:
    """Run an installed console script (tshoot, lab) exactly as a user does."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([str(BIN / program), *args], input=input, capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    return Result(proc)


@pytest.fixture
def tshoot():
    return lambda *args, **kw: run_cli("tshoot", *args, **kw)


@pytest.fixture
def lab():
    return lambda *args, **kw: run_cli("lab", *args, **kw)


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests need root: they use real kernel objects (bpffs, netns, cgroups); run make test as root")


@pytest.fixture
def bpffs(tmp_path):
    """A private bpffs mounted for this test, unmounted (and its pins gone) afterwards."""
    need_root()
    mnt = tmp_path / "bpffs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def netns():
    """Factory for named network namespaces (unique per test run), deleted afterwards."""
    need_root()
    created = []

    def make(prefix: str = "kl") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        created.append(name)
        return name

    yield make
    for name in created:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture(scope="session")
def docker_engine():
    """The real Docker engine, started by the test setup when it is not running."""
    need_root()
    from tests import dockerd

    dockerd.ensure()
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


def bpftool(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    if shutil.which("bpftool") is None:
        pytest.fail("bpftool is not installed (make test installs it: scripts/install-test-deps)")
    return subprocess.run(["bpftool", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory):
    """bpf/progs/*.bpf.c compiled once: {"datapath": Path(...datapath.o), "cgroup_sock": …, "foreign": …}."""
    from tests.bpfobj import BPF_DIR, compile_bpf

    out = tmp_path_factory.mktemp("bpf")
    return {src.name.removesuffix(".bpf.c"): compile_bpf(src, out / (src.name.removesuffix(".bpf.c") + ".o"))
            for src in sorted((BPF_DIR / "progs").glob("*.bpf.c"))}


@pytest.fixture
def kind_cluster(docker_engine):
    """Factory: kind-like node containers (names, labels, published 6443, private cgroupns) on the real engine,
    from an image built locally once per machine; a unique cluster name per call; removed afterwards."""
    from tests.kindnodes import KindClusters

    clusters = KindClusters(docker_engine)
    yield clusters.create
    clusters.remove_all()


@pytest.fixture
def kind_lab(kind_cluster, kubeapi, tmp_path):
    """A 3-node kind-like lab: node containers on the real engine, and the test API server (holding the
    guide's cluster objects for these node names) reached through the control plane's published port."""
    from tests.kindnodes import connect

    lab = connect(kind_cluster(workers=2), kubeapi, tmp_path)
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def datapath_node(bpf_objects, tmp_path_factory):
    """A Cilium node's datapath in network namespaces (tests/netnode.py): two pods' lxc veths, lxc_health,
    cilium_host/cilium_net, cilium_vxlan, the uplink eth0; tc, tcx (links pinned in its own bpffs), XDP
    and a flow dissector attached. Read-only for the tests that use it."""
    need_root()
    from tests import netnode

    bpffs = tmp_path_factory.mktemp("datapath-node") / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    created: list[str] = []
    try:
        yield netnode.build("dp", bpffs, bpf_objects, created)
    finally:
        netnode.destroy(created)
        subprocess.run(["umount", "-l", str(bpffs)], check=False)


def need_sim_datapath() -> None:
    """The simulated cluster runs its datapath in the kernel: root, and clang/tc/bpftool/iptables to build it."""
    if os.geteuid() != 0:
        pytest.skip("the simulated Cilium cluster needs root (network namespaces, bpffs, tc programs)")
    missing = [tool for tool in ("clang", "tc", "bpftool", "iptables") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the simulated Cilium cluster needs {', '.join(missing)} (scripts/install-test-deps)")


@pytest.fixture
def sim(kubeapi, tmp_path, request):
    """Factory: start(scenario) builds a simulated Cilium cluster (tests/simdatapath.py) behind `kubeapi`."""
    need_sim_datapath()
    from tests import simdatapath

    bpf_objects = request.getfixturevalue("bpf_objects")
    made = []

    def start(scenario):
        made.append(simdatapath.start(scenario, kubeapi, tmp_path, bpf_objects))
        return made[-1]

    yield start
    for built in made:
        built.teardown()


def kubectl_shell(kubeconfig):
    """A shell whose `kubectl` is the one scripts/install-kubectl put in the venv (1.34), pointed at kubeconfig:
    what a user pastes the commands kindlab shows into. Skips, saying how to get it, when it is missing."""
    if not (BIN / "kubectl").exists():
        pytest.skip("no kubectl in the venv: scripts/install-kubectl installs kubectl 1.34 (make test runs it)")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return lambda command: subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=60)


def need_tracer_build() -> None:
    """tshoot trace compiles its CO-RE program at first use: clang and libbpf's headers."""
    if shutil.which("clang") is None or not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        pytest.skip("tshoot trace compiles its BPF program with clang and libbpf's headers: apt-get install clang libbpf-dev")


def need_tracer() -> None:
    """Running tshoot trace: root, the compiler, and the kernel's BTF (CO-RE)."""
    need_root()
    need_tracer_build()
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE tracing cannot run")
