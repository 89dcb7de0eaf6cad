#!/usr/bin/env python3
"""Dumping a full 512k-entry conntrack map (issue 18 item 4), locally and through an agent, in bounded memory.

Builds cilium_ct4_global (Cilium 1.19.4 geometry) with 512k entries in a private bpffs, serves it to a
one-node cluster of the tests' API server (exec latency 50 ms, tests.kubeapi.SharedBpffsExec), then alternates
    bpftool -j map dump pinned …/cilium_ct4_global                 (reference: raw hex, no decoding)
    tshoot map dump ct4 -o json --backend local --bpffs …           (decoded, libbpf batch reads)
    tshoot map dump ct4 -o json --node node-001                     (decoded, bpftool -j in the agent)
and prints the median ratios and the peak RSS of tshoot and of the renderers it forks (tshoot.mapio.forkmap).
Targets: each <= 1 x bpftool, peak RSS of every process < 400 MB. With kubectl in the venv it also times
    kubectl exec … -- bpftool -j map dump pinned …                  (the same text moved, not read)
the floor of any dump through an agent here: the test server runs bpftool to its end before it sends a byte.
Needs root (a bpffs mount).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import Run, measured, private_bpffs, tool_env  # noqa: E402
from bench.scale import VERSION, cluster  # noqa: E402
from tests.kubeapi import KubeApiServer, SharedBpffsExec  # noqa: E402
from tests.kubeapi.tls import make_certs  # noqa: E402
from tests.pinned import create_for, fill  # noqa: E402
from tshoot.cluster.cilium import AGENT_CONTAINER, AGENT_LABEL  # noqa: E402
from tshoot.core.version import parse  # noqa: E402
from tshoot.maps import find  # noqa: E402

BIN = Path(sys.executable).parent
ENTRIES = 512 * 1024
TARGET, RSS_LIMIT_MB = 1.0, 400


def build(bpffs: Path) -> Path:
    cmap, _ = find("ct4")
    v = parse(VERSION)
    value_size = cmap.layout_for("value", v).size
    # room above the entries: an LRU map evicts before it is quite full
    path = create_for(bpffs, cmap, v, max_entries=ENTRIES + ENTRIES // 8)
    def entry(i: int) -> tuple[bytes, bytes]:
        # distinct tuples (struct ipv4_ct_tuple: daddr, saddr, dport, sport, nexthdr, flags), TCP
        key = (0x0A000000 + i).to_bytes(4, "big") + (0x0A800000 + i % 65536).to_bytes(4, "big") \
            + (80).to_bytes(2, "big") + (1024 + i % 60000).to_bytes(2, "big") + b"\x06\x00"
        return key, (i % 1000).to_bytes(8, "little") * 4 + bytes(value_size - 32)

    fill(path, (entry(i) for i in range(ENTRIES)))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = tool_env()
    with tempfile.TemporaryDirectory(prefix="kindlab-bench-") as tmp, private_bpffs(Path(tmp)) as bpffs:
        path = build(bpffs)
        cert, key, ca = make_certs(Path(tmp))
        server = KubeApiServer(tls=(cert, key), ca=ca).start()
        try:
            cluster(server, bpffs, 1)
            kubeconfig = str(server.write_kubeconfig(Path(tmp) / "kubeconfig"))
            reference = ["bpftool", "-j", "map", "dump", "pinned", str(path)]
            dump = [str(BIN / "tshoot"), "map", "dump", "ct4", "-o", "json"]
            tools = {"local": dump + ["--backend", "local", "--bpffs", str(bpffs), "--cilium-version", VERSION],
                     "agent": dump + ["--node", "node-001", "--kubeconfig", kubeconfig]}
            floor = None
            if (BIN / "kubectl").exists():
                agent = next(p["metadata"]["name"] for p in server.list("pods", "cilium", AGENT_LABEL))
                floor = [str(BIN / "kubectl"), "--kubeconfig", kubeconfig, "-n", "cilium", "exec", agent, "-c",
                         AGENT_CONTAINER, "--", *reference[:-1], f"{SharedBpffsExec.AGENT_BPFFS}/{path.relative_to(bpffs)}"]
                tools["kubectl exec"] = floor
            for argv in (reference, *tools.values()):
                measured(argv, env)  # warm-up
            ratios: dict[str, list[float]] = {name: [] for name in tools}
            runs: dict[str, list[Run]] = {name: [] for name in tools}
            refs: list[Run] = []
            for _ in range(args.runs):
                refs.append(measured(reference, env))
                ref = refs[-1].seconds
                for name, argv in tools.items():
                    run = measured(argv, env)
                    ratios[name].append(run.seconds / ref)
                    runs[name].append(run)
        finally:
            server.stop()
    failed = False
    print(f"bpftool -j map dump of {ENTRIES} ct entries: median {statistics.median(r.seconds for r in refs):.2f} s "
          f"(CPU {statistics.median(r.cpu for r in refs):.2f} s)")
    for name in tools:
        ratio = statistics.median(ratios[name])
        if tools[name] is floor:
            print(f"kubectl exec … bpftool -j map dump (the text moved, not read: the floor through an agent): "
                  f"median ratio {ratio:.2f} (runs {', '.join(f'{r:.2f}' for r in ratios[name])})")
            continue
        peak = max(r.peak_mb for r in runs[name])
        ok = ratio <= TARGET and peak < RSS_LIMIT_MB
        failed |= not ok
        print(f"tshoot map dump ct4 -o json ({name}): median ratio {ratio:.2f} (target <= {TARGET}; runs "
              f"{', '.join(f'{r:.2f}' for r in ratios[name])}; CPU of tshoot and its renderers "
              f"{statistics.median(r.cpu for r in runs[name]):.2f} s), peak RSS {peak:.0f} MB (limit {RSS_LIMIT_MB}: "
              f"tshoot {max(r.main_mb for r in runs[name]):.0f} MB, its renderers "
              f"{max(r.workers_mb for r in runs[name]):.0f} MB, sampled); {'OK' if ok else 'OVER TARGET'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
