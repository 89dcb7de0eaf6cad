"""A walk's reads on a cluster, asked before the walk asks them: every exec through the API server is a round
trip that mostly waits, and the walk (tshoot.walk.walker, whose order mirrors the datapath's) asks one thing
after the other. What it will ask is mostly known at the start, so it is asked at once, in the background,
and the walk finds the answers where it looks (the source pod's commands, the nodes' net show, their
backends' map answers: Backend.prefetch):

  the source pod   ip route get, then its neighbour and link side by side
  the source node  its net show; in one exec the source's and the destination's cilium_lxc and ipcache
                   entries; then in one more the source endpoint's tail-call slot and its egress policy
  the destination  when the destination is a pod of another node (the pod with that address says which):
  node             its net show; in one exec its cilium_lxc entry, the overlay's tail-call slot and
                   cilium_call_policy's info; then its policy slot and its ingress policy for the source's
                   identity

The source pod's commands and both nodes' map reads begin while the cluster model is read (they need none of
it); the nodes' net shows, which name pods by the model's CiliumEndpoints, once it is.
The walk's decisions stay the walker's: nothing here decides, and what was asked ahead that the walk does not
need (it stopped early, a Service sent it elsewhere) only cost bytes. A read that failed here is asked again by
the walk, which says what failed.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from tshoot.core.addr import IPV6, parse_ip
from tshoot.core.errors import TshootError
from tshoot.maps import progarray
from tshoot.walk.walker import Node, Packet, host, link_argv, neigh_argv, policy_keys, quietly, route_argv


class Shared:
    """fn(arg) answered once per arg: a caller asking what another is already asking waits for that answer
    (the walk's own call and the one asked ahead of it are one call)."""

    def __init__(self, fn):
        self.fn, self._lock, self._calls = fn, threading.Lock(), {}

    def __call__(self, arg):
        key = tuple(arg) if isinstance(arg, list) else arg
        with self._lock:
            mine = key not in self._calls
            if mine:
                self._calls[key] = Future()
            future = self._calls[key]
        if mine:
            try:
                future.set_result(self.fn(arg))
            except BaseException as exc:  # noqa: BLE001 - the caller's answer, raised where it is asked
                future.set_exception(exc)
        return future.result()


class ReadAhead:
    """One walk's reads ahead: begin() what needs no cluster model (the source pod's commands, both nodes'
    agents and map reads, the destination's node found by its pod's address), start() the rest once the
    model is read (both nodes' net show, which name pods by the model's CiliumEndpoints). `nodes` and `run`
    are Shared: the walk's own calls find these."""

    def __init__(self, nodes: Shared, run: Shared, source_node: str, source_ip: str, packet: Packet):
        self.nodes, self.run, self.source_node, self.source_ip, self.packet = nodes, run, source_node, source_ip, packet
        ipv6 = parse_ip(packet.destination)[0] == IPV6
        self.slot = progarray.CALL_IPV6_FROM_LXC if ipv6 else progarray.CALL_IPV4_FROM_LXC  # as _entry_tail_call asks
        self.source_identity: int | None = None
        self._identity_known = threading.Event()  # set once the source node's first read is done, answered or not
        self._source: threading.Thread | None = None

    def begin(self, locate: Callable[[str], str | None]) -> None:
        """`locate(address)`: the node of the pod with that address (one targeted request), None if no pod."""
        threading.Thread(target=quietly(lambda: _source_pod(self.run, self.packet.destination)), daemon=True).start()
        self._source = threading.Thread(target=quietly(self._source_node), daemon=True)
        self._destination = threading.Thread(target=quietly(lambda: self._destination_node(locate)), daemon=True)
        self._source.start()
        self._destination.start()

    def start(self, destination_node: str | None) -> None:
        """`destination_node`: the node of the destination pod, as the cluster model names it."""
        src = self.nodes(self.source_node)  # not found: the walk cannot start, as it says
        src.ahead(self._source.join)  # the walk's use of the source node waits for its reads
        src.ahead(src.shown_net)
        if self._remote(destination_node) is not None:
            try:
                dst = self.nodes(destination_node)
            except TshootError:
                return  # said by the walk if it gets there (nodes keeps the failure)
            dst.ahead(dst.shown_net)
            dst.ahead(self._destination.join)

    def _remote(self, node: str | None) -> str | None:
        """The destination's node when the walk will cross to it: another node, and no Service in between."""
        return node if node not in (None, self.source_node) and self.packet.port is None else None

    def _source_node(self) -> None:
        packet, source_ip = self.packet, self.source_ip
        try:
            src = self.nodes(self.source_node)
            src.read_ahead(lookups=[("lxc", [{"ip": source_ip}], None), ("lxc", [{"ip": packet.destination}], None),
                                    ("ipcache", [{"prefix": host(source_ip)}], None),
                                    ("ipcache", [{"prefix": host(packet.destination)}], None)])
            endpoint = _value(src, "lxc", {"ip": source_ip})["lxc_id"]
            self.source_identity = _value(src, "ipcache", {"prefix": host(source_ip)})["identity"]
        finally:
            self._identity_known.set()
        if packet.port is None:  # a Service's backend, not the destination, decides what comes next
            remote_identity = _value(src, "ipcache", {"prefix": host(packet.destination)})["identity"]
            src.read_ahead(slots=[(progarray.endpoint_calls(endpoint), self.slot)], lookups=[(
                "policy", policy_keys(src.version, "egress", remote_identity, packet.protocol, packet.port),
                {"endpoint": endpoint})])

    def _destination_node(self, locate: Callable[[str], str | None]) -> None:
        packet = self.packet
        remote = self._remote(locate(packet.destination))
        if remote is None:
            return
        dst = self.nodes(remote)
        dst.read_ahead(lookups=[("lxc", [{"ip": packet.destination}], None)],
                       slots=[(progarray.OVERLAY_CALLS, self.slot)], names=[progarray.CALL_POLICY])
        endpoint = _value(dst, "lxc", {"ip": packet.destination})["lxc_id"]
        self._identity_known.wait()
        lookups = [("policy", policy_keys(dst.version, "ingress", self.source_identity, packet.protocol, packet.port),
                    {"endpoint": endpoint})] if self.source_identity is not None else []
        dst.read_ahead(slots=[(progarray.CALL_POLICY, endpoint)], lookups=lookups)


def _source_pod(run, destination: str) -> None:
    code, out, _ = run(route_argv(destination))
    hops = json.loads(out or "[]") if code == 0 else []
    if not hops or "dev" not in hops[0]:
        return
    asks = [link_argv(hops[0]["dev"])]
    if hops[0].get("gateway"):
        asks.append(neigh_argv(hops[0]["gateway"], hops[0]["dev"]))
    with ThreadPoolExecutor(len(asks)) as pool:
        list(pool.map(run, asks))


def _value(node: Node, short: str, fields: dict) -> dict:
    """The decoded value the node's backend answers (kept: read ahead); LookupError where none does (the reads
    that depend on it are then left to the walk)."""
    found = node.peek(short, fields)
    if found is None:
        raise LookupError(f"no {short} entry for {fields} on {node.name}")
    return found.obj["value"]
