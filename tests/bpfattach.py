"""Attaching test programs where bpftool 7.1 and iproute2 cannot: tcx (links and plain attachments) and
cgroup links, through libbpf (the same library tshoot.node.bpfsys reads with). Programs come pinned in the
test's private bpffs (`bpftool prog loadall`); links are pinned there too, so they outlive this process
and disappear with the bpffs unmount and the test's network namespaces."""

from __future__ import annotations

import ctypes
import os
import socket

from tshoot.node import bpfsys
from tshoot.inspect.hooks_local import in_netns


def _lib():
    lib = bpfsys.libbpf()
    lib.bpf_link_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p]
    lib.bpf_obj_pin.argtypes = [ctypes.c_int, ctypes.c_char_p]
    lib.bpf_prog_attach.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint]
    return lib


def _prog_fd(prog_pin) -> int:
    fd = _lib().bpf_obj_get(str(prog_pin).encode())
    if fd < 0:
        raise OSError(-fd, f"bpf_obj_get {prog_pin}: {os.strerror(-fd)}")
    return fd


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def _link(prog_pin, target_fd: int, attach_type: int, link_pin, what: str) -> None:
    """BPF_LINK_CREATE of the pinned program on target_fd, the link pinned at link_pin."""
    prog = _prog_fd(prog_pin)
    try:
        link = _check(_lib().bpf_link_create(prog, target_fd, attach_type, None), f"{what} link_create")
        try:
            _check(_lib().bpf_obj_pin(link, str(link_pin).encode()), f"pin {what} link")
        finally:
            os.close(link)
    finally:
        os.close(prog)


def tcx_link(prog_pin, ifname: str, direction: str, link_pin, netns: str | None = None) -> None:
    """A tcx link on ifname (in netns), as Cilium >= 1.16 attaches, pinned at link_pin."""
    attach_type = bpfsys.BPF_TCX_INGRESS if direction == "ingress" else bpfsys.BPF_TCX_EGRESS
    in_netns(netns, lambda: _link(prog_pin, socket.if_nametoindex(ifname), attach_type, link_pin, "tcx"))


def tcx_attach(prog_pin, ifname: str, direction: str, netns: str | None = None) -> None:
    """BPF_PROG_ATTACH with BPF_TCX_INGRESS/EGRESS: a tcx attachment without a link."""
    attach_type = bpfsys.BPF_TCX_INGRESS if direction == "ingress" else bpfsys.BPF_TCX_EGRESS

    def attach():
        prog = _prog_fd(prog_pin)
        try:
            _check(_lib().bpf_prog_attach(prog, socket.if_nametoindex(ifname), attach_type, 0), "tcx prog_attach")
        finally:
            os.close(prog)

    in_netns(netns, attach)


def cgroup_link(prog_pin, cgroup: str, attach_type: str, link_pin) -> None:
    """A cgroup link, as Cilium >= 1.12 attaches its socket-LB programs, pinned at link_pin."""
    cg = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _link(prog_pin, cg, bpfsys.ATTACH_TYPES.index(attach_type), link_pin, "cgroup")
    finally:
        os.close(cg)


class _OpenOpts(ctypes.Structure):
    """The head of libbpf's struct bpf_object_open_opts (sz says how much of it is given)."""
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p), ("relaxed_maps", ctypes.c_bool),
                ("pin_root_path", ctypes.c_char_p)]


def tail_call(obj, prog_name: str, pin_root, prog_array: str, key: int) -> None:
    """Load one program of `obj` (its maps reused by name from pin_root, as tc loads pin them) and put it
    in slot `key` of the prog array `prog_array`: how Cilium's loader fills cilium_call_policy with an
    endpoint's policy program. The array holds the program; nothing else is pinned."""
    lib = _lib()
    vp = ctypes.c_void_p
    for fn, args, res in (("bpf_object__open_file", [ctypes.c_char_p, vp], vp),
                          ("bpf_object__next_program", [vp, vp], vp), ("bpf_program__name", [vp], ctypes.c_char_p),
                          ("bpf_program__set_autoload", [vp, ctypes.c_bool], ctypes.c_int),
                          ("bpf_object__load", [vp], ctypes.c_int), ("bpf_program__fd", [vp], ctypes.c_int),
                          ("bpf_object__find_map_fd_by_name", [vp, ctypes.c_char_p], ctypes.c_int),
                          ("bpf_map_update_elem", [ctypes.c_int, vp, vp, ctypes.c_uint64], ctypes.c_int),
                          ("bpf_object__close", [vp], None)):
        getattr(lib, fn).argtypes, getattr(lib, fn).restype = args, res
    opts = _OpenOpts(ctypes.sizeof(_OpenOpts), None, False, str(pin_root).encode())
    handle = lib.bpf_object__open_file(str(obj).encode(), ctypes.byref(opts))
    if not handle:
        err = ctypes.get_errno()
        raise OSError(err, f"open {obj}: {os.strerror(err)}")
    try:
        prog, chosen = None, None
        while prog := lib.bpf_object__next_program(handle, prog):
            wanted = lib.bpf_program__name(prog).decode() == prog_name
            lib.bpf_program__set_autoload(prog, wanted)
            chosen = prog if wanted else chosen
        if chosen is None:
            raise LookupError(f"{obj} has no program {prog_name}")
        _check(lib.bpf_object__load(handle), f"load {prog_name} from {obj}")
        array = _check(lib.bpf_object__find_map_fd_by_name(handle, prog_array.encode()), f"map {prog_array}")
        slot, fd = ctypes.c_uint32(key), ctypes.c_uint32(lib.bpf_program__fd(chosen))
        _check(lib.bpf_map_update_elem(array, ctypes.byref(slot), ctypes.byref(fd), 0), f"{prog_array}[{key}]")
    finally:
        lib.bpf_object__close(handle)
