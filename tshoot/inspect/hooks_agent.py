"""The pod backend: ask the node's Cilium agent, as the guide does (`kubectl -n cilium exec $cilium --
bpftool net show`), through the Kubernetes API's exec, and read the answers into the same models the
local backend fills: `bpftool -j net show`, `prog show`, `-f link show`, `map show`, `cgroup show|tree`,
and `ip -j -d link show` / `ip -j route show default` for what each interface is. Pods behind lxc
interfaces come from the cluster's CiliumEndpoints.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tshoot.cluster import cilium, kube, model
from tshoot.inspect.programs import CgroupShow, ProgramShow, cgroup_from_bpftool, program_from_bpftool
from tshoot.core.errors import TshootError
from tshoot.inspect.netshow import Hook, NetShow, attach_pods, bpftool_net_json, classify, from_bpftool, section_of

NODE_WORKERS = 8      # nodes asked at once with --all-nodes
COMMAND_WORKERS = 6   # commands run at once in one agent


@dataclass
class Agent:
    """The Cilium agent pod of one node, and a way to run commands in it."""

    api: object
    node: str
    namespace: str
    pod: str

    def run(self, argv: list[str]) -> str:
        code, out, err = kube.exec_in_pod(self.api, self.namespace, self.pod, cilium.AGENT_CONTAINER, argv)
        if code != 0:
            detail = (err.strip().splitlines() or [f"exit code {code}"])[-1]
            raise TshootError(f"node {self.node}: {' '.join(argv[:3])}: {detail}")
        return out

    def bpftool(self, *args: str, repair=None):
        """`bpftool -j ARGS` parsed; bpftool's own {"error": …} answers become one-line errors."""
        code, out, err = kube.exec_in_pod(self.api, self.namespace, self.pod, cilium.AGENT_CONTAINER,
                                          ["bpftool", "-j", *args])
        text = out.strip()
        what = f"node {self.node}: bpftool {' '.join(a for a in args if not a.startswith('-'))}"
        data = None
        if text:
            try:
                data = repair(text) if repair else json.loads(text)
            except ValueError:
                raise TshootError(f"{what}: unreadable output {text[:120]!r}") from None
        if isinstance(data, dict) and "error" in data:
            raise TshootError(f"{what}: {data['error']}")
        if code != 0:
            raise TshootError(f"{what}: {(err.strip().splitlines() or [f'exit code {code}'])[-1]}")
        return data if data is not None else []


class Cluster(model.Cluster):
    """The cluster model (tshoot.cluster.model: CiliumEndpoints read once, shared by the nodes asked), and
    the way to each node's agent through its API connection."""

    def agent(self, node: str) -> Agent:
        pod = cilium.agent_pod(self.api, node)
        return Agent(self.api, node, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def endpoints(self) -> tuple[list, str | None]:
        return self.endpoint_objects()


def connect(kubeconfig: str | None, context: str | None) -> Cluster:
    return Cluster(kube.api_client(kubeconfig, context))


def for_nodes(show, kubeconfig: str | None, context: str | None, node: str | None, all_nodes: bool):
    """[(node, show(cluster, node) or the TshootError it raised)] for --node or --all-nodes: the nodes
    are asked concurrently and one failing does not hide the others."""
    cluster = connect(kubeconfig, context)
    nodes = [node] if node else sorted(n["metadata"]["name"] for n in kube.list_objects(cluster.api, kube.NODES))
    if not nodes:
        raise TshootError("the cluster has no nodes")

    def one(name: str):
        try:
            return name, show(cluster, name)
        except TshootError as exc:
            return name, exc

    with ThreadPoolExecutor(max_workers=min(NODE_WORKERS, len(nodes))) as pool:
        return list(pool.map(one, nodes))


# --- net show --------------------------------------------------------------------------------------------

def net_show(cluster: Cluster, node: str) -> NetShow:
    agent = cluster.agent(node)
    with ThreadPoolExecutor(max_workers=COMMAND_WORKERS) as pool:
        net = pool.submit(agent.bpftool, "net", "show", repair=bpftool_net_json)
        programs = pool.submit(agent.bpftool, "prog", "show")
        links = pool.submit(agent.bpftool, "-f", "link", "show")
        devices = pool.submit(_optional_ip, agent, ["ip", "-j", "-d", "link", "show"])
        routes = [pool.submit(_optional_ip, agent, ["ip", "-j", *family, "route", "show", "default"])
                  for family in ([], ["-6"])]
        endpoints = pool.submit(cluster.endpoints)
        net, programs, links = net.result(), programs.result(), links.result()
        (devices, note), route_answers = devices.result(), [r.result()[0] for r in routes]
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
    endpoint_list, endpoints_note = endpoints.result()
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


def _optional_ip(agent: Agent, argv: list[str]) -> tuple[list, str | None]:
    """`ip -j …` in the agent; without iproute2 in the image the interfaces are named by name only."""
    try:
        return json.loads(agent.run(argv) or "[]"), None
    except kube.ExecError as exc:
        return [], f"no interface details ({exc}): interfaces classified by name only"


# --- prog show, cgroup show -------------------------------------------------------------------------------

def prog_show(kubeconfig: str | None, context: str | None, node: str, prog_id: int) -> ProgramShow:
    agent = connect(kubeconfig, context).agent(node)
    with ThreadPoolExecutor(max_workers=2) as pool:
        program = pool.submit(agent.bpftool, "prog", "show", "id", str(prog_id))
        maps = pool.submit(agent.bpftool, "map", "show")
        program, maps = program.result(), maps.result()
    shown = program_from_bpftool(program, {m["id"]: m for m in maps})
    shown.node = node
    return shown


def cgroup_show(kubeconfig: str | None, context: str | None, node: str, root: str, effective: bool = False,
                tree: bool = False) -> CgroupShow:
    agent = connect(kubeconfig, context).agent(node)
    extra = ["effective"] if effective else []
    with ThreadPoolExecutor(max_workers=2) as pool:
        attached = pool.submit(agent.bpftool, "cgroup", "tree" if tree else "show", root, *extra)
        links = pool.submit(agent.bpftool, "-f", "link", "show")
        attached, links = attached.result(), links.result()
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
