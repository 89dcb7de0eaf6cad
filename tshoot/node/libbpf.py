"""The few libbpf calls tshoot needs to read pinned BPF maps, through ctypes.

libbpf.so.1 comes with Debian's python3-bpfcc stack (python3-bpfcc -> libbpfcc -> libbpf1). libbcc's
own `bpf_obj_get` *is* libbpf's (libbcc.so imports it from libbpf.so.1); going to libbpf directly gives
the same calls without loading libbcc, whose LLVM relocations cost ~30 ms on every run. Nothing here
builds a bpf(2) attribute union by hand: every call is a libbpf function. What we declare ourselves is
`struct bpf_map_info` (kernel UAPI, linux/bpf.h), which libbpf fills.

libbpf >= 1.0 returns -errno from these functions (and sets errno); callers get OSError.
"""

from __future__ import annotations

import ctypes as ct
import os

BATCH_CHUNK = 16384  # entries per BPF_MAP_LOOKUP_BATCH call


class MapInfoStruct(ct.Structure):
    """struct bpf_map_info (linux/bpf.h), the members up to map_extra (kernel 5.16+; older kernels copy less)."""

    _fields_ = [
        ("type", ct.c_uint32),
        ("id", ct.c_uint32),
        ("key_size", ct.c_uint32),
        ("value_size", ct.c_uint32),
        ("max_entries", ct.c_uint32),
        ("map_flags", ct.c_uint32),
        ("name", ct.c_char * 16),
        ("ifindex", ct.c_uint32),
        ("btf_vmlinux_value_type_id", ct.c_uint32),
        ("netns_dev", ct.c_uint64),
        ("netns_ino", ct.c_uint64),
        ("btf_id", ct.c_uint32),
        ("btf_key_type_id", ct.c_uint32),
        ("btf_value_type_id", ct.c_uint32),
        ("btf_vmlinux_id", ct.c_uint32),
        ("map_extra", ct.c_uint64),
    ]


_lib = None


def lib():
    """libbpf.so.1 with the prototypes we use (loaded once, on first use: tshoot key/decode never load it)."""
    global _lib
    if _lib is None:
        try:
            handle = ct.CDLL("libbpf.so.1", use_errno=True)
        except OSError:
            from tshoot.core.errors import TshootError

            raise TshootError("libbpf.so.1 is missing: install python3-bpfcc (it brings libbpf1), "
                              "or read the maps through a Cilium agent with --backend pod") from None
        u32p, vp = ct.POINTER(ct.c_uint32), ct.c_void_p
        for name, res, args in [
            ("bpf_obj_get", ct.c_int, [ct.c_char_p]),
            ("bpf_obj_get_info_by_fd", ct.c_int, [ct.c_int, vp, u32p]),
            ("bpf_map_lookup_elem", ct.c_int, [ct.c_int, vp, vp]),
            ("bpf_map_get_next_key", ct.c_int, [ct.c_int, vp, vp]),
            ("bpf_map_lookup_batch", ct.c_int, [ct.c_int, vp, vp, vp, vp, u32p, vp]),
            ("libbpf_bpf_map_type_str", ct.c_char_p, [ct.c_int]),
            ("libbpf_num_possible_cpus", ct.c_int, []),
        ]:
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = res, args
        _lib = handle
    return _lib


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, os.strerror(-ret), what)
    return ret


def obj_get(path: str) -> int:
    return _check(lib().bpf_obj_get(path.encode()), path)


def map_info(fd: int) -> MapInfoStruct:
    info = MapInfoStruct()
    size = ct.c_uint32(ct.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(fd, ct.byref(info), ct.byref(size)), "bpf_obj_get_info_by_fd")
    return info


def map_type_name(map_type: int) -> str:
    name = lib().libbpf_bpf_map_type_str(map_type)
    return name.decode() if name else f"type{map_type}"


def possible_cpus() -> int:
    return _check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


def lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The kernel's answer for `key` (for an LPM trie: the longest prefix covering it), None when it has none."""
    value = ct.create_string_buffer(value_size)
    ret = lib().bpf_map_lookup_elem(fd, key, value)
    if ret == -2:  # ENOENT
        return None
    _check(ret, "bpf_map_lookup_elem")
    return value.raw


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
            _check(ret, "bpf_map_lookup_batch")
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
        _check(ret, "bpf_map_get_next_key")
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
        _check(ret, "bpf_map_get_next_key")
    return n


# --- writing maps, loading and running programs (tshoot trace) ------------------------------------------
# A block of its own: the calls above read Cilium's maps; these load kindlab's own programs (tshoot/trace/bpf/),
# attach them, fill their configuration maps and read their ring buffers. Declared on first use, on the same
# library handle. libbpf >= 1.0: pointer-returning calls give NULL and set errno on failure.
RING_CALLBACK = ct.CFUNCTYPE(ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_size_t)
_PRINT_CALLBACK = ct.CFUNCTYPE(ct.c_int, ct.c_int, ct.c_char_p, ct.c_void_p)
_PROGRAM_PROTOTYPES = [
    ("bpf_map_update_elem", ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_uint64]),
    ("bpf_object__open_file", ct.c_void_p, [ct.c_char_p, ct.c_void_p]),
    ("bpf_object__load", ct.c_int, [ct.c_void_p]),
    ("bpf_object__close", None, [ct.c_void_p]),
    ("bpf_object__find_program_by_name", ct.c_void_p, [ct.c_void_p, ct.c_char_p]),
    ("bpf_object__find_map_fd_by_name", ct.c_int, [ct.c_void_p, ct.c_char_p]),
    ("bpf_program__attach", ct.c_void_p, [ct.c_void_p]),
    ("bpf_program__fd", ct.c_int, [ct.c_void_p]),
    ("bpf_link__destroy", ct.c_int, [ct.c_void_p]),
    ("ring_buffer__new", ct.c_void_p, [ct.c_int, RING_CALLBACK, ct.c_void_p, ct.c_void_p]),
    ("ring_buffer__consume", ct.c_int, [ct.c_void_p]),
    ("ring_buffer__poll", ct.c_int, [ct.c_void_p, ct.c_int]),
    ("ring_buffer__free", None, [ct.c_void_p]),
    ("libbpf_set_print", ct.c_void_p, [_PRINT_CALLBACK]),
    ("btf__load_vmlinux_btf", ct.c_void_p, []),
    ("btf__find_by_name_kind", ct.c_int, [ct.c_void_p, ct.c_char_p, ct.c_uint32]),
    ("btf__type_by_id", ct.c_void_p, [ct.c_void_p, ct.c_uint32]),
    ("btf__name_by_offset", ct.c_char_p, [ct.c_void_p, ct.c_uint32]),
    ("btf__free", None, [ct.c_void_p]),
]
BTF_KIND_ENUM, BTF_KIND_ENUM64 = 6, 19
_programs_declared = False
_log: list[str] = []  # libbpf's messages (the verifier's log on a failed load), kept for the error


def programs_lib():
    """lib() with the prototypes of this block declared too, and libbpf's messages captured (not printed)."""
    global _programs_declared
    handle = lib()
    if not _programs_declared:
        for name, res, args in _PROGRAM_PROTOTYPES:
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = res, args
        handle.libbpf_set_print(_print)
        _programs_declared = True
    return handle


def _format(fmt: bytes, args: int) -> str:
    libc = ct.CDLL(None)
    buf = ct.create_string_buffer(1024)
    libc.vsnprintf.argtypes = [ct.c_char_p, ct.c_size_t, ct.c_char_p, ct.c_void_p]
    libc.vsnprintf(buf, len(buf), fmt, args)
    return buf.value.decode("utf-8", "replace")


@_PRINT_CALLBACK
def _print(level: int, fmt: bytes, args: int) -> int:
    _log.append(_format(fmt, args).rstrip("\n"))
    del _log[:-200]
    return 0


def last_messages(count: int = 5) -> list[str]:
    """libbpf's last messages (a failed load's reason is among them)."""
    return [m for m in _log if m.strip()][-count:]


def update(fd: int, key: bytes, value: bytes) -> None:
    """Insert or replace an entry (BPF_ANY). For a per-CPU map `value` holds every possible CPU's value, each
    rounded up to 8 bytes, as lookups return them."""
    _check(programs_lib().bpf_map_update_elem(fd, key, value, 0), "bpf_map_update_elem")


def _pointer(ptr: int | None, what: str) -> int:
    if not ptr:
        err = ct.get_errno() or 22
        raise OSError(err, os.strerror(err), what)
    return ptr


def open_object(path: str) -> int:
    """bpf_object__open_file + bpf_object__load: the object's handle (close_object frees it)."""
    handle = programs_lib()
    obj = _pointer(handle.bpf_object__open_file(path.encode(), None), f"bpf_object__open_file {path}")
    ret = handle.bpf_object__load(obj)
    if ret < 0:
        handle.bpf_object__close(obj)
        raise OSError(-ret, os.strerror(-ret), f"bpf_object__load {path}")
    return obj


def close_object(obj: int) -> None:
    programs_lib().bpf_object__close(obj)


def attach_program(obj: int, name: str) -> int:
    """Attach the program as its section says (tp_btf/…): the link's handle (destroy_link detaches)."""
    handle = programs_lib()
    prog = _pointer(handle.bpf_object__find_program_by_name(obj, name.encode()), f"no program {name}")
    return _pointer(handle.bpf_program__attach(prog), f"bpf_program__attach {name}")


def destroy_link(link: int) -> None:
    programs_lib().bpf_link__destroy(link)


def object_map_fd(obj: int, name: str) -> int:
    return _check(programs_lib().bpf_object__find_map_fd_by_name(obj, name.encode()), f"map {name}")


class RingBuffer:
    """A BPF ring buffer read through libbpf: `on_record(bytes)` for each record, from consume()/poll().
    on_record returning True ends this consume() after that record (libbpf's consume otherwise runs as
    long as records keep coming, which under a flood is forever)."""

    STOP = -11  # a negative callback result makes libbpf stop consuming (the record itself is consumed)

    def __init__(self, map_fd: int, on_record):
        def callback(ctx, data, size) -> int:
            return self.STOP if on_record(ct.string_at(data, size)) else 0

        self._callback = RING_CALLBACK(callback)  # kept alive as long as libbpf may call it
        handle = programs_lib()
        self._rb = _pointer(handle.ring_buffer__new(map_fd, self._callback, None, None), "ring_buffer__new")

    def consume(self) -> int:
        """The records available now (until on_record asks to stop); returns how many, -1 when stopped."""
        ret = programs_lib().ring_buffer__consume(self._rb)
        return -1 if ret == self.STOP else _check(ret, "ring_buffer__consume")

    def poll(self, timeout_ms: int) -> int:
        ret = programs_lib().ring_buffer__poll(self._rb, timeout_ms)
        return 0 if ret == -4 else _check(ret, "ring_buffer__poll")  # EINTR: a signal, not a failure

    def free(self) -> None:
        if self._rb:
            programs_lib().ring_buffer__free(self._rb)
            self._rb = None


def kernel_enum(name: str) -> dict[int, str]:
    """An enum of the running kernel, {value: name}, from its BTF (/sys/kernel/btf/vmlinux): the values of
    enum skb_drop_reason differ between kernels (tracing.md §2.1), so they are never hard-coded."""
    handle = programs_lib()
    btf = _pointer(handle.btf__load_vmlinux_btf(), "btf__load_vmlinux_btf")
    try:
        for kind, member in ((BTF_KIND_ENUM, ct.c_uint32 * 2), (BTF_KIND_ENUM64, ct.c_uint32 * 3)):
            type_id = handle.btf__find_by_name_kind(btf, name.encode(), kind)
            if type_id <= 0:
                continue
            head = ct.cast(handle.btf__type_by_id(btf, type_id), ct.POINTER(ct.c_uint32 * 3)).contents
            count = head[1] & 0xFFFF  # info: vlen in the low 16 bits
            members = ct.cast(handle.btf__type_by_id(btf, type_id) + 12, ct.POINTER(member * count)).contents
            out = {}
            for m in members:
                value = m[1] | (m[2] << 32 if kind == BTF_KIND_ENUM64 else 0)  # unsigned (tracing.md §2.1)
                out[value] = handle.btf__name_by_offset(btf, m[0]).decode()
            return out
        return {}
    finally:
        handle.btf__free(btf)
