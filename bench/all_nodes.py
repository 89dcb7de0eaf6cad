#!/usr/bin/env python3
"""`tshoot map lookup --all-nodes` over 20 nodes against the same lookup on one node, measured in one run.

A cluster of 20 simulated nodes served by the tests' local Kubernetes API server (tests/kubeapi): one
Cilium agent per node, every exec delayed by 50 ms (a remote API server and a busy kubelet), the exec
running the real bpftool on a real ipcache in a private bpffs. Alternates
    tshoot map lookup ipcache 10.0.1.110 --node node-01
    tshoot map lookup ipcache 10.0.1.110 --all-nodes
and prints the median ratio. Target (issue C): <= 2 (the nodes are read at once, not one after another).
Needs root (a bpffs mount).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kubeapi import KubeApiServer, NodeExec, SimNode  # noqa: E402
from tests.kubeapi import objects  # noqa: E402
from tests.kubeapi.tls import make_certs  # noqa: E402
from tests.pinned import create_for, fill  # noqa: E402
from tshoot.maps import ipcache  # noqa: E402
from tshoot.version import parse  # noqa: E402

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


def wall(argv: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: bytecode cached
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", type=float, default=2.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/all_nodes.py needs root (it mounts a private bpffs)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kindlab-bench-") as tmp:
        bpffs = Path(tmp) / "bpffs"
        bpffs.mkdir()
        subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
        cert, key, ca = make_certs(Path(tmp))
        server = KubeApiServer(tls=(cert, key), ca=ca).start()
        try:
            nodes = cluster(server, bpffs)
            kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
            base = [str(BIN / "tshoot"), "map", "lookup", "ipcache", "10.0.1.110", "--kubeconfig", str(kubeconfig)]
            one, every = base + ["--node", nodes[0]], base + ["--all-nodes"]
            for argv in (one, every):  # warm caches
                wall(argv)
            ratios, ones, alls = [], [], []
            for _ in range(args.runs):
                o, a = wall(one), wall(every)
                ones.append(o)
                alls.append(a)
                ratios.append(a / o)
        finally:
            server.stop()
            subprocess.run(["umount", "-l", str(bpffs)], check=False)
    ratio = statistics.median(ratios)
    print(f"lookup on 1 node: median {statistics.median(ones) * 1000:.0f} ms; on all {NODES} nodes "
          f"(exec {EXEC_LATENCY * 1000:.0f} ms each): median {statistics.median(alls) * 1000:.0f} ms")
    print(f"median ratio {ratio:.2f} (target <= {args.target})  {'OK' if ratio <= args.target else 'OVER TARGET'}")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
