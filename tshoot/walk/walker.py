"""`tshoot walk`: the guide's "day in the life of a packet", done by the tool, step by step.

A walk asks each node what its datapath would do with the first packet of a flow (no conntrack entry),
in the order Cilium's programs ask (bpf_lxc.c handle_ipv4_from_lxc, bpf_overlay.c, lib/policy.h). Each
step has a stable id (what `-o json` consumers and tests address), a title for people, the commands it
ran (what a person would type) and what the bytes mean:

  source-route          the source pod: its route to the destination and its eth0@ifN (N: the lxc's ifindex)
  source-endpoint       the lxc device with that ifindex, its from-container program, the cilium_lxc entry
  source-tail-call      from-container's tail call into cilium_calls_<ep> (CILIUM_CALL_IPV4_FROM_LXC)
  source-identity       the source's identity in the ipcache
  service               for IP:PORT: the cilium_lb*_services master entry, its slots, the backend chosen,
                        the reverse-NAT entry; the walk continues to that backend
  destination-identity  the destination's ipcache entry: identity and tunnel endpoint
  egress-policy         the source endpoint's egress policy for that identity
  forwarding            a local endpoint, the host, or a tunnel endpoint (the ipcache's; before 1.18 the
                        cilium_tunnel_map fallback for the destination's pod CIDR)
  overlay               on the destination node: from-overlay on cilium_vxlan
  overlay-tail-call     its tail call into cilium_calls_overlay_2
  destination-endpoint  the destination's cilium_lxc entry (ifindex, MACs, lxc_id)
  policy-program        the destination endpoint's slot in cilium_call_policy (local delivery tail-calls it)
  ingress-policy        the destination endpoint's ingress policy for the source identity, port, protocol
  host                  a packet for the node itself: host firewall or not (cilium-config)
  delivery              the redirect to the lxc device whose peer is the destination pod's eth0

Where the path cannot be followed (no route, no backend, no entry, an empty tail-call slot, a policy deny,
a missing map) the walk stops there and says why, and names the cilium_metrics counter the packet would
increment (tshoot.walk.counters). Nodes are reached through tshoot.mapio.read backends (pod: bpftool in the
agent; local: this machine's pinned maps) and tshoot.inspect net shows; the cluster model
(tshoot.cluster.model) names identities, nodes and pods.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Callable

from tshoot.cluster.model import Cluster
from tshoot.core.addr import IPV4, IPV6, parse_ip, parse_prefix, parse_protocol, show_ip, show_protocol
from tshoot.core.errors import TshootError, UsageError
from tshoot.core.identity import HOST, KUBE_APISERVER, REMOTE_NODE
from tshoot.core.version import Version
from tshoot.inspect.netshow import interface_by_ifindex, program_for
from tshoot.mapio import read as mapread
from tshoot.maps import find, progarray
from tshoot.walk import counters

TUNNEL_MAP_UNTIL = (1, 18, 0)  # bpf_lxc stopped reading cilium_tunnel_map in 1.18.0-pre.1 (bpf/lib/encap.h)
NODE_IDENTITIES = (HOST, REMOTE_NODE, KUBE_APISERVER)  # what the ipcache gives a node's own addresses


class _End(Exception):
    """The walk ends here; the message says why, `counter` what cilium_metrics counts for the packet."""

    def __init__(self, message: str, counter: dict | None = None):
        super().__init__(message)
        self.counter = counter


class Stop(_End):
    """The path cannot be followed past this step: the datapath drops the packet, or the walk cannot tell."""


class Left(_End):
    """The packet leaves what the walk can follow without being dropped (to the stack, another cluster)."""


class _Delivered(_End):
    """The packet reached its destination before the walk's last step (the node itself)."""


class Step:
    def __init__(self, step_id: str, title: str, node: str | None = None):
        self.id, self.title, self.node = step_id, title, node
        self.commands: list[str] = []
        self.result: dict = {}
        self.says = ""

    def as_dict(self, number: int) -> dict:
        return {"id": self.id, "step": number, "title": self.title, "node": self.node, "commands": self.commands,
                "result": self.result, "says": self.says}


class Node:
    """One node as the walk sees it: its maps (a mapread backend) and its BPF hooks (a net show)."""

    def __init__(self, name: str, backend, net_show, version: Version | None):
        self.name, self.backend, self._net_show, self.version = name, backend, net_show, version
        self._net = None
        self._net_lock = threading.Lock()
        self._ahead: list[threading.Thread] = []
        self._shown: set[str] = set()  # commands already shown (finding the agent is said once per node)

    # --- reads asked ahead (tshoot.walk.ahead): the walk's own calls wait for them, then find their answers --
    def ahead(self, work: Callable[[], None]) -> None:
        """Run `work` (reads of this node the walk will make: shown_net, read_ahead) in the background; the
        walk's next use of the node waits for it. Its failures are not the walk's: the walk asks again and
        says what failed where it needs the answer."""
        thread = threading.Thread(target=quietly(work), daemon=True)  # a walk that stopped does not wait for it
        thread.start()
        self._ahead.append(thread)

    def settle(self) -> None:
        """Wait for the reads asked ahead of the walk (their answers are then the backend's and net()'s)."""
        while self._ahead:
            self._ahead.pop(0).join()

    def read_ahead(self, lookups=(), slots=(), names=()) -> None:
        """Ask the node at once (one exec through its agent) what the walk will look up: `lookups`
        ((map short name, [key fields in the datapath's order], map params)), prog-array `slots` ((pinned
        name, index)) and the info of the maps pinned as `names`; kept by the backend for the walk's own
        lookups (tshoot.mapio.read.read_ahead)."""
        merged: dict = {"names": list(names), "lookups": [], "searches": []}
        for short, keys, params in lookups:
            for part, items in mapread.asks(find(short)[0], params, self.version, keys).items():
                merged[part] += items
        for name, index in slots:
            merged["names"].append(name)
            merged["lookups"].append((name, _slot_key(index)))
        self.backend.prefetch(**merged)

    def peek(self, short: str, fields: dict, params: dict | None = None):
        """The lookup's answer (a mapread Lookup) without it being shown or said: what a read ahead needs to
        know what to ask next. None when no entry answers or the map cannot be read (the walk's own lookup
        says so)."""
        try:
            return mapread.lookup_fields(self.backend, find(short)[0], fields, self.version, params)
        except TshootError:
            return None

    def shown_net(self):
        """The node's net show, read once (by the walk or ahead of it)."""
        with self._net_lock:
            if self._net is None:
                self._net = self._net_show()
            return self._net

    def net(self):
        self.settle()
        return self.shown_net()

    def lookup(self, step: Step, short: str, fields: dict, params: dict | None = None):
        """The datapath's lookup on this node; None when no entry answers. Commands go into the step."""
        self.settle()
        cmap, _ = find(short)
        try:
            found = mapread.lookup_fields(self.backend, cmap, fields, self.version, params)
        except mapread.NoEntry as miss:
            last = miss.commands[-1].split("   # ")[0]  # the lookup that missed, with why as its comment
            self.show(step, [*miss.commands[:-1], f"{last}   # {miss}"])
            return None
        except UsageError:
            raise
        except TshootError as exc:  # the map is missing or unreadable there: the walk cannot go on past it
            raise Stop(f"{short} on {self.name}: {exc}") from None
        self.show(step, found.commands)
        return found

    def slot(self, step: Step, map_name: str, index: int) -> int | None:
        """The program id in slot `index` of the prog array `map_name` (None: the slot is empty). From user
        space a prog array's lookup answers the program's id (the kernel's prog_fd_array_sys_lookup_elem)."""
        self.settle()
        key = _slot_key(index)
        self.read_ahead(slots=[(map_name, index)])  # the map's info and the slot in one round trip
        try:
            info = self.backend.info(map_name)
        except TshootError as exc:
            raise Stop(f"{map_name} on {self.name}: {exc}") from None
        self.show(step, [*self.backend.preamble(), self.backend.command(
            ["bpftool", "map", "lookup", "pinned", info.path, "key", *(str(b) for b in key)])])
        try:
            value = self.backend.lookup(info, key)
        except TshootError as exc:
            raise Stop(f"{map_name} on {self.name}: {exc}") from None
        return int.from_bytes(value[:4], "little") if value else None

    def show(self, step: Step, commands: list[str]) -> None:
        for command in commands:
            if command not in self._shown or "bpftool" in command:
                self._shown.add(command)
                step.commands.append(command)


def quietly(work: Callable[[], None]) -> Callable[[], None]:
    """`work` for a background thread that reads ahead of the walk: its failure is not the walk's (the walk
    asks again, and says what failed where it needs the answer)."""
    def run() -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - see above
            pass
    return run


@dataclass
class Source:
    """Where the walk starts. `run` runs commands in the source pod: fn(argv) -> (code, stdout, stderr);
    None when there is no pod to ask (a local walk without --pod-netns starts at the node)."""

    name: str
    ip: str
    node: str
    run: Callable | None = None
    shown: str = ""  # how a command in the pod is written (kubectl -n NS exec POD)
    pod_cidr: str | None = None  # the source node's pod CIDR: its mask is bpf_lxc's IPV4_MASK


@dataclass
class Packet:
    destination: str
    protocol: str | None = None
    port: int | None = None
    slot: int | None = None  # for a Service: the backend slot to follow


@dataclass
class HostFirewall:
    """Whether the nodes run Cilium's host firewall (enable-host-firewall, off by default), and from where
    the walk knows it: the verdict for a packet to a node depends on it."""

    enabled: bool
    said_by: str

    def as_dict(self) -> dict:
        return {"enable-host-firewall": self.enabled, "from": self.said_by}


@dataclass
class WalkContext:
    nodes: Callable[[str], Node]  # node name -> Node
    source: Source
    packet: Packet
    cluster: Cluster = field(default_factory=Cluster)
    host_firewall: HostFirewall = field(default_factory=lambda: HostFirewall(False, "the agent's default"))


class Walker:
    """One walk, on what its context says."""

    def __init__(self, context: WalkContext):
        self.context, self.cluster, self.source = context, context.cluster, context.source
        packet = context.packet
        self.destination, self.protocol, self.port, self.slot = packet.destination, packet.protocol, packet.port, \
            packet.slot
        self.steps: list[Step] = []
        self._tunnel_node: str | None = None  # what the forwarding step found the tunnel endpoint to be

    # --- the walk --------------------------------------------------------------------------------------
    def run(self) -> dict:
        verdict, reason, counter = "delivered", None, None
        try:
            counter = self._walk()
        except _End as end:
            verdict = {Stop: "stopped", Left: "left", _Delivered: "delivered"}[type(end)]
            reason, counter = str(end), end.counter
        return {"source": {"pod": self.source.name, "ip": self.source.ip, "node": self.source.node},
                "destination": {"address": self.destination, "protocol": self.protocol, "port": self.port},
                "steps": [s.as_dict(i) for i, s in enumerate(self.steps, start=1)],
                "verdict": verdict, "reason": reason, "counter": counter,
                "assumes": self.context.host_firewall.as_dict()}

    def _step(self, step_id: str, title: str, node: str | None = None) -> Step:
        step = Step(step_id, title, node)
        self.steps.append(step)
        return step

    def _walk(self) -> dict | None:
        src = self.context.nodes(self.source.node)
        peer_ifindex = self._source_pod() if self.source.run else None
        lxc = self._source_lxc(src, peer_ifindex)
        self._entry_tail_call(src, "source-tail-call", "source node: from-container's tail call into the endpoint's "
                              "program", progarray.endpoint_calls(lxc["lxc_id"]), "bpf_lxc.c", counters.EGRESS)
        src_identity = self._source_identity(src)
        if self.port is not None:
            self._service(src)
        dst_identity, tunnel_endpoint = self._ipcache(src)
        self._policy(src, lxc["lxc_id"], "egress", dst_identity, "the source endpoint's egress policy")
        local, tunnel_endpoint = self._decide(src, tunnel_endpoint)
        if local is not None and "host" in (local.get("flags") or []):
            self._to_host(src, src_identity)
        dst = src if local is not None else self._remote(src, tunnel_endpoint)
        if dst is not src:
            self._entry_tail_call(dst, "overlay-tail-call", "destination node: from-overlay's tail call",
                                  progarray.OVERLAY_CALLS, "bpf_overlay.c", counters.INGRESS)
        entry = self._destination_lxc(dst)
        delivering = "bpf_lxc.c" if dst is src else "bpf_overlay.c"
        self._policy_program(dst, entry["lxc_id"], delivering)
        self._policy(dst, entry["lxc_id"], "ingress", src_identity, "the destination endpoint's ingress policy")
        self._deliver(dst, entry)
        return counters.counter(counters.REASON_FORWARDED, counters.INGRESS, "bpf_lxc.c", dst)

    def _source_pod(self) -> int | None:
        step = self._step("source-route", "source pod: route and neighbour")
        route = self._in_pod(step, route_argv(self.destination))
        if not route:
            raise Stop(f"the source pod has no route to {self.destination}")
        hop = route[0]
        gateway = hop.get("gateway")
        step.result["route"] = {k: hop.get(k) for k in ("dst", "gateway", "dev", "prefsrc") if hop.get(k)}
        if gateway:
            neighbours = self._in_pod(step, neigh_argv(gateway, hop["dev"]))
            step.result["gateway_mac"] = neighbours[0].get("lladdr") if neighbours else None
        link = self._in_pod(step, link_argv(hop["dev"]))[0]
        peer = link.get("link_index")
        step.result["interface"] = f"{link['ifname']}@if{peer}" if peer else link["ifname"]
        step.result["mac"] = link.get("address")
        step.says = (f"{self.destination} leaves through {step.result['interface']}"
                     + (f" via {gateway} (answered by {step.result.get('gateway_mac')}: Cilium's ARP responder)"
                        if gateway else "")
                     + (f"; its peer is ifindex {peer} on node {self.source.node}" if peer else ""))
        return peer

    def _in_pod(self, step: Step, argv: list[str]):
        step.commands.append(f"{self.source.shown} -- {' '.join(argv)}")
        code, out, err = self.source.run(argv)
        if code != 0:
            detail = (err.strip().splitlines() or [f"exit code {code}"])[-1]
            if argv[:3] == ["ip", "-j", "route"]:
                return []
            raise TshootError(f"{' '.join(argv)} in the source pod failed: {detail}")
        return json.loads(out or "[]")

    def _hook_commands(self, node: Node, step: Step, device: str, hook) -> None:
        """How to see the hook by hand with the node's bpftool: `net show` lists tc and (from bpftool 7.3) tcx;
        a tcx hook is also listed by `link show`, which every bpftool with links has."""
        step.commands.append(node.backend.command(["bpftool", "net", "show", "dev", device]))
        if hook is not None and hook.hook == "tcx" and hook.link_id:
            where = f" (pinned at {hook.pinned[0]})" if hook.pinned else ""
            step.commands.append(node.backend.command(["bpftool", "link", "show", "id", str(hook.link_id)])
                                 + f"   # tcx link{where}: bpftool < 7.3 lists it only here")

    def _source_lxc(self, src: Node, peer_ifindex: int | None) -> dict:
        step = self._step("source-endpoint", "source node: the pod's lxc device, its program, its endpoint", src.name)
        if peer_ifindex:
            interface = interface_by_ifindex(src.net(), peer_ifindex)
            hook = program_for(interface, "ingress")
            self._hook_commands(src, step, interface.name, hook)
            step.result["lxc"] = {"name": interface.name, "ifindex": interface.ifindex}
            if hook is None:
                raise Stop(f"nothing is attached to {interface.name}'s ingress on {src.name}: Cilium's from-container "
                           f"program is missing, so Cilium does not see this pod's packets")
            step.result["program"] = {"id": hook.prog_id, "name": hook.prog_name, "section": hook.section,
                                      "attach": hook.attach, "tc_name": hook.tc_name}
        found = src.lookup(step, "lxc", {"ip": self.source.ip})
        if found is None:
            raise Stop(f"{self.source.ip} is not in cilium_lxc on {src.name}: Cilium does not manage the source pod")
        value = found.obj["value"]
        step.result["endpoint"] = value
        program = step.result.get("program") or {}
        where = (f"{step.result['lxc']['name']}({peer_ifindex}) runs {program['section'] or program['name']} "
                 f"(program id {program['id']}); " if peer_ifindex else "")
        step.says = f"{where}the source is endpoint {value['lxc_id']} in cilium_lxc"
        return value

    def _source_identity(self, src: Node) -> int:
        step = self._step("source-identity", "source node: the source's security identity", src.name)
        found = src.lookup(step, "ipcache", {"prefix": host(self.source.ip)})
        if found is None:
            raise Stop(f"{self.source.ip} has no ipcache entry on {src.name}")
        identity = found.obj["value"]["identity"]
        step.result = {"identity": identity, "labels": self.cluster.labels(identity)}
        step.says = f"packets from {self.source.ip} carry identity {identity} {_labels(step.result['labels'])}"
        return identity

    def _service(self, src: Node) -> None:
        """If destination:port is a Service frontend, follow the load balancer to a backend."""
        step = self._step("service", "source node: is it a Service? (load balancer)", src.name)
        family, _ = parse_ip(self.destination)
        short = "lb6" if family == IPV6 else "lb4"
        version = src.version
        protocol = self.protocol or "tcp"
        # The protocol is part of the key from 1.17; the datapath falls back to "any" (0), as before 1.17.
        protos = [protocol.upper(), "ANY"] if version is None or version >= (1, 17, 0) else ["ANY"]
        master = None
        frontends = [{"address": self.destination, "port": self.port, "proto": proto, "slot": 0, "scope": "external"}
                     for proto in protos]
        src.read_ahead(lookups=[(f"{short}-services", frontends, None)])  # every key in one round trip
        for key in frontends:
            master = src.lookup(step, f"{short}-services", key)
            if master is not None:
                break
        if master is None:
            step.says = f"{self.destination}:{self.port} is not a Service frontend: no load balancing"
            return
        value = master.obj["value"]
        count, rev_nat = value["count"], value["rev_nat_index"]
        step.result["frontend"] = {"address": self.destination, "port": self.port, "proto": key["proto"],
                                   "backends": count, "rev_nat_index": rev_nat, "flags": value.get("flags"),
                                   **{k: value[k] for k in ("lb_algorithm", "affinity_timeout", "l7_lb_proxy_port")
                                      if k in value}}
        if count == 0:
            # bpf/lib/lb.h lb4_local() finds no backend; bpf_lxc drops with DROP_NO_SERVICE
            raise Stop(f"Service {self.destination}:{self.port} has no backend (master entry count 0): "
                       f"the datapath drops the packet (no service backend)",
                       counters.counter(counters.DROP_NO_SERVICE, counters.EGRESS, "bpf_lxc.c", src))
        # every slot and the reverse-NAT entry in one round trip, then every slot's backend in one more
        slot_keys = [{**key, "slot": slot} for slot in range(1, count + 1)]
        src.read_ahead(lookups=[(f"{short}-services", slot_keys, None),
                                (f"{short}-revnat", [{"rev_nat_index": rev_nat}], None)])
        src.read_ahead(lookups=[(f"{short}-backends", [{"backend_id": found.obj["value"]["backend_id"]}], None)
                                for found in map(lambda k: src.peek(f"{short}-services", k), slot_keys) if found])
        slots = []
        for slot in range(1, count + 1):
            entry = src.lookup(step, f"{short}-services", {**key, "slot": slot})
            if entry is None:
                continue
            backend_id = entry.obj["value"]["backend_id"]
            backend = src.lookup(step, f"{short}-backends", {"backend_id": backend_id})
            slots.append({"slot": slot, "backend_id": backend_id,
                          "backend": backend.obj["value"] if backend else None})
        step.result["slots"] = slots
        usable = [s for s in slots if s["backend"]]
        if not usable:
            raise Stop(f"Service {self.destination}:{self.port}: none of its {count} slots leads to a backend",
                       counters.counter(counters.DROP_NO_SERVICE, counters.EGRESS, "bpf_lxc.c", src))
        chosen = next((s for s in usable if s["slot"] == self.slot), usable[0]) if self.slot else usable[0]
        revnat = src.lookup(step, f"{short}-revnat", {"rev_nat_index": rev_nat})
        step.result["rev_nat"] = revnat.obj["value"] if revnat else None
        step.result["chosen"] = chosen["slot"]
        backend = chosen["backend"]
        step.says = (f"{self.destination}:{self.port}/{key['proto']} is a Service with {count} backend slot(s), "
                     f"rev-NAT index {rev_nat}; the datapath picks one ({_selection(value)}): following slot "
                     f"{chosen['slot']} -> backend {chosen['backend_id']} = {backend['address']}:{backend['port']} "
                     f"(DNAT; replies are reverse-NATed back to {self.destination}:{self.port})")
        self.destination, self.port = backend["address"], backend["port"]

    def _ipcache(self, src: Node) -> tuple[int, str | None]:
        step = self._step("destination-identity", "source node: ipcache lookup of the destination", src.name)
        found = src.lookup(step, "ipcache", {"prefix": host(self.destination)})
        if found is None:
            raise Stop(f"no ipcache entry covers {self.destination} on {src.name} (not even 0.0.0.0/0 = world): "
                       f"the agent has not synced its ipcache")
        value = found.obj["value"]
        identity, tunnel = value["identity"], value["tunnel_endpoint"]
        step.result = {"matched": found.obj["key"]["prefix"], "identity": identity,
                       "labels": self.cluster.labels(identity), "tunnel_endpoint": tunnel,
                       "tunnel_node": self._node_name(src, step, tunnel) if tunnel else None}
        step.says = (f"{self.destination} matches {step.result['matched']}: identity {identity} "
                     f"{_labels(step.result['labels'])}"
                     + (f", tunnel endpoint {tunnel} ({step.result['tunnel_node'] or 'not a known node'})"
                        if tunnel else ", no tunnel endpoint"))
        return identity, tunnel

    def _node_name(self, src: Node, step: Step, address: str) -> str | None:
        """The node at a tunnel endpoint: its Node object's name; else, when the source node's ipcache gives the
        address a node identity (remote-node: the agent learnt it from a CiliumNode or the kvstore), a node
        described by that; None when neither says it is a node."""
        name = self.cluster.node_by_ip.get(address)
        if name:
            return name
        found = src.lookup(step, "ipcache", {"prefix": host(address)})
        identity = found.obj["value"]["identity"] if found else None
        if identity in NODE_IDENTITIES:
            return f"a node: identity {identity} {_labels(self.cluster.labels(identity))}, no Node object"
        return None

    def _policy(self, node: Node, endpoint: int, direction: str, remote: int, title: str,
                program: str = "bpf_lxc.c") -> None:
        step = self._step(f"{direction}-policy",
                          f"{'source' if direction == 'egress' else 'destination'} node: {title}", node.name)
        protocol = parse_protocol(self.protocol) if self.protocol else 0
        port = self.port or 0
        keys = policy_keys(node.version, direction, remote, self.protocol, self.port)
        node.read_ahead(lookups=[("policy", keys, {"endpoint": endpoint})])  # every key in one round trip
        verdict = None
        for fields in keys:  # what bpf/lib/policy.h asks, in its order
            found = node.lookup(step, "policy", fields, {"endpoint": endpoint})
            if found is not None:
                verdict = found
                break
        shown = f"identity {remote} {_labels(self.cluster.labels(remote))}, {show_protocol(protocol)}" + \
                (f"/{port}" if port else "")
        metric = counters.INGRESS if direction == "ingress" else counters.EGRESS
        if verdict is None:
            step.result = {"verdict": "denied", "rule": None}
            raise Stop(f"policy denies {direction} for endpoint {endpoint} on {node.name}: no entry allows {shown} "
                       f"(the datapath drops it: Policy denied)",
                       counters.counter(counters.DROP_POLICY, metric, program, node))
        value = verdict.obj["value"]
        rule = verdict.obj["key"]
        step.result = {"verdict": "denied" if value.get("deny") else "allowed", "rule": rule, "entry": value}
        if value.get("deny"):
            raise Stop(f"policy denies {direction} for endpoint {endpoint} on {node.name}: the deny rule {rule} "
                       f"matches {shown}",
                       counters.counter(counters.DROP_POLICY_DENY, metric, program, node))
        proxy = value.get("proxy_port") or 0
        step.says = (f"endpoint {endpoint} allows {direction} {shown} (rule: identity {rule['identity'] or 'any'}, "
                     f"{rule['protocol']}{'/' + str(rule['port']) if rule.get('port') else ''})"
                     + (f"; redirected to the L7 proxy on port {proxy}" if proxy else ""))

    def _decide(self, src: Node, tunnel: str | None) -> tuple[dict | None, str | None]:
        """(the cilium_lxc entry, None) when the destination is local (a pod, or the host); (None, the tunnel
        endpoint) when the packet is encapsulated; Left when it goes to the stack."""
        step = self._step("forwarding", "source node: forwarding decision", src.name)
        local = src.lookup(step, "lxc", {"ip": self.destination})
        if local is not None:
            value = local.obj["value"]
            host = "host" in (value.get("flags") or [])
            step.result = {"decision": "host" if host else "local", "lxc_id": value["lxc_id"]}
            step.says = (f"{self.destination} is an address of {src.name} itself (cilium_lxc entry flagged host)"
                         if host else
                         f"{self.destination} is a local endpoint of {src.name}: delivered on this node, no tunnel")
            return value, None
        via = "ipcache"
        if not tunnel and (src.version is None or src.version < TUNNEL_MAP_UNTIL):
            tunnel = self._tunnel_map(src, step)
            via = "cilium_tunnel_map"
        if not tunnel:
            step.result = {**step.result, "decision": "stack"}
            raise Left(f"{self.destination} is neither a local endpoint nor behind a tunnel endpoint: the packet "
                        f"goes to the host stack (to-netdev on the uplink; BPF or iptables masquerade)",
                        counters.counter(counters.REASON_FORWARDED, counters.EGRESS, "bpf_lxc.c", src))
        vxlan = _device(src.net(), "cilium_vxlan")
        hook = program_for(vxlan, "egress") if vxlan else None
        self._hook_commands(src, step, "cilium_vxlan", hook)
        node = self._node_name(src, step, tunnel)
        step.result = {**step.result, "decision": "tunnel", "tunnel_endpoint": tunnel, "via": via, "node": node,
                       "device": vxlan.name if vxlan else None,
                       "program": {"id": hook.prog_id, "section": hook.section} if hook else None}
        step.says = (f"not local: encapsulated in VXLAN to {tunnel}" + (f" ({node})" if node else "")
                     + (" (from cilium_tunnel_map: the ipcache entry has no tunnel endpoint)" if via != "ipcache" else "")
                     + (f" and redirected to cilium_vxlan({vxlan.ifindex})" if vxlan else " — but there is no "
                        "cilium_vxlan device on this node"))
        if vxlan is None:
            raise Stop(f"{src.name} has no cilium_vxlan device: the tunnel cannot be used (routing mode native?)")
        self._tunnel_node = node
        return None, tunnel

    def _tunnel_map(self, src: Node, step: Step) -> str | None:
        """Before 1.18, bpf_lxc's encap_and_redirect_lxc() (bpf/lib/encap.h, v1.9-v1.17) falls back to
        cilium_tunnel_map when the ipcache gives no tunnel endpoint: the key is the destination masked with
        the LOCAL node's pod-CIDR mask (IPV4_MASK; IPv6: the /96), the value the node to encapsulate to.
        A miss is DROP_NO_TUNNEL_ENDPOINT, which bpf_lxc turns into pass-to-stack, not a drop."""
        family, _ = parse_ip(self.destination)
        if family == IPV4:
            if self.source.pod_cidr is None:
                step.says = "the source node's pod CIDR is unknown, so its cilium_tunnel_map key cannot be built"
                return None
            _, _, length = parse_prefix(self.source.pod_cidr)
        else:
            length = 96
        network = show_ip(parse_prefix(f"{self.destination}/{length}")[1])  # host bits cleared
        found = src.lookup(step, "tunnel", {"ip": network})
        step.result["tunnel_map_key"] = f"{network} (the destination masked with /{length})"
        return found.obj["value"]["endpoint"] if found else None

    def _remote(self, src: Node, tunnel: str) -> Node:
        name = self.cluster.node_by_ip.get(tunnel)
        if name is None and self.cluster.node_by_ip:
            if self._tunnel_node:
                raise Left(f"tunnel endpoint {tunnel} is {self._tunnel_node}: without a Node object the walk cannot find "
                            f"its agent to follow the packet there",
                            counters.counter(counters.REASON_FORWARDED, counters.EGRESS, "bpf_lxc.c", src))
            raise Left(f"tunnel endpoint {tunnel} is not a node of this cluster (another cluster of a mesh?): "
                        f"the walk cannot follow it there")
        node = self.context.nodes(name or tunnel)
        name = node.name
        step = self._step("overlay", "destination node: from-overlay", name)
        vxlan = _device(node.net(), "cilium_vxlan")
        hook = program_for(vxlan, "ingress") if vxlan else None
        self._hook_commands(node, step, "cilium_vxlan", hook)
        if hook is None:
            raise Stop(f"nothing handles VXLAN on {name}: no program on cilium_vxlan's ingress")
        step.result = {"device": f"{vxlan.name}({vxlan.ifindex})",
                       "program": {"id": hook.prog_id, "name": hook.prog_name, "section": hook.section}}
        step.says = f"the VXLAN packet arrives on {vxlan.name}({vxlan.ifindex}), where {hook.section or hook.prog_name} " \
                    f"(program id {hook.prog_id}) decapsulates it"
        return node

    def _destination_lxc(self, dst: Node) -> dict:
        step = self._step("destination-endpoint", "destination node: endpoint lookup (cilium_lxc)", dst.name)
        found = dst.lookup(step, "lxc", {"ip": self.destination})
        if found is None:
            raise Stop(f"{self.destination} is not a local endpoint of {dst.name} (no cilium_lxc entry): the "
                       f"ipcache and the endpoint map disagree")
        value = found.obj["value"]
        interface = _by_index(dst.net(), value["ifindex"])
        pod = self._pod(dst, value["lxc_id"])
        step.result = {**value, "interface": interface.name if interface else None, "pod": pod}
        step.says = (f"{self.destination} is endpoint {value['lxc_id']}" + (f" ({pod})" if pod else "")
                     + f": deliver to ifindex {value['ifindex']}"
                     + (f" ({interface.name})" if interface else "")
                     + f", source MAC {value['node_mac']}, destination MAC {value['mac']}")
        return value

    def _pod(self, node: Node, endpoint_id: int) -> str | None:
        return self.cluster.endpoint_pod(node.name, endpoint_id) or self.cluster.pod_by_ip.get(self.destination)

    def _policy_program(self, dst: Node, endpoint: int, delivering: str) -> None:
        """Local delivery tail-calls the endpoint's policy program: cilium_call_policy[lxc_id]
        (ipv4_local_delivery(), bpf/lib/l3.h up to 1.17, bpf/lib/local_delivery.h from 1.18). An empty slot
        (an endpoint not regenerated yet) drops the packet there."""
        step = self._step("policy-program", "destination node: the endpoint's policy program (tail call)", dst.name)
        program = dst.slot(step, progarray.CALL_POLICY, endpoint)
        step.result = {"map": progarray.CALL_POLICY, "slot": endpoint, "program_id": program}
        if program is None:
            code = counters.empty_policy_slot_drop(dst.version)
            direction = counters.EGRESS if delivering == "bpf_lxc.c" else counters.INGRESS
            raise Stop(f"cilium_call_policy[{endpoint}] is empty on {dst.name}: the tail call to endpoint {endpoint}'s "
                       f"policy program fails and the datapath drops the packet ({counters.reason_name(code, dst.version)}); "
                       f"the endpoint is not ready (being regenerated?)",
                       counters.counter(code, direction, delivering, dst))
        step.says = f"cilium_call_policy[{endpoint}] holds program {program}: endpoint {endpoint}'s policy program"

    def _entry_tail_call(self, node: Node, step_id: str, title: str, calls: str, program: str, direction: int) -> None:
        """An entry program's first move: from-container (bpf_lxc.c) and from-overlay (bpf_overlay.c) tail-call
        CILIUM_CALL_IPV4_FROM_LXC (IPv6: _IPV6_) in their own calls map, and drop with DROP_MISSED_TAIL_CALL
        when the slot is empty (ep_tail_call(); ret = DROP_MISSED_TAIL_CALL, every version)."""
        step = self._step(step_id, title, node.name)
        family, _ = parse_ip(self.destination)
        slot = progarray.CALL_IPV6_FROM_LXC if family == IPV6 else progarray.CALL_IPV4_FROM_LXC
        found = node.slot(step, calls, slot)
        step.result = {"map": calls, "slot": slot, "program_id": found}
        if found is None:
            raise Stop(f"{calls}[{slot}] is empty on {node.name}: {program.removesuffix('.c')}'s tail call to its "
                       f"IPv{'6' if family == IPV6 else '4'} handler fails and the packet is dropped (Missed tail call)",
                       counters.counter(counters.DROP_MISSED_TAIL_CALL, direction, program, node))
        step.says = f"{calls}[{slot}] holds program {found}: the packet goes on in the tail-called handler"

    def _to_host(self, src: Node, src_identity: int) -> None:
        """A packet for the node itself. Without the host firewall bpf_lxc passes it to the stack and no
        host-endpoint policy exists in the datapath (bpf_lxc.c handle_ipv4_from_lxc(): ENDPOINT_F_HOST ->
        pass_to_stack; bpf_host's host_ingress_policy() compiled out without ENABLE_HOST_FIREWALL). With it,
        the to-host program on cilium_host (cilium_net from 1.18) enforces the host endpoint's ingress policy."""
        firewall = self.context.host_firewall
        step = self._step("host", "source node: to the host (host firewall?)", src.name)
        step.result = {"host_firewall": firewall.as_dict()}
        if not firewall.enabled:
            step.says = (f"no host-endpoint policy: the host firewall is off ({firewall.said_by}), so bpf_lxc passes "
                         f"the packet to {src.name}'s stack")
            raise _Delivered(f"to {src.name}'s own stack; no host policy applies with the host firewall off "
                             f"({firewall.said_by})",
                             counters.counter(counters.REASON_FORWARDED, counters.EGRESS, "bpf_lxc.c", src))
        host_ep = self._host_endpoint(src, step)
        step.says = (f"the host firewall is on ({firewall.said_by}): the host endpoint {host_ep}'s ingress policy "
                     f"decides, in bpf_host's to-host program")
        self._policy(src, host_ep, "ingress", src_identity, "the host endpoint's ingress policy", "bpf_host.c")
        raise _Delivered(f"to {src.name}'s own stack, allowed by the host endpoint's policy ({firewall.said_by})",
                         counters.counter(counters.REASON_FORWARDED, counters.INGRESS, "bpf_host.c", src))

    def _host_endpoint(self, node: Node, step: Step) -> int:
        """The host endpoint's id: the one map named after it, cilium_calls_hostns_<id> (callsmap.HostMapName;
        cilium_lxc's host entries carry lxc_id 0, lxcmap.AddHostEntry)."""
        step.commands.append(node.backend.command(["bpftool", "map", "show"]) + "   # cilium_calls_hostns_<id>")
        try:
            names = [info.name for info in node.backend.list_maps()]
        except TshootError as exc:
            raise Stop(f"cannot list the maps of {node.name} to find its host endpoint: {exc}") from None
        prefix = progarray.HOST_CALLS_PREFIX
        ids = [int(n[len(prefix):]) for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()]
        if not ids:
            raise Stop(f"the host firewall is on but {node.name} pins no cilium_calls_hostns_<id>: the host "
                       f"endpoint's programs are not loaded")
        step.result["host_endpoint"] = ids[0]
        return ids[0]

    def _deliver(self, dst: Node, entry: dict) -> None:
        step = self._step("delivery", "delivery", dst.name)
        interface = _by_index(dst.net(), entry["ifindex"])
        pod = self._pod(dst, entry["lxc_id"])
        step.result = {"ifindex": entry["ifindex"], "interface": interface.name if interface else None, "pod": pod}
        step.says = (f"endpoint {entry['lxc_id']}'s policy program redirects to "
                     f"{step.result['interface'] or 'ifindex ' + str(entry['ifindex'])}"
                     + (f", whose peer is {pod}'s eth0" if pod else ""))


def route_argv(destination: str) -> list[str]:
    """The source pod's route to the destination (then, through a gateway, its neighbour entry; the device's link)."""
    return ["ip", "-j", "route", "get", destination]


def neigh_argv(gateway: str, device: str) -> list[str]:
    return ["ip", "-j", "neigh", "show", gateway, "dev", device]


def link_argv(device: str) -> list[str]:
    return ["ip", "-j", "link", "show", device]


def _slot_key(index: int) -> bytes:
    return index.to_bytes(4, "little")


def policy_keys(version: Version | None, direction: str, remote: int, protocol: str | None,
                port: int | None) -> list[dict]:
    """The policy map keys the datapath asks for a packet from (ingress) or to (egress) identity `remote`, in
    its order (bpf/lib/policy.h; CiliumMap.datapath_keys)."""
    cmap, _ = find("policy")
    packet = {"identity": remote, "direction": direction,
              "protocol": show_protocol(parse_protocol(protocol) if protocol else 0), "port": port or 0}
    return cmap.datapath_keys(packet, version)


def host(ip: str) -> str:
    family, raw = parse_ip(ip)
    return f"{show_ip(raw)}/{128 if family == IPV6 else 32}"


def _labels(labels: list[str]) -> str:
    return f"({', '.join(labels)})" if labels else "(labels unknown)"


def _device(show, name: str):
    return next((i for i in show.interfaces if i.name == name), None)


def _by_index(show, ifindex: int):
    return next((i for i in show.interfaces if i.ifindex == ifindex), None)


def _selection(frontend: dict) -> str:
    """How the datapath picks a backend slot for this frontend: its own LB algorithm from 1.17 (0: the agent's
    --bpf-lb-algorithm), else the agent's; session affinity first when the frontend has it."""
    algorithm = frontend.get("lb_algorithm", "default")
    how = "random or Maglev, as the agent's --bpf-lb-algorithm says" if algorithm == "default" else algorithm
    if "affinity" in (frontend.get("flags") or []):
        how += f"; a client keeps its backend for {frontend.get('affinity_timeout', 0)} s (session affinity)"
    return how
