"""The local backend: this machine's pinned Cilium maps, read through libbpf (as root, on a node).

Lookups are the kernel's own (`bpf_map_lookup_elem`), so an LPM trie answers with its longest prefix,
as the datapath's lookup does. Dumps use BPF_MAP_LOOKUP_BATCH (one syscall per 16k entries) where the
kernel offers it for the map type, and walk key by key otherwise; neither starts a subprocess.
"""

from __future__ import annotations

import errno
import os
import shlex
import socket
import subprocess

from tshoot.core.errors import TshootError
from tshoot.node.backend import (PER_CPU_TYPES, PIN_DIR, PROG_ARRAY, TIMER_LIST, Backend, Entries, MapInfo, NotPinned,
                                 clocks_from_timer_list)
from tshoot.node import libbpf


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, bpffs: str, version=None, netns: str | None = None):
        self.bpffs = bpffs.rstrip("/") or "/"
        self.node = socket.gethostname()
        self.version = version
        self.netns = netns  # the node's network namespace: where its ifindexes mean something (None: ours)
        self._open: dict[str, tuple[int, MapInfo]] = {}

    def pin_path(self, name: str) -> str:
        return f"{self.bpffs}/{PIN_DIR}/{name}"

    def _fd(self, name: str) -> tuple[int, MapInfo]:
        if name not in self._open:
            path = self.pin_path(name)
            try:
                fd = libbpf.obj_get(path)
            except OSError as exc:
                error = NotPinned if exc.errno == errno.ENOENT and os.path.isdir(self.bpffs) else TshootError
                raise error(self._explain(exc, name, path)) from None
            try:
                raw = libbpf.map_info(fd)
            except OSError:
                os.close(fd)
                raise TshootError(f"{path} is pinned but is not a BPF map") from None
            info = MapInfo(
                name=name, path=path, map_type=libbpf.type_name(libbpf.MAP_TYPES, raw.type), key_size=raw.key_size,
                value_size=raw.value_size, max_entries=raw.max_entries, flags=raw.map_flags, map_id=raw.id,
                btf_id=raw.btf_id, btf_key_type_id=raw.btf_key_type_id, btf_value_type_id=raw.btf_value_type_id)
            self._open[name] = (fd, info)
        return self._open[name]

    def _explain(self, exc: OSError, name: str, path: str) -> str:
        if exc.errno == errno.ENOENT:
            if not os.path.isdir(self.bpffs):
                return f"--bpffs {self.bpffs}: no such directory (Cilium mounts its BPF filesystem at /sys/fs/bpf)"
            return (f"map {name} is not pinned at {path} (is Cilium running on this node, and is --bpffs "
                    f"{self.bpffs} its BPF filesystem?)")
        if exc.errno in (errno.EPERM, errno.EACCES):
            if os.geteuid() != 0:
                return "reading BPF maps needs root: run tshoot with sudo, or read them in the agent with --backend pod"
            return f"{self.bpffs} is not a BPF filesystem (mount -t bpf bpf {self.bpffs}), or {path} is not readable"
        return f"cannot open {path}: {exc.strerror}"

    def info(self, name: str) -> MapInfo:
        return self._fd(name)[1]

    def _value_stride(self, info: MapInfo) -> int:
        """Per-CPU maps return one value per possible CPU, each rounded up to 8 bytes."""
        if info.map_type in PER_CPU_TYPES:
            return (info.value_size + 7) // 8 * 8 * libbpf.possible_cpus()
        return info.value_size

    def lookup(self, info: MapInfo, key: bytes) -> bytes | None:
        fd, _ = self._fd(info.name)
        try:
            return libbpf.lookup(fd, key, self._value_stride(info))
        except OSError as exc:
            raise TshootError(f"lookup in {info.path} failed: {exc.strerror}") from None

    def dump(self, info: MapInfo) -> Entries:
        return self._dump(self._fd(info.name)[0], info)

    def _dump(self, fd: int, info: MapInfo) -> Entries:
        stride = self._value_stride(info)
        try:
            # A prog array is read key by key: a batch lookup answers every slot, filled or not, while a
            # single lookup of an empty slot is ENOENT (kernel/bpf/arraymap.c, fd arrays).
            chunks = None if info.map_type == PROG_ARRAY else libbpf.lookup_batch(fd, info.key_size, stride)
            if chunks is None:
                chunks = libbpf.iterate(fd, info.key_size, stride)
        except OSError as exc:
            raise TshootError(f"reading {info.path} failed: {exc.strerror}") from None
        return Entries(info.key_size, stride, b"".join(chunks[0]), b"".join(chunks[1]))

    def list_maps(self) -> list[MapInfo]:
        directory = f"{self.bpffs}/{PIN_DIR}"
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            raise TshootError(f"nothing is pinned under {directory} (is Cilium running on this node, and is "
                              f"--bpffs {self.bpffs} its BPF filesystem?)") from None
        except PermissionError:
            raise TshootError("reading BPF maps needs root: run tshoot with sudo, or use --backend pod") from None
        infos = []
        for name in names:
            try:
                fd, info = self._fd(name)
            except TshootError:
                continue  # a pinned program, or a file that is not a BPF object
            try:
                info.entries = len(self._dump(fd, info)) if info.map_type == PROG_ARRAY else \
                    libbpf.count(fd, info.key_size, self._value_stride(info))
            except OSError:
                info.entries = None  # e.g. a program array: its slots cannot be read from user space
            infos.append(info)
        return infos

    def first_entry(self, info: MapInfo, keys: list[bytes]) -> int | None:
        """On an LPM trie, get_next_key from a key that is an entry continues after it; from any other key
        it restarts at the first key: a prefix is an entry exactly when its next key is not the first one
        (the last entry has no next key, which is not the first either)."""
        fd, _ = self._fd(info.name)
        try:
            first = libbpf.next_key(fd, None, info.key_size)
            return next((i for i, key in enumerate(keys) if libbpf.next_key(fd, key, info.key_size) != first), None)
        except OSError as exc:
            raise TshootError(f"get_next_key in {info.path}: {exc.strerror}") from None

    def btf_types(self, info: MapInfo) -> tuple[dict, int, int]:
        """BTF through bpftool: describing types is tshoot.core.btf's job, and it reads bpftool's JSON (libbpf
        gives the ids; the one subprocess is for the types, once per map, only for maps with BTF)."""
        return self.once(("btf", info.btf_id), lambda: self._btf(info.btf_id)), info.btf_key_type_id, \
            info.btf_value_type_id

    @staticmethod
    def _btf(btf_id: int) -> dict:
        from tshoot.core.btf import parse_types

        try:
            proc = subprocess.run(["bpftool", "-j", "btf", "dump", "id", str(btf_id)], capture_output=True,
                                  text=True, timeout=30)
        except FileNotFoundError:
            raise TshootError("bpftool is not installed: the map's BTF cannot be read") from None
        if proc.returncode != 0:
            raise TshootError(f"bpftool btf dump id {btf_id}: {proc.stderr.strip() or proc.stdout.strip()}")
        return parse_types(proc.stdout)

    def interfaces(self) -> dict[int, str]:
        """{ifindex: name} in the node's network namespace: an lxc's ifindex names nothing in another one."""
        if self.netns is None:
            return dict(socket.if_nameindex())
        from tshoot.inspect.hooks_local import in_netns  # pyroute2's setns, only when a namespace is named

        return dict(in_netns(self.netns, socket.if_nameindex))

    def clock_samples(self) -> tuple[int, int]:
        try:
            with open(TIMER_LIST) as f:
                return clocks_from_timer_list(f.read())
        except OSError as exc:
            raise TshootError(f"cannot read {TIMER_LIST}: {exc.strerror} (root reads it)") from None

    def program_names(self) -> dict[int, str]:
        from tshoot.node import bpfsys

        names = {}
        for prog_id in bpfsys.program_ids():
            try:
                names[prog_id] = bpfsys.program(prog_id).name
            except TshootError:
                continue  # unloaded meanwhile
        return names

    def command(self, argv: list[str]) -> str:
        return shlex.join(argv)

    def close(self) -> None:
        for fd, _ in self._open.values():
            os.close(fd)
        self._open.clear()

