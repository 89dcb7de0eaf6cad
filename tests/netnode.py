"""A Cilium node's datapath built in network namespaces, for the net/prog show tests.

The node namespace holds what an agent leaves on a kind node: two pod veths (lxc…, the pod side `eth0`
in a namespace of its own), lxc_health, the cilium_host/cilium_net pair, an external cilium_vxlan, and
the uplink eth0 (default route, its peer in a "world" namespace). Programs compiled from bpf/ are
attached the three ways Cilium versions do: tc filters loaded by iproute2 from an object and section
(Cilium 1.9: `bpf_lxc.o:[from-container]`), tcx links pinned in bpffs (Cilium >= 1.16), a plain tcx
attachment, generic XDP, a tc filter under an htb qdisc, and a flow dissector.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests import bpfattach
from tests.kubeapi import objects

# the guide's net-tshoot-l8vwz endpoint: its container id hashes to the guide's lxc473b3117af85
GUIDE_ENDPOINT = objects.guide_endpoint()
GUIDE_CONTAINER_ID = GUIDE_ENDPOINT["status"]["external-identifiers"]["container-id"]


def lxc_name(endpoint_id: str) -> str:
    """Cilium's connector.Endpoint2IfName."""
    return "lxc" + hashlib.sha256(endpoint_id.encode()).hexdigest()[:12]


def endpoint(name: str, container_id: str, endpoint_id: int) -> dict:
    """A CiliumEndpoint as Cilium >= 1.15 writes it (with the CNI attachment id)."""
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint",
            "metadata": {"name": name, "namespace": "default"},
            "status": {"external-identifiers": {"cni-attachment-id": f"{container_id}:eth0",
                                                "container-id": container_id, "k8s-namespace": "default",
                                                "k8s-pod-name": name, "pod-name": f"default/{name}"},
                       "id": endpoint_id, "networking": {"addressing": [{"ipv4": "10.0.0.77"}], "node": "172.18.0.5"},
                       "state": "ready"}}


@dataclass
class Node:
    ns: str              # the node's network namespace
    pods: dict           # pod namespace name -> node-side lxc name
    endpoints: list      # the CiliumEndpoints of those pods (the guide's for the first)
    world: str
    bpffs: Path
    pins: Path

    def run(self, *argv: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True, check=check,
                              env={**os.environ, "TC_BPF_MNT": str(self.bpffs), **(env or {})})

    def bpftool_json(self, *args: str):
        return json.loads(self.run("bpftool", "-j", *args).stdout)

    def ifindex(self, name: str) -> int:
        return json.loads(self.run("ip", "-j", "link", "show", "dev", name).stdout)[0]["ifindex"]

    def prog_id(self, pin: str) -> int:
        return json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "pinned", str(self.pins / pin)],
                                         capture_output=True, text=True, check=True).stdout)["id"]


def ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


def build(tag: str, bpffs: Path, objects: dict[str, Path], created: list[str]) -> Node:
    """The node above. Each namespace is added to `created` as soon as it exists: the caller deletes
    them (destroy) and unmounts the bpffs, also when building fails half-way."""
    suffix = uuid.uuid4().hex[:6]
    pod1, pod2, node_ns, world = (f"{tag}-{n}-{suffix}" for n in ("pod1", "pod2", "node", "world"))
    second = endpoint("net-tshoot-x7k2p", uuid.uuid4().hex + uuid.uuid4().hex, 1234)
    lxc1 = lxc_name(GUIDE_CONTAINER_ID)                                         # tc, like Cilium 1.9 (the guide)
    lxc2 = lxc_name(second["status"]["external-identifiers"]["cni-attachment-id"])  # tcx link, Cilium >= 1.16
    node = Node(ns=node_ns, pods={pod1: lxc1, pod2: lxc2}, endpoints=[GUIDE_ENDPOINT, second], world=world,
                bpffs=bpffs, pins=bpffs / "progs")
    for name in (node_ns, pod1, pod2, world):
        ip("netns", "add", name)
        created.append(name)
    for pod, lxc in node.pods.items():
        ip("-n", node_ns, "link", "add", lxc, "type", "veth", "peer", "name", "eth0", "netns", pod)
        ip("-n", pod, "link", "set", "eth0", "up")
        ip("-n", node_ns, "link", "set", lxc, "up")
    ip("-n", node_ns, "link", "add", "lxc_health", "type", "veth", "peer", "name", "health0")
    ip("-n", node_ns, "link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net")
    ip("-n", node_ns, "link", "add", "cilium_vxlan", "type", "vxlan", "external")
    ip("-n", node_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", world)
    for dev in ("lxc_health", "cilium_host", "cilium_net", "cilium_vxlan", "eth0"):
        ip("-n", node_ns, "link", "set", dev, "up")
    ip("-n", node_ns, "addr", "add", "172.18.0.5/16", "dev", "eth0")
    ip("-n", node_ns, "route", "add", "default", "via", "172.18.0.1", "dev", "eth0")

    # tc filters from objects and sections, as iproute2 (and Cilium 1.9) loads them
    for dev in (lxc1, "lxc_health", "cilium_host", "cilium_net", "cilium_vxlan"):
        node.run("tc", "qdisc", "add", "dev", dev, "clsact")
    datapath = str(objects["datapath"])
    for dev, direction, section in ((lxc1, "ingress", "from-container"), ("lxc_health", "ingress", "from-container"),
                                    ("cilium_host", "ingress", "to-host"), ("cilium_host", "egress", "from-host"),
                                    ("cilium_net", "ingress", "to-host"), ("cilium_vxlan", "ingress", "from-overlay"),
                                    ("cilium_vxlan", "egress", "to-overlay")):
        node.run("tc", "filter", "add", "dev", dev, direction, "bpf", "da", "obj", datapath, "sec", section)
    node.run("tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb")
    node.run("tc", "filter", "add", "dev", "eth0", "parent", "1:", "bpf", "obj", str(objects["foreign"]), "sec", "tc")
    node.run("ip", "link", "set", "dev", "eth0", "xdpgeneric", "obj", datapath, "sec", "xdp")

    # tcx: links pinned in bpffs (Cilium >= 1.16), and one attachment without a link
    node.pins.mkdir()
    for name, obj in (("datapath", "datapath"), ("hooks", "hooks")):
        subprocess.run(["bpftool", "prog", "loadall", str(objects[obj]), str(node.pins / name), "type", "classifier"],
                       check=True, capture_output=True)
    subprocess.run(["bpftool", "prog", "loadall", str(objects["flow_dissector"]), str(node.pins / "flow")],
                   check=True, capture_output=True)
    (bpffs / "links").mkdir()
    for prog, dev, direction in (("hooks/cil_from_netdev", "eth0", "ingress"), ("datapath/cil_to_netdev", "eth0", "egress"),
                                 ("datapath/cil_from_container", lxc2, "ingress"),
                                 ("datapath/cil_to_container", lxc2, "egress")):
        bpfattach.tcx_link(node.pins / prog, dev, direction, bpffs / "links" / f"{dev}-{direction}", netns=node_ns)
    bpfattach.tcx_attach(node.pins / "datapath/cil_from_host", "cilium_net", "egress", netns=node_ns)
    node.run("bpftool", "prog", "attach", "pinned", str(node.pins / "flow/flow_dissect"), "flow_dissector")
    return node


def destroy(created: list[str]) -> None:
    for name in created:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
