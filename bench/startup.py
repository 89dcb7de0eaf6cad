#!/usr/bin/env python3
"""Start-up cost of an offline command and of `--help`, as ratios to a bare interpreter, measured in one run.

Alternates `tshoot key ipcache 10.244.1.5` with `python3 -c pass` (the same venv interpreter, so
site-packages start-up is on both sides) and prints the median ratio (target <= 2.5); then the same for the
help of commands of both programs (target <= 10: help loads the typer app, never a cluster library).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._timing import compare, tool_env, verdict  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--target", type=float, default=2.5)
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--help-target", type=float, default=10.0)
    parser.add_argument("command", nargs="*", default=["key", "ipcache", "10.244.1.5"])
    args = parser.parse_args()
    failed = _measure(["tshoot", *args.command], args.runs, args.target)
    for argv in HELP:
        failed |= _measure(argv, args.help_runs, args.help_target)
    return failed


HELP = [["tshoot", "--help"], ["tshoot", "key", "ipcache", "--help"], ["tshoot", "map", "dump", "ipcache", "--help"],
        ["tshoot", "walk", "--help"], ["tshoot", "identity", "list", "--help"], ["lab", "--help"],
        ["lab", "nuke", "pods", "--help"]]


def _measure(argv: list[str], runs: int, target: float) -> int:
    ratio, base, tool = compare([sys.executable, "-c", "pass"], [str(BIN / argv[0]), *argv[1:]], runs, tool_env())
    print(f"{' '.join(argv)}: median {tool * 1000:.1f} ms; python3 -c pass: median {base * 1000:.1f} ms")
    return verdict(ratio, target)


if __name__ == "__main__":
    sys.exit(main())
