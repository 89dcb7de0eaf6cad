"""The kernel's own answers about BPF objects: program, map and link info, tcx/cgroup/flow-dissector
attachments. What `bpftool prog show`, `cgroup show` and the tcx part of `net show` ask the kernel,
asked from Python without a subprocess.

Calls go through libbpf (tshoot.node.libbpf, the one binding: its prototypes, structs and errno) wherever
it has them: bpf_prog_get_fd_by_id, bpf_obj_get_info_by_fd, bpf_prog_query_opts, bpf_link_get_next_id,
bpf_obj_get and the BTF readers. One call is made with bpf(2) directly: the tcx query, because the
libbpf this machine has (1.1) predates tcx and its bpf_prog_query_opts cannot ask for link ids (libbcc
has no query call at all). The info structs are the kernel UAPI's (linux/bpf.h): libbpf leaves their
layout to the caller.

Network-namespace scoped answers (tcx, flow dissector) are those of the calling *thread*: callers run
them inside `tshoot.inspect.hooks_local.in_netns`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import time
from dataclasses import dataclass, field

from tshoot.core.errors import TshootError
from tshoot.node.libbpf import (ATTACH_TYPES, BPF_OBJ_NAME_LEN, LINK_TYPES, MAP_TYPES, PROG_TYPES, MapInfoStruct,
                                QueryOpts, errno_of, lib, type_name)

BPF_FLOW_DISSECTOR = ATTACH_TYPES.index("flow_dissector")
BPF_TCX_INGRESS = ATTACH_TYPES.index("tcx_ingress")
BPF_TCX_EGRESS = ATTACH_TYPES.index("tcx_egress")
BPF_LINK_TYPE_CGROUP = LINK_TYPES.index("cgroup")
BPF_LINK_TYPE_TCX = LINK_TYPES.index("tcx")
# every attach type a cgroup answers BPF_PROG_QUERY for, in enum order (bpftool's order)
CGROUP_ATTACH_TYPES = tuple(i for i, name in enumerate(ATTACH_TYPES) if name.startswith("cgroup_"))

BPF_F_ALLOW_OVERRIDE, BPF_F_ALLOW_MULTI, BPF_F_REPLACE = 1, 2, 4
BPF_F_QUERY_EFFECTIVE = 1
BPF_PROG_QUERY = 16
BTF_KIND_FUNC = 12
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_QUERY_SLOTS = 64  # bpftool asks for 64 programs per tcx hook too


def attach_flags_name(flags: int) -> str:
    """As bpftool prints a cgroup attachment's flags."""
    return {0: "", BPF_F_ALLOW_MULTI: "multi", BPF_F_ALLOW_OVERRIDE: "override"}.get(flags, f"unknown({flags:x})")


# --- the kernel's info structs -------------------------------------------------------------------------

class _ProgInfo(ctypes.Structure):
    """struct bpf_prog_info (linux/bpf.h)."""

    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32), ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64), ("name", ctypes.c_char * BPF_OBJ_NAME_LEN), ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32), ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32), ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64), ("jited_func_lens", ctypes.c_uint64), ("btf_id", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64), ("nr_func_info", ctypes.c_uint32),
        ("nr_line_info", ctypes.c_uint32), ("line_info", ctypes.c_uint64), ("jited_line_info", ctypes.c_uint64),
        ("nr_jited_line_info", ctypes.c_uint32), ("line_info_rec_size", ctypes.c_uint32),
        ("jited_line_info_rec_size", ctypes.c_uint32), ("nr_prog_tags", ctypes.c_uint32),
        ("prog_tags", ctypes.c_uint64), ("run_time_ns", ctypes.c_uint64), ("run_cnt", ctypes.c_uint64),
        ("recursion_misses", ctypes.c_uint64), ("verified_insns", ctypes.c_uint32),
        ("attach_btf_obj_id", ctypes.c_uint32), ("attach_btf_id", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
    ]


class _LinkInfo(ctypes.Structure):
    """struct bpf_link_info (linux/bpf.h): the header, then the per-type union read with struct.unpack."""

    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("prog_id", ctypes.c_uint32),
                ("_pad", ctypes.c_uint32), ("union", ctypes.c_uint8 * 96)]


class _FuncInfo(ctypes.Structure):
    _fields_ = [("insn_off", ctypes.c_uint32), ("type_id", ctypes.c_uint32)]


class _QueryAttr(ctypes.Structure):
    """The BPF_PROG_QUERY member of union bpf_attr, with the link fields tcx added in kernel 6.6."""

    _fields_ = [("target", ctypes.c_uint32), ("attach_type", ctypes.c_uint32), ("query_flags", ctypes.c_uint32),
                ("attach_flags", ctypes.c_uint32), ("prog_ids", ctypes.c_uint64), ("count", ctypes.c_uint32),
                ("_pad", ctypes.c_uint32), ("prog_attach_flags", ctypes.c_uint64), ("link_ids", ctypes.c_uint64),
                ("link_attach_flags", ctypes.c_uint64), ("revision", ctypes.c_uint64)]


# --- what callers get ----------------------------------------------------------------------------------

@dataclass
class Program:
    id: int
    type: str
    name: str
    tag: str
    gpl: bool
    loaded_at: int  # seconds since the epoch, as bpftool -j prints it
    uid: int
    xlated: int
    jited: int
    memlock: int | None
    map_ids: list[int]
    btf_id: int
    run_count: int = 0     # counted only while kernel.bpf_stats_enabled is 1
    run_time_ns: int = 0


@dataclass
class MapSummary:
    id: int
    type: str
    name: str
    key_size: int
    value_size: int
    max_entries: int


@dataclass
class Link:
    id: int
    type: str
    prog_id: int
    attach_type: str | None = None
    ifindex: int | None = None      # tcx, netkit, xdp links
    cgroup_id: int | None = None    # cgroup links
    pinned: list[str] = field(default_factory=list)


@dataclass
class Attached:
    """One program on one hook, as BPF_PROG_QUERY reports it."""

    prog_id: int
    attach_type: str
    flags: int = 0
    link_id: int | None = None
    link_flags: int = 0


class Gone(TshootError):
    """The object with that id does not exist (any more): ids are not reused, reloaded programs get new ones."""


def _failure(what: str, err: int) -> TshootError:
    if err in (errno.EPERM, errno.EACCES):
        return TshootError(f"{what}: permission denied (reading BPF objects needs root: CAP_BPF and CAP_SYS_ADMIN; "
                           f"run with sudo)")
    if err == errno.ENOENT:
        return Gone(f"{what}: no such id on this machine (ids change when programs are reloaded; "
                    f"'tshoot net show' lists the attached ones)")
    return TshootError(f"{what}: {os.strerror(err)}")


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise _failure(what, errno_of(ret))
    return ret


def _fd_by_id(kind: str, obj_id: int) -> int:
    getter = getattr(lib(), f"bpf_{kind}_get_fd_by_id")
    return _check(getter(obj_id), f"{'program' if kind == 'prog' else kind} {obj_id}")


def _info(fd: int, info, what: str):
    size = ctypes.c_uint32(ctypes.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)), what)
    return info


def _fdinfo(fd: int) -> dict[str, str]:
    """The kernel's /proc view of a BPF fd: memlock, and for pinned objects which kind of object it is."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return {}


# --- programs and maps ---------------------------------------------------------------------------------

def program(prog_id: int) -> Program:
    """What `bpftool prog show id N` prints, with the full name (BTF) where the kernel truncated it."""
    fd = _fd_by_id("prog", prog_id)
    try:
        info = _info(fd, _ProgInfo(), f"program {prog_id}")
        map_ids = (ctypes.c_uint32 * info.nr_map_ids)()
        if info.nr_map_ids:
            again = _ProgInfo(nr_map_ids=info.nr_map_ids, map_ids=ctypes.addressof(map_ids))
            _info(fd, again, f"program {prog_id}")
        name = _full_name(fd, info)
        memlock = _fdinfo(fd).get("memlock")
    finally:
        os.close(fd)
    return Program(
        id=info.id, type=type_name(PROG_TYPES, info.type), name=name, tag=bytes(info.tag).hex(),
        gpl=bool(info.gpl_compatible & 1), loaded_at=_wallclock(info.load_time), uid=info.created_by_uid,
        xlated=info.xlated_prog_len, jited=info.jited_prog_len,
        memlock=int(memlock) if memlock is not None else None, map_ids=list(map_ids), btf_id=info.btf_id,
        run_count=info.run_cnt, run_time_ns=info.run_time_ns)


def _full_name(fd: int, info: _ProgInfo) -> str:
    """The kernel keeps 15 characters of a name (cil_from_contai); the BTF of the program has it whole.

    The same steps as bpftool's get_prog_full_name: first func_info record -> its BTF FUNC type -> name."""
    name = info.name.decode(errors="replace")
    if len(name) < BPF_OBJ_NAME_LEN - 1 or not info.btf_id or not info.nr_func_info:
        return name
    func = _FuncInfo()
    query = _ProgInfo(nr_func_info=1, func_info_rec_size=min(info.func_info_rec_size, ctypes.sizeof(func)),
                      func_info=ctypes.addressof(func))
    size = ctypes.c_uint32(ctypes.sizeof(query))
    libbpf = lib()
    if libbpf.bpf_obj_get_info_by_fd(fd, ctypes.byref(query), ctypes.byref(size)) < 0:
        return name
    btf = libbpf.btf__load_from_kernel_by_id(query.btf_id)
    if not btf:
        return name
    try:
        btf_type = libbpf.btf__type_by_id(btf, func.type_id)
        if not btf_type or (btf_type.contents.info >> 24) & 0x1F != BTF_KIND_FUNC:
            return name
        full = libbpf.btf__name_by_offset(btf, btf_type.contents.name_off)
        return full.decode(errors="replace") if full else name
    finally:
        libbpf.btf__free(btf)


def _wallclock(boottime_ns: int) -> int:
    """load_time counts from boot (CLOCK_BOOTTIME); bpftool turns it into seconds since the epoch."""
    boot_epoch = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return int(boot_epoch + boottime_ns / 1e9)


def map_summary(map_id: int) -> MapSummary:
    fd = _fd_by_id("map", map_id)
    try:
        info = _info(fd, MapInfoStruct(), f"map {map_id}")
    finally:
        os.close(fd)
    return MapSummary(id=info.id, type=type_name(MAP_TYPES, info.type), name=info.name.decode(errors="replace"),
                      key_size=info.key_size, value_size=info.value_size, max_entries=info.max_entries)


def program_ids() -> list[int]:
    """The id of every BPF program loaded on the machine (BPF_PROG_GET_NEXT_ID)."""
    libbpf, found, current = lib(), [], ctypes.c_uint32(0)
    while (ret := libbpf.bpf_prog_get_next_id(current.value, ctypes.byref(current))) == 0:
        found.append(current.value)
    if errno_of(ret) != errno.ENOENT:  # ENOENT: past the last program
        raise _failure("listing BPF programs", errno_of(ret))
    return found


# --- links ---------------------------------------------------------------------------------------------

def links() -> list[Link]:
    """Every BPF link on the machine (links are global objects; tcx ifindexes are per network namespace)."""
    libbpf, found, current = lib(), [], ctypes.c_uint32(0)
    while (ret := libbpf.bpf_link_get_next_id(current.value, ctypes.byref(current))) == 0:
        fd = libbpf.bpf_link_get_fd_by_id(current.value)
        if fd < 0:  # released between the two calls
            continue
        try:
            found.append(_link(fd))
        finally:
            os.close(fd)
    if errno_of(ret) != errno.ENOENT:  # ENOENT: past the last link
        raise _failure("listing BPF links", errno_of(ret))
    return found


def _link(fd: int) -> Link:
    info = _info(fd, _LinkInfo(), "link")
    union = bytes(info.union)
    link = Link(id=info.id, type=type_name(LINK_TYPES, info.type), prog_id=info.prog_id)
    if info.type == BPF_LINK_TYPE_CGROUP:
        link.cgroup_id, attach = struct.unpack_from("=QI", union)
        link.attach_type = type_name(ATTACH_TYPES, attach)
    elif link.type in ("tcx", "netkit"):
        link.ifindex, attach = struct.unpack_from("=II", union)
        link.attach_type = type_name(ATTACH_TYPES, attach)
    elif link.type == "xdp":
        (link.ifindex,) = struct.unpack_from("=I", union)
    return link


def pinned_ids(bpffs: str) -> dict[tuple[str, int], list[str]]:
    """{("link"|"prog"|"map", id): [pinned paths]} for every object pinned under a bpffs mount."""
    libbpf, found = lib(), {}
    for root, _dirs, files in os.walk(bpffs):
        for name in files:
            path = os.path.join(root, name)
            fd = libbpf.bpf_obj_get(path.encode())
            if fd < 0:
                continue
            try:
                info = _fdinfo(fd)
            finally:
                os.close(fd)
            for kind in ("link", "prog", "map"):
                if f"{kind}_id" in info:
                    found.setdefault((kind, int(info[f"{kind}_id"])), []).append(path)
                    break
    return found


# --- attachments ---------------------------------------------------------------------------------------

def tcx(ifindex: int, attach_type: int) -> list[Attached]:
    """Programs on a device's tcx ingress or egress hook, in run order, with their link ids.

    bpf(2) directly: libbpf 1.1's bpf_prog_query_opts has no link_ids (see the module docstring)."""
    prog_ids, prog_flags, link_ids, link_flags = ((ctypes.c_uint32 * _QUERY_SLOTS)() for _ in range(4))
    attr = _QueryAttr(target=ifindex, attach_type=attach_type, count=_QUERY_SLOTS,
                      prog_ids=ctypes.addressof(prog_ids), prog_attach_flags=ctypes.addressof(prog_flags),
                      link_ids=ctypes.addressof(link_ids), link_attach_flags=ctypes.addressof(link_flags))
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = _SYS_BPF.get(platform.machine())
    if syscall is None:
        raise TshootError(f"tcx query: bpf(2) syscall number unknown for {platform.machine()}")
    if libc.syscall(syscall, BPF_PROG_QUERY, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENODEV, errno.ENOENT):  # kernel without tcx, or the device went away
            return []
        raise _failure(f"tcx query on ifindex {ifindex}", err)
    name = type_name(ATTACH_TYPES, attach_type)
    return [Attached(prog_id=prog_ids[i], attach_type=name, flags=prog_flags[i], link_id=link_ids[i] or None,
                     link_flags=link_flags[i]) for i in range(attr.count)]


def flow_dissector() -> int | None:
    """The flow dissector program of the calling thread's network namespace, if any."""
    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        found = _query(fd, BPF_FLOW_DISSECTOR, 0, "flow dissector query", slots=1)
    finally:
        os.close(fd)
    return found[0].prog_id if found else None


def cgroup(path: str, effective: bool = False) -> list[Attached]:
    """Programs attached to a cgroup (v2 directory), every attach type, in bpftool's order."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise TshootError(f"cgroup {path}: no such directory (is cgroup v2 mounted there?)") from None
    except NotADirectoryError:
        raise TshootError(f"cgroup {path}: not a directory") from None
    except PermissionError:
        raise TshootError(f"cgroup {path}: permission denied (run with sudo)") from None
    try:
        found = []
        for attach_type in CGROUP_ATTACH_TYPES:
            found += _query(fd, attach_type, BPF_F_QUERY_EFFECTIVE if effective else 0, f"cgroup {path}")
        return found
    finally:
        os.close(fd)


def _query(target_fd: int, attach_type: int, query_flags: int, what: str, slots: int = 1024) -> list[Attached]:
    prog_ids, prog_flags = (ctypes.c_uint32 * slots)(), (ctypes.c_uint32 * slots)()
    opts = QueryOpts(sz=ctypes.sizeof(QueryOpts), query_flags=query_flags, prog_ids=prog_ids, prog_cnt=slots,
                      prog_attach_flags=None if query_flags & BPF_F_QUERY_EFFECTIVE else prog_flags)
    ret = lib().bpf_prog_query_opts(target_fd, attach_type, ctypes.byref(opts))
    if ret < 0:
        err = errno_of(ret)
        if err == errno.EINVAL:  # an attach type this kernel does not know, or that does not apply here
            return []
        raise _failure(what, err)
    name = type_name(ATTACH_TYPES, attach_type)
    # per-program flags where the kernel gives them (multi), else the hook's (bpftool does the same)
    return [Attached(prog_id=prog_ids[i], attach_type=name, flags=prog_flags[i] or opts.attach_flags)
            for i in range(opts.prog_cnt)]


def cgroup_id(path: str) -> int:
    """The id the kernel gives a cgroup v2 directory (what cgroup links report): its inode number."""
    return os.stat(path).st_ino
