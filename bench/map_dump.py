#!/usr/bin/env python3
"""Dumping a 100k-entry ipcache decoded, against bpftool dumping it as raw hex, measured in one run.

Builds a cilium_ipcache LPM trie (Cilium 1.17 geometry: 24-byte keys, 12-byte values) in a private bpffs
with entries shaped like a large cluster's: pod addresses spread over ~900 nodes with the identities of
3000 workloads (so values rarely repeat), node addresses, CIDR identities and the world prefix. Then
alternates
    bpftool -j map dump pinned …/cilium_ipcache                       (reference: raw hex, no decoding)
    tshoot map dump ipcache -o json --backend local --bpffs …          (decoded fields, one object per entry)
and prints the median ratio. Target: <= 0.8. Needs root (a bpffs mount).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import compare, private_bpffs, tool_env, verdict  # noqa: E402

BIN = Path(sys.executable).parent
ENTRIES = 100_000


def ipcache_entries(count: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """(key, value) bytes of a realistic ipcache: mostly pod /32s, then nodes, CIDRs and the world."""
    rng = random.Random(seed)

    def key(address: int, plen: int) -> bytes:
        return (32 + plen).to_bytes(4, "little") + b"\0\0\0\x01" + address.to_bytes(4, "big") + bytes(12)

    def value(identity: int, tunnel: int | None) -> bytes:
        return identity.to_bytes(4, "little") + (tunnel.to_bytes(4, "big") if tunnel else bytes(4)) + bytes(4)

    nodes = [0xAC120000 + 2 + n for n in range(900)]  # 172.18.0.2 …
    out = [(key(0, 0), value(2, None))]  # 0.0.0.0/0 -> reserved:world
    out += [(key(ip, 32), value(6, None)) for ip in nodes]  # remote nodes
    cidrs = count // 100
    out += [(key(0xC0000000 + (i << 8), 24), value(16777217 + i, None)) for i in range(cidrs)]  # CIDR identities
    pods = count - len(out)
    for i in range(pods):
        workload = rng.randrange(3000)
        out.append((key(0x0A000000 + i, 32), value(256 + workload * 7, nodes[rng.randrange(len(nodes))])))
    return out


def build_map(bpffs: Path) -> Path:
    path = bpffs / "tc" / "globals" / "cilium_ipcache"
    path.parent.mkdir(parents=True)
    subprocess.run(["bpftool", "map", "create", str(path), "type", "lpm_trie", "key", "24", "value", "12",
                    "entries", "512000", "name", "cilium_ipcache", "flags", "1"], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
        for k, v in ipcache_entries(ENTRIES):
            batch.write(f"map update pinned {path} key hex {k.hex(' ')} value hex {v.hex(' ')}\n")
        batch.flush()
        subprocess.run(["bpftool", "batch", "file", batch.name], check=True, stdout=subprocess.DEVNULL)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--target", type=float, default=0.8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kindlab-bench-") as tmp, private_bpffs(Path(tmp)) as bpffs:
        path = build_map(bpffs)
        reference = ["bpftool", "-j", "map", "dump", "pinned", str(path)]
        tool = [str(BIN / "tshoot"), "map", "dump", "ipcache", "-o", "json", "--backend", "local", "--bpffs", str(bpffs)]
        # No kubeconfig: nothing to enrich from, so the run measures reading and decoding.
        ratio, ref, took = compare(reference, tool, args.runs, tool_env(HOME=tmp, KUBECONFIG=""))
    print(f"tshoot map dump ipcache -o json ({ENTRIES} entries): median {took * 1000:.0f} ms; "
          f"bpftool -j map dump: median {ref * 1000:.0f} ms")
    return verdict(ratio, args.target)


if __name__ == "__main__":
    sys.exit(main())
