"""What the map benchmarks share: a private bpffs, and timing a command against a reference in one run."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple


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


class Run(NamedTuple):
    """One run of a command: wall and CPU seconds, and peak RSS in MB of every process it ran (`peak_mb`), of
    the command's own process (`main_mb`) and of the processes it started (`workers_mb`, 0 without any)."""

    seconds: float
    peak_mb: float
    cpu: float
    main_mb: float
    workers_mb: float


# Runs the command from a small process and says (wall, ru_maxrss KB, CPU) of it and its descendants (wait4's
# rusage). The command is not started from the benchmark itself: a process's ru_maxrss keeps the peak of the
# memory it was forked with until its exec (the kernel folds the old mm's high-water mark into it), and this
# process holds the benchmark's maps and API server, hundreds of MB that the command never used.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(argv: list[str], env: dict) -> Run:
    """One run of argv (stdout discarded). The peak of each process is also sampled from /proc (VmHWM, every
    few ms), to tell the command's own process from the processes it forks (a sample can only miss the last
    few ms of growth: the exact peak of them all is `peak_mb`)."""
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    peaks: dict[int, int] = {}
    main: set[int] = set()
    done = threading.Event()
    sampler = threading.Thread(target=_sample_peaks, args=(proc.pid, peaks, main, done), daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    *output, summary = err.decode().splitlines() or [""]
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, stderr="\n".join(output))
    sys.stderr.write("".join(line + "\n" for line in output))
    seconds, maxrss, cpu = (float(x) for x in summary.split())
    mains = [kb for pid, kb in peaks.items() if pid in main]
    workers = [kb for pid, kb in peaks.items() if pid not in main]
    return Run(seconds, maxrss / 1024, cpu, max(mains, default=0) / 1024, max(workers, default=0) / 1024)


def _sample_peaks(launcher: int, peaks: dict[int, int], main: set[int], done: threading.Event) -> None:
    """VmHWM (KB) of every descendant of `launcher`, by pid, until `done`; `main`: the launcher's children."""
    while not done.wait(0.005):
        main.update(_children(launcher))
        for pid in _descendants(launcher):
            try:
                with open(f"/proc/{pid}/status") as f:
                    hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
            except (OSError, ValueError):
                continue  # gone, or a zombie (no memory left to show)
            peaks[pid] = max(peaks.get(pid, 0), hwm)


def _children(pid: int) -> list[int]:
    """The children of every thread of pid (a fork is its thread's child)."""
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass  # gone meanwhile
    return out


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        out += children
        todo += children
    return out


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
