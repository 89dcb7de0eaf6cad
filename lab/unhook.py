"""`lab cilium unhook`: take Cilium's socket-LB programs off the cgroup root it attached them to.

The guide's hacks/unhook-cilium.sh lists /run/cilium/cgroupv2 in one agent pod and detaches *every*
program there by id, errors silenced. That detaches other tools' programs too, misses nodes with their
own cgroup root (kind >= 0.20 runs each node in a private cgroup namespace), and fails on Cilium >= 1.14,
which attaches through pinned bpf_links (<bpffs>/cilium/socketlb/links/cgroup/cil_sock*): a linked
program cannot be detached by id, and the pin keeps it attached.

Here, for every node of the lab:
  * through its Cilium agent when one runs there (bpftool in the agent, on the agent's cgroup root), else
    through docker: the node container's own mount of that root (/proc/<pid>/root/run/cilium/cgroupv2,
    or its cgroup when Cilium never mounted one) with this machine's bpftool (needs root);
  * only programs named cil_sock* are Cilium's; every other program stays attached;
  * a linked program's link is detached (BPF_LINK_DETACH) and its pin removed; a program attached the
    old way is detached by id from its attach type;
  * afterwards the cgroup is listed again: no cil_sock* program may be left, and every other program
    must still be there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from tshoot.core.errors import TshootError, UsageError

CILIUM_PREFIX = "cil_sock"  # Cilium's socket-LB programs: cil_sock4_connect, cil_sock6_sendmsg, ... (socketlb.go)
DEFAULT_CGROUP_ROOT = "/run/cilium/cgroupv2"
DEFAULT_BPF_ROOT = "/sys/fs/bpf"
LINK_DIR = "cilium/socketlb/links/cgroup"  # under the bpffs root (pkg/socketlb cgroupLinkPath)


@dataclass
class Attached:
    prog_id: int
    attach_type: str
    name: str
    link_id: int | None = None  # the bpf_link holding it, when it was attached through one

    @property
    def is_cilium(self) -> bool:
        return self.name.startswith(CILIUM_PREFIX)


@dataclass
class Action:
    """One step of the unhook, as the command line that performs it."""

    argv: list[str]
    what: str


@dataclass
class NodeUnhook:
    node: str
    via: str
    cgroup: str
    removed: list[Attached] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    kept: list[Attached] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    error: str | None = None


class Runner(ABC):
    """Where bpftool runs, and the cgroup root and bpffs as seen from there."""

    via: str
    cgroup: str
    bpffs: str

    @abstractmethod
    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of argv where this runner runs it."""

    def shown(self, path: str) -> str:
        """A path as the node sees it (for messages)."""
        return path


class AgentRunner(Runner):
    """The node's Cilium agent (tshoot.node.agent.Agent: the one way tshoot and lab exec in an agent)."""

    def __init__(self, agent, cgroup: str = DEFAULT_CGROUP_ROOT, bpffs: str = DEFAULT_BPF_ROOT):
        self.agent = agent
        self.via, self.cgroup, self.bpffs = f"agent {agent.namespace}/{agent.pod}", cgroup, bpffs

    def run(self, argv):
        return self.agent.exec(argv, " ".join(argv[:3]))


class HostRunner(Runner):
    """This machine's bpftool on the node container's own mounts (through /proc/<pid>/root)."""

    def __init__(self, container):
        if os.geteuid() != 0:
            raise TshootError(f"{container.name}: no Cilium agent runs there, and reaching the node's cgroup "
                              f"without one needs root (sudo lab cilium unhook)")
        if shutil.which("bpftool") is None:
            raise TshootError("bpftool is not installed on this machine (apt-get install bpftool)")
        container.reload()
        pid = container.attrs.get("State", {}).get("Pid") or 0
        if not pid:
            raise TshootError(f"{container.name} is not running: its cgroup, and Cilium's programs on it, are gone "
                              f"with it unless the node shared the host's cgroup namespace")
        root = f"/proc/{pid}/root"
        mounted = f"{root}{DEFAULT_CGROUP_ROOT}"
        self.cgroup = mounted if os.path.ismount(mounted) else _own_cgroup(pid)
        self.bpffs = f"{root}{DEFAULT_BPF_ROOT}"
        self.via = "docker"
        self.root = root

    def shown(self, path: str) -> str:
        return path.removeprefix(self.root)

    def run(self, argv):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout, proc.stderr


def _own_cgroup(pid: int) -> str:
    """The cgroup v2 directory of process `pid`, as this machine mounts the cgroup2 hierarchy."""
    path = next((line[3:] for line in open(f"/proc/{pid}/cgroup").read().splitlines() if line.startswith("0::")),
                None)
    mount = next((fields[4] for fields in (line.split() for line in open("/proc/self/mountinfo"))
                  if fields[fields.index("-") + 1] == "cgroup2"), None)
    if path is None or mount is None:
        raise TshootError("no cgroup v2 hierarchy on this machine: Cilium's socket-LB cannot have attached anything")
    return os.path.join(mount, path.lstrip("/"))


def _run(runner: Runner, argv: list[str], what: str) -> str:
    code, out, err = runner.run(argv)
    if code != 0:
        detail = (err or out).strip().splitlines()
        raise TshootError(f"{what}: {' '.join(argv)} failed (exit {code}): {detail[-1] if detail else 'no message'}")
    return out


def _json(text: str):
    # bpftool prints a bare newline, not [], for a cgroup without programs
    return json.loads(text) if text.strip() else []


def attached(runner: Runner) -> list[Attached]:
    """Programs attached directly to the runner's cgroup root, each with its link when it has one."""
    progs = _json(_run(runner, ["bpftool", "-j", "cgroup", "show", runner.cgroup], "list the cgroup's programs"))
    cgroup_id = int(_run(runner, ["stat", "-c", "%i", runner.cgroup], "read the cgroup's id").strip())
    links = {link["prog_id"]: link["id"]
             for link in _json(_run(runner, ["bpftool", "-j", "link", "show"], "list bpf links"))
             if link.get("type") == "cgroup" and link.get("cgroup_id") == cgroup_id}
    return [Attached(p["id"], p["attach_type"], p.get("name", ""), links.get(p["id"])) for p in progs]


def pins(runner: Runner) -> list[str]:
    directory = f"{runner.bpffs.rstrip('/')}/{LINK_DIR}"
    code, out, _ = runner.run(["ls", "-1", directory])
    if code != 0:
        return []  # no such directory: Cilium never pinned a link on this node
    return [f"{directory}/{name}" for name in out.split() if name.startswith(CILIUM_PREFIX)]


def plan(runner: Runner, programs: list[Attached], pinned: list[str]) -> list[Action]:
    actions = []
    for prog in programs:
        if not prog.is_cilium:
            continue
        if prog.link_id is not None:
            actions.append(Action(["bpftool", "link", "detach", "id", str(prog.link_id)],
                                  f"{prog.name} ({prog.attach_type}, program {prog.prog_id}): detach link "
                                  f"{prog.link_id}"))
        else:
            actions.append(Action(["bpftool", "cgroup", "detach", runner.cgroup, prog.attach_type, "id",
                                   str(prog.prog_id)],
                                  f"{prog.name} ({prog.attach_type}, program {prog.prog_id}): detach"))
    for pin in pinned:
        actions.append(Action(["rm", "-f", pin], f"remove the link pin {runner.shown(pin)}"))
    return actions


def unhook_node(node: str, runner: Runner, dry_run: bool = False) -> NodeUnhook:
    report = NodeUnhook(node, runner.via, runner.cgroup)
    try:
        before = attached(runner)
        pinned = pins(runner)
        report.actions = plan(runner, before, pinned)
        report.removed = [p for p in before if p.is_cilium]
        report.kept = [p for p in before if not p.is_cilium]
        report.pins = [runner.shown(pin) for pin in pinned]
        if dry_run:
            return report
        for action in report.actions:
            _run(runner, action.argv, action.what)
        after = attached(runner)
        left = [p for p in after if p.is_cilium]
        if left:
            raise TshootError(f"still attached after unhook: {', '.join(f'{p.name} ({p.prog_id})' for p in left)} "
                              f"(is the Cilium agent still running and re-attaching them?)")
        gone = {p.prog_id for p in report.kept} - {p.prog_id for p in after}
        if gone:
            raise TshootError(f"programs that are not Cilium's disappeared meanwhile: {sorted(gone)}")
    except TshootError as exc:
        report.error = str(exc)
    return report


def runner_for(container, api=None, via: str = "auto") -> Runner:
    """The agent on that node when one runs (via auto|agent), else docker (via auto|docker)."""
    if via in ("auto", "agent") and api is not None:
        agent = _running_agent(api, container.name)
        if agent is not None:
            from tshoot.node.agent import Agent

            return AgentRunner(Agent(api, agent, instead="unhook through docker instead (--via docker)"),
                               *_agent_roots(api, agent["metadata"]["namespace"]))
        if via == "agent":
            raise TshootError(f"{container.name}: no running Cilium agent pod on this node (use --via docker)")
    if via == "agent":
        raise UsageError("--via agent needs the lab's API server")
    return HostRunner(container)


def _running_agent(api, node: str) -> dict | None:
    from tshoot.cluster import cilium

    try:
        pod = cilium.agent_pod(api, node)
    except TshootError:
        return None  # no Cilium (any more), or no agent on that node
    return pod if pod.get("status", {}).get("phase") == "Running" else None


def _agent_roots(api, namespace: str) -> tuple[str, str]:
    """The cgroup root and bpffs root Cilium is configured with (cilium-config), else its defaults."""
    from tshoot.cluster import kube

    try:
        data = kube.get_object(api, kube.CONFIGMAPS, "cilium-config", namespace).get("data") or {}
    except TshootError:
        data = {}
    return data.get("cgroup-root") or DEFAULT_CGROUP_ROOT, data.get("bpf-root") or DEFAULT_BPF_ROOT


def unhook_cluster(lab, api=None, via: str = "auto", dry_run: bool = False) -> list[NodeUnhook]:
    """Unhook every node of a proven lab (lab.guard.prove), one after the other: nodes that share the host's
    cgroup namespace share one root, and two detaches of the same program would race."""
    reports = []
    for container in lab.nodes:
        try:
            runner = runner_for(container, api, via)
        except TshootError as exc:
            reports.append(NodeUnhook(container.name, via, "", error=str(exc)))
            continue
        reports.append(unhook_node(container.name, runner, dry_run))
    return reports
