#!/usr/bin/env python3
"""Start-up cost of an offline command, as a ratio to a bare interpreter, measured in one run.

Alternates `tshoot key ipcache 10.0.1.110` with `python3 -c pass` (the same venv interpreter, so
site-packages start-up is on both sides) and prints the median ratio. Target (issue A): <= 2.5.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--target", type=float, default=2.5)
    parser.add_argument("command", nargs="*", default=["key", "ipcache", "10.0.1.110"])
    args = parser.parse_args()
    tool = [str(BIN / "tshoot"), *args.command]
    base = [sys.executable, "-c", "pass"]
    for argv in (tool, base):  # warm the page cache and .pyc files
        wall(argv)
    ratios, tools, bases = [], [], []
    for _ in range(args.runs):
        b, t = wall(base), wall(tool)
        bases.append(b)
        tools.append(t)
        ratios.append(t / b)
    ratio = statistics.median(ratios)
    print(f"tshoot {' '.join(args.command)}: median {statistics.median(tools) * 1000:.1f} ms; "
          f"python3 -c pass: median {statistics.median(bases) * 1000:.1f} ms")
    print(f"median ratio {ratio:.2f} (target <= {args.target})  {'OK' if ratio <= args.target else 'OVER TARGET'}")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
