"""The local backend: the hooks of this machine (or of one of its network namespaces), read the way
`bpftool net show` reads them — netlink for XDP and tc filters (pyroute2), the bpf(2) query for tcx and
the flow dissector (tshoot.node.bpfsys) — plus program info, cgroup attachments and bpffs pins.

Network namespaces: setns(2) moves only the calling thread, so everything namespace-scoped runs in a
short-lived worker thread that entered the namespace (`in_netns`); the rest of the process stays put.
"""

from __future__ import annotations

import errno
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from tshoot.node import bpfsys
from tshoot.inspect.programs import (CILIUM_CGROUP_ROOT, STATS_OFF, Cgroup, CgroupAttachment, CgroupShow, MapRef,
                                     ProgramShow, bpf_stats_enabled, pinned_name)
from tshoot.core.errors import TshootError
from tshoot.inspect.netshow import TC_PARENT_EGRESS, TC_PARENT_INGRESS, Hook, Interface, NetShow, Peer, classify, section_of

NETNS_DIR = "/run/netns"
DEFAULT_BPFFS = "/sys/fs/bpf"
TC_H_ROOT = 0xFFFFFFFF
_XDP_MODES = {"xdp": "driver", "xdpgeneric": "generic", "xdpoffload": "offload"}
_XDP_MULTI = (("IFLA_XDP_SKB_PROG_ID", "generic"), ("IFLA_XDP_DRV_PROG_ID", "driver"),
              ("IFLA_XDP_HW_PROG_ID", "offload"))


# --- namespaces and mounts -------------------------------------------------------------------------------

def netns_path(name: str) -> str:
    path = name if "/" in name else os.path.join(NETNS_DIR, name)
    if not os.path.exists(path):
        known = sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []
        raise TshootError(f"network namespace {name!r} not found (known: {', '.join(known) or 'none'}; "
                          f"'ip netns list' shows them)")
    return path


def in_netns(netns: str | None, fn, *args):
    """fn(*args) run in a worker thread that entered the named network namespace (None: this one)."""
    if netns is None:
        return fn(*args)
    path = netns_path(netns)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_entered, path, netns, fn, args).result()


def _entered(path: str, name: str, fn, args):
    from pyroute2.netns import setns

    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd, flags=0)
    except OSError as exc:
        if exc.errno == errno.EPERM or isinstance(exc, PermissionError):
            raise TshootError(f"entering network namespace {name}: permission denied (run with sudo)") from None
        raise TshootError(f"entering network namespace {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return fn(*args)


def mount_type(path: str) -> str | None:
    """The filesystem type of the mount holding path (/proc/self/mountinfo; nothing under path is read)."""
    path, best, fstype = os.path.realpath(path), "", None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4].replace("\\040", " ")
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, fstype = point, right.split()[0]
    return fstype


def bpffs_pins(bpffs: str | None) -> tuple[dict, str | None]:
    """Pinned object ids under the bpffs, and a note when none could be read. An explicit --bpffs that is
    not a bpffs is an error; the default (/sys/fs/bpf) is simply skipped when it is not one."""
    path = bpffs or DEFAULT_BPFFS
    if mount_type(path) != "bpf":
        if bpffs:
            raise TshootError(f"--bpffs {bpffs}: not a bpffs mount (mount one: mount -t bpf bpf {bpffs})")
        return {}, f"{DEFAULT_BPFFS} is not a bpffs mount here: pinned paths not shown (pass --bpffs DIR)"
    return bpfsys.pinned_ids(path), None


# --- net show --------------------------------------------------------------------------------------------

def net_show(netns: str | None = None, bpffs: str | None = None) -> NetShow:
    """Every interface of the namespace with its XDP, tcx and tc programs, named and classified."""
    _register_cls_bpf_attributes()
    pins, note = bpffs_pins(bpffs)
    show, uplinks = in_netns(netns, _collect, netns)
    hooks = [h for i in show.interfaces for h in i.hooks] + ([show.flow_dissector] if show.flow_dissector else [])
    if note and any(h.link_id for h in hooks):
        show.notes.append(note)
    programs = {}
    stats = bpf_stats_enabled()
    if hooks and not stats:
        show.notes.append(STATS_OFF)
    for hook in hooks:
        if hook.prog_id not in programs:
            programs[hook.prog_id] = _program_or_none(hook.prog_id)
        program = programs[hook.prog_id]
        hook.prog_name, hook.tag = (program.name, program.tag) if program else (None, None)
        if program and stats:
            hook.run_count, hook.run_time_ns = program.run_count, program.run_time_ns
        hook.section = section_of(hook.prog_name, hook.tc_name)
        hook.pinned = pins.get(("link", hook.link_id), []) if hook.link_id else []
    _name_peers(show)
    for interface in show.interfaces:
        classify(interface, uplinks)
    return show


def _program_or_none(prog_id: int):
    try:
        return bpfsys.program(prog_id)
    except bpfsys.Gone:  # unloaded between the listing and now
        return None


def _collect(netns: str | None) -> tuple[NetShow, set[str]]:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    show = NetShow(node=socket.gethostname(), netns=netns, backend="local")
    try:
        with IPRoute() as ipr:
            links = ipr.get_links()
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in links}
            uplinks = {names.get(r.get_attr("RTA_OIF")) for family in (socket.AF_INET, socket.AF_INET6)
                       for r in ipr.get_routes(family=family, table=254) if r["dst_len"] == 0}
            for link in links:
                interface = _interface(link, names)
                interface.hooks = _xdp_hooks(link) + _tcx_hooks(interface.ifindex) + _tc_hooks(ipr, interface.ifindex)
                show.interfaces.append(interface)
            nsids = _named_nsids(ipr)
        flow_dissector = bpfsys.flow_dissector()
        if flow_dissector:
            show.flow_dissector = Hook(hook="flow_dissector", attach="flow_dissector", prog_id=flow_dissector)
    except NetlinkError as exc:
        raise TshootError(f"netlink: {exc.args[-1] if exc.args else exc}") from None
    for interface in show.interfaces:
        if interface.peer and interface.peer.netnsid is not None:
            interface.peer.netns = nsids.get(interface.peer.netnsid)
    return show, uplinks


def _interface(link, names: dict[int, str]) -> Interface:
    kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    interface = Interface(ifindex=link["index"], name=link.get_attr("IFLA_IFNAME"), kind=kind)
    peer = link.get_attr("IFLA_LINK")
    if kind == "veth" and peer:
        netnsid = link.get_attr("IFLA_LINK_NETNSID")
        interface.peer = Peer(ifindex=peer, netnsid=netnsid, name=names.get(peer) if netnsid is None else None)
    return interface


def _xdp_hooks(link) -> list[Hook]:
    xdp = link.get_attr("IFLA_XDP")
    mode = xdp.get_attr("IFLA_XDP_ATTACHED") if xdp else None
    if not mode:
        return []
    if mode == "xdpmulti":
        return [Hook(hook="xdp", attach=name, prog_id=xdp.get_attr(attr))
                for attr, name in _XDP_MULTI if xdp.get_attr(attr)]
    return [Hook(hook="xdp", attach=_XDP_MODES[mode], prog_id=xdp.get_attr("IFLA_XDP_PROG_ID"))]


def _tcx_hooks(ifindex: int) -> list[Hook]:
    hooks = []
    for attach_type, direction in ((bpfsys.BPF_TCX_INGRESS, "ingress"), (bpfsys.BPF_TCX_EGRESS, "egress")):
        for found in bpfsys.tcx(ifindex, attach_type):
            hooks.append(Hook(hook="tcx", attach=f"tcx/{direction}", direction=direction, prog_id=found.prog_id,
                              link_id=found.link_id, prog_flags=found.flags, link_flags=found.link_flags))
    return hooks


def _tc_hooks(ipr, ifindex: int) -> list[Hook]:
    """tc bpf filters in bpftool's order: under classes, under qdiscs other than clsact, at the root,
    then clsact ingress and egress. Parents that cannot be listed are skipped, as bpftool does."""
    from pyroute2.netlink.exceptions import NetlinkError

    parents = []
    try:
        parents += [(c["handle"], c.get_attr("TCA_KIND")) for c in ipr.get_classes(index=ifindex)]
        parents += [(q["handle"], q.get_attr("TCA_KIND")) for q in ipr.get_qdiscs(index=ifindex)
                    if q.get_attr("TCA_KIND") != "clsact" and q["handle"]]
    except NetlinkError:
        pass
    parents += [(TC_H_ROOT, "root"), (TC_PARENT_INGRESS, "clsact/ingress"), (TC_PARENT_EGRESS, "clsact/egress")]
    hooks = []
    for parent, kind in parents:
        try:
            filters = ipr.get_filters(index=ifindex, parent=parent)
        except NetlinkError:
            continue
        for message in filters:
            options = message.get_attr("TCA_OPTIONS")
            if message.get_attr("TCA_KIND") != "bpf" or not options:
                continue  # the per-priority header messages carry no options
            tag = options.get_attr("TCA_BPF_TAG")
            hooks.append(Hook(hook="tc", attach=kind, direction=kind.split("/")[1] if kind.startswith("clsact/") else None,
                              prog_id=options.get_attr("TCA_BPF_ID"), tc_name=options.get_attr("TCA_BPF_NAME"),
                              tag=tag.replace(":", "") if tag else None))
    return hooks


def _named_nsids(ipr) -> dict[int, str]:
    """nsid (as this namespace numbers its peers) -> name under /run/netns."""
    found = {}
    for name in sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []:
        try:
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        except OSError:
            continue
        try:
            answer = ipr.get_netnsid(fd=fd)
        finally:
            os.close(fd)
        if answer and answer.get("nsid") is not None and answer["nsid"] >= 0:
            found.setdefault(answer["nsid"], name)
    return found


def _name_peers(show: NetShow) -> None:
    """The interface name at the other end of each veth whose peer lives in a named namespace (eth0)."""
    from pyroute2 import IPRoute

    def names() -> dict[int, str]:
        with IPRoute() as ipr:
            return {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}

    by_netns: dict[str, dict[int, str]] = {}
    for interface in show.interfaces:
        peer = interface.peer
        if peer and peer.netns:
            if peer.netns not in by_netns:
                by_netns[peer.netns] = in_netns(peer.netns, names)
            peer.name = by_netns[peer.netns].get(peer.ifindex)


_registered = False


def _register_cls_bpf_attributes() -> None:
    """pyroute2 (0.9) does not decode TCA_BPF_TAG and TCA_BPF_ID in tc filter replies: register them in its
    tc plugin table, with a copy of its bpf plugin whose options know the whole enum (linux/pkt_cls.h)."""
    global _registered
    if _registered:
        return
    import types

    from pyroute2.netlink import nla
    from pyroute2.netlink.rtnl.tcmsg import plugins, sched_bpf
    from pyroute2.netlink.rtnl.tcmsg.act_police import nla_plus_police

    class options(nla, nla_plus_police):
        nla_map = (*sched_bpf.options.nla_map, ("TCA_BPF_FLAGS_GEN", "uint32"), ("TCA_BPF_TAG", "hex"),
                   ("TCA_BPF_ID", "uint32"))
        bpf_act = sched_bpf.options.bpf_act

    plugins["bpf"] = types.SimpleNamespace(**{**vars(sched_bpf), "options": options})
    _registered = True


# --- prog show, cgroup show ------------------------------------------------------------------------------

def prog_show(prog_id: int, bpffs: str | None = None) -> ProgramShow:
    """The program, its maps named by their pinned names where pinned under the bpffs, its run statistics
    when the kernel counts them."""
    program = bpfsys.program(prog_id)
    pins, note = bpffs_pins(bpffs)
    maps = []
    for map_id in program.map_ids:
        pinned = pinned_name(pins.get(("map", map_id), []))
        try:
            summary = bpfsys.map_summary(map_id)
            maps.append(MapRef(id=map_id, name=summary.name, type=summary.type, pinned=pinned))
        except bpfsys.Gone:
            maps.append(MapRef(id=map_id, pinned=pinned))
    stats = bpf_stats_enabled()
    notes = [n for n in (note if program.map_ids else None, None if stats else STATS_OFF) if n]
    return ProgramShow(id=program.id, type=program.type, name=program.name, tag=program.tag, gpl=program.gpl,
                       loaded_at=program.loaded_at, uid=program.uid, xlated=program.xlated, jited=program.jited,
                       memlock=program.memlock, btf_id=program.btf_id, maps=maps, node=socket.gethostname(),
                       run_count=program.run_count if stats else None,
                       run_time_ns=program.run_time_ns if stats else None, notes=notes)


def cgroup_show(root: str, effective: bool = False, tree: bool = False, bpffs: str | None = None) -> CgroupShow:
    """The programs on a cgroup v2 directory (or, with tree, on every cgroup below it that has some)."""
    if not os.path.isdir(root):
        hint = (" (Cilium mounts its cgroup v2 root there on its nodes; elsewhere pass a cgroup v2 directory)"
                if root == CILIUM_CGROUP_ROOT else "")
        raise TshootError(f"cgroup {root}: no such directory{hint}")
    if mount_type(root) != "cgroup2":
        raise TshootError(f"cgroup {root}: not on a cgroup v2 mount (mount -t cgroup2 none DIR, or pass a path under "
                          f"one)")
    pins, note = bpffs_pins(bpffs)
    links = {(link.cgroup_id, link.prog_id, link.attach_type): link for link in bpfsys.links() if link.type == "cgroup"}
    paths = [root] if not tree else [dirpath for dirpath, _dirs, _files in os.walk(root)]
    show = CgroupShow(root=root, effective=effective, node=socket.gethostname())
    names: dict[int, str | None] = {}
    for path in paths:
        found = bpfsys.cgroup(path, effective)
        if tree and not found:
            continue
        identity = bpfsys.cgroup_id(path)
        cgroup = Cgroup(path=path)
        for attached in found:
            if attached.prog_id not in names:
                program = _program_or_none(attached.prog_id)
                names[attached.prog_id] = program.name if program else None
            link = links.get((identity, attached.prog_id, attached.attach_type))
            cgroup.attachments.append(CgroupAttachment(
                attach_type=attached.attach_type, prog_id=attached.prog_id, prog_name=names[attached.prog_id],
                flags=bpfsys.attach_flags_name(attached.flags), link_id=link.id if link else None,
                pinned=pins.get(("link", link.id), []) if link else []))
        show.cgroups.append(cgroup)
    if note and any(a.link_id for c in show.cgroups for a in c.attachments):
        show.notes.append(note)
    return show
