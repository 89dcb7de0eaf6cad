"""Reaching a node through its Cilium agent: find the agent pod on a node, exec in it through the Kubernetes
API, run `bpftool -j`, read the agent's Cilium version. Every command that asks a cluster's nodes (`tshoot
map`, `net show`, `prog show`, `cgroup show`, `whois --ipcache`, `walk`, and `lab cilium status|unhook`)
goes through `Agent`; `PodBackend` is the maps' view of it.

What the guide does by hand:

    cilium=$(kubectl get -l k8s-app=cilium pods -n cilium --field-selector spec.nodeName=$NODE -o name)
    kubectl -n cilium exec $cilium -- bpftool map lookup pinned /sys/fs/bpf/tc/globals/cilium_ipcache key hex …

with `bpftool -j` so the answer is parsed (tshoot.core.bpftool), not scraped. The agent's Cilium version
comes from its image tag. Every exec failure becomes one line saying what to do.
"""

from __future__ import annotations

import errno
import json
import os
import shlex

from tshoot.cluster import cilium, kube
from tshoot.core.bpftool import DumpStream, hex_list, per_cpu_bytes
from tshoot.core.errors import TshootError
from tshoot.node.backend import (DEFAULT_BPFFS, PIN_DIR, TIMER_LIST, Backend, Entries, MapInfo, NotPinned,
                                 clocks_from_timer_list)
from tshoot.node.fanout import DEFAULT_TIMEOUT, NodeFailure

AGENT_PIN_DIR = f"{DEFAULT_BPFFS}/{PIN_DIR}"  # where the agent pins its maps, inside its pod
COMMANDS_AT_ONCE = 6  # exec streams open at once in one agent (the API server limits a client's streams)


class NotInImage(TshootError):
    """The agent's image lacks the program asked for (bpftool, ip)."""


class NoSuchPath(TshootError):
    """bpftool in the agent answered ENOENT: the pinned path does not exist, or a key has no next key."""


class Agent:
    """The Cilium agent pod of one node, and the one way to run commands in it."""

    # What to do when the image lacks a program (the advice of tshoot; `lab cilium unhook` has its own)
    INSTEAD = "run tshoot on the node as root with --backend local instead"

    def __init__(self, api, pod: dict, timeout: float = DEFAULT_TIMEOUT, note=None, instead: str = INSTEAD):
        self.api, self.timeout, self.instead = api, timeout, instead
        self.pod, self.namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        self.node = pod.get("spec", {}).get("nodeName") or "?"
        try:
            self.version = cilium.agent_version(pod)
        except TshootError as exc:
            self.version = None  # maps are then decoded by their BTF or sizes; --cilium-version chooses
            if note:
                note(f"{self.node}: {exc}")

    def exec(self, argv: list[str], what: str, timeout: float | None = None, on_stdout=None,
             stop=None) -> tuple[int | None, str, str]:
        """argv in the agent container: (exit code, stdout, stderr); a binary the image lacks as one line.
        `on_stdout`/`stop` stream the output (kube.exec_in_pod): the code is None when `stop` ended it."""
        try:
            code, out, err = kube.exec_in_pod(self.api, self.namespace, self.pod, cilium.AGENT_CONTAINER, argv,
                                              timeout=self.timeout if timeout is None else timeout,
                                              on_stdout=on_stdout, stop=stop)
        except kube.CommandNotFound as exc:
            raise NotInImage(f"{argv[0]} is not in the agent image of {self.namespace}/{self.pod} (node "
                             f"{self.node}; {str(exc).split(': ', 1)[-1]}): {what} needs it; {self.instead}") from None
        except kube.ExecError as exc:
            raise kube.ExecError(f"node {self.node}: {exc}", exc.status) from None
        if code in (126, 127):  # the shell's "not executable" / "not found"
            raise NotInImage(f"{argv[0]} cannot run in the agent image of {self.namespace}/{self.pod} (node "
                              f"{self.node}, exit {code}: {err.strip() or 'not found'}): {self.instead}")
        return code, out, err

    def run(self, argv: list[str], what: str | None = None) -> str:
        """argv's stdout; a non-zero exit as one line with the last line of its stderr."""
        code, out, err = self.exec(argv, what or " ".join(argv[:3]))
        if code != 0:
            detail = (err.strip().splitlines() or [f"exit code {code}"])[-1]
            raise TshootError(f"node {self.node}: {' '.join(argv[:3])}: {detail}")
        return out

    def bpftool(self, *args: str, missing_ok: bool = False, repair=None):
        """`bpftool -j ARGS` parsed (repair: a function that reads bpftool's text when it is not plain JSON);
        bpftool's own {"error": …} answers as one line; None for a lookup that found nothing (missing_ok)."""
        return self.bpftool_text(*args, missing_ok=missing_ok, repair=repair)[0]

    def bpftool_text(self, *args: str, missing_ok: bool = False, repair=None):
        """(parsed JSON, the text) of `bpftool -j ARGS`."""
        what = f"bpftool {' '.join(a for a in args if not a.startswith('-'))}"
        code, out, err = self.exec(["bpftool", "-j", *args], what)
        text = out.strip()
        data = None
        if text:
            try:
                data = repair(text) if repair else json.loads(text)
            except ValueError:
                raise TshootError(f"node {self.node}: {what}: unreadable output {text[:120]!r}") from None
        self.check(data, code, err, what, missing_ok)
        return data, text

    def check(self, data, code: int, err: str, what: str, missing_ok: bool = False) -> None:
        """bpftool's own {"error": …} answer, or its failure, as one line."""
        if isinstance(data, dict) and "error" in data:
            # bpftool's JSON error is libbpf's strerror text; ENOENT's (a path that is not pinned, a key with
            # no next key) is the only one told apart, here where bpftool's output is read.
            missing = os.strerror(errno.ENOENT) in str(data["error"])
            raise (NoSuchPath if missing else TshootError)(f"node {self.node}: {what}: {data['error']}")
        if code != 0 and not (missing_ok and data is None):
            raise TshootError(f"node {self.node}: {what}: {(err.strip().splitlines() or [f'exit code {code}'])[-1]}")

    def concurrently(self, *calls):
        """The results of zero-argument calls that each exec in this agent, run side by side (each exec is a
        round trip that mostly waits), in the calls' order."""
        if len(calls) <= 1:
            return [call() for call in calls]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(COMMANDS_AT_ONCE, len(calls))) as pool:
            return [f.result() for f in [pool.submit(call) for call in calls]]

    def command(self, argv: list[str]) -> str:
        """The kubectl command that runs argv where this agent does."""
        return f"kubectl -n {self.namespace} exec {self.pod} -c {cilium.AGENT_CONTAINER} -- {shlex.join(argv)}"

    def preamble(self) -> list[str]:
        return [f"kubectl -n {self.namespace} get pods -l {cilium.AGENT_LABEL} "
                f"--field-selector spec.nodeName={self.node} -o name   # the agent on {self.node}: {self.pod}"]


def find_agent(api, node: str, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT, note=None) -> Agent:
    """The agent on `node` (a running one where the DaemonSet is rolling)."""
    return Agent(api, cilium.agent_pod(api, node, namespace), timeout, note)


class PodBackend(Backend):
    """A node's maps read by bpftool in its agent."""

    kind = "pod"

    def __init__(self, agent: Agent):
        self.agent, self.node, self.version = agent, agent.node, agent.version

    def pin_path(self, name: str) -> str:
        return f"{AGENT_PIN_DIR}/{name}"

    # --- maps ----------------------------------------------------------------------------------------
    def info(self, name: str) -> MapInfo:
        return self.once(("info", name), lambda: self._info(name))

    def _info(self, name: str) -> MapInfo:
        path = self.pin_path(name)
        try:
            shown = self.agent.bpftool("map", "show", "pinned", path)
        except NoSuchPath:
            raise NotPinned(f"map {name} is not pinned at {path} on {self.node} (this Cilium version or "
                            f"configuration does not use it)") from None
        return _map_info(shown, name, path)

    def lookup(self, info: MapInfo, key: bytes) -> bytes | None:
        found = self.agent.bpftool("map", "lookup", "pinned", info.path, "key", "hex", *key.hex(" ").split(),
                                   missing_ok=True)
        if found is None:
            return None
        return _value(found)

    def dump(self, info: MapInfo) -> Entries:
        """The map's entries, parsed as bpftool's JSON arrives (tshoot.core.bpftool.DumpStream): memory for
        the entries' bytes, not for the dump's text."""
        stream, what = DumpStream(), "bpftool map dump"
        code, _, err = self.agent.exec(["bpftool", "-j", "map", "dump", "pinned", info.path], what,
                                       on_stdout=stream.feed)
        if code == 0 or stream.answer is not None:
            try:
                stream.finish()
            except TshootError as exc:
                raise TshootError(f"node {self.node}: {exc}") from None
        self.agent.check(stream.answer, code, err, what)
        # per-CPU maps: every CPU's value of an entry one after the other
        stride = len(stream.values) // stream.count if stream.count else info.value_size
        return Entries(info.key_size, stride, bytes(stream.keys), bytes(stream.values))

    def first_entry(self, info: MapInfo, keys: list[bytes]) -> int | None:
        """`bpftool map getnext` from the first key and from each of `keys`: a key is an entry when its next key
        is not the first one (tshoot.node.local says why). Asked in rounds of 1, 2, 4… keys, each round's execs
        side by side: the usual answer (a host's /32, the longest) costs one round, the longest search (the
        world's /0) a handful, and only next keys cross the stream, never the map."""
        def next_of(key: bytes | None) -> bytes | None:
            where = ["key", "hex", *key.hex(" ").split()] if key is not None else []
            try:
                return hex_list(self.agent.bpftool("map", "getnext", "pinned", info.path, *where)["next_key"])
            except NoSuchPath:  # the last entry: it has no next key
                return None

        first, start, size = None, 0, 1
        while start < len(keys):
            chunk = keys[start:start + size]
            answers = self.agent.concurrently(*([lambda: next_of(None)] if start == 0 else []),
                                              *(lambda k=key: next_of(k) for key in chunk))
            if start == 0:
                first, answers = answers[0], answers[1:]
            found = next((i for i, following in enumerate(answers) if following != first), None)
            if found is not None:
                return start + found
            start, size = start + size, size * 2
        return None

    def list_maps(self) -> list[MapInfo]:
        shown = self.agent.bpftool("-f", "map", "show") or []
        infos = []
        for item in shown:
            pinned = [p for p in item.get("pinned", []) if p.startswith(AGENT_PIN_DIR + "/")]
            if pinned:
                infos.append(_map_info(item, pinned[0].rsplit("/", 1)[1], pinned[0]))

        def count(info: MapInfo) -> None:
            try:
                info.entries = len(self.dump(info))
            except TshootError:
                info.entries = None  # e.g. a program array: bpftool cannot dump it from user space

        self.agent.concurrently(*(lambda i=info: count(i) for info in infos))
        return sorted(infos, key=lambda i: i.name)

    def btf_types(self, info: MapInfo) -> tuple[dict, int, int]:
        from tshoot.core.btf import parse_types

        # `btf dump map` names the key and value types (one when both are the same), `btf dump id` has them all
        # (maps of one object share it: read once per BTF id).
        top = self.once(("btf map", info.path), lambda: (
            self.agent.bpftool("btf", "dump", "map", "pinned", info.path) or {}).get("types") or [{}])
        types = self.once(("btf", info.btf_id), lambda: parse_types(
            self.agent.bpftool_text("btf", "dump", "id", str(info.btf_id))[1]))
        return types, top[0].get("id", 0), top[-1].get("id", 0)

    def interfaces(self) -> dict[int, str]:
        return {link["ifindex"]: link["ifname"] for link in json.loads(self.agent.run(["ip", "-j", "link", "show"],
                                                                                        "interface names"))}

    def clock_samples(self) -> tuple[int, int]:
        return clocks_from_timer_list(self.agent.run(["cat", TIMER_LIST], "the node's clocks"))

    def program_names(self) -> dict[int, str]:
        return {p["id"]: p.get("name", "") for p in self.agent.bpftool("prog", "show") or []}

    def concurrently(self, *calls) -> list:
        return self.agent.concurrently(*calls)

    # --- teaching view -------------------------------------------------------------------------------
    def command(self, argv: list[str]) -> str:
        return self.agent.command(argv)

    def preamble(self) -> list[str]:
        return self.agent.preamble()


def agents(api, node: str | None = None, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT,
           note=None) -> list[Agent | NodeFailure]:
    """The agent on `node`, or on every node, from one list of the agent pods; a node without one is a
    NodeFailure in its place (tshoot.node.fanout passes it through as that node's answer)."""
    if node:
        return [find_agent(api, node, namespace, timeout, note)]
    by_node: dict[str, dict] = {}
    for pod in cilium.agent_pods(api, namespace):  # a running one where the DaemonSet is rolling
        name = pod.get("spec", {}).get("nodeName")
        if name and (name not in by_node or pod.get("status", {}).get("phase") == "Running"):
            by_node[name] = pod
    nodes = sorted(n["metadata"]["name"] for n in kube.list_objects(api, kube.NODES))
    if not nodes:
        raise TshootError("the cluster has no nodes")
    return [Agent(api, by_node[name], timeout, note) if name in by_node else
            NodeFailure(name, f"no Cilium agent pod on node {name} (label {cilium.AGENT_LABEL}): is the cilium "
                              f"DaemonSet scheduled there?") for name in nodes]


def pod_backends(api, node: str | None = None, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 note=None) -> list[PodBackend | NodeFailure]:
    """The maps of the agent on `node`, or of every node's agent (tshoot.node.agent.agents)."""
    return [PodBackend(a) if isinstance(a, Agent) else a for a in agents(api, node, namespace, timeout, note)]


def _value(item: dict) -> bytes:
    """An entry's value; a per-CPU map's ({"values": [{"cpu": 0, "value": [...]}, …]}) as the kernel lays it out."""
    if "values" in item:
        return per_cpu_bytes([hex_list(v["value"]) for v in item["values"]])
    return hex_list(item["value"])


def _map_info(shown: dict, name: str, path: str) -> MapInfo:
    return MapInfo(name=name, path=path, map_type=shown.get("type", "?"), key_size=shown.get("bytes_key", 0),
                   value_size=shown.get("bytes_value", 0), max_entries=shown.get("max_entries", 0),
                   flags=shown.get("flags", 0), map_id=shown.get("id"), btf_id=shown.get("btf_id", 0))
