"""Every BPF hook on every interface of a node, and what each interface serves: the model both backends
fill (tshoot.inspect.hooks_local from netlink and bpf(2), tshoot.inspect.hooks_agent from bpftool in the Cilium agent),
the rules that name interfaces and sections, the bpftool text/JSON rendering (`--raw`), and the lookups
other commands use (`tshoot walk`: which program serves ifindex N, which interface serves a pod).

The guide's line `lxc473b3117af85(24) clsact/ingress bpf_lxc.o:[from-container] id 2895` becomes: interface
24 lxc473b3117af85, endpoint of pod default/net-tshoot-l8vwz, tc ingress runs program 2895
cil_from_container (section from-container). Cilium >= 1.16 on kernels >= 6.6 attaches with tcx instead of
tc filters: those hooks are listed the same way, with their link ids.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

from tshoot.core.errors import TshootError

# Cilium's program (ELF symbol) names -> the section names the guide's bpftool lines show
CILIUM_SECTIONS = {
    "cil_from_container": "from-container", "cil_to_container": "to-container",
    "cil_from_host": "from-host", "cil_to_host": "to-host",
    "cil_from_netdev": "from-netdev", "cil_to_netdev": "to-netdev",
    "cil_from_overlay": "from-overlay", "cil_to_overlay": "to-overlay",
    "cil_from_network": "from-network", "cil_to_wireguard": "to-wireguard",
    "cil_lxc_policy": "lxc-policy", "cil_lxc_policy_egress": "lxc-policy-egress",
    "cil_xdp_entry": "xdp",
}
_TC_OBJECT_NAME = re.compile(r"^(?P<object>[^:]+):\[(?P<section>[^\]]+)\]$")  # tc's "bpf_lxc.o:[from-container]"
_CILIUM_FILTER_NAME = re.compile(r"^(?P<program>cil_[a-z0-9_]+)-(?P<ifname>.+)$")  # Cilium's "cil_from_container-lxc…"

# what the fixed Cilium devices are for
DEVICE_ROLES = {
    "cilium_host": ("cilium_host", "host endpoint: the pods' gateway on this node"),
    "cilium_net": ("cilium_net", "veth peer of cilium_host"),
    "cilium_vxlan": ("overlay", "VXLAN tunnel to the other nodes"),
    "cilium_geneve": ("overlay", "Geneve tunnel to the other nodes"),
    "cilium_wg0": ("wireguard", "WireGuard encryption device"),
    "lxc_health": ("health", "Cilium health endpoint"),
}
TC_PARENT_INGRESS, TC_PARENT_EGRESS = 0xFFFFFFF2, 0xFFFFFFF3  # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_{IN,E}GRESS)
LXC_PREFIX = "lxc"


@dataclass
class Hook:
    """One program attached to one hook of an interface."""

    hook: str                       # "xdp", "tcx" or "tc"
    attach: str                     # bpftool's kind: "generic" (xdp mode), "tcx/ingress", "clsact/egress", "htb", "root"
    prog_id: int
    direction: str | None = None    # ingress or egress (tc, tcx)
    prog_name: str | None = None
    tag: str | None = None
    section: str | None = None      # from-container, to-netdev, …
    tc_name: str | None = None      # the tc filter's name: bpf_lxc.o:[from-container], cil_from_container-lxc…
    link_id: int | None = None      # tcx attached through a BPF link (Cilium >= 1.16)
    prog_flags: int = 0
    link_flags: int = 0
    pinned: list[str] = field(default_factory=list)  # bpffs paths of the link (or program) holding the hook
    run_count: int | None = None    # with the kernel's BPF statistics on (kernel.bpf_stats_enabled)
    run_time_ns: int | None = None


@dataclass
class Peer:
    """The other end of a veth: its ifindex (the N of the pod's eth0@ifN is this interface's ifindex)."""

    ifindex: int
    netnsid: int | None = None
    netns: str | None = None
    name: str | None = None


@dataclass
class Pod:
    """The pod behind an lxc interface, from its CiliumEndpoint."""

    namespace: str
    name: str
    endpoint_id: int | None = None


@dataclass
class Interface:
    ifindex: int
    name: str
    kind: str | None = None          # veth, vxlan, … (netlink's link kind)
    role: str = "other"              # endpoint, health, cilium_host, cilium_net, overlay, uplink, wireguard, other
    serves: str = ""                 # in words
    pod: Pod | None = None
    peer: Peer | None = None
    hooks: list[Hook] = field(default_factory=list)


@dataclass
class NetShow:
    node: str | None
    netns: str | None
    backend: str
    interfaces: list[Interface] = field(default_factory=list)
    flow_dissector: Hook | None = None   # the namespace's flow dissector program
    tcx_visible: bool = True             # False: tcx links exist that the source (an old bpftool) could not place
    notes: list[str] = field(default_factory=list)

    def shown(self) -> list[Interface]:
        """The interfaces worth a line: those with a hook, and Cilium's and the uplink even without one
        (an lxc without from-container is a finding)."""
        return [i for i in self.interfaces if i.hooks or i.role != "other"]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["interfaces"] = [asdict(i) for i in self.shown()]
        return data


# --- naming ---------------------------------------------------------------------------------------------

def section_of(prog_name: str | None, tc_name: str | None = None) -> str | None:
    """The section-like name of an attached program: from tc's "obj.o:[sec]", Cilium's
    "cil_x-ifname" filter names, or Cilium's program names."""
    if tc_name:
        # tc names a program loaded from a pinned object "obj:[*fsobj]" (iproute2 lib/bpf_legacy.c): an
        # annotation, not a section; the program's own name says more.
        if (match := _TC_OBJECT_NAME.match(tc_name)) and not match["section"].startswith("*"):
            return match["section"]
        if match := _CILIUM_FILTER_NAME.match(tc_name):
            return CILIUM_SECTIONS.get(match["program"])
    return CILIUM_SECTIONS.get(prog_name or "")


NETDEV_SECTIONS = ("from-netdev", "to-netdev")  # bpf_host's programs on the devices Cilium serves (its uplinks)


def classify(interface: Interface, uplinks: set[str]) -> None:
    """Set role and serves from the name, the link kind, Cilium's netdev programs and the default route
    (Cilium attaches from-netdev/to-netdev to every device it manages, default route or not:
    pkg/datapath/loader reloadHostDatapath)."""
    if interface.name in DEVICE_ROLES:
        interface.role, interface.serves = DEVICE_ROLES[interface.name]
    elif interface.name.startswith(LXC_PREFIX) and interface.kind in (None, "veth", "netkit"):
        interface.role, interface.serves = "endpoint", "pod endpoint (unknown pod)"
    elif any(hook.section in NETDEV_SECTIONS for hook in interface.hooks):
        interface.role, interface.serves = "uplink", "node uplink (Cilium's from-netdev/to-netdev attached)" + (
            ", default route" if interface.name in uplinks else "")
    elif interface.name in uplinks:
        interface.role, interface.serves = "uplink", "node uplink (default route)"
    if interface.pod is not None:
        interface.serves = f"pod {interface.pod.namespace}/{interface.pod.name}" + (
            f" (endpoint {interface.pod.endpoint_id})" if interface.pod.endpoint_id is not None else "")
    elif interface.role == "endpoint" and interface.peer and interface.peer.netns:
        interface.serves = f"pod netns {interface.peer.netns}" + (
            f" ({interface.peer.name})" if interface.peer.name else "")


def lxc_names(endpoint: dict) -> set[str]:
    """The host-side interface names Cilium gives a CiliumEndpoint's veth: "lxc" + the first 12 hex digits
    of sha256(id), the id being the container id (Cilium < 1.15) or "<container id>:<ifname>" (the CNI
    attachment id, Cilium >= 1.15). Cilium's connector.Endpoint2IfName."""
    ids = (endpoint.get("status") or {}).get("external-identifiers") or {}
    candidates = {ids.get("cni-attachment-id"), ids.get("container-id")}
    if ids.get("container-id"):
        candidates.add(f"{ids['container-id']}:eth0")
    return {LXC_PREFIX + hashlib.sha256(c.encode()).hexdigest()[:12] for c in candidates if c}


def attach_pods(show: NetShow, endpoints: list[dict]) -> None:
    """Name the pod behind each lxc interface from CiliumEndpoint objects (as the API returns them)."""
    by_ifname = {}
    for endpoint in endpoints:
        meta, status = endpoint.get("metadata", {}), endpoint.get("status") or {}
        ids = status.get("external-identifiers") or {}
        pod = Pod(namespace=ids.get("k8s-namespace") or meta.get("namespace", ""),
                  name=ids.get("k8s-pod-name") or meta.get("name", ""), endpoint_id=status.get("id"))
        for name in lxc_names(endpoint):
            by_ifname[name] = pod
    for interface in show.interfaces:
        if interface.name in by_ifname:
            interface.pod = by_ifname[interface.name]


# --- lookups (used by tshoot walk) -----------------------------------------------------------------------

def interface_by_ifindex(show: NetShow, ifindex: int) -> Interface:
    """The interface with that ifindex on the node: for a pod's `eth0@ifN`, N is the node-side lxc's ifindex."""
    for interface in show.interfaces:
        if interface.ifindex == ifindex:
            return interface
    where = f"node {show.node}" if show.node else "this machine"
    raise TshootError(f"no interface with ifindex {ifindex} on {where}"
                      + (f" (network namespace {show.netns})" if show.netns else ""))


def program_for(interface: Interface, direction: str = "ingress") -> Hook | None:
    """The program that runs first for traffic entering (ingress) or leaving (egress) the interface:
    tcx before tc (the kernel runs tcx first), XDP before both on ingress."""
    for kind in ("tcx", "tc"):
        for hook in interface.hooks:
            if hook.hook == kind and hook.direction == direction:
                return hook
    return None


# --- bpftool's own layouts (--raw) ------------------------------------------------------------------------

def bpftool_json(show: NetShow) -> list[dict]:
    """What `bpftool -j net show` prints (a bpftool new enough to know tcx)."""
    xdp, tc = [], []
    for interface in show.interfaces:
        modes = [h for h in interface.hooks if h.hook == "xdp"]
        if len(modes) == 1:
            xdp.append({"devname": interface.name, "ifindex": interface.ifindex, "mode": modes[0].attach,
                        "id": modes[0].prog_id})
        elif modes:
            xdp.append({"devname": interface.name, "ifindex": interface.ifindex,
                        "multi_attachments": [{"mode": h.attach, "id": h.prog_id} for h in modes]})
        for hook in interface.hooks:
            if hook.hook == "tcx":
                entry = {"devname": interface.name, "ifindex": interface.ifindex, "kind": hook.attach}
                if hook.prog_name:
                    entry["name"] = hook.prog_name
                entry |= {"prog_id": hook.prog_id, "prog_flags": _bits(hook.prog_flags),
                          "link_id": hook.link_id or 0, "link_flags": _bits(hook.link_flags)}
                tc.append(entry)
            elif hook.hook == "tc":
                entry = {"devname": interface.name, "ifindex": interface.ifindex, "kind": hook.attach}
                if hook.tc_name is not None:
                    entry["name"] = hook.tc_name
                tc.append(entry | {"id": hook.prog_id})
    # bpftool itself prints this array as ["id":N], which is not JSON (bpftool_net_json repairs it)
    flow = [{"id": show.flow_dissector.prog_id}] if show.flow_dissector else []
    return [{"xdp": xdp, "tc": tc, "flow_dissector": flow}]


def bpftool_text(show: NetShow) -> str:
    """What `bpftool net show` prints, byte for byte (tcx lines as bpftool >= 7.3 prints them, trailing
    space included): each section a header line, one line per entry, then an empty line."""
    xdp, tc = [], []
    for interface in show.interfaces:
        modes = [h for h in interface.hooks if h.hook == "xdp"]
        if modes:
            xdp.append(f"{interface.name}({interface.ifindex})" + "".join(f" {h.attach} id {h.prog_id}" for h in modes))
        for hook in interface.hooks:
            head = f"{interface.name}({interface.ifindex}) {hook.attach}"
            if hook.hook == "tcx":
                line = head + (f" {hook.prog_name}" if hook.prog_name else "") + f" prog_id {hook.prog_id} "
                if hook.prog_flags:
                    line += "prog_flags " + "".join(f"{b} " for b in _bits(hook.prog_flags))
                if hook.link_id:
                    line += f"link_id {hook.link_id} "
                    if hook.link_flags:
                        line += "link_flags " + "".join(f"{b} " for b in _bits(hook.link_flags))
                tc.append(line)
            elif hook.hook == "tc":
                tc.append(head + (f" {hook.tc_name}" if hook.tc_name is not None else "") + f" id {hook.prog_id}")
    flow = f"id {show.flow_dissector.prog_id}" if show.flow_dissector else ""
    return ("xdp:\n" + "".join(f"{line}\n" for line in xdp) + "\n"
            + "tc:\n" + "".join(f"{line}\n" for line in tc) + "\n"
            + "flow_dissector:\n" + flow + "\n")


def bpftool_net_json(text: str) -> dict:
    """One namespace's `bpftool -j net show` read. bpftool writes a flow dissector entry as ["id":N],
    which is not JSON; it is read as [{"id":N}]."""
    import json

    repaired = re.sub(r'"flow_dissector":\["id":(\d+)\]', r'"flow_dissector":[{"id":\1}]', text)
    try:
        data = json.loads(repaired)
    except json.JSONDecodeError as exc:
        raise TshootError(f"bpftool net show: unreadable JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(data, list):
        return data[0] if data else {}
    return data  # bpftool's {"error": …}: the caller reports it


def _bits(flags: int) -> list[int]:
    return [1 << bit for bit in range(32) if flags & (1 << bit)]


def from_bpftool(devices: list[dict], net: dict, programs: dict[int, dict], links: list[dict]) -> list[Interface]:
    """Interfaces and hooks from bpftool's JSON: `net show` (one element of its list), `prog show` by id,
    `link show` (tcx links, for a bpftool too old to list tcx in `net show`), and the devices
    (`ip -j -d link show`)."""
    index_of = {d["ifname"]: d["ifindex"] for d in devices}
    by_index = {d["ifindex"]: Interface(ifindex=d["ifindex"], name=d["ifname"],
                                        kind=(d.get("linkinfo") or {}).get("info_kind"),
                                        peer=_peer_from_ip(d, index_of))
                for d in devices}

    def interface(ifindex: int, name: str) -> Interface:
        return by_index.setdefault(ifindex, Interface(ifindex=ifindex, name=name))

    for entry in net.get("xdp", []):
        for attachment in entry.get("multi_attachments", [entry]):
            interface(entry["ifindex"], entry.get("devname", "")).hooks.append(
                Hook(hook="xdp", attach=attachment["mode"], prog_id=attachment["id"]))
    tcx_listed = False
    for entry in net.get("tc", []):
        target = interface(entry["ifindex"], entry.get("devname", ""))
        if entry["kind"].startswith("tcx/"):
            tcx_listed = True
            target.hooks.append(Hook(
                hook="tcx", attach=entry["kind"], direction=entry["kind"].split("/")[1], prog_id=entry["prog_id"],
                link_id=entry.get("link_id") or None, prog_flags=sum(entry.get("prog_flags", [])),
                link_flags=sum(entry.get("link_flags", []))))
        else:
            target.hooks.append(Hook(hook="tc", attach=entry["kind"], direction=_tc_direction(entry["kind"]),
                                     prog_id=entry["id"], tc_name=entry.get("name")))
    if not tcx_listed:  # bpftool < 7.3: tcx only shows as links (kernel order within a hook is lost)
        for link in links:
            if link.get("type") == "tcx" and link.get("ifindex") in by_index:
                direction = "ingress" if link.get("attach_type") == "tcx_ingress" else "egress"
                target = by_index[link["ifindex"]]
                target.hooks.append(Hook(hook="tcx", attach=f"tcx/{direction}", direction=direction,
                                         prog_id=link["prog_id"], link_id=link["id"]))
    pins = {link["id"]: link.get("pinned", []) for link in links}
    for target in by_index.values():
        target.hooks.sort(key=_hook_order)
        for hook in target.hooks:
            program = programs.get(hook.prog_id, {})
            hook.prog_name, hook.tag = program.get("name"), program.get("tag")
            if "run_cnt" in program:  # bpftool prints run statistics only when the kernel counted some
                hook.run_count, hook.run_time_ns = program["run_cnt"], program.get("run_time_ns", 0)
            hook.section = section_of(hook.prog_name, hook.tc_name)
            if hook.link_id:
                hook.pinned = list(pins.get(hook.link_id, []))
    return sorted(by_index.values(), key=lambda i: i.ifindex)


def _peer_from_ip(device: dict, index_of: dict[str, int]) -> Peer | None:
    """ip -j names a peer in the same namespace ("link": "cilium_net") and numbers one in another
    ("link_index" and "link_netnsid")."""
    if (device.get("linkinfo") or {}).get("info_kind") != "veth":
        return None
    if "link_index" in device:
        return Peer(ifindex=device["link_index"], netnsid=device.get("link_netnsid"))
    if device.get("link") in index_of:
        return Peer(ifindex=index_of[device["link"]], name=device["link"])
    return None


def _tc_direction(kind: str) -> str | None:
    return {"clsact/ingress": "ingress", "clsact/egress": "egress"}.get(kind)


_HOOK_ORDER = {"xdp": 0, "tcx/ingress": 1, "tcx/egress": 2, "root": 4, "clsact/ingress": 5, "clsact/egress": 6}


def _hook_order(hook: Hook) -> int:
    """bpftool's order: XDP, tcx ingress, tcx egress, then tc: classes and qdiscs, root, clsact in, out."""
    return _HOOK_ORDER.get("xdp" if hook.hook == "xdp" else hook.attach, 3)
