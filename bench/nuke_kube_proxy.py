#!/usr/bin/env python3
"""`lab nuke kube-proxy` on 3 node containers against the guide's serial loop, as a ratio measured in one run.

Two identical 3-node kind-like clusters (tests/kindnodes.py, the locally built node image) are loaded with the
same realistic kube-proxy ruleset (IPv4 and IPv6, nft backend, the default of current kind nodes) before each
round. One side runs the guide's recipe, node after node:
    docker exec <node> bash -c 'iptables-restore <(iptables-save | grep -v KUBE)'
(without -it: it needs a TTY); the other runs what `lab nuke kube-proxy` does on the nodes: find them by
their kind labels, then lab.kubeproxy.clean_nodes (every backend and family, verified afterwards), all nodes
at once. The API part (deleting the DaemonSet and ConfigMap) is left out on both sides: the guide's kubectl
calls are not in its loop either. Rounds alternate which side goes first. Target: median <= 0.5.
Needs root and the Docker engine (started when it is not running).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._timing import verdict  # noqa: E402
from lab import kubeproxy  # noqa: E402
from lab.nodes import docker_client, node_containers  # noqa: E402
from tests import dockerd, kuberules  # noqa: E402
from tests.kindnodes import KindClusters  # noqa: E402

GUIDE = "iptables-restore <(iptables-save | grep -v KUBE)"


def load(cluster) -> None:
    script = "".join(f"{family}-nft-restore <<'EOF'\n{kuberules.restore_text(family)}EOF\n"
                     for family in ("iptables", "ip6tables"))
    for node in cluster.nodes:
        cluster.sh(node, script)


def guide(cluster) -> float:
    start = time.perf_counter()
    for node in cluster.nodes:
        subprocess.run(["docker", "exec", node.name, "bash", "-c", GUIDE], check=True)
    return time.perf_counter() - start


def ours(cluster) -> float:
    start = time.perf_counter()
    # kube-proxy's ConfigMap says iptables mode here (the guide's), so the command does not look for its
    # nftables-mode tables (lab.kubeproxy.proxy_mode).
    reports = kubeproxy.clean_nodes(node_containers(cluster.name, docker_client()), nftables=False)
    elapsed = time.perf_counter() - start
    failed = [r for r in reports if r.error or not r.rules]
    if failed:
        raise SystemExit(f"lab nuke kube-proxy did not clean every node: {failed}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--target", type=float, default=0.5)
    args = parser.parse_args()
    dockerd.ensure()
    client = docker_client()
    clusters = KindClusters(client)
    try:
        mine, theirs = clusters.create(workers=2, prefix="klbench"), clusters.create(workers=2, prefix="klbench")
        ratios, ours_t, guide_t = [], [], []
        for i in range(args.rounds + 1):
            load(mine)
            load(theirs)
            if i % 2:
                g, o = guide(theirs), ours(mine)
            else:
                o, g = ours(mine), guide(theirs)
            if i == 0:
                continue  # warm-up: page cache, imports, the engine's first execs
            ours_t.append(o)
            guide_t.append(g)
            ratios.append(o / g)
    finally:
        clusters.remove_all()
    ratio = statistics.median(ratios)
    print(f"lab nuke kube-proxy (3 nodes, concurrent, v4+v6, verified): median {statistics.median(ours_t) * 1000:.0f} ms; "
          f"guide's serial docker exec loop (v4 only): median {statistics.median(guide_t) * 1000:.0f} ms")
    return verdict(ratio, args.target)


if __name__ == "__main__":
    sys.exit(main())
