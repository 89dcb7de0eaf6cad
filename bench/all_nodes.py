#!/usr/bin/env python3
"""`tshoot map lookup --all-nodes` over 20 nodes against the same lookup on one node, measured in one run.

A cluster of 20 simulated nodes served by the tests' local Kubernetes API server (tests/kubeapi): one
Cilium agent per node, every exec delayed by 50 ms (a remote API server and a busy kubelet), the exec
running the real bpftool on a real ipcache in a private bpffs. Alternates
    tshoot map lookup ipcache 10.0.1.110 --node node-01
    tshoot map lookup ipcache 10.0.1.110 --all-nodes
and prints the median ratio. Target: <= 2 (the nodes are read at once, not one after another).
Needs root (a bpffs mount).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import compare, private_bpffs, tool_env, verdict  # noqa: E402
from tests.kubeapi import KubeApiServer, NodeExec, SimNode  # noqa: E402
from tests.kubeapi import objects  # noqa: E402
from tests.kubeapi.tls import make_certs  # noqa: E402
from tests.pinned import create_for, fill  # noqa: E402
from tshoot.maps import ipcache  # noqa: E402
from tshoot.core.version import parse  # noqa: E402

BIN = Path(sys.executable).parent
NODES = 20
EXEC_LATENCY = 0.05


def cluster(server: KubeApiServer, bpffs: Path) -> list[str]:
    specs = [objects.NodeSpec(f"node-{i:02d}", "worker", f"172.18.1.{i}", f"10.1.{i}.0/24", f"10.244.{i}.0/24",
                              f"10.1.{i}.1", f"10.1.{i}.2") for i in range(1, NODES + 1)]
    server.add(*[objects.node(s) for s in specs], *objects.cilium_crds(),
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cilium"}},
               *objects.agent_pods(specs, "1.19.4"))
    server.exec_handler = NodeExec(server, {s.name: SimNode(None, bpffs) for s in specs})
    server.exec_latency = EXEC_LATENCY
    v = parse("1.19.4")
    fill(create_for(bpffs, ipcache.MAP, v), [(
        ipcache.MAP.encode("key", {"prefix": "10.0.1.110/32", "family": "ipv4", "cluster_id": 0}, v),
        ipcache.MAP.encode("value", {"identity": 53731, "tunnel_endpoint": "172.18.1.1", "encrypt_key": 0,
                                     "flags": ["hastunnel"]}, v))])
    return [s.name for s in specs]


@contextlib.contextmanager
def running_cluster():
    """The cluster above, served over TLS in a private bpffs: (server, node names, kubeconfig path)."""
    with tempfile.TemporaryDirectory(prefix="kindlab-bench-") as tmp, private_bpffs(Path(tmp)) as bpffs:
        cert, key, ca = make_certs(Path(tmp))
        server = KubeApiServer(tls=(cert, key), ca=ca).start()
        try:
            nodes = cluster(server, bpffs)
            yield server, nodes, str(server.write_kubeconfig(Path(tmp) / "kubeconfig"))
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", type=float, default=2.0)
    args = parser.parse_args()
    with running_cluster() as (_, nodes, kubeconfig):
        base = [str(BIN / "tshoot"), "map", "lookup", "ipcache", "10.0.1.110", "--kubeconfig", kubeconfig]
        ratio, one, every = compare(base + ["--node", nodes[0]], base + ["--all-nodes"], args.runs, tool_env())
    print(f"lookup on 1 node: median {one * 1000:.0f} ms; on all {NODES} nodes "
          f"(exec {EXEC_LATENCY * 1000:.0f} ms each): median {every * 1000:.0f} ms")
    return verdict(ratio, args.target)


if __name__ == "__main__":
    sys.exit(main())
