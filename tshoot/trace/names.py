"""Whose network namespace an event happened in: the host, a named netns (`ip netns`), a kind node (a docker
container), or a pod's namespace inside a node (the node's own /run/netns/cni-…), by the namespace's inode.

Inodes are reused as soon as a namespace dies (tracing.md §3), so the table is rebuilt when an event names
an inode it does not know (at most once a second). `/proc/1/ns/net` may be unreadable (a sandbox's PID 1):
every read tolerates EACCES. Pod netns are found through the node's root (/proc/NODEPID/root/run/netns),
never through /var/run, whose absolute symlink would resolve on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

HOST = "host"
NETNS_DIR = "/run/netns"
REFRESH = 5.0  # seconds between rebuilds for unknown inodes (a rebuild asks docker: it costs CPU)


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _named(directory: str, prefix: str = "") -> dict[int, dict]:
    out = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        inode = _inode(os.path.join(directory, name))
        if inode is not None:
            out[inode] = {"name": f"{prefix}{name}", "path": os.path.join(directory, name)}
    return out


def _containers() -> list[tuple[str, int]]:
    """(name, pid) of running docker containers (kind nodes are), when docker is here."""
    if shutil.which("docker") is None:
        return []
    try:
        ids = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True, timeout=10).stdout.split()
        if not ids:
            return []
        shown = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, timeout=10).stdout
        return [(c["Name"].lstrip("/"), c["State"]["Pid"]) for c in json.loads(shown or "[]") if c["State"]["Pid"]]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return []


class Namespaces:
    """inode -> {"name", "path" (to enter it), "node" (a kind node's name, for its pods)}."""

    def __init__(self):
        self.table: dict[int, dict] = {}
        self._built = 0.0
        self._unknown: set[int] = set()
        self.rebuild()

    def rebuild(self) -> None:
        table = {}
        host = _inode("/proc/self/ns/net")
        for name, pid in _containers():
            inode = _inode(f"/proc/{pid}/ns/net")
            if inode is not None:
                table[inode] = {"name": name, "path": f"/proc/{pid}/ns/net", "node": name}
            for pod_inode, pod in _named(f"/proc/{pid}/root{NETNS_DIR}", f"{name}/").items():
                table.setdefault(pod_inode, {**pod, "node": name})
        for inode, named in _named(NETNS_DIR).items():
            table.setdefault(inode, named)
        if host is not None:
            table[host] = {"name": HOST, "path": None}
        self.table, self._built, self._unknown = table, time.monotonic(), set()

    def lookup(self, inode: int) -> dict:
        """0: no device (an skb freed before or after it had one), named by nothing."""
        if inode and inode not in self.table and inode not in self._unknown:
            if time.monotonic() - self._built > REFRESH:
                self.rebuild()
            if inode not in self.table:
                self._unknown.add(inode)  # asked again only after the next rebuild
        return self.table.get(inode) or {"name": f"netns:{inode}" if inode else "-", "path": None}
