"""The one libbpf binding of tshoot, through ctypes: the library loaded once (on first use: `tshoot key` and
`decode` never load it), every prototype tshoot calls in one table, the UAPI and libbpf structs those
calls fill, the names of the kernel's enums, and one way to read a call's errno.

libbpf.so.1 is Debian's libbpf1 (bpftool and python3-bpfcc pull it in). libbcc's own `bpf_obj_get` *is*
libbpf's (libbcc.so imports it from libbpf.so.1); going to libbpf directly gives the same calls without
loading libbcc, whose LLVM relocations cost ~30 ms on every run. The structs are the kernel UAPI's
(linux/bpf.h, linux/btf.h) and libbpf's own (bpf_prog_query_opts): libbpf leaves their layout to the caller.

Errors: libbpf >= 1.0 returns -errno from the int-returning calls (and sets errno); `errno_of` reads that,
falling back to errno for calls that return a pointer. `check` raises OSError; the callers (tshoot.node.local
for maps, tshoot.node.bpfsys for programs, links and attachments) turn it into advice.
"""

from __future__ import annotations

import ctypes as ct
import os

BATCH_CHUNK = 16384  # entries per BPF_MAP_LOOKUP_BATCH call
BPF_OBJ_NAME_LEN = 16
MISSING = ("libbpf.so.1 is missing: apt-get install libbpf1 (bpftool and python3-bpfcc pull it in), "
           "or ask the nodes' Cilium agents with --backend pod")

# enum bpf_prog_type, bpf_attach_type, bpf_map_type, bpf_link_type (linux/bpf.h, kernel 6.18), spelled as
# libbpf and bpftool spell them. libbpf_bpf_*_type_str() knows only the types of its own release (1.1 here:
# no tcx, netkit, netfilter), so the table lives here; tests check it against the installed libbpf.
PROG_TYPES = (
    "unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event",
    "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops", "sk_skb", "cgroup_device",
    "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2", "sk_reuseport",
    "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops",
    "ext", "lsm", "sk_lookup", "syscall", "netfilter",
)
ATTACH_TYPES = (
    "cgroup_inet_ingress", "cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_sock_ops",
    "sk_skb_stream_parser", "sk_skb_stream_verdict", "cgroup_device", "sk_msg_verdict", "cgroup_inet4_bind",
    "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind", "cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg", "lirc_mode2", "flow_dissector",
    "cgroup_sysctl", "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg", "cgroup_getsockopt", "cgroup_setsockopt",
    "trace_raw_tp", "trace_fentry", "trace_fexit", "modify_return", "lsm_mac", "trace_iter",
    "cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname", "xdp_devmap", "cgroup_inet_sock_release", "xdp_cpumap", "sk_lookup", "xdp",
    "sk_skb_verdict", "sk_reuseport_select", "sk_reuseport_select_or_migrate", "perf_event",
    "trace_kprobe_multi", "lsm_cgroup", "struct_ops", "netfilter", "tcx_ingress", "tcx_egress",
    "trace_uprobe_multi", "cgroup_unix_connect", "cgroup_unix_sendmsg", "cgroup_unix_recvmsg",
    "cgroup_unix_getpeername", "cgroup_unix_getsockname", "netkit_primary", "netkit_peer",
    "trace_kprobe_session", "trace_uprobe_session",
)
MAP_TYPES = (
    "unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array", "stack_trace",
    "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps", "hash_of_maps", "devmap",
    "sockmap", "cpumap", "xskmap", "sockhash", "cgroup_storage", "reuseport_sockarray",
    "percpu_cgroup_storage", "queue", "stack", "sk_storage", "devmap_hash", "struct_ops", "ringbuf",
    "inode_storage", "task_storage", "bloom_filter", "user_ringbuf", "cgrp_storage", "arena",
)
LINK_TYPES = (
    "unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event", "kprobe_multi",
    "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap",
)


def type_name(table: tuple[str, ...], value: int) -> str:
    return table[value] if 0 <= value < len(table) else f"unknown({value})"


# --- structs -------------------------------------------------------------------------------------------

class MapInfoStruct(ct.Structure):
    """struct bpf_map_info (linux/bpf.h), the members up to map_extra (kernel 5.16+; older kernels copy less)."""

    _fields_ = [
        ("type", ct.c_uint32), ("id", ct.c_uint32), ("key_size", ct.c_uint32), ("value_size", ct.c_uint32),
        ("max_entries", ct.c_uint32), ("map_flags", ct.c_uint32), ("name", ct.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", ct.c_uint32), ("btf_vmlinux_value_type_id", ct.c_uint32), ("netns_dev", ct.c_uint64),
        ("netns_ino", ct.c_uint64), ("btf_id", ct.c_uint32), ("btf_key_type_id", ct.c_uint32),
        ("btf_value_type_id", ct.c_uint32), ("btf_vmlinux_id", ct.c_uint32), ("map_extra", ct.c_uint64),
    ]


class BtfType(ct.Structure):
    """The head of struct btf_type (linux/btf.h): what btf__type_by_id points at."""

    _fields_ = [("name_off", ct.c_uint32), ("info", ct.c_uint32)]


class QueryOpts(ct.Structure):
    """struct bpf_prog_query_opts as libbpf 1.0 defines it (newer libbpf accept this size too)."""

    _fields_ = [("sz", ct.c_size_t), ("query_flags", ct.c_uint32), ("attach_flags", ct.c_uint32),
                ("prog_ids", ct.POINTER(ct.c_uint32)), ("prog_cnt", ct.c_uint32),
                ("prog_attach_flags", ct.POINTER(ct.c_uint32))]



# --- the library ---------------------------------------------------------------------------------------

_u32, _i32, _vp = ct.c_uint32, ct.c_int, ct.c_void_p
RING_CALLBACK = ct.CFUNCTYPE(ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_size_t)  # ring_buffer_sample_fn
PRINT_CALLBACK = ct.CFUNCTYPE(ct.c_int, ct.c_int, ct.c_char_p, ct.c_void_p)  # libbpf_print_fn_t
# (function, result type, argument types): every libbpf call tshoot makes
PROTOTYPES = [
    ("bpf_obj_get", _i32, [ct.c_char_p]),
    ("bpf_obj_get_info_by_fd", _i32, [_i32, _vp, ct.POINTER(_u32)]),
    ("bpf_prog_get_fd_by_id", _i32, [_u32]),
    ("bpf_map_get_fd_by_id", _i32, [_u32]),
    ("bpf_link_get_fd_by_id", _i32, [_u32]),
    ("bpf_link_get_next_id", _i32, [_u32, ct.POINTER(_u32)]),
    ("bpf_prog_get_next_id", _i32, [_u32, ct.POINTER(_u32)]),
    ("bpf_map_get_next_id", _i32, [_u32, ct.POINTER(_u32)]),
    ("bpf_prog_query_opts", _i32, [_i32, _u32, ct.POINTER(QueryOpts)]),
    ("bpf_map_lookup_elem", _i32, [_i32, _vp, _vp]),
    ("bpf_map_get_next_key", _i32, [_i32, _vp, _vp]),
    ("bpf_map_update_elem", _i32, [_i32, _vp, _vp, ct.c_uint64]),
    ("bpf_map_lookup_batch", _i32, [_i32, _vp, _vp, _vp, _vp, ct.POINTER(_u32), _vp]),
    ("libbpf_num_possible_cpus", _i32, []),
    ("btf__load_from_kernel_by_id", _vp, [_u32]),
    ("btf__type_by_id", ct.POINTER(BtfType), [_vp, _u32]),
    ("btf__name_by_offset", ct.c_char_p, [_vp, _u32]),
    ("btf__free", None, [_vp]),
    ("btf__load_vmlinux_btf", _vp, []),
    ("btf__find_by_name_kind", _i32, [_vp, ct.c_char_p, _u32]),
    ("bpf_object__open_file", _vp, [ct.c_char_p, _vp]),
    ("bpf_object__load", _i32, [_vp]),
    ("bpf_object__close", None, [_vp]),
    ("bpf_object__find_program_by_name", _vp, [_vp, ct.c_char_p]),
    ("bpf_object__find_map_fd_by_name", _i32, [_vp, ct.c_char_p]),
    ("bpf_program__attach", _vp, [_vp]),
    ("bpf_program__fd", _i32, [_vp]),
    ("bpf_link__destroy", _i32, [_vp]),
    ("ring_buffer__new", _vp, [_i32, RING_CALLBACK, _vp, _vp]),
    ("ring_buffer__consume", _i32, [_vp]),
    ("ring_buffer__poll", _i32, [_vp, _i32]),
    ("ring_buffer__free", None, [_vp]),
    ("libbpf_set_print", _vp, [PRINT_CALLBACK]),
]

_lib = None


def lib() -> ct.CDLL:
    """libbpf.so.1 with PROTOTYPES declared (loaded once); TshootError with the fix when it is missing."""
    global _lib
    if _lib is None:
        try:
            handle = ct.CDLL("libbpf.so.1", use_errno=True)
        except OSError:
            from tshoot.core.errors import TshootError

            raise TshootError(MISSING) from None
        for name, res, args in PROTOTYPES:
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = res, args
        _lib = handle
    return _lib


def errno_of(ret: int) -> int:
    """The errno of a failed call: libbpf >= 1.0 returns -errno; a call returning a pointer sets errno only."""
    return -ret if ret < 0 else ct.get_errno()


def check(ret: int, what: str) -> int:
    if ret < 0:
        err = errno_of(ret)
        raise OSError(err, os.strerror(err), what)
    return ret


# --- maps ----------------------------------------------------------------------------------------------

def obj_get(path: str) -> int:
    return check(lib().bpf_obj_get(path.encode()), path)


def map_info(fd: int) -> MapInfoStruct:
    info = MapInfoStruct()
    size = ct.c_uint32(ct.sizeof(info))
    check(lib().bpf_obj_get_info_by_fd(fd, ct.byref(info), ct.byref(size)), "bpf_obj_get_info_by_fd")
    return info


def possible_cpus() -> int:
    return check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


def lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The kernel's answer for `key` (for an LPM trie: the longest prefix covering it), None when it has none."""
    return _filled(value_size, lambda out: lib().bpf_map_lookup_elem(fd, key, out), "bpf_map_lookup_elem")


def next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """BPF_MAP_GET_NEXT_KEY: the key after `key` (the first key for None), None past the last one. On an LPM
    trie a key that is not an entry restarts from the first key (kernel/bpf/lpm_trie.c trie_get_next_key)."""
    return _filled(key_size, lambda out: lib().bpf_map_get_next_key(fd, key, out), "bpf_map_get_next_key")


def _filled(size: int, call, what: str) -> bytes | None:
    """The buffer call(buffer) filled, None when it answered ENOENT (no such entry, no next key)."""
    out = ct.create_string_buffer(size)
    ret = call(out)
    if ret == -2:  # ENOENT
        return None
    check(ret, what)
    return out.raw


def lookup_batch(fd: int, key_size: int, value_size: int) -> tuple[list[bytes], list[bytes]] | None:
    """Every entry with BPF_MAP_LOOKUP_BATCH, as (key chunks, value chunks) of concatenated bytes;
    None when the kernel has no batch operation for this map type (then iterate key by key)."""
    keys = ct.create_string_buffer(key_size * BATCH_CHUNK)
    values = ct.create_string_buffer(value_size * BATCH_CHUNK)
    # The batch cursor is opaque to userspace; the kernel asks for a buffer as large as a key.
    token_in = ct.create_string_buffer(max(key_size, 8))
    token_out = ct.create_string_buffer(max(key_size, 8))
    count = ct.c_uint32()
    key_chunks, value_chunks = [], []
    first = True
    while True:
        count.value = BATCH_CHUNK
        ret = lib().bpf_map_lookup_batch(fd, None if first else token_in, token_out, keys, values, ct.byref(count), None)
        if ret < 0 and -ret in (22, 95, 524) and first:  # EINVAL, EOPNOTSUPP, ENOTSUPP: no batch for this type
            return None
        if ret < 0 and ret != -2:
            check(ret, "bpf_map_lookup_batch")
        n = count.value
        if n:
            key_chunks.append(ct.string_at(keys, n * key_size))
            value_chunks.append(ct.string_at(values, n * value_size))
        if ret == -2:  # ENOENT: that was the last batch
            return key_chunks, value_chunks
        ct.memmove(token_in, token_out, len(token_out))
        first = False


def iterate(fd: int, key_size: int, value_size: int) -> tuple[list[bytes], list[bytes]]:
    """Every entry key by key (BPF_MAP_GET_NEXT_KEY, then a lookup), for map types without batch operations.

    A key deleted between the two calls is skipped; on an LPM trie the lookup of a key returns that key's
    own entry (the longest prefix covering a prefix of length n that exists is itself)."""
    cur, nxt = ct.create_string_buffer(key_size), ct.create_string_buffer(key_size)
    value = ct.create_string_buffer(value_size)
    get_next, lookup_elem = lib().bpf_map_get_next_key, lib().bpf_map_lookup_elem
    keys, values = [], []
    ret = get_next(fd, None, cur)
    while ret == 0:
        if lookup_elem(fd, cur, value) == 0:
            keys.append(cur.raw)
            values.append(value.raw)
        ret = get_next(fd, cur, nxt)
        cur, nxt = nxt, cur
    if ret != -2:
        check(ret, "bpf_map_get_next_key")
    return [b"".join(keys)], [b"".join(values)]


def count(fd: int, key_size: int, value_size: int) -> int:
    """How many entries the map holds (batch lookups where the type has them, else a walk over the keys)."""
    batched = lookup_batch(fd, key_size, value_size)
    if batched is not None:
        return sum(len(chunk) for chunk in batched[0]) // key_size
    cur, nxt = ct.create_string_buffer(key_size), ct.create_string_buffer(key_size)
    get_next = lib().bpf_map_get_next_key
    n = 0
    ret = get_next(fd, None, cur)
    while ret == 0:
        n += 1
        ret = get_next(fd, cur, nxt)
        cur, nxt = nxt, cur
    if ret != -2:
        check(ret, "bpf_map_get_next_key")
    return n


def update(fd: int, key: bytes, value: bytes) -> None:
    """Insert or replace an entry (BPF_ANY). For a per-CPU map `value` holds every possible CPU's value, each
    rounded up to 8 bytes, as lookups return them."""
    check(lib().bpf_map_update_elem(fd, key, value, 0), "bpf_map_update_elem")


# --- loading and running kindlab's own programs (tshoot trace) ---------------------------------------------
# The calls above read Cilium's maps; these load kindlab's own programs (tshoot/trace/bpf/), attach them, fill
# their configuration maps and read their ring buffers. libbpf >= 1.0: pointer-returning calls give NULL and
# set errno on failure.
BTF_KIND_ENUM, BTF_KIND_ENUM64 = 6, 19
_log: list[str] = []  # libbpf's messages (the verifier's log on a failed load), kept for the error
_log_captured = False


def _capture_log() -> None:
    """libbpf's messages kept (not printed) from now on, for last_messages()."""
    global _log_captured
    if not _log_captured:
        lib().libbpf_set_print(_print)
        _log_captured = True


def _format(fmt: bytes, args: int) -> str:
    libc = ct.CDLL(None)
    buf = ct.create_string_buffer(1024)
    libc.vsnprintf.argtypes = [ct.c_char_p, ct.c_size_t, ct.c_char_p, ct.c_void_p]
    libc.vsnprintf(buf, len(buf), fmt, args)
    return buf.value.decode("utf-8", "replace")


@PRINT_CALLBACK
def _print(level: int, fmt: bytes, args: int) -> int:
    _log.append(_format(fmt, args).rstrip("\n"))
    del _log[:-200]
    return 0


def last_messages(count: int = 5) -> list[str]:
    """libbpf's last messages (a failed load's reason is among them)."""
    return [m for m in _log if m.strip()][-count:]


def _pointer(ptr: int | None, what: str) -> int:
    if not ptr:
        err = ct.get_errno() or 22
        raise OSError(err, os.strerror(err), what)
    return ptr


def open_object(path: str) -> int:
    """bpf_object__open_file + bpf_object__load: the object's handle (close_object frees it)."""
    _capture_log()
    handle = lib()
    obj = _pointer(handle.bpf_object__open_file(path.encode(), None), f"bpf_object__open_file {path}")
    ret = handle.bpf_object__load(obj)
    if ret < 0:
        handle.bpf_object__close(obj)
        raise OSError(-ret, os.strerror(-ret), f"bpf_object__load {path}")
    return obj


def close_object(obj: int) -> None:
    lib().bpf_object__close(obj)


def attach_program(obj: int, name: str) -> int:
    """Attach the program as its section says (tp_btf/…): the link's handle (destroy_link detaches)."""
    handle = lib()
    prog = _pointer(handle.bpf_object__find_program_by_name(obj, name.encode()), f"no program {name}")
    return _pointer(handle.bpf_program__attach(prog), f"bpf_program__attach {name}")


def destroy_link(link: int) -> None:
    lib().bpf_link__destroy(link)


def object_map_fd(obj: int, name: str) -> int:
    return check(lib().bpf_object__find_map_fd_by_name(obj, name.encode()), f"map {name}")


class RingBuffer:
    """A BPF ring buffer read through libbpf: `on_record(bytes)` for each record, from consume()/poll().
    on_record returning True ends this consume() after that record (libbpf's consume otherwise runs as
    long as records keep coming, which under a flood is forever)."""

    STOP = -11  # a negative callback result makes libbpf stop consuming (the record itself is consumed)

    def __init__(self, map_fd: int, on_record):
        def callback(ctx, data, size) -> int:
            return self.STOP if on_record(ct.string_at(data, size)) else 0

        self._callback = RING_CALLBACK(callback)  # kept alive as long as libbpf may call it
        handle = lib()
        self._rb = _pointer(handle.ring_buffer__new(map_fd, self._callback, None, None), "ring_buffer__new")

    def consume(self) -> int:
        """The records available now (until on_record asks to stop); returns how many, -1 when stopped."""
        ret = lib().ring_buffer__consume(self._rb)
        return -1 if ret == self.STOP else check(ret, "ring_buffer__consume")

    def poll(self, timeout_ms: int) -> int:
        ret = lib().ring_buffer__poll(self._rb, timeout_ms)
        return 0 if ret == -4 else check(ret, "ring_buffer__poll")  # EINTR: a signal, not a failure

    def free(self) -> None:
        if self._rb:
            lib().ring_buffer__free(self._rb)
            self._rb = None


def kernel_enum(name: str) -> dict[int, str]:
    """An enum of the running kernel, {value: name}, from its BTF (/sys/kernel/btf/vmlinux): the values of
    enum skb_drop_reason differ between kernels (tracing.md §2.1), so they are never hard-coded."""
    handle = lib()
    btf = _pointer(handle.btf__load_vmlinux_btf(), "btf__load_vmlinux_btf")
    try:
        for kind, member in ((BTF_KIND_ENUM, ct.c_uint32 * 2), (BTF_KIND_ENUM64, ct.c_uint32 * 3)):
            type_id = handle.btf__find_by_name_kind(btf, name.encode(), kind)
            if type_id <= 0:
                continue
            head = handle.btf__type_by_id(btf, type_id)
            count = head.contents.info & 0xFFFF  # info: vlen in the low 16 bits
            # the members follow struct btf_type (name_off, info, size: 12 bytes)
            address = ct.cast(head, ct.c_void_p).value + 12
            out = {}
            for m in (member * count).from_address(address):
                value = m[1] | (m[2] << 32 if kind == BTF_KIND_ENUM64 else 0)  # unsigned (tracing.md §2.1)
                out[value] = handle.btf__name_by_offset(btf, m[0]).decode()
            return out
        return {}
    finally:
        handle.btf__free(btf)
