"""The tracer's BPF object: compiled at first use from the source that ships in the package
(tshoot/trace/bpf/trace.bpf.c), cached by the source's hash.

CO-RE makes one object right for every kernel with BTF (/sys/kernel/btf/vmlinux): libbpf relocates it at
load time, so it is compiled once per source version, not per kernel, and needs no kernel headers (which
is why this path runs where bcc cannot compile: bcc needs headers matching the running kernel).
Needs clang and libbpf's headers (Debian: apt-get install clang libbpf-dev).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

from tshoot.core.errors import TshootError

SOURCE = Path(__file__).resolve().parent / "bpf" / "trace.bpf.c"
INSTALL = "apt-get install clang libbpf-dev"
_ARCH = {"x86_64": ("x86", "x86_64-linux-gnu"), "aarch64": ("arm64", "aarch64-linux-gnu")}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kindlab" / "trace"


def object_path() -> Path:
    """The compiled object, compiled now if the cache has none for this source."""
    source = SOURCE.read_bytes()
    out = cache_dir() / f"trace-{hashlib.sha256(source).hexdigest()[:16]}.bpf.o"
    if out.exists():
        return out
    clang = shutil.which("clang")
    if clang is None:
        raise TshootError(f"tshoot trace compiles its BPF program at first use and clang is missing: {INSTALL}")
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        raise TshootError(f"tshoot trace needs libbpf's headers to compile its BPF program: {INSTALL}")
    arch, multiarch = _ARCH.get(platform.machine(), (platform.machine(), f"{platform.machine()}-linux-gnu"))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
                           "-I", f"/usr/include/{multiarch}", "-c", str(SOURCE), "-o", str(partial)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:200])
        raise TshootError(f"compiling {SOURCE.name} failed: {first} (is {INSTALL} done?)")
    partial.replace(out)  # atomic: a concurrent first use never loads a half-written object
    return out
