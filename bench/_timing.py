"""What the map benchmarks share: a private bpffs, and timing a command against a reference in one run."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def tool_env(**extra) -> dict:
    """tshoot as installed: Python's bytecode cache on (the warm-up run writes it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


@contextlib.contextmanager
def private_bpffs(directory: Path):
    if os.geteuid() != 0:
        sys.exit(f"{sys.argv[0]} needs root (it mounts a private bpffs)")
    bpffs = directory / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    try:
        yield bpffs
    finally:
        subprocess.run(["umount", "-l", str(bpffs)], check=False)


def wall(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def measured(argv: list[str], env: dict) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MB, CPU seconds) of one run of argv: that child's alone (os.wait4's rusage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # ru_maxrss: kilobytes on Linux


def compare(reference: list[str], tool: list[str], runs: int, env: dict) -> tuple[float, float, float]:
    """(median of tool/reference ratios, median reference seconds, median tool seconds), alternating runs
    after one warm-up each, so that load changes hit both sides alike."""
    for argv in (reference, tool):
        wall(argv, env)
    ratios, refs, tools = [], [], []
    for _ in range(runs):
        r, t = wall(reference, env), wall(tool, env)
        refs.append(r)
        tools.append(t)
        ratios.append(t / r)
    return statistics.median(ratios), statistics.median(refs), statistics.median(tools)


def verdict(ratio: float, target: float) -> int:
    print(f"median ratio {ratio:.2f} (target <= {target})  {'OK' if ratio <= target else 'OVER TARGET'}")
    return 0 if ratio <= target else 1
