"""Node containers as kind makes them, on the real Docker engine, from the locally built image.

Named <cluster>-control-plane, <cluster>-worker, <cluster>-worker2…, labelled io.x-k8s.kind.cluster and
io.x-k8s.kind.role, the control plane publishing its port 6443 on 127.0.0.1 (a random host port), in a
private cgroup namespace (kind >= 0.20) under a cgroup the test created. Cluster names are unique per
call, so parallel runs never see each other's nodes.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab.nodes import CLUSTER_LABEL, ROLE_LABEL
from tests import nodeimage

CGROUP2 = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.procs").exists() \
    else Path("/sys/fs/cgroup")


@dataclass
class KindCluster:
    name: str
    nodes: list  # docker containers, control-plane first
    cgroup_parent: Path  # the test's own cgroup (cgroup2 path) the nodes' cgroups live under
    extra: list = field(default_factory=list)

    @property
    def control_plane(self):
        return self.nodes[0]

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    def api_address(self) -> tuple[str, int]:
        self.control_plane.reload()
        binding = self.control_plane.attrs["NetworkSettings"]["Ports"]["6443/tcp"][0]
        return binding["HostIp"], int(binding["HostPort"])

    def pid(self, node) -> int:
        node.reload()
        return node.attrs["State"]["Pid"]

    def node_cgroup(self, node) -> Path:
        """The node container's own cgroup (cgroup v2), as the host sees it."""
        for line in Path(f"/proc/{self.pid(node)}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return CGROUP2 / line[3:].lstrip("/")
        raise RuntimeError(f"{node.name} has no cgroup v2 path")

    def nsenter(self, node, *argv: str, cgroupns: bool = False) -> subprocess.CompletedProcess:
        """Run a command of the node's own filesystem in its mount namespace, as Cilium's init containers do."""
        ns = ["-m", "-C"] if cgroupns else ["-m"]
        return subprocess.run(["nsenter", "-t", str(self.pid(node)), *ns, *argv], capture_output=True, text=True,
                              check=True)

    def sh(self, node, script: str) -> str:
        result = node.exec_run(["sh", "-c", script], demux=True)
        out, err = (part.decode() if part else "" for part in result.output)
        if result.exit_code != 0:
            raise RuntimeError(f"{node.name}: {script!r} exited {result.exit_code}: {err}")
        return out



@dataclass
class KindLab:
    """Node containers plus the test API server answering where kind's would: at the address the
    control-plane container publishes for its port 6443 (tests/netnsbridge.py carries it to the server)."""

    cluster: KindCluster
    api: object  # tests.kubeapi.KubeApiServer
    bridge: object
    kubeconfig: Path  # the lab's context only, as `kind export kubeconfig` writes it

    @property
    def server(self) -> str:
        host, port = self.cluster.api_address()
        return f"https://{host}:{port}"

    def write_kubeconfig(self, path: Path, contexts: dict[str, str] | None = None, current: str | None = None) -> Path:
        """A kubeconfig with contexts (name -> server URL; the lab's context at the published address unless
        given), all trusting the test server's CA and carrying its token: whatever context a command picks,
        its requests would reach the test server and be recorded."""
        import base64

        contexts = contexts if contexts is not None else {self.cluster.context: self.server}
        ca = base64.b64encode(Path(self.api.ca).read_bytes()).decode()
        doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
               "current-context": current or next(iter(contexts)),
               "clusters": [{"name": name, "cluster": {"server": url, "certificate-authority-data": ca}}
                            for name, url in contexts.items()],
               "users": [{"name": name, "user": {"token": self.api.token}} for name in contexts],
               "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name in contexts]}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def close(self) -> None:
        self.bridge.close()


def connect(cluster: KindCluster, api, directory: Path, objs: list[dict] | None = None) -> KindLab:
    """The test API server behind the cluster's published API port, holding `objs` (by default the guide's
    cluster with Cilium running, for these node names)."""
    from tests.kubeapi import objects
    from tests.netnsbridge import Bridge

    api.add(*(objs if objs is not None else objects.kind_cluster(cluster=cluster.name)))
    bridge = Bridge(cluster.pid(cluster.control_plane), 6443, ("127.0.0.1", api.port))
    lab = KindLab(cluster, api, bridge, directory / "kubeconfig")
    lab.write_kubeconfig(lab.kubeconfig)
    return lab


class KindClusters:
    def __init__(self, client):
        self.client = client
        self.image = nodeimage.ensure(client)
        self.made: list[KindCluster] = []

    def create(self, workers: int = 2, prefix: str = "kl") -> KindCluster:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        parent = CGROUP2 / f"kindlab-test-{name}"
        parent.mkdir()
        cluster = KindCluster(name, [], parent)
        self.made.append(cluster)
        roles = ["control-plane"] + ["worker"] * workers
        names = [f"{name}-control-plane"] + [f"{name}-worker{i if i > 1 else ''}" for i in range(1, workers + 1)]
        for node_name, role in zip(names, roles):
            cluster.nodes.append(self.client.containers.run(
                self.image, name=node_name, hostname=node_name, detach=True,
                labels={CLUSTER_LABEL: name, ROLE_LABEL: role},
                cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],  # --privileged is refused on these machines
                cgroupns="private", cgroup_parent=f"/{parent.name}",
                ports={"6443/tcp": ("127.0.0.1", None)} if role == "control-plane" else {},
                tmpfs={"/tmp": "", "/run": ""}))
        return cluster

    def remove_all(self) -> None:
        for cluster in self.made:
            for node in cluster.nodes + cluster.extra:
                try:
                    node.remove(force=True)
                except Exception:
                    pass
            # docker made the same parent in every cgroup v1 hierarchy of a hybrid host
            for parent in [cluster.cgroup_parent, *Path("/sys/fs/cgroup").glob(f"*/{cluster.cgroup_parent.name}")]:
                _remove_cgroup_tree(parent)


def _remove_cgroup_tree(path: Path) -> None:
    if not path.exists():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            os.rmdir(child)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass
