"""Attaching test programs where bpftool 7.1 and iproute2 cannot: tcx (links and plain attachments) and
cgroup links, through libbpf (tshoot.node.libbpf, the binding tshoot.node.bpfsys reads with). Programs come
pinned in the test's private bpffs (`bpftool prog loadall`); links are pinned there too, so they outlive this
process and disappear with the bpffs unmount and the test's network namespaces."""

from __future__ import annotations

import ctypes
import os
import socket

from tshoot.node import bpfsys, libbpf
from tshoot.inspect.hooks_local import in_netns


def _lib():
    lib = libbpf.lib()
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
