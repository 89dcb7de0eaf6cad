"""The kind-node stand-in image the tests build locally (no registry is reachable here).

A rootfs tarball assembled from this machine's own binaries (bash, coreutils, grep, ip, nft, and iptables with
both its nft and legacy backends, the way kindest/node ships them) and their shared libraries, loaded
with `docker import`. It is tagged by a hash of everything that went into it, so a machine builds it
once (about a second) and later runs reuse it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

REPOSITORY = "kindlab-test-node"

TOOLS = ["bash", "sh", "cat", "rm", "mkdir", "ls", "sleep", "grep", "sed", "true", "false", "env", "touch", "stat",
         "chmod", "mount", "umount",
         "nft",  # kind ships nftables since v0.23 (kube-proxy's nftables mode)
         "ip",
         "socat"]  # kind's base image installs it; lab check connectivity's world container runs it
# Every name kindest/node has for iptables; the -multi binaries pick their backend and mode from argv[0].
XTABLES = {
    "xtables-nft-multi": [f"{fam}tables-nft{suffix}" for fam in ("ip", "ip6") for suffix in ("", "-save", "-restore")],
    "xtables-legacy-multi": [f"{fam}tables-legacy{suffix}" for fam in ("ip", "ip6")
                             for suffix in ("", "-save", "-restore")],
}
# Like kind's iptables-wrapper after it settled on nft (kind >= 0.20 on a modern host).
DEFAULT_BACKEND = "xtables-nft-multi"
PLAIN_NAMES = [f"{fam}tables{suffix}" for fam in ("ip", "ip6") for suffix in ("", "-save", "-restore")]
ETC_FILES = ["/etc/protocols", "/etc/services", "/etc/ethertypes", "/etc/nsswitch.conf"]
XTABLES_MODULES = Path("/usr/lib/x86_64-linux-gnu/xtables")


def _usr(path: str) -> str:
    """The /usr path of a file on a merged-/usr system (/lib/x -> /usr/lib/x), as it is stored in the image."""
    for top in ("/lib64/", "/lib/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "/usr" + path
    return path


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return {m.group(1) for m in re.finditer(r"(/\S+) \(0x", out)}


def _contents() -> dict[str, str]:
    """image path -> host file whose bytes go there."""
    files: dict[str, str] = {}
    binaries = []
    for tool in TOOLS + list(XTABLES):
        found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if found is None:
            raise RuntimeError(f"{tool} is not installed on this machine (scripts/install-test-deps installs it)")
        binaries.append(found)
        files[_usr(found)] = os.path.realpath(found)
    modules = sorted(str(p) for p in XTABLES_MODULES.glob("*.so")) if XTABLES_MODULES.is_dir() else []
    for module in modules:
        files[module] = os.path.realpath(module)
    for binary in binaries + modules:
        for lib in _libraries(binary):
            files[_usr(lib)] = os.path.realpath(lib)
    for etc in ETC_FILES:
        if os.path.exists(etc):
            files[etc] = os.path.realpath(etc)
    return files


def _tag(files: dict[str, str]) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for dest, src in sorted(files.items()):
        st = os.stat(src)
        digest.update(f"{dest}\0{src}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_link(name: str, target: str) -> None:
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)

        for d in ("/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/etc", "/run", "/var", "/var/run",
                  "/proc", "/sys", "/dev", "/root"):
            add_dir(d)
        add_dir("/tmp", 0o1777)
        for top in ("bin", "sbin", "lib", "lib64"):
            add_link(f"/{top}", f"usr/{top}")
        made = set()
        for dest in sorted(files):
            parent = os.path.dirname(dest)
            parts = parent.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                d = "/" + "/".join(parts[:i])
                if d not in made and d not in ("/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/etc"):
                    add_dir(d)
                made.add(d)
            tar.add(files[dest], arcname=dest.lstrip("/"), recursive=False)
        for multi, names in XTABLES.items():
            for name in names:
                add_link(f"/usr/sbin/{name}", multi)
        for name in PLAIN_NAMES:
            add_link(f"/usr/sbin/{name}", DEFAULT_BACKEND)
    return buf.getvalue()


def ensure(client) -> str:
    """The image's reference, built now unless this machine already has it."""
    from docker.errors import ImageNotFound

    files = _contents()
    ref = f"{REPOSITORY}:{_tag(files)}"
    try:
        client.images.get(ref)
        return ref
    except ImageNotFound:
        pass
    repository, tag = ref.split(":")
    client.api.import_image_from_data(_tarball(files), repository=repository, tag=tag,
                                      changes=['CMD ["sleep", "infinity"]'])
    client.images.get(ref)  # raises if the import did not produce it
    return ref
