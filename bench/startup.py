#!/usr/bin/env python3
"""Start-up cost of an offline command, as a ratio to a bare interpreter, measured in one run.

Alternates `tshoot key ipcache 10.0.1.110` with `python3 -c pass` (the same venv interpreter, so
site-packages start-up is on both sides) and prints the median ratio. Target: <= 2.5.
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
    parser.add_argument("command", nargs="*", default=["key", "ipcache", "10.0.1.110"])
    args = parser.parse_args()
    ratio, base, tool = compare([sys.executable, "-c", "pass"], [str(BIN / "tshoot"), *args.command], args.runs,
                                tool_env())
    print(f"tshoot {' '.join(args.command)}: median {tool * 1000:.1f} ms; python3 -c pass: median {base * 1000:.1f} ms")
    return verdict(ratio, args.target)


if __name__ == "__main__":
    sys.exit(main())
