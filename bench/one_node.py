#!/usr/bin/env python3
"""One node at interactive speed (issue 18 item 6), measured side by side in one run on the same server and
map: the guide's one `kubectl exec … -- bpftool map lookup …` (real kubectl 1.34, scripts/install-kubectl)
against
    tshoot map lookup ipcache 10.0.1.110 --node k8s-guide-worker      target <= 2 x kubectl
    tshoot walk net-tshoot-xbw6q 10.0.1.110                           target <= 5 x kubectl (two nodes)

The cluster is the tests' simulated one (tests/simdatapath.py: the guide's three nodes, their datapath
loaded in the kernel, behind the tests' API server), every exec delayed by 50 ms (a remote API server and a
busy kubelet). Needs root, clang, tc, bpftool, iptables, and kubectl in the venv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import measured, tool_env  # noqa: E402
from tests import simdatapath  # noqa: E402
from tests.bpfobj import BPF_DIR, compile_bpf  # noqa: E402
from tests.kubeapi import KubeApiServer  # noqa: E402
from tests.kubeapi.tls import make_certs  # noqa: E402
from tshoot.core.version import parse  # noqa: E402
from tshoot.maps import ipcache  # noqa: E402

BIN = Path(sys.executable).parent
EXEC_LATENCY = 0.05
VERSION = "1.19.4"
NODE, SOURCE, ADDRESS = "k8s-guide-worker", "net-tshoot-xbw6q", "10.0.1.110"
TARGETS = {"lookup": 2.0, "walk": 5.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (BIN / "kubectl").exists():
        sys.exit("no kubectl in the venv: run scripts/install-kubectl")
    version = parse(VERSION)
    pin = f"/sys/fs/bpf/tc/globals/{ipcache.MAP.pin(version).name}"
    key = ipcache.MAP.encode("key", {"prefix": f"{ADDRESS}/32", "family": "ipv4", "cluster_id": 0}, version)
    env = tool_env()
    with tempfile.TemporaryDirectory(prefix="kindlab-bench-") as tmp:
        work = Path(tmp)
        objs = {src.name.removesuffix(".bpf.c"): compile_bpf(src, work / "bpf" / (src.name.removesuffix(".bpf.c") + ".o"))
                for src in sorted((BPF_DIR / "progs").glob("*.bpf.c"))}
        cert, key_file, ca = make_certs(work)
        server = KubeApiServer(tls=(cert, key_file), ca=ca).start()
        sim = None
        try:
            sim = simdatapath.start(simdatapath.guide_scenario(VERSION), server, work, objs)
            server.exec_latency = EXEC_LATENCY
            kubeconfig = str(server.write_kubeconfig(work / "kubeconfig"))
            agent = next(p["metadata"]["name"] for p in server.list("pods", "cilium", "k8s-app=cilium")
                         if p["spec"]["nodeName"] == NODE)
            kubectl = [str(BIN / "kubectl"), "--kubeconfig", kubeconfig, "-n", "cilium", "exec", agent,
                       "-c", "cilium-agent", "--", "bpftool", "map", "lookup", "pinned", pin, "key", "hex",
                       *key.hex(" ").split()]
            tshoot = {"lookup": [str(BIN / "tshoot"), "map", "lookup", "ipcache", ADDRESS, "--node", NODE,
                                 "--kubeconfig", kubeconfig],
                      "walk": [str(BIN / "tshoot"), "walk", SOURCE, ADDRESS, "--kubeconfig", kubeconfig]}
            for argv in (kubectl, *tshoot.values()):
                measured(argv, env)  # warm-up
            refs, ratios = [], {name: [] for name in tshoot}
            walls = {name: [] for name in tshoot}
            for _ in range(args.runs):
                ref = measured(kubectl, env)[0]
                refs.append(ref)
                for name, argv in tshoot.items():
                    seconds = measured(argv, env)[0]
                    walls[name].append(seconds)
                    ratios[name].append(seconds / ref)
        finally:
            if sim is not None:
                sim.teardown()
            server.stop()
    print(f"kubectl exec … bpftool map lookup: median {statistics.median(refs) * 1000:.0f} ms "
          f"(exec {EXEC_LATENCY * 1000:.0f} ms each, {args.runs} runs)")
    failed = False
    for name, target in TARGETS.items():
        ratio = statistics.median(ratios[name])
        failed |= ratio > target
        print(f"tshoot {name}: median {statistics.median(walls[name]) * 1000:.0f} ms, median ratio {ratio:.2f} "
              f"(target <= {target})  {'OK' if ratio <= target else 'OVER TARGET'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
