"""`tshoot walk`: the guide's "day in the life of a packet", done by the tool, step by step.

A walk asks each node what its datapath would do with the first packet of a flow (no conntrack entry),
in the order Cilium's programs ask (bpf_lxc.c handle_ipv4_from_lxc, bpf_overlay.c, lib/policy.h):

  1. the source pod: its route to the destination and its eth0@ifN (N is the node-side lxc's ifindex);
  2. the source node: the lxc device with that ifindex and the program attached to its ingress
     (from-container), and the source endpoint in cilium_lxc;
  3. for a Service: the master entry of cilium_lb4_services, its backend slots, the backend chosen and the
     reverse-NAT entry; the walk continues to that backend;
  4. the source node's ipcache: the destination's identity and tunnel endpoint;
  5. the source endpoint's egress policy for that identity;
  6. the forwarding decision: a local endpoint (cilium_lxc) is delivered on this node; otherwise the
     tunnel endpoint names the node the packet is encapsulated to (VXLAN through cilium_vxlan);
  7. on the destination node: from-overlay on cilium_vxlan, the cilium_lxc entry (ifindex, MACs, lxc_id),
     the ingress policy verdict for the source identity, port and protocol;
  8. delivery to the lxc device whose peer is the destination pod's eth0.

Each step records the commands it ran (what a person would type) and what the bytes mean. Where the path
cannot be followed (no route, no backend, no entry, a policy deny, a missing map) the walk stops there and
says why. Nodes are reached through tshoot.mapio.read backends (pod: bpftool in the agent; local: this
machine's pinned maps) and tshoot.inspect.hooks (net show); cluster objects name identities, nodes and pods.
"""

from __future__ import annotations

import json

from tshoot.mapio import read as mapread
from tshoot.core.addr import IPV6, parse_endpoint, parse_ip, parse_protocol, show_ip, show_protocol
from tshoot.core.errors import TshootError, UsageError
from tshoot.maps import find
from tshoot.inspect.netshow import interface_by_ifindex, program_for
from tshoot.cluster.objects import reserved_identity
from tshoot.core.version import Version


# cilium_metrics reasons a walk ends with (bpf/lib/common.h; tshoot.maps.metrics names them per version)
REASON_FORWARDED, DROP_POLICY, DROP_POLICY_DENY = 0, 133, 181


class Stop(Exception):
    """The path cannot be followed past this step; the message says why."""


class Step:
    def __init__(self, title: str, node: str | None = None):
        self.title, self.node = title, node
        self.commands: list[str] = []
        self.result: dict = {}
        self.says = ""

    def as_dict(self, number: int) -> dict:
        return {"step": number, "title": self.title, "node": self.node, "commands": self.commands,
                "result": self.result, "says": self.says}


class Node:
    """One node as the walk sees it: its maps (a mapread backend) and its BPF hooks (a net show)."""

    def __init__(self, name: str, backend, net_show, version: Version | None):
        self.name, self.backend, self._net_show, self.version = name, backend, net_show, version
        self._net = None
        self._shown: set[str] = set()  # commands already shown (finding the agent is said once per node)

    def net(self):
        if self._net is None:
            self._net = self._net_show()
        return self._net

    def lookup(self, step: Step, short: str, fields: dict, params: dict | None = None):
        """The datapath's lookup on this node; None when no entry answers. Commands go into the step."""
        cmap, _ = find(short)
        try:
            found = mapread.lookup_fields(self.backend, cmap, fields, self.version, params)
        except mapread.NoEntry as miss:
            last = miss.commands[-1].split("   # ")[0]  # the lookup that missed, with why as its comment
            self._show(step, [*miss.commands[:-1], f"{last}   # {miss}"])
            return None
        except UsageError:
            raise
        except TshootError as exc:  # the map is missing or unreadable there: the walk cannot go on past it
            raise Stop(f"{short} on {self.name}: {exc}") from None
        self._show(step, found.commands)
        return found

    def _show(self, step: Step, commands: list[str]) -> None:
        for command in commands:
            if command not in self._shown or "bpftool" in command:
                self._shown.add(command)
                step.commands.append(command)


class Cluster:
    """What names the numbers: identities -> labels, node IPs -> nodes, endpoint ids -> pods."""

    def __init__(self, identities: dict[int, list[str]], node_by_ip: dict[str, str],
                 pod_by_ip: dict[str, str], endpoints: dict[tuple[str, int], str]):
        self.identities, self.node_by_ip, self.pod_by_ip, self.endpoints = identities, node_by_ip, pod_by_ip, endpoints

    def labels(self, identity: int) -> list[str]:
        reserved = reserved_identity(identity)
        if reserved:
            return reserved["labels"]
        return self.identities.get(identity, [])


class Walker:
    """One walk. `source_run` runs commands in the source pod: fn(argv) -> (code, stdout, stderr); None when
    there is no pod to ask (a local walk without --pod-netns starts at the node)."""

    def __init__(self, nodes, cluster: Cluster, source_run, source_shown: str, source_name: str, source_ip: str,
                 source_node: str, destination: str, protocol: str | None, port: int | None, slot: int | None = None):
        self.nodes, self.cluster = nodes, cluster  # nodes: fn(name) -> Node
        self.source_run, self.source_shown, self.source_name = source_run, source_shown, source_name
        self.source_ip, self.source_node = source_ip, source_node
        self.destination, self.protocol, self.port, self.slot = destination, protocol, port, slot
        self.steps: list[Step] = []
        self.counter: dict | None = None  # the cilium_metrics entry the packet would increment (counted())

    # --- the walk --------------------------------------------------------------------------------------
    def run(self) -> dict:
        verdict, reason = "delivered", None
        try:
            self._walk()
        except Stop as stop:
            verdict, reason = "stopped", str(stop)
        except _Left as left:
            verdict, reason = "left", str(left)
        return {"source": {"pod": self.source_name, "ip": self.source_ip, "node": self.source_node},
                "destination": {"address": self.destination, "protocol": self.protocol, "port": self.port},
                "steps": [s.as_dict(i) for i, s in enumerate(self.steps, start=1)],
                "verdict": verdict, "reason": reason, "counter": self.counter}

    def _counted(self, node: Node, code: int, direction: str) -> None:
        """The cilium_metrics counter this packet increments at its last step, named for the node's version
        (tshoot.maps.metrics), so `tshoot drops --node N` can confirm it. The programs that count: a policy
        drop in bpf_lxc.c, send_drop_notify*() with METRIC_EGRESS (the source's egress policy) or
        METRIC_INGRESS (the destination's ingress policy), bpf/lib/drop.h; a delivery to the endpoint,
        _update_trace_metrics() for TO_LXC: REASON_FORWARDED, METRIC_INGRESS (bpf/lib/trace.h)."""
        from tshoot.maps.metrics import REASONS, reasons_of

        name, text = (reasons_of(node.version) if node.version else REASONS)[code]
        self.counter = {"node": node.name, "reason": name, "code": code, "description": text,
                        "direction": direction.upper(), "program": "bpf_lxc.c"}

    def _step(self, title: str, node: str | None = None) -> Step:
        step = Step(title, node)
        self.steps.append(step)
        return step

    def _walk(self) -> None:
        src = self.nodes(self.source_node)
        peer_ifindex = self._source_pod() if self.source_run else None
        lxc = self._source_lxc(src, peer_ifindex)
        src_identity = self._source_identity(src)
        if self.port is not None:
            self._service(src)
        dst_identity, tunnel_endpoint = self._ipcache(src)
        self._policy(src, lxc["lxc_id"], "egress", dst_identity, "the source endpoint's egress policy")
        local = self._decide(src, tunnel_endpoint)
        dst = src if local else self._remote(tunnel_endpoint)
        entry = self._destination_lxc(dst)
        self._policy(dst, entry["lxc_id"], "ingress", src_identity, "the destination endpoint's ingress policy")
        self._deliver(dst, entry)

    def _source_pod(self) -> int | None:
        step = self._step("source pod: route and neighbour")
        route = self._in_pod(step, ["ip", "-j", "route", "get", self.destination])
        if not route:
            raise Stop(f"the source pod has no route to {self.destination}")
        hop = route[0]
        gateway = hop.get("gateway")
        step.result["route"] = {k: hop.get(k) for k in ("dst", "gateway", "dev", "prefsrc") if hop.get(k)}
        if gateway:
            neighbours = self._in_pod(step, ["ip", "-j", "neigh", "show", gateway, "dev", hop["dev"]])
            step.result["gateway_mac"] = neighbours[0].get("lladdr") if neighbours else None
        link = self._in_pod(step, ["ip", "-j", "link", "show", hop["dev"]])[0]
        peer = link.get("link_index")
        step.result["interface"] = f"{link['ifname']}@if{peer}" if peer else link["ifname"]
        step.result["mac"] = link.get("address")
        step.says = (f"{self.destination} leaves through {step.result['interface']}"
                     + (f" via {gateway} (answered by {step.result.get('gateway_mac')}: Cilium's ARP responder)"
                        if gateway else "")
                     + (f"; its peer is ifindex {peer} on node {self.source_node}" if peer else ""))
        return peer

    def _in_pod(self, step: Step, argv: list[str]):
        step.commands.append(f"{self.source_shown} -- {' '.join(argv)}")
        code, out, err = self.source_run(argv)
        if code != 0:
            detail = (err.strip().splitlines() or [f"exit code {code}"])[-1]
            if argv[:3] == ["ip", "-j", "route"]:
                return []
            raise TshootError(f"{' '.join(argv)} in the source pod failed: {detail}")
        return json.loads(out or "[]")

    def _source_lxc(self, src: Node, peer_ifindex: int | None) -> dict:
        step = self._step("source node: the pod's lxc device, its program, its endpoint", src.name)
        if peer_ifindex:
            step.commands.append(src.backend.command(["bpftool", "net", "show"]) + f"   # the line with ({peer_ifindex})")
            interface = interface_by_ifindex(src.net(), peer_ifindex)
            hook = program_for(interface, "ingress")
            step.result["lxc"] = {"name": interface.name, "ifindex": interface.ifindex}
            if hook is None:
                raise Stop(f"nothing is attached to {interface.name}'s ingress on {src.name}: Cilium's from-container "
                           f"program is missing, so Cilium does not see this pod's packets")
            step.result["program"] = {"id": hook.prog_id, "name": hook.prog_name, "section": hook.section,
                                      "attach": hook.attach, "tc_name": hook.tc_name}
        found = src.lookup(step, "lxc", {"ip": self.source_ip})
        if found is None:
            raise Stop(f"{self.source_ip} is not in cilium_lxc on {src.name}: Cilium does not manage the source pod")
        value = found.obj["value"]
        step.result["endpoint"] = value
        where = (f"{step.result['lxc']['name']}({peer_ifindex}) runs {step.result['program']['section'] or step.result['program']['name']} "
                 f"(program id {step.result['program']['id']}); " if peer_ifindex else "")
        step.says = f"{where}the source is endpoint {value['lxc_id']} in cilium_lxc"
        return value

    def _source_identity(self, src: Node) -> int:
        step = self._step("source node: the source's security identity", src.name)
        found = src.lookup(step, "ipcache", {"prefix": _host(self.source_ip)})
        if found is None:
            raise Stop(f"{self.source_ip} has no ipcache entry on {src.name}")
        identity = found.obj["value"]["identity"]
        step.result = {"identity": identity, "labels": self.cluster.labels(identity)}
        step.says = f"packets from {self.source_ip} carry identity {identity} {_labels(step.result['labels'])}"
        return identity

    def _service(self, src: Node) -> None:
        """If destination:port is a Service frontend, follow the load balancer to a backend."""
        step = self._step("source node: is it a Service? (load balancer)", src.name)
        family, _ = parse_ip(self.destination)
        short = "lb6" if family == IPV6 else "lb4"
        version = src.version
        protocol = self.protocol or "tcp"
        # The protocol is part of the key from 1.17; the datapath falls back to "any" (0), as before 1.17.
        protos = [protocol.upper(), "ANY"] if version is None or version >= (1, 17, 0) else ["ANY"]
        master = None
        for proto in protos:
            key = {"address": self.destination, "port": self.port, "proto": proto, "slot": 0, "scope": "external"}
            master = src.lookup(step, f"{short}-services", key)
            if master is not None:
                break
        if master is None:
            step.says = f"{self.destination}:{self.port} is not a Service frontend: no load balancing"
            return
        value = master.obj["value"]
        count, rev_nat = value["count"], value["rev_nat_index"]
        step.result["frontend"] = {"address": self.destination, "port": self.port, "proto": key["proto"],
                                   "backends": count, "rev_nat_index": rev_nat, "flags": value.get("flags")}
        if count == 0:
            raise Stop(f"Service {self.destination}:{self.port} has no backend (master entry count 0): "
                       f"the datapath drops the packet (no service backend)")
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
            raise Stop(f"Service {self.destination}:{self.port}: none of its {count} slots leads to a backend")
        chosen = next((s for s in usable if s["slot"] == self.slot), usable[0]) if self.slot else usable[0]
        revnat = src.lookup(step, f"{short}-revnat", {"rev_nat_index": rev_nat})
        step.result["rev_nat"] = revnat.obj["value"] if revnat else None
        step.result["chosen"] = chosen["slot"]
        backend = chosen["backend"]
        step.says = (f"{self.destination}:{self.port}/{key['proto']} is a Service with {count} backend slot(s), "
                     f"rev-NAT index {rev_nat}; the datapath picks one (random or Maglev): following slot "
                     f"{chosen['slot']} -> backend {chosen['backend_id']} = {backend['address']}:{backend['port']} "
                     f"(DNAT; replies are reverse-NATed back to {self.destination}:{self.port})")
        self.destination, self.port = backend["address"], backend["port"]

    def _ipcache(self, src: Node) -> tuple[int, str | None]:
        step = self._step("source node: ipcache lookup of the destination", src.name)
        found = src.lookup(step, "ipcache", {"prefix": _host(self.destination)})
        if found is None:
            raise Stop(f"no ipcache entry covers {self.destination} on {src.name} (not even 0.0.0.0/0 = world): "
                       f"the agent has not synced its ipcache")
        value = found.obj["value"]
        identity, tunnel = value["identity"], value["tunnel_endpoint"]
        step.result = {"matched": found.obj["key"]["prefix"], "identity": identity,
                       "labels": self.cluster.labels(identity), "tunnel_endpoint": tunnel,
                       "tunnel_node": self.cluster.node_by_ip.get(tunnel) if tunnel else None}
        step.says = (f"{self.destination} matches {step.result['matched']}: identity {identity} "
                     f"{_labels(step.result['labels'])}"
                     + (f", tunnel endpoint {tunnel} ({step.result['tunnel_node'] or 'not a known node'})"
                        if tunnel else ", no tunnel endpoint"))
        return identity, tunnel

    def _policy(self, node: Node, endpoint: int, direction: str, remote: int, title: str) -> None:
        step = self._step(f"{'source' if direction == 'egress' else 'destination'} node: {title}", node.name)
        protocol = parse_protocol(self.protocol) if self.protocol else 0
        port = self.port or 0
        cmap, _ = find("policy")
        packet = {"identity": remote, "direction": direction, "protocol": show_protocol(protocol), "port": port}
        verdict = None
        for fields in cmap.datapath_keys(packet, node.version):  # what bpf/lib/policy.h asks, in its order
            found = node.lookup(step, "policy", fields, {"endpoint": endpoint})
            if found is not None:
                verdict = found
                break
        shown = f"identity {remote} {_labels(self.cluster.labels(remote))}, {show_protocol(protocol)}" + \
                (f"/{port}" if port else "")
        if verdict is None:
            step.result = {"verdict": "denied", "rule": None}
            self._counted(node, DROP_POLICY, direction)
            raise Stop(f"policy denies {direction} for endpoint {endpoint} on {node.name}: no entry allows {shown} "
                       f"(the datapath drops it: Policy denied)")
        value = verdict.obj["value"]
        rule = verdict.obj["key"]
        step.result = {"verdict": "denied" if value.get("deny") else "allowed", "rule": rule, "entry": value}
        if value.get("deny"):
            self._counted(node, DROP_POLICY_DENY, direction)
            raise Stop(f"policy denies {direction} for endpoint {endpoint} on {node.name}: the deny rule {rule} "
                       f"matches {shown}")
        proxy = value.get("proxy_port") or 0
        step.says = (f"endpoint {endpoint} allows {direction} {shown} (rule: identity {rule['identity'] or 'any'}, "
                     f"{rule['protocol']}{'/' + str(rule['port']) if rule.get('port') else ''})"
                     + (f"; redirected to the L7 proxy on port {proxy}" if proxy else ""))

    def _decide(self, src: Node, tunnel: str | None) -> bool:
        step = self._step("source node: forwarding decision", src.name)
        local = src.lookup(step, "lxc", {"ip": self.destination})
        if local is not None:
            step.result = {"decision": "local", "lxc_id": local.obj["value"]["lxc_id"]}
            step.says = f"{self.destination} is a local endpoint of {src.name}: delivered on this node, no tunnel"
            return True
        if not tunnel:
            step.result = {"decision": "stack"}
            raise _Left(f"{self.destination} is neither a local endpoint nor behind a tunnel endpoint: the packet "
                        f"goes to the host stack (to-netdev on the uplink; BPF or iptables masquerade)")
        step.commands.append(src.backend.command(["bpftool", "net", "show", "dev", "cilium_vxlan"]))
        vxlan = _device(src.net(), "cilium_vxlan")
        hook = program_for(vxlan, "egress") if vxlan else None
        node = self.cluster.node_by_ip.get(tunnel)
        step.result = {"decision": "tunnel", "tunnel_endpoint": tunnel, "node": node,
                       "device": vxlan.name if vxlan else None,
                       "program": {"id": hook.prog_id, "section": hook.section} if hook else None}
        step.says = (f"not local: encapsulated in VXLAN to {tunnel}" + (f" ({node})" if node else "")
                     + (f" and redirected to cilium_vxlan({vxlan.ifindex})" if vxlan else " — but there is no "
                        "cilium_vxlan device on this node"))
        if vxlan is None:
            raise Stop(f"{src.name} has no cilium_vxlan device: the tunnel cannot be used (routing mode native?)")
        return False

    def _remote(self, tunnel: str) -> Node:
        name = self.cluster.node_by_ip.get(tunnel)
        if name is None and self.cluster.node_by_ip:
            raise _Left(f"tunnel endpoint {tunnel} is not a node of this cluster (another cluster of a mesh?): "
                        f"the walk cannot follow it there")
        node = self.nodes(name or tunnel)
        name = node.name
        step = self._step("destination node: from-overlay", name)
        step.commands.append(node.backend.command(["bpftool", "net", "show", "dev", "cilium_vxlan"]))
        vxlan = _device(node.net(), "cilium_vxlan")
        hook = program_for(vxlan, "ingress") if vxlan else None
        if hook is None:
            raise Stop(f"nothing handles VXLAN on {name}: no program on cilium_vxlan's ingress")
        step.result = {"device": f"{vxlan.name}({vxlan.ifindex})",
                       "program": {"id": hook.prog_id, "name": hook.prog_name, "section": hook.section}}
        step.says = f"the VXLAN packet arrives on {vxlan.name}({vxlan.ifindex}), where {hook.section or hook.prog_name} " \
                    f"(program id {hook.prog_id}) decapsulates it"
        return node

    def _destination_lxc(self, dst: Node) -> dict:
        step = self._step("destination node: endpoint lookup (cilium_lxc)", dst.name)
        found = dst.lookup(step, "lxc", {"ip": self.destination})
        if found is None:
            raise Stop(f"{self.destination} is not a local endpoint of {dst.name} (no cilium_lxc entry): the "
                       f"ipcache and the endpoint map disagree")
        value = found.obj["value"]
        interface = _by_index(dst.net(), value["ifindex"])
        pod = self.cluster.endpoints.get((dst.name, value["lxc_id"])) or self.cluster.pod_by_ip.get(self.destination)
        step.result = {**value, "interface": interface.name if interface else None, "pod": pod}
        step.says = (f"{self.destination} is endpoint {value['lxc_id']}" + (f" ({pod})" if pod else "")
                     + f": deliver to ifindex {value['ifindex']}"
                     + (f" ({interface.name})" if interface else "")
                     + f", source MAC {value['node_mac']}, destination MAC {value['mac']}")
        return value

    def _deliver(self, dst: Node, entry: dict) -> None:
        step = self._step("delivery", dst.name)
        interface = _by_index(dst.net(), entry["ifindex"])
        pod = self.cluster.endpoints.get((dst.name, entry["lxc_id"])) or self.cluster.pod_by_ip.get(self.destination)
        step.result = {"ifindex": entry["ifindex"], "interface": interface.name if interface else None, "pod": pod}
        step.says = (f"tail call to endpoint {entry['lxc_id']}'s to-container program (cilium_call_policy"
                     f"[{entry['lxc_id']}]), then redirect to {step.result['interface'] or 'ifindex ' + str(entry['ifindex'])}"
                     + (f", whose peer is {pod}'s eth0" if pod else ""))
        self._counted(dst, REASON_FORWARDED, "ingress")


class _Left(Exception):
    """The packet leaves what the walk can follow without being dropped (to the stack, another cluster)."""


def _host(ip: str) -> str:
    family, raw = parse_ip(ip)
    return f"{show_ip(raw)}/{128 if family == IPV6 else 32}"


def _labels(labels: list[str]) -> str:
    return f"({', '.join(labels)})" if labels else "(labels unknown)"


def _device(show, name: str):
    return next((i for i in show.interfaces if i.name == name), None)


def _by_index(show, ifindex: int):
    return next((i for i in show.interfaces if i.ifindex == ifindex), None)


# --- how a walk is set up ------------------------------------------------------------------------------

def parse_destination(text: str, protocol: str | None, port: int | None) -> tuple[str, str | None, int | None]:
    """'10.32.0.10:53/udp' -> ('10.32.0.10', 'udp', 53); '10.0.1.110' -> ('10.0.1.110', protocol, port)."""
    try:
        family, raw = parse_ip(text)
        return show_ip(raw), protocol, port
    except UsageError:
        pass
    if ":" in text and (text.startswith("[") or text.count(":") == 1):
        family, raw, parsed_port, parsed_proto = parse_endpoint(text)
        return show_ip(raw), (show_protocol(parsed_proto).lower() if parsed_proto is not None else protocol or "tcp"), \
            parsed_port
    raise UsageError(f"destination {text!r}: expected a pod name, an IP, or a Service as IP:PORT[/PROTO] "
                     f"(e.g. 10.32.0.10:53/udp)")


def cluster_walk(kubeconfig: str | None, context: str | None, source: str, namespace: str, destination: str,
                 protocol: str | None, port: int | None, slot: int | None, version: Version | None) -> dict:
    """A walk on a cluster: the source is a pod; each node is reached through its Cilium agent."""
    from tshoot.cluster import kube
    from tshoot.node.agent import agents
    from tshoot.cluster.enrich import Cluster as Objects
    from tshoot.inspect import hooks_agent as hooks

    api = kube.api_client(kubeconfig, context)
    pod = kube.get_object(api, kube.PODS, source, namespace)
    node_name = pod.get("spec", {}).get("nodeName")
    source_ip = pod.get("status", {}).get("podIP")
    if not node_name or not source_ip:
        raise TshootError(f"pod {namespace}/{source} has no node or no IP yet (phase "
                          f"{pod.get('status', {}).get('phase', '?')}): nothing to walk")
    objs = Objects.fetch(api)
    cluster = Cluster(objs.labels, objs.node_by_ip, objs.pod_by_ip, objs.endpoints)
    try:
        address, protocol, port = parse_destination(destination, protocol, port)
    except UsageError:
        if ":" in destination:  # meant as IP:PORT; pod names have no colon
            raise
        pod_namespace, _, name = destination.rpartition("/")
        target = kube.get_object(api, kube.PODS, name, pod_namespace or namespace)
        address = target.get("status", {}).get("podIP")
        if not address:
            raise TshootError(f"destination pod {pod_namespace or namespace}/{name} has no IP yet") from None
    hook_cluster = hooks.connect(kubeconfig, context)
    made: dict[str, Node] = {}

    def node(name: str) -> Node:
        if name not in made:
            [backend] = agents(api, name)
            made[name] = Node(name, backend, lambda: hooks.net_show(hook_cluster, name), version or backend.version)
        return made[name]

    container = pod["spec"]["containers"][0]["name"]

    def run(argv: list[str]):
        return kube.exec_in_pod(api, namespace, source, container, argv)

    walker = Walker(node, cluster, run, f"kubectl -n {namespace} exec {source}", f"{namespace}/{source}", source_ip,
                    node_name, address, protocol, port, slot)
    return walker.run()


def local_walk(bpffs: str, source_ip: str, destination: str, protocol: str | None, port: int | None,
               slot: int | None, version: Version | None, node_netns: str | None, pod_netns: str | None) -> dict:
    """A walk on this machine: the source is a local endpoint's IP; maps from the local bpffs, hooks from
    the node's network namespace; the route step runs in the pod's namespace when --pod-netns names it."""
    import socket
    import subprocess

    from tshoot.node.local import LocalBackend
    from tshoot.inspect import hooks_local as hooks

    backend = LocalBackend(bpffs, version)
    name = socket.gethostname()
    here = Node(name, backend, lambda: hooks.net_show(node_netns, bpffs), version)
    address, protocol, port = parse_destination(destination, protocol, port)

    def run(argv: list[str]):
        proc = subprocess.run(["ip", "netns", "exec", pod_netns, *argv], capture_output=True, text=True)
        return proc.returncode, proc.stdout, proc.stderr

    def nodes(wanted: str) -> Node:
        if wanted != name:
            raise _Left(f"the packet continues on node {wanted}, which the local backend cannot reach "
                        f"(walk from a cluster with the pod backend to follow it)")
        return here

    source = show_ip(parse_ip(source_ip)[1])
    walker = Walker(nodes, Cluster({}, {}, {}, {}), run if pod_netns else None, f"ip netns exec {pod_netns}",
                    f"endpoint {source}", source, name, address, protocol, port, slot)
    return walker.run()

