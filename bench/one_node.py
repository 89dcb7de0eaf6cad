#!/usr/bin/env python3
"""One node at interactive speed: `tshoot map lookup ipcache IP --node N` against the guide's one
`kubectl exec … -- bpftool map lookup …` (real kubectl 1.34, scripts/install-kubectl), same server, same map,
measured side by side in one run.

The cluster is bench/all_nodes.py's (the tests' API server, every exec delayed by 50 ms, the exec running the
real bpftool on a real ipcache in a private bpffs). Target: tshoot <= 2 x kubectl (issue 18 item 6).
Needs root (a bpffs mount) and kubectl in the venv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import compare, tool_env, verdict  # noqa: E402
from bench.all_nodes import BIN, EXEC_LATENCY, running_cluster  # noqa: E402
from tshoot.maps import ipcache  # noqa: E402
from tshoot.core.version import parse  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", type=float, default=2.0)
    args = parser.parse_args()
    if not (BIN / "kubectl").exists():
        sys.exit("no kubectl in the venv: run scripts/install-kubectl")
    version = parse("1.19.4")
    pin = f"/sys/fs/bpf/tc/globals/{ipcache.MAP.pin(version).name}"
    key = ipcache.MAP.encode("key", {"prefix": "10.0.1.110/32", "family": "ipv4", "cluster_id": 0}, version)
    with running_cluster() as (server, nodes, kubeconfig):
        agent = next(p["metadata"]["name"] for p in server.list("pods", "cilium", "k8s-app=cilium")
                     if p["spec"]["nodeName"] == nodes[0])
        kubectl = [str(BIN / "kubectl"), "--kubeconfig", kubeconfig, "-n", "cilium", "exec", agent,
                   "-c", "cilium-agent", "--", "bpftool", "map", "lookup", "pinned", pin, "key", "hex",
                   *key.hex(" ").split()]
        tshoot = [str(BIN / "tshoot"), "map", "lookup", "ipcache", "10.0.1.110", "--node", nodes[0],
                  "--kubeconfig", kubeconfig]
        ratio, ref, tool = compare(kubectl, tshoot, args.runs, tool_env())
    print(f"kubectl exec bpftool map lookup: median {ref * 1000:.0f} ms; tshoot map lookup --node: median "
          f"{tool * 1000:.0f} ms (exec {EXEC_LATENCY * 1000:.0f} ms each, {args.runs} runs)")
    return verdict(ratio, args.target)


if __name__ == "__main__":
    sys.exit(main())
