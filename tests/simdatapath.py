"""A Cilium datapath on one machine: what `tshoot walk` and the node-level tests walk through.

Each node is a network namespace with the devices Cilium creates (cilium_host/cilium_net, cilium_vxlan,
an eth0 uplink on a shared "docker network" bridge), its own private bpffs holding the agent's pinned
maps of the chosen Cilium version, filled as the agent fills them, and tc programs with Cilium's names
attached where Cilium attaches them. Each pod is a network namespace whose eth0 is a veth peered with
an lxc device on its node, routed through cilium_host like a Cilium pod.

The programs are the project's model of Cilium's datapath decisions (bpf/progs/cilium/datapath.bpf.c),
compiled for the chosen version's map layouts and loaded so they use the very maps filled here: packets
really cross the cluster (pod to pod, through VXLAN between nodes, to Services, to a namespace standing
for the internet behind the node's iptables masquerade) and really drop where Cilium would, counted in
cilium_metrics.

The cluster's objects (tests/kubeapi/objects.py shapes) are the source of truth: pods, CiliumEndpoints
(endpoint id, identity), CiliumNodes and Services decide what goes into the maps. The API server's exec
runs commands inside these namespaces: agent pods in their node (with its bpffs on /sys/fs/bpf), other
pods in their own namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import struct
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.bpfobj import BPF_DIR, compile_bpf
from tests.kubeapi import NodeExec, SimNode
from tests.kubeapi.objects import NodeSpec
from tshoot.maps import find
from tshoot.core.version import Version, parse

BRIDGE_CIDR = "172.18.0.0/16"  # kind's docker network
GATEWAY_IP = "172.18.0.1"  # the docker network's gateway: the way to the internet
INTERNET_IP = "198.51.100.10"  # an address on the internet (TEST-NET-2), in the internet namespace
WORLD, HOST, REMOTE_NODE = 2, 1, 6  # reserved identities
# Which Cilium object file attaches where (the names `bpftool net show` prints in the guide).
ATTACH = {
    "lxc": [("ingress", "bpf_lxc.o", "from-container")],
    "cilium_host": [("ingress", "bpf_host.o", "to-host"), ("egress", "bpf_host.o", "from-host")],
    "cilium_net": [("ingress", "bpf_host_cilium_net.o", "to-host")],
    "cilium_vxlan": [("ingress", "bpf_overlay.o", "from-overlay"), ("egress", "bpf_overlay.o", "to-overlay")],
    "eth0": [("ingress", "bpf_netdev_eth0.o", "from-netdev"), ("egress", "bpf_netdev_eth0.o", "to-netdev")],
}
CALLS_MAX_ENTRIES = 50  # CILIUM_CALL_SIZE (25 in 1.9 … 50 in 1.15-1.17): slots 7 and 10 fit every version
# The sim keeps conntrack small: entry counts do not change a lookup, and LRU maps preallocate.
CT_MAX_ENTRIES = 4096
DATAPATH_SOURCE = BPF_DIR / "progs" / "cilium" / "datapath.bpf.c"
# The maps the datapath reads, by the macro its source names them with and tshoot's short name.
DATAPATH_MAPS = {"IPCACHE": "ipcache", "LXC": "lxc", "CT4": "ct4", "CT_ANY4": "ct-any4", "LB4_SERVICES": "lb4-services",
                 "LB4_BACKENDS": "lb4-backends", "LB4_REVNAT": "lb4-revnat", "POLICY": "policy", "TUNNEL": "tunnel"}
TEMPLATE_ENDPOINT = 65535  # the endpoint id of the policy map name in the compiled bpf_lxc.o
# Placeholder values of the node constants in the compiled objects (ENCAP_IFINDEX, IPV4_MASK).
ENCAP_IFINDEX_PLACEHOLDER, IPV4_MASK_PLACEHOLDER = struct.pack("<I", 0x6b6c0e01), struct.pack("<I", 0x6b6c0e02)


@dataclass
class PodLink:
    """How a pod is wired to its node; fields left None are chosen by the kernel or derived."""

    lxc_name: str | None = None
    lxc_index: int | None = None
    eth0_index: int | None = None
    mac: str | None = None  # the pod's eth0
    node_mac: str | None = None  # the lxc device
    gateway_mac: str | None = None  # what the pod's ARP entry for the router says (Cilium: the lxc MAC)


@dataclass
class SimPod:
    name: str
    namespace: str
    node: str
    ip: str
    netns: str
    lxc_name: str
    lxc_index: int
    eth0_index: int
    mac: str
    node_mac: str
    endpoint_id: int
    identity: int


@dataclass
class SimNodeState:
    spec: NodeSpec
    netns: str
    bpffs: Path
    pods: list[SimPod] = field(default_factory=list)
    ifindex: dict[str, int] = field(default_factory=dict)  # the node's devices, once built

    @property
    def globals(self) -> Path:
        return self.bpffs / "tc" / "globals"


class SimDatapath:
    """Build with `SimDatapath(...).build()`, always `teardown()` (the fixture does both)."""

    def __init__(self, version: str, nodes: list[NodeSpec], objects: list[dict], workdir: Path, bpf_objects: dict,
                 links: dict[str, PodLink] | None = None, vxlan_index: dict[str, int] | None = None,
                 service_ids: dict[str, int] | None = None):
        self.version: Version = parse(version)
        self.version_text = version
        self.nodes = {n.name: SimNodeState(n, f"kl-{n.name[-8:]}-{uuid.uuid4().hex[:6]}", workdir / f"bpffs-{n.name}")
                      for n in nodes}
        self.objects = objects
        self.workdir = workdir
        self.bpf_objects = bpf_objects
        self.links = links or {}
        self.vxlan_index = vxlan_index or {}
        self.service_ids = service_ids or {}
        self.underlay = f"kl-net-{uuid.uuid4().hex[:6]}"
        self.pods: dict[str, SimPod] = {}
        self._namespaces: list[str] = []
        self._mounts: list[Path] = []
        self._pending: dict[str, list[str]] = {}  # `ip` commands per namespace, run by _flush()

    # --- lifecycle ---------------------------------------------------------------------------------
    def build(self) -> "SimDatapath":
        self._objects_dir = self.workdir / f"bpf-objects-{uuid.uuid4().hex[:6]}"
        self._objects_dir.mkdir(parents=True)
        templates = datapath_objects(self.version, self.bpf_objects["datapath"].parent)
        self._add_netns(self.underlay)
        self._ip(self.underlay, "link", "add", "br0", "type", "bridge")
        self._ip(self.underlay, "link", "set", "br0", "up")
        self._build_internet()
        for index, node in enumerate(self.nodes.values()):
            self._build_node(node, index)
        for pod in self._pod_objects():
            self._build_pod(pod)
        self._flush()
        for node in self.nodes.values():
            self._read_ifindexes(node)
            self._forward_and_masquerade(node)
            self._fill_maps(node)
            self._load_programs(node, templates)
            self._fill_entry_tail_calls(node)
        return self

    def teardown(self) -> None:
        if self._mounts:
            subprocess.run(["umount", "-l", *map(str, self._mounts)], check=False, capture_output=True)
        if self._namespaces:
            subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns delete {ns}\n" for ns in
                                                                      reversed(self._namespaces)),
                           text=True, check=False, capture_output=True)

    def exec_handler(self, server) -> NodeExec:
        """Agent pods run in their node (bpffs on /sys/fs/bpf); other sim pods in their own namespace."""
        return SimExec(server, {n: SimNode(s.netns, s.bpffs) for n, s in self.nodes.items()},
                       {p.name: SimNode(p.netns, None) for p in self.pods.values()})

    # --- the internet -------------------------------------------------------------------------------
    def _build_internet(self) -> None:
        """The docker network's gateway, with an internet address behind it (on its loopback)."""
        self.internet = f"kl-www-{uuid.uuid4().hex[:6]}"
        self._add_netns(self.internet)
        uplink = f"w{uuid.uuid4().hex[:8]}"
        self._ip(self.underlay, "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", self.internet)
        self._ip(self.underlay, "link", "set", uplink, "master", "br0", "up")
        prefix = ipaddress.ip_network(BRIDGE_CIDR).prefixlen
        self._ip(self.internet, "addr", "add", f"{GATEWAY_IP}/{prefix}", "dev", "eth0")
        self._ip(self.internet, "addr", "add", f"{INTERNET_IP}/32", "dev", "lo")
        for dev in ("lo", "eth0"):
            self._ip(self.internet, "link", "set", dev, "up")

    # --- nodes -------------------------------------------------------------------------------------
    def _build_node(self, node: SimNodeState, index: int) -> None:
        ns, spec = node.netns, node.spec
        self._add_netns(ns)
        node.bpffs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "bpf", "bpf", str(node.bpffs)], check=True)
        self._mounts.append(node.bpffs)
        node.globals.mkdir(parents=True)
        self._ip(ns, "link", "set", "lo", "up")
        vxlan = ["index", str(self.vxlan_index[spec.name])] if spec.name in self.vxlan_index else []
        self._ip(ns, "link", "add", "cilium_vxlan", *vxlan, "type", "vxlan", "external", "dstport", "8472")
        self._ip(ns, "link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net")
        self._ip(ns, "addr", "add", f"{spec.router_ip}/32", "dev", "cilium_host")
        uplink = f"u{index}{uuid.uuid4().hex[:6]}"
        self._ip(self.underlay, "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._ip(self.underlay, "link", "set", uplink, "master", "br0", "up")
        prefix = ipaddress.ip_network(BRIDGE_CIDR).prefixlen
        self._ip(ns, "addr", "add", f"{spec.ip}/{prefix}", "dev", "eth0")
        for dev in ("eth0", "cilium_vxlan"):
            self._ip(ns, "link", "set", dev, "up")
        # The agent turns ARP off on the cilium_host/cilium_net pair (pkg/datapath/loader setupBaseDevice(),
        # LinkSetARPOff): routes via cilium_host's own address then resolve without asking anyone.
        for dev in ("cilium_host", "cilium_net"):
            self._ip(ns, "link", "set", dev, "arp", "off", "up")
        # Cilium's routes: the node's own pod CIDR via cilium_host, other nodes' pod CIDRs too (tunnel mode).
        for other in self.nodes.values():
            self._ip(ns, "route", "add", other.spec.pod_cidr, "via", spec.router_ip, "dev", "cilium_host",
                     "src", spec.router_ip, "mtu", "1450")
        self._ip(ns, "route", "add", "default", "via", GATEWAY_IP, "dev", "eth0")

    def _forward_and_masquerade(self, node: SimNodeState) -> None:
        """The guide's lab masquerades pod traffic leaving the node with iptables (Cilium's CILIUM_POST_nat
        rule, enable-bpf-masquerade off), and the node forwards."""
        self._run(["ip", "netns", "exec", node.netns, "sh", "-c",
                   "sysctl -qw net.ipv4.ip_forward=1 && iptables -t nat -A POSTROUTING -s " + node.spec.pod_cidr +
                   " ! -o cilium_+ -m comment --comment 'cilium masquerade non-cluster' -j MASQUERADE"])

    def _read_ifindexes(self, node: SimNodeState) -> None:
        """The kernel's ifindexes, read once per node: its devices, its lxcs and (their peers) the pods' eth0."""
        links = json.loads(subprocess.run(["ip", "-n", node.netns, "-j", "link", "show"], capture_output=True,
                                          text=True, check=True).stdout)
        node.ifindex = {link["ifname"]: link["ifindex"] for link in links}
        peers = {link["ifname"]: link.get("link_index") for link in links}
        for pod in node.pods:
            pod.lxc_index, pod.eth0_index = node.ifindex[pod.lxc_name], peers[pod.lxc_name]

    def _load_programs(self, node: SimNodeState, templates: dict[str, Path]) -> None:
        """The node's objects (bpf_host.o, bpf_overlay.o…) with its constants, attached where Cilium
        attaches them; each endpoint's bpf_lxc.o on its lxc device and its policy program in
        cilium_call_policy. The maps the agent fills exist already and are reused by name; the first load
        creates cilium_metrics and cilium_call_policy, which the datapath itself fills."""
        from tests import bpfattach

        node_dir = self._objects_dir / node.spec.name
        node_dir.mkdir()
        constants = {ENCAP_IFINDEX_PLACEHOLDER: struct.pack("<I", node.ifindex["cilium_vxlan"]),
                     IPV4_MASK_PLACEHOLDER: ipaddress.ip_network(node.spec.pod_cidr).netmask.packed}
        host = _substitute(templates["node"].read_bytes(), constants)
        for name in {obj for dev, hooks in ATTACH.items() if dev != "lxc" for _, obj, _ in hooks}:
            (node_dir / name).write_bytes(host)
        tc = [line for dev in ("cilium_host", "cilium_net", "cilium_vxlan", "eth0")
              for line in _tc_attach(dev, ATTACH[dev], node_dir)]
        pin = find("policy")[0].pin(self.version)
        endpoint = _substitute(templates["endpoint"].read_bytes(), constants)
        policy_prog = "cil_lxc_policy" if self.version >= (1, 18, 0) else "handle_policy"
        for pod in node.pods:
            ep_dir = node_dir / f"ep{pod.endpoint_id}"
            ep_dir.mkdir()
            renamed = {pin.name.format(endpoint=TEMPLATE_ENDPOINT).encode():
                       pin.name.format(endpoint=pod.endpoint_id).encode()}
            (ep_dir / "bpf_lxc.o").write_bytes(_substitute(endpoint, renamed))
            tc += _tc_attach(pod.lxc_name, ATTACH["lxc"], ep_dir)
        # One tc for the whole node; TC_BPF_MNT makes it pin and reuse maps in the node's bpffs.
        script = node_dir / "attach.batch"
        script.write_text("\n".join(tc) + "\n")
        self._run(["ip", "netns", "exec", node.netns, "tc", "-batch", str(script)],
                  env={"TC_BPF_MNT": str(node.bpffs), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        for pod in node.pods:
            bpfattach.tail_call(node_dir / f"ep{pod.endpoint_id}" / "bpf_lxc.o", policy_prog, node.globals,
                                "cilium_call_policy", pod.endpoint_id)

    # --- pods --------------------------------------------------------------------------------------
    def _pod_objects(self) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == "Pod" and not o["spec"].get("hostNetwork")
                and o.get("status", {}).get("podIP") and o["spec"].get("nodeName") in self.nodes]

    def _build_pod(self, obj: dict) -> None:
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        node = self.nodes[obj["spec"]["nodeName"]]
        link = self.links.get(name, PodLink())
        digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
        lxc_name = link.lxc_name or f"lxc{digest[:12]}"
        mac = link.mac or _mac("0a" + digest[12:22])
        node_mac = link.node_mac or _mac("3e" + digest[22:32])
        ns = f"kl-pod-{uuid.uuid4().hex[:8]}"
        self._add_netns(ns)
        self._ip(node.netns, "link", "add", "name", lxc_name, *(["index", str(link.lxc_index)] if link.lxc_index else []),
                 "address", node_mac, "type", "veth", "peer", "name", "eth0",
                 *(["index", str(link.eth0_index)] if link.eth0_index else []), "address", mac, "netns", ns)
        ip = obj["status"]["podIP"]
        self._ip(node.netns, "link", "set", lxc_name, "up")
        self._ip(ns, "link", "set", "lo", "up")
        self._ip(ns, "addr", "add", f"{ip}/32", "dev", "eth0")
        self._ip(ns, "link", "set", "eth0", "up")
        gateway = node.spec.router_ip
        self._ip(ns, "route", "add", gateway, "dev", "eth0", "scope", "link")
        self._ip(ns, "route", "add", "default", "via", gateway, "dev", "eth0", "mtu", "1450")
        # Cilium answers the pod's ARP for the gateway with the lxc device's MAC (bpf_lxc's ARP responder).
        self._ip(ns, "neigh", "add", gateway, "lladdr", link.gateway_mac or node_mac, "dev", "eth0", "nud", "permanent")
        self._ip(node.netns, "route", "add", f"{ip}/32", "dev", lxc_name)
        endpoint = self._endpoint(name, namespace)
        pod = SimPod(name, namespace, node.spec.name, ip, ns, lxc_name, 0, 0, mac, node_mac,  # ifindexes: later
                     endpoint["status"]["id"], endpoint["status"]["identity"]["id"])
        node.pods.append(pod)
        self.pods[name] = pod

    def _endpoint(self, name: str, namespace: str) -> dict:
        for obj in self.objects:
            if obj.get("kind") == "CiliumEndpoint" and obj["metadata"]["name"] == name \
                    and obj["metadata"].get("namespace") == namespace:
                return obj
        raise LookupError(f"no CiliumEndpoint for pod {namespace}/{name}")

    # --- maps, as the agent fills them ---------------------------------------------------------------
    def _fill_maps(self, node: SimNodeState) -> None:
        v = self.version
        batch: list[str] = []

        def create(short: str, **params) -> tuple:
            cmap, _ = find(short)
            pin = cmap.pin(v)
            path = node.globals / pin.name.format(**params)
            key_size, value_size = cmap.layout_for("key", v).size, cmap.layout_for("value", v).size
            max_entries = _max_entries(short, v)
            flags = "1" if pin.map_type == "lpm_trie" else "0"  # LPM tries need BPF_F_NO_PREALLOC
            batch.append(f"map create {path} type {pin.map_type} key {key_size} value {value_size} "
                         f"entries {max_entries} name {path.name[:15]} flags {flags}")
            return cmap, path

        def put(target: tuple, key: dict, value: dict) -> None:
            cmap, path = target
            k, val = cmap.encode("key", key, v), cmap.encode("value", value, v)
            batch.append(f"map update pinned {path} key hex {k.hex(' ')} value hex {val.hex(' ')}")

        ipcache, lxc = create("ipcache"), create("lxc")
        for short in ("ct4", "ct-any4", "ct6", "ct-any6"):
            create(short)
        services, backends, revnat = create("lb4-services"), create("lb4-backends"), create("lb4-revnat")
        tunnel = create("tunnel") if v < (1, 18, 0) else None

        put(ipcache, {"prefix": "0.0.0.0/0"}, {"identity": WORLD})
        for other in self.nodes.values():
            local = other is node
            remote = None if local else other.spec.ip
            identity = HOST if local else REMOTE_NODE
            put(ipcache, {"prefix": other.spec.ip}, {"identity": identity})
            put(ipcache, {"prefix": other.spec.router_ip}, {"identity": identity, "tunnel_endpoint": remote})
            for pod in other.pods:
                put(ipcache, {"prefix": pod.ip}, {"identity": pod.identity, "tunnel_endpoint": remote})
            if tunnel and not local:
                put(tunnel, {"ip": other.spec.pod_cidr.split("/")[0]}, {"endpoint": other.spec.ip})
        for address in (node.spec.ip, node.spec.router_ip):
            put(lxc, {"ip": address}, {"ifindex": 0, "lxc_id": 0, "flags": ["host"], "mac": "00:00:00:00:00:00",
                                       "node_mac": "00:00:00:00:00:00"})
        for pod in node.pods:
            value = {"ifindex": pod.lxc_index, "lxc_id": pod.endpoint_id, "flags": [], "mac": pod.mac,
                     "node_mac": pod.node_mac}
            if "sec_id" in lxc[0].layout_for("value", v).by_name:
                value["sec_id"] = pod.identity
            put(lxc, {"ip": pod.ip}, value)
            policy = create("policy", endpoint=pod.endpoint_id)
            # Allow everything in and out (the lab applies no NetworkPolicy): the L3-only wildcard entries.
            for direction in ("ingress", "egress"):
                put(policy, {"identity": 0, "direction": direction, "protocol": "ANY", "port": 0}, {"proxy_port": 0})

        backend_ids: dict[tuple[str, int, str], int] = {}
        listed = self._services()
        # Cilium gives every frontend (address, port) a service ID of its own, the rev-NAT index its replies
        # are translated back with (pkg/service/service.go upsertService -> AcquireID per L3n4Addr): a
        # Service's first port keeps the Service's ID here, its other ports and NodePorts take the next ones.
        frontend_ids = iter(range(len(listed) + 1, 1 << 16))
        for service_index, (svc, addresses) in enumerate(listed, start=1):
            service_id = self.service_ids.get(svc["metadata"]["name"], service_index)
            vip = svc["spec"]["clusterIP"]
            for port_index, port in enumerate(svc["spec"]["ports"]):
                target_port = port["targetPort"] if isinstance(port.get("targetPort"), int) else port["port"]
                targets = [(ip, target_port) for ip in addresses]
                proto = port["protocol"] if v >= (1, 17, 0) else "ANY"  # the protocol is part of the key from 1.17
                frontends = [(vip, port["port"])]
                if port.get("nodePort"):
                    # A NodePort on every node's address, in every node's table: bpf_lxc translates it at the
                    # source. The sim has no bpf_host nodeport_lb4() (the real lab translates a remote node's
                    # NodePort on that node's uplink); the backend and the reply seen by the pod are the same.
                    frontends += [(other.spec.ip, port["nodePort"]) for other in self.nodes.values()]
                for frontend_index, (address, number) in enumerate(frontends):
                    rev_nat = service_id if port_index == frontend_index == 0 else next(frontend_ids)
                    put(services, {"address": address, "port": number, "proto": proto, "slot": 0,
                                   "scope": "external"},
                        {"backend_id": 0, "count": len(targets), "rev_nat_index": rev_nat, "flags": [], "flags2": []})
                    for slot, (ip, target_port) in enumerate(targets, start=1):
                        backend_id = backend_ids.setdefault((ip, target_port, port["protocol"]), len(backend_ids) + 1)
                        put(services, {"address": address, "port": number, "proto": proto, "slot": slot,
                                       "scope": "external"},
                            {"backend_id": backend_id, "count": 0, "rev_nat_index": rev_nat, "flags": [],
                             "flags2": []})
                        backend = {"address": ip, "port": target_port}
                        if v >= (1, 17, 0):
                            backend["proto"] = port["protocol"]
                        put(backends, {"backend_id": backend_id}, backend)
                    put(revnat, {"rev_nat_index": rev_nat}, {"address": address, "port": number})
        script = self.workdir / f"fill-{node.spec.name}.batch"
        script.write_text("\n".join(batch) + "\n")
        _bpftool("batch", "file", str(script))

    def _fill_entry_tail_calls(self, node: SimNodeState) -> None:
        """The entry programs' own tail-call slots the walk reads: CILIUM_CALL_IPV4_FROM_LXC / _IPV6_ (slots 7
        and 10 in every version) in each endpoint's cilium_calls_<ep> and in bpf_overlay's
        cilium_calls_overlay_2, holding the program attached on that device (the sim's programs decide in
        one program; Cilium's continue in the slot's). cilium_call_policy is the datapath's own (_load_programs)."""
        batch = []
        calls = [(f"cilium_calls_{pod.endpoint_id:05d}", pod.lxc_name) for pod in node.pods]
        for name, device in [*calls, ("cilium_calls_overlay_2", "cilium_vxlan")]:
            path = node.globals / name
            batch.append(f"map create {path} type prog_array key 4 value 4 entries {CALLS_MAX_ENTRIES} name {name[:15]}")
            program = _attached_program(node.netns, device)
            batch += [f"map update pinned {path} key {_u32(slot)} value id {program}" for slot in (7, 10)]
        script = self.workdir / f"calls-{node.spec.name}.batch"
        script.write_text("\n".join(batch) + "\n")
        _bpftool("batch", "file", str(script))

    def add_host_endpoint(self, node: str, endpoint_id: int, allow: bool) -> None:
        """The host endpoint's maps, as with the host firewall on: cilium_calls_hostns_<id> (its programs; the
        map's name is how tshoot finds the id) and its policy map, allowing every identity in or nothing."""
        state = self.nodes[node]
        calls = state.globals / f"cilium_calls_hostns_{endpoint_id:05d}"
        _bpftool("map", "create", str(calls), "type", "prog_array", "key", "4", "value", "4", "entries", "50",
                 "name", "cilium_calls_ho")
        cmap, _ = find("policy")
        v = self.version
        path = state.globals / cmap.pinned_name(v, endpoint=endpoint_id)
        pin = cmap.pin(v)
        _bpftool("map", "create", str(path), "type", pin.map_type, "key", str(cmap.layout_for("key", v).size),
                 "value", str(cmap.layout_for("value", v).size), "entries", str(pin.max_entries),
                 "name", path.name[:15], "flags", "1" if pin.map_type == "lpm_trie" else "0")
        if allow:
            key = cmap.encode("key", {"identity": 0, "direction": "ingress", "protocol": "ANY", "port": 0}, v)
            value = cmap.encode("value", {"proxy_port": 0}, v)
            _bpftool("map", "update", "pinned", str(path), "key", "hex", *key.hex(" ").split(),
                     "value", "hex", *value.hex(" ").split())

    def clear_tunnel_endpoint(self, node: str, ip: str) -> None:
        """Rewrite `ip`'s ipcache entry on `node` without its tunnel endpoint (same identity), as an agent
        whose ipcache learnt the address without a node behind it does."""
        cmap, _ = find("ipcache")
        v = self.version
        path = self.nodes[node].globals / cmap.pin(v).name
        pod = next(p for p in self.pods.values() if p.ip == ip)
        key = cmap.encode("key", {"prefix": ip}, v)
        value = cmap.encode("value", {"identity": pod.identity}, v)
        _bpftool("map", "update", "pinned", str(path), "key", "hex", *key.hex(" ").split(),
                 "value", "hex", *value.hex(" ").split())

    def _services(self) -> list[tuple[dict, list[str]]]:
        """ClusterIP Services with their ready endpoint addresses (core/v1 Endpoints)."""
        endpoints = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in self.objects
                     if o.get("kind") == "Endpoints"}
        out = []
        for svc in self.objects:
            if svc.get("kind") != "Service" or not svc["spec"].get("clusterIP"):
                continue
            ep = endpoints.get((svc["metadata"]["namespace"], svc["metadata"]["name"]), {})
            addresses = [a["ip"] for subset in ep.get("subsets", []) for a in subset.get("addresses", [])]
            out.append((svc, addresses))
        return out

    # --- test helpers --------------------------------------------------------------------------------
    def map_path(self, node: str, name: str) -> Path:
        return self.nodes[node].globals / name

    def update_map(self, node: str, short: str, key: dict, value: dict | None = None, **params) -> None:
        """Write (or, without a value, delete) one entry of a node's map, encoded as the agent encodes it:
        how a test takes away what the datapath needs (a policy entry, a backend, an ipcache entry)."""
        cmap, _ = find(short)
        path = self.map_path(node, cmap.pin(self.version).name.format(**params))
        args = ["key", "hex", *cmap.encode("key", key, self.version).hex(" ").split()]
        if value is None:
            _bpftool("map", "delete", "pinned", str(path), *args)
        else:
            _bpftool("map", "update", "pinned", str(path), *args, "value", "hex",
                     *cmap.encode("value", value, self.version).hex(" ").split())

    def _add_netns(self, name: str) -> None:
        self._namespaces.append(name)
        self._pending.setdefault("", []).append(f"netns add {name}")

    def _ip(self, ns: str, *args: str) -> None:
        self._pending.setdefault(ns, []).append(" ".join(args))

    def _flush(self) -> None:
        """The queued `ip` commands: one `ip -batch` for the new namespaces, then one per namespace in the
        order each was first used (the bridge before the nodes whose uplinks it creates, a node before the
        pods whose eth0 its lxc veths create)."""
        for ns, commands in self._pending.items():
            self._run(["ip", *(["-n", ns] if ns else []), "-batch", "-"], stdin="\n".join(commands) + "\n")
        self._pending.clear()

    @staticmethod
    def _run(argv: list[str], env: dict | None = None, stdin: str | None = None) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")


class SimExec(NodeExec):
    def __init__(self, server, nodes: dict[str, SimNode], pods: dict[str, SimNode]):
        super().__init__(server, nodes)
        self.pods = pods

    def __call__(self, namespace: str, pod: str, container: str, argv: list[str]):
        if pod not in self.pods:
            return super().__call__(namespace, pod, container, argv)
        proc = subprocess.run(self.command(self.pods[pod], argv), capture_output=True, timeout=self.timeout)
        return proc.returncode, proc.stdout, proc.stderr


def _tc_attach(dev: str, hooks, objects_dir: Path) -> list[str]:
    """tc batch lines attaching hooks on dev; tc names a filter after its object's file name (bpf_lxc.o)."""
    return [f"qdisc add dev {dev} clsact",
            *(f"filter add dev {dev} {direction} bpf da obj {objects_dir / obj} sec {section}"
              for direction, obj, section in hooks)]


def _max_entries(short: str, version: Version) -> int:
    pin = find(short)[0].pin(version)
    return min(pin.max_entries, CT_MAX_ENTRIES) if short.startswith("ct") else pin.max_entries


def datapath_objects(version: Version, out_dir: Path) -> dict[str, Path]:
    """bpf/progs/cilium/datapath.bpf.c for this version, compiled once per test session: {"endpoint": bpf_lxc
    template, "node": bpf_host/bpf_overlay template}. Map names and sizes come from tshoot's registry, the
    same numbers the maps are created with, so libbpf's compatibility check accepts the pinned maps."""
    text = ".".join(map(str, version))
    defines = {"CILIUM_VERSION": str(10000 * version[0] + 100 * version[1] + version[2])}
    for macro, short in DATAPATH_MAPS.items():
        if short == "tunnel" and version >= (1, 18, 0):
            continue  # cilium_tunnel_map is gone in 1.18
        defines[f"{macro}_NAME"] = find(short)[0].pin(version).name.format(endpoint=TEMPLATE_ENDPOINT)
        defines[f"{macro}_MAX"] = str(_max_entries(short, version))
    out = {}
    for kind, extra in (("endpoint", {"ENDPOINT_OBJECT": "1"}), ("node", {})):
        path = out_dir / f"cilium-{kind}-{text}.o"
        if not path.exists():
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            compile_bpf(DATAPATH_SOURCE, partial, {**defines, **extra})
            partial.rename(path)
        out[kind] = path
    return out


def _substitute(elf: bytes, replacements: dict[bytes, bytes]) -> bytes:
    """Cilium's loader specialises a compiled template by rewriting it (pkg/datapath/loader/template.go,
    v1.9): same-length map names and constant values, each found where the template put it."""
    for old, new in replacements.items():
        if len(old) != len(new) or old not in elf:
            raise ValueError(f"cannot substitute {old!r} in the datapath object")
        elf = elf.replace(old, new)
    return elf


def _bpftool(*args: str) -> None:
    proc = subprocess.run(["bpftool", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bpftool {' '.join(args[:4])}…: {proc.stderr.strip() or proc.stdout.strip()}")


def _u32(number: int) -> str:
    return " ".join(str(b) for b in number.to_bytes(4, "little"))


def _attached_program(ns: str, dev: str) -> int:
    """The id of the program on `dev`'s tc ingress in namespace `ns`."""
    import json

    shown = json.loads(subprocess.run(["ip", "netns", "exec", ns, "bpftool", "-j", "net", "show", "dev", dev],
                                      capture_output=True, text=True, check=True).stdout)
    return next(hook["id"] for entry in shown for hook in entry.get("tc", []) if hook.get("kind") == "clsact/ingress")


def _mac(hex12: str) -> str:
    raw = bytearray(bytes.fromhex(hex12[:12]))
    raw[0] = (raw[0] | 0x02) & 0xFE  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in raw)


# --- scenarios ------------------------------------------------------------------------------------

def guide_scenario(version: str = "1.19.4") -> dict:
    """Seed 000's cluster: pod 10.0.2.99 on k8s-guide-worker talks to 10.0.1.110 on the control plane
    (node 172.18.0.5), with the guide's ifindexes, MACs and endpoint id 2006 where the guide shows them."""
    from tests.kubeapi import objects

    objs = objects.kind_cluster(version)
    for obj in objs:  # the guide's endpoint id for 10.0.1.110 (cilium_lxc value d6 07 = 2006)
        if obj.get("kind") == "CiliumEndpoint" and obj["metadata"]["name"] == "net-tshoot-4gmzr":
            obj["status"]["id"] = 2006
    links = {
        "net-tshoot-4gmzr": PodLink(lxc_index=11, mac="6a:8c:ee:3a:73:d5", node_mac="3e:43:da:fb:c7:04"),
        "net-tshoot-xbw6q": PodLink(lxc_name="lxcda722d56d553", lxc_index=24, eth0_index=23, mac="b2:10:ef:6b:fa:0a"),
        "net-tshoot-l8vwz": PodLink(lxc_name="lxc473b3117af85", lxc_index=24, eth0_index=23,
                                    node_mac="da:0c:20:4a:86:f7"),
    }
    return {"version": version, "nodes": objects.guide_nodes(), "objects": objs, "links": links,
            "vxlan_index": {"k8s-guide-control-plane": 5}}


def service_scenario(version: str = "1.19.4") -> dict:
    """Seed 003's DNS call: a pod at 10.200.0.64 queries kube-dns 10.32.0.10:53/UDP, load-balanced to
    CoreDNS 10.200.0.44:53 (identity 18203) in backend slot 2, rev-NAT index 6, on the same node."""
    from tests.kubeapi import objects

    nodes = [
        NodeSpec("k8s-guide-control-plane", "control-plane", "172.18.0.5", "10.200.1.0/24", "10.244.0.0/24",
                 "10.200.1.197", "10.200.1.12"),
        NodeSpec("k8s-guide-worker", "worker", "172.18.0.4", "10.200.0.0/24", "10.244.1.0/24",
                 "10.200.0.184", "10.200.0.61"),
    ]
    node_objs = [objects.node(n) for n in nodes]
    objs = [*node_objs, *objects.cilium_crds(), *objects.agent_pods(nodes, version),
            *[objects.cilium_node(n, o) for n, o in zip(nodes, node_objs)]]
    objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cilium"}})
    client_labels = {"app": "client"}
    client = objects.pod("client-7d9f8-x2v4q", "default", nodes[1], client_labels, [("client", objects.NETSHOOT_IMAGE)],
                         ip="10.200.0.64")
    client_security = objects.pod_identity_labels("default", client_labels)
    dns_labels = {"k8s-app": "kube-dns"}
    dns_security = objects.pod_identity_labels("kube-system", dns_labels, "coredns")
    dns = [objects.pod(f"coredns-6f6b679f8f-{s}", "kube-system", n, dns_labels, [("coredns", objects.COREDNS_IMAGE)],
                       ip=ip, service_account="coredns")
           for s, n, ip in (("qb5dn", nodes[0], "10.200.1.37"), ("wx7tl", nodes[1], "10.200.0.44"))]
    objs += [client, *dns, objects.identity(24122, client_security),
             objects.identity(objects.COREDNS_IDENTITY, dns_security),
             objects.endpoint(client, nodes[1].ip, 1337, 24122, client_security),
             *[objects.endpoint(p, n.ip, 800 + i, objects.COREDNS_IDENTITY, dns_security)
               for i, (p, n) in enumerate(zip(dns, nodes))]]
    ports = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]
    objs.append(objects.service("kube-dns", "kube-system", "10.32.0.10", ports, dns_labels))
    objs.append(objects.endpoints("kube-dns", "kube-system", [(p["status"]["podIP"], p) for p in dns],
                                  [{"name": "dns", "port": 53, "protocol": "UDP"}]))
    return {"version": version, "nodes": nodes, "objects": objs, "service_ids": {"kube-dns": 6}}


def start(scenario: dict, kubeapi, workdir: Path, bpf_objects: dict) -> SimDatapath:
    """Build the scenario's datapath, load its objects into the API server and route exec into it."""
    sim = SimDatapath(scenario["version"], scenario["nodes"], scenario["objects"], workdir, bpf_objects,
                      links=scenario.get("links"), vxlan_index=scenario.get("vxlan_index"),
                      service_ids=scenario.get("service_ids"))
    try:
        sim.build()
    except BaseException:
        sim.teardown()
        raise
    kubeapi.add(*scenario["objects"])
    kubeapi.exec_handler = sim.exec_handler(kubeapi)
    return sim
