"""The pod backend: ask the node's Cilium agent, as the guide does (`kubectl -n cilium exec $cilium --
bpftool net show`), through the Kubernetes API's exec (tshoot.node.agent.Agent), and read the answers into the same models the
local backend fills: `bpftool -j net show`, `prog show`, `-f link show`, `map show`, `cgroup show|tree`,
and `ip -j -d link show` / `ip -j route show default` for what each interface is. Pods behind lxc
interfaces come from the cluster's CiliumEndpoints.
"""

from __future__ import annotations

import json
from tshoot.cluster import kube, model
from tshoot.core.errors import TshootError
from tshoot.inspect.netshow import Hook, NetShow, attach_pods, bpftool_net_json, classify, from_bpftool, section_of
from tshoot.inspect.programs import CgroupShow, ProgramShow, cgroup_from_bpftool, program_from_bpftool
from tshoot.node.agent import Agent, NotInImage, find_agent
from tshoot.node.fanout import DEFAULT_TIMEOUT


class Cluster(model.Cluster):
    """The cluster model (tshoot.cluster.model: CiliumEndpoints read once, shared by the nodes asked), and
    the way to each node's agent through its API connection."""

    timeout: float = DEFAULT_TIMEOUT  # how long one exec in an agent may take (--timeout)

    def agent(self, node: str) -> Agent:
        return find_agent(self.api, node, timeout=self.timeout)

    def endpoints(self) -> tuple[list, str | None]:
        return self.endpoint_objects()


def connect(kubeconfig: str | None, context: str | None, timeout: float = DEFAULT_TIMEOUT) -> Cluster:
    cluster = Cluster(kube.api_client(kubeconfig, context))
    cluster.timeout = timeout
    return cluster


def nodes(cluster: Cluster, node: str | None) -> list[str]:
    """--node, or every node of the cluster (--all-nodes)."""
    names = [node] if node else sorted(n["metadata"]["name"] for n in kube.list_objects(cluster.api, kube.NODES))
    if not names:
        raise TshootError("the cluster has no nodes")
    return names


# --- net show --------------------------------------------------------------------------------------------

NET_SHOW = [["bpftool", "-j", "net", "show"], ["bpftool", "-j", "prog", "show"], ["bpftool", "-j", "-f", "link", "show"],
            ["ip", "-j", "-d", "link", "show"], ["ip", "-j", "route", "show", "default"],
            ["ip", "-j", "-6", "route", "show", "default"]]


def net_show(cluster: Cluster, node: str, agent: Agent | None = None) -> NetShow:
    """The node's hooks, through `agent` (found on the node when not given)."""
    agent = agent or cluster.agent(node)
    # the node's commands in one exec (one round trip), the cluster's CiliumEndpoints beside it
    ran, (endpoint_list, endpoints_note) = agent.concurrently(
        lambda: dict(zip(map(tuple, NET_SHOW), agent.exec_many(NET_SHOW, "net show", lacking_ok=True))),
        cluster.endpoints)

    def bpftool(argv: list[str], empty, repair=None):
        code, out, err = ran[tuple(argv)]
        what = " ".join(a for a in argv if not a.startswith("-"))
        agent.runnable(argv, code, err, what)
        return agent.parsed(what, code, out, err, repair=repair)[0] or empty

    net = bpftool(NET_SHOW[0], {}, bpftool_net_json)
    programs, links = bpftool(NET_SHOW[1], []), bpftool(NET_SHOW[2], [])
    (devices, note), route4, route6 = (_optional_ip(agent, argv, *ran[tuple(argv)]) for argv in NET_SHOW[3:])
    route_answers = [route4[0], route6[0]]
    show = NetShow(node=node, netns=None, backend="pod")
    by_id = {p["id"]: p for p in programs}
    show.interfaces = from_bpftool(devices, net, by_id, links)
    if net.get("flow_dissector"):
        prog_id = net["flow_dissector"][0]["id"]
        program = by_id.get(prog_id, {})
        show.flow_dissector = Hook(hook="flow_dissector", attach="flow_dissector", prog_id=prog_id,
                                   prog_name=program.get("name"), tag=program.get("tag"),
                                   section=section_of(program.get("name")))
    uplinks = {r.get("dev") for answer in route_answers for r in answer}
    attach_pods(show, endpoint_list)
    for interface in show.interfaces:
        classify(interface, uplinks)
    placed = {h.link_id for i in show.interfaces for h in i.hooks if h.link_id}
    unplaced = [link for link in links if link.get("type") in ("tcx", 11) and link["id"] not in placed]
    if unplaced:
        show.tcx_visible = False
        show.notes.append("the agent's bpftool cannot say where tcx links "
                          + ", ".join(f"{link['id']} (program {link['prog_id']})" for link in unplaced)
                          + " are attached (bpftool >= 7.3 can)")
    show.notes += [n for n in (note, endpoints_note) if n]
    return show


def _optional_ip(agent: Agent, argv: list[str], code: int, out: str, err: str) -> tuple[list, str | None]:
    """What `ip -j …` answered in the agent; without iproute2 in the image the interfaces are named by name only."""
    try:
        agent.runnable(argv, code, err, "interface details")
    except NotInImage as exc:
        return [], f"no interface details ({exc}): interfaces classified by name only"
    return json.loads(agent.output(argv, code, out, err) or "[]"), None


# --- prog show, cgroup show -------------------------------------------------------------------------------

def prog_show(cluster: Cluster, node: str, prog_id: int) -> ProgramShow:
    agent = cluster.agent(node)
    # -f: each map's pinned paths, which name it in full (the kernel keeps 15 characters of a map's name)
    program, maps = agent.concurrently(lambda: agent.bpftool("prog", "show", "id", str(prog_id)),
                                       lambda: agent.bpftool("-f", "map", "show") or [])
    shown = program_from_bpftool(program, {m["id"]: m for m in maps})
    shown.node = node
    return shown


def cgroup_show(cluster: Cluster, node: str, root: str, effective: bool = False, tree: bool = False) -> CgroupShow:
    agent = cluster.agent(node)
    extra = ["effective"] if effective else []
    attached, links = agent.concurrently(
        lambda: agent.bpftool("cgroup", "tree" if tree else "show", root, *extra) or [],
        lambda: agent.bpftool("-f", "link", "show") or [])
    entries = [(c["cgroup"], c["programs"]) for c in attached] if tree else [(root, attached)]
    ids = _cgroup_ids(agent, [path for path, programs in entries if programs]) if any(
        link.get("type") == "cgroup" for link in links) else {}
    show = CgroupShow(root=root, effective=effective, node=node)
    show.cgroups = [cgroup_from_bpftool(path, programs, links, ids.get(path)) for path, programs in entries]
    return show


def _cgroup_ids(agent: Agent, paths: list[str]) -> dict[str, int]:
    """Cgroup ids (inode numbers, what cgroup links report) of paths in the agent."""
    if not paths:
        return {}
    out = agent.run(["stat", "-c", "%i %n", *paths])
    return {name: int(inode) for inode, name in (line.split(" ", 1) for line in out.splitlines() if " " in line)}
