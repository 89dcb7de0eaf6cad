"""The pod backend: bpftool run in a node's Cilium agent through the Kubernetes API exec stream.

What the guide does by hand:

    cilium=$(kubectl get -l k8s-app=cilium pods -n cilium --field-selector spec.nodeName=$NODE -o name)
    kubectl -n cilium exec $cilium -- bpftool map lookup pinned /sys/fs/bpf/tc/globals/cilium_ipcache key hex …

with `bpftool -j` so the answer is parsed (tshoot.core.bpftool), not scraped. The agent's Cilium version
comes from its image tag. Every exec failure becomes one line saying what to do.
"""

from __future__ import annotations

import json
import shlex

from tshoot.cluster import cilium, kube
from tshoot.core.errors import TshootError
from tshoot.core.version import show
from tshoot.node.backend import DEFAULT_BPFFS, PIN_DIR, Backend, Entries, MapInfo, NotPinned, per_cpu_bytes

AGENT_PIN_DIR = f"{DEFAULT_BPFFS}/{PIN_DIR}"  # where the agent pins its maps, inside its pod
EXEC_TIMEOUT = 60  # seconds: dumping a big conntrack map in a busy agent takes a while


class PodBackend(Backend):
    kind = "pod"

    def __init__(self, api, pod: dict, note=None):
        self.api = api
        self.pod, self.namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        self.node = pod.get("spec", {}).get("nodeName") or "?"
        try:
            self.version = cilium.agent_version(pod)
        except TshootError as exc:
            self.version = None  # decoded by the maps' sizes instead; --cilium-version chooses
            if note:
                note(f"{self.node}: {exc}")

    def pin_path(self, name: str) -> str:
        return f"{AGENT_PIN_DIR}/{name}"

    def describe(self) -> str:
        version = show(self.version) if self.version else "version unknown"
        return f"agent {self.namespace}/{self.pod} on {self.node} (Cilium {version})"

    # --- exec ----------------------------------------------------------------------------------------
    def run(self, argv: list[str], what: str, timeout: float = EXEC_TIMEOUT, on_stdout=None,
            stop=None) -> tuple[int | None, str, str]:
        """argv in the agent container: (exit code, stdout, stderr); failures to run it as one line.
        `on_stdout`/`stop` stream the output (kube.exec_in_pod): the code is None when `stop` ended it."""
        try:
            code, out, err = kube.exec_in_pod(self.api, self.namespace, self.pod, cilium.AGENT_CONTAINER, argv,
                                              timeout=timeout, on_stdout=on_stdout, stop=stop)
        except kube.ExecError as exc:
            if "executable file not found" in str(exc) or "no such file or directory" in str(exc).lower():
                raise TshootError(f"{argv[0]} is not in the agent image of {self.namespace}/{self.pod} (node "
                                  f"{self.node}): {what} needs it; read the maps on the node with "
                                  f"'sudo tshoot map … --backend local' instead") from None
            raise
        if code in (126, 127):  # the shell's "not executable" / "not found"
            raise TshootError(f"{argv[0]} cannot run in the agent image of {self.namespace}/{self.pod} (node "
                              f"{self.node}, exit {code}: {err.strip() or 'not found'}): read the maps on the node "
                              f"with 'sudo tshoot map … --backend local' instead")
        return code, out, err

    def bpftool(self, args: list[str], what: str, missing_ok: bool = False):
        """`bpftool -j …` in the agent, its JSON parsed; None for a lookup that found nothing (missing_ok)."""
        return self._bpftool(args, what, missing_ok)[0]

    def _bpftool(self, args: list[str], what: str, missing_ok: bool = False):
        """(parsed JSON, the text) of `bpftool -j …` in the agent."""
        code, out, err = self.run(["bpftool", "-j", *args], what)
        text = out.strip()
        try:
            data = json.loads(text) if text else None
        except ValueError:
            raise TshootError(f"bpftool in {self.pod} on {self.node} printed no JSON for {what}: "
                              f"{(text or err).strip()[:200]}") from None
        if isinstance(data, dict) and "error" in data:
            raise TshootError(f"bpftool on {self.node}: {data['error']}")
        if code != 0 and not (missing_ok and data is None):
            raise TshootError(f"bpftool on {self.node} failed (exit {code}) for {what}: {err.strip()[:200]}")
        return data, text

    # --- maps ----------------------------------------------------------------------------------------
    def info(self, name: str) -> MapInfo:
        path = self.pin_path(name)
        try:
            shown = self.bpftool(["map", "show", "pinned", path], f"map show {name}")
        except TshootError as exc:
            if "No such file or directory" in str(exc):
                raise NotPinned(f"map {name} is not pinned at {path} on {self.node} (this Cilium version or "
                                  f"configuration does not use it)") from None
            raise
        return _map_info(shown, name, path)

    def lookup(self, info: MapInfo, key: bytes) -> bytes | None:
        found = self.bpftool(["map", "lookup", "pinned", info.path, "key", "hex", *key.hex(" ").split()],
                             f"map lookup in {info.name}", missing_ok=True)
        if found is None:
            return None
        return _value(found)

    def dump(self, info: MapInfo) -> Entries:
        items = self.bpftool(["map", "dump", "pinned", info.path], f"map dump {info.name}") or []
        keys = b"".join(_hex(item["key"]) for item in items)
        values = [_value(item) for item in items]
        return Entries(info.key_size, len(values[0]) if values else info.value_size, keys, b"".join(values))

    def list_maps(self) -> list[MapInfo]:
        shown = self.bpftool(["-f", "map", "show"], "map show") or []
        infos = []
        for item in shown:
            pinned = [p for p in item.get("pinned", []) if p.startswith(AGENT_PIN_DIR + "/")]
            if pinned:
                infos.append(_map_info(item, pinned[0].rsplit("/", 1)[1], pinned[0]))
        from concurrent.futures import ThreadPoolExecutor

        def count(info: MapInfo) -> None:
            try:
                info.entries = len(self.bpftool(["map", "dump", "pinned", info.path], f"map dump {info.name}") or [])
            except TshootError:
                info.entries = None  # e.g. a program array: bpftool cannot dump it from user space

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(count, infos))
        return sorted(infos, key=lambda i: i.name)

    def btf_types(self, info: MapInfo) -> tuple[dict, int, int]:
        from tshoot.core.btf import parse_types

        # `btf dump map` names the key and value types (one when both are the same), `btf dump id` has them all.
        top = (self.bpftool(["btf", "dump", "map", "pinned", info.path], f"BTF of {info.name}") or {}).get("types") or [{}]
        _, text = self._bpftool(["btf", "dump", "id", str(info.btf_id)], f"BTF of {info.name}")
        return parse_types(text), top[0].get("id", 0), top[-1].get("id", 0)

    def interfaces(self) -> dict[int, str]:
        code, out, err = self.run(["ip", "-j", "link", "show"], "interface names")
        if code != 0:
            raise TshootError(f"ip link show failed on {self.node}: {err.strip()[:200]}")
        return {link["ifindex"]: link["ifname"] for link in json.loads(out)}

    # --- teaching view -------------------------------------------------------------------------------
    def command(self, argv: list[str]) -> str:
        return f"kubectl -n {self.namespace} exec {self.pod} -c {cilium.AGENT_CONTAINER} -- {shlex.join(argv)}"

    def preamble(self) -> list[str]:
        return [f"kubectl -n {self.namespace} get pods -l {cilium.AGENT_LABEL} "
                f"--field-selector spec.nodeName={self.node} -o name   # the agent on {self.node}: {self.pod}"]


class UnreachableNode(Backend):
    """A node whose agent cannot be used (none scheduled there): every question fails with the reason,
    so the node is reported among the others' results instead of stopping them."""

    kind = "pod"

    def __init__(self, node: str, reason: str):
        self.node, self.reason = node, reason

    def _fail(self, *args, **kwargs):
        raise TshootError(self.reason)

    pin_path = info = lookup = dump = list_maps = btf_types = interfaces = command = _fail


def agents(api, node: str | None = None, namespace: str | None = None, note=None) -> list[Backend]:
    """The agent on `node`, or on every node (nodes without one reported as UnreachableNode)."""
    if node:
        return [PodBackend(api, cilium.agent_pod(api, node, namespace), note)]
    by_node: dict[str, dict] = {}
    for pod in cilium.agent_pods(api, namespace):  # a running one where the DaemonSet is rolling
        name = pod.get("spec", {}).get("nodeName")
        if name and (name not in by_node or pod.get("status", {}).get("phase") == "Running"):
            by_node[name] = pod
    nodes = sorted(n["metadata"]["name"] for n in kube.list_objects(api, kube.NODES))
    chosen: list[Backend] = []
    for name in nodes:
        if name in by_node:
            chosen.append(PodBackend(api, by_node[name], note))
        else:
            chosen.append(UnreachableNode(name, f"no Cilium agent pod on node {name} (label {cilium.AGENT_LABEL}): "
                                                f"is the cilium DaemonSet scheduled there?"))
    return chosen


def _hex(items: list[str]) -> bytes:
    """bpftool -j bytes ["0x40", "0x00", …] -> bytes."""
    return bytes.fromhex("".join(items).replace("0x", ""))


def _value(item: dict) -> bytes:
    """An entry's value; a per-CPU map's ({"values": [{"cpu": 0, "value": [...]}, …]}) as the kernel lays it out."""
    if "values" in item:
        return per_cpu_bytes([_hex(v["value"]) for v in item["values"]])
    return _hex(item["value"])


def _map_info(shown: dict, name: str, path: str) -> MapInfo:
    return MapInfo(name=name, path=path, map_type=shown.get("type", "?"), key_size=shown.get("bytes_key", 0),
                   value_size=shown.get("bytes_value", 0), max_entries=shown.get("max_entries", 0),
                   flags=shown.get("flags", 0), map_id=shown.get("id"), btf_id=shown.get("btf_id", 0))
