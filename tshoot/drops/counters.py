"""cilium_metrics on every node, as counters: one per (reason, direction, and where the version records it,
source file and line), summed over CPUs; and what increased since the last read (`tshoot drops --watch`).

Reading is tshoot.mapio.read's dump of the metrics map on each backend (bpftool in the agent, or libbpf on
this machine); the same as `cilium-dbg bpf metrics list` prints (cilium-dbg/cmd/bpf_metrics_list.go).
"""

from __future__ import annotations

from tshoot.node.backend import Backend
from tshoot.maps import metrics
from tshoot.mapio.read import dump
from tshoot.node.fanout import DEFAULT_PARALLEL, NodeFailure, fan_out
from tshoot.core.version import Version, show


class Counter:
    """One cilium_metrics entry on one node. (A plain class: start-up time.)"""

    __slots__ = ("node", "version", "reason", "code", "description", "drop", "direction", "file", "line",
                 "packets", "bytes")

    def __init__(self, node: str, version: Version | None, key: dict, value: dict):
        self.node, self.version = node, version
        self.reason, self.code, self.description = key["reason"], key["code"], key["description"]
        self.drop, self.direction = key["drop"], key["direction"]
        self.file, self.line = key.get("file"), key.get("line")
        self.packets, self.bytes = value["packets"], value["bytes"]

    @property
    def ident(self) -> tuple:
        """What identifies the counter on its node (the map's key)."""
        return (self.node, self.code, self.direction, self.file, self.line)

    @property
    def where(self) -> str | None:
        """The source location that counts it (1.16+): 'bpf_lxc.c:1234'."""
        return f"{self.file or '?'}:{self.line}" if self.file or self.line else None

    def as_dict(self) -> dict:
        return {"node": self.node, "cilium_version": show(self.version) if self.version else None,
                "reason": self.reason, "code": self.code, "description": self.description, "drop": self.drop,
                "direction": self.direction, "file": self.file, "line": self.line,
                "packets": self.packets, "bytes": self.bytes}


def read(backend: Backend, version: Version | None = None) -> list[Counter]:
    """Every counter of the node, drops first, then by packets (most first)."""
    version = version or backend.version
    dumped = dump(backend, metrics.MAP, {}, version)
    counters = [Counter(backend.node, version, k, v) for k, v in zip(dumped.keys, dumped.values)]
    return sorted(counters, key=lambda c: (not c.drop, -c.packets, c.code, c.direction))


def read_nodes(backends: list, version: Version | None = None, parallel: int = DEFAULT_PARALLEL) -> list:
    """Every node's counters (a list of Counter), or a NodeFailure for a node that could not be read."""
    return fan_out(backends, lambda b: read(b, version), parallel)


def increases(before: dict[tuple, Counter], now: list[Counter]) -> list[tuple[Counter, int, int]]:
    """The counters that grew since `before` ({ident: Counter} of the last read), as (counter, packets, bytes
    added). A counter that went down was reset (the agent recreated the map): all of it is new."""
    grown = []
    for counter in now:
        last = before.get(counter.ident)
        packets, size = counter.packets, counter.bytes
        if last is not None and counter.packets >= last.packets:
            packets, size = counter.packets - last.packets, counter.bytes - last.bytes
        if packets:
            grown.append((counter, packets, size))
    return grown


def by_ident(results: list) -> dict[tuple, Counter]:
    return {c.ident: c for r in results if not isinstance(r, NodeFailure) for c in r}
