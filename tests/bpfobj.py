"""Compiling bpf/ sources with clang, once per test session (the objects land in a temp dir)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

BPF_DIR = Path(__file__).resolve().parent.parent / "bpf"
_ARCH_INCLUDE = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


def compile_bpf(source: Path, out: Path, defines: dict[str, str] | None = None) -> Path:
    """clang -O2 -g -target bpf: -g keeps BTF, which bpftool uses to print names and formatted values.
    `defines` become -DNAME=VALUE (the oracle takes -DCILIUM_VERSION)."""
    if shutil.which("clang") is None:
        raise RuntimeError("clang is not installed (make test installs it: scripts/install-test-deps)")
    out.parent.mkdir(parents=True, exist_ok=True)
    include = f"/usr/include/{_ARCH_INCLUDE.get(platform.machine(), platform.machine() + '-linux-gnu')}"
    proc = subprocess.run(
        ["clang", "-O2", "-g", "-target", "bpf", "-I", include, "-I", str(BPF_DIR / "include"),
         *(f"-D{name}={value}" for name, value in (defines or {}).items()),
         "-c", str(source), "-o", str(out)],
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"clang failed on {source.name}:\n{proc.stderr}")
    return out
