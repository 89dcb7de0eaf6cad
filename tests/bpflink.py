"""Attaching a pinned cgroup program through a bpf_link and pinning the link, as Cilium >= 1.14 does.

bpftool 7.1 cannot create cgroup links, so this calls libbpf (libbpf.so.1 from libbpf-dev, which the tests
install for clang anyway) through ctypes: bpf_obj_get, bpf_link_create, bpf_obj_pin.
"""

from __future__ import annotations

import ctypes
import os

_lib = ctypes.CDLL("libbpf.so.1", use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def link_cgroup(prog_pin: str, cgroup: str, section: str, link_pin: str) -> None:
    """Attach the program pinned at prog_pin to `cgroup` for `section`'s attach type ("cgroup/connect4")
    through a bpf_link, and pin the link at link_pin (its directory is created)."""
    attach_type = ctypes.c_int()
    prog_type = ctypes.c_int()
    _check(_lib.libbpf_prog_type_by_name(section.encode(), ctypes.byref(prog_type), ctypes.byref(attach_type)),
           f"attach type of {section}")
    prog_fd = _check(_lib.bpf_obj_get(prog_pin.encode()), f"open {prog_pin}")
    cgroup_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        link_fd = _check(_lib.bpf_link_create(prog_fd, cgroup_fd, attach_type.value, None), f"link {prog_pin}")
        try:
            os.makedirs(os.path.dirname(link_pin), exist_ok=True)
            _check(_lib.bpf_obj_pin(link_fd, link_pin.encode()), f"pin the link at {link_pin}")
        finally:
            os.close(link_fd)
    finally:
        os.close(cgroup_fd)
        os.close(prog_fd)
