"""A two-node overlay in network namespaces for `tshoot trace`: each "node" has a "pod" behind a veth (the
pod's eth0, the node's lxc), both nodes are joined by an underlay veth (each node's eth0) and a VXLAN device
on Cilium's port 8472 whose VNI stands for the source's security identity, as Cilium's overlay carries it.

    pod A (eth0 10.X.1.10) ─ lxcA │ node A  vx (VNI) ── eth0 172.31.X.1 ═ eth0 172.31.X.2 ── vx │ node B │ lxcB ─ pod B (eth0 10.X.2.10)

Names are unique per instance (parallel helpers share the machine). Not Cilium's datapath (the routing is
the kernel's): what the tracer must see is the same set of hops, devices and headers.
"""

from __future__ import annotations

import random
import subprocess
import uuid

VNI = 53731  # the guide's pod identity: Cilium puts the source identity in the VNI
VXLAN_PORT = 8472


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class Overlay:
    """`x`, `hosts` and `node_ips` choose the addresses (pods 10.x.1.hostA and 10.x.2.hostB): the defaults
    are random; a test naming pods from a cluster gives the cluster's."""

    def __init__(self, x: int | None = None, hosts: tuple[int, int] = (10, 10),
                 node_ips: tuple[str, str] | None = None):
        tag = uuid.uuid4().hex[:6]
        self.x = random.randint(64, 250) if x is None else x
        self.ns = {name: f"kl{tag}-{name}" for name in ("nodeA", "nodeB", "podA", "podB")}
        self.pod_ip = {"A": f"10.{self.x}.1.{hosts[0]}", "B": f"10.{self.x}.2.{hosts[1]}"}
        self.gw_ip = {"A": f"10.{self.x}.1.1", "B": f"10.{self.x}.2.1"}
        a, b = node_ips or (f"172.31.{self.x}.1", f"172.31.{self.x}.2")
        self.node_ip = {"A": a, "B": b}
        self.lxc = {"A": f"lxc{tag}a", "B": f"lxc{tag}b"}
        self.vx = "vx" + tag
        self.created: list[str] = []

    def build(self) -> "Overlay":
        ns = self.ns
        for name in ns.values():
            run("ip", "netns", "add", name)
            self.created.append(name)
        run("ip", "link", "add", "eth0", "netns", ns["nodeA"], "type", "veth", "peer", "name", "eth0", "netns", ns["nodeB"])
        for side, other in (("A", "B"), ("B", "A")):
            node, pod = ns[f"node{side}"], ns[f"pod{side}"]
            for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                               ("net.ipv4.conf.default.rp_filter", "0")):
                run("ip", "netns", "exec", node, "sysctl", "-qw", f"{key}={value}")
            run("ip", "-n", node, "addr", "add", f"{self.node_ip[side]}/24", "dev", "eth0")
            run("ip", "-n", node, "link", "set", "eth0", "up")
            run("ip", "link", "add", self.lxc[side], "netns", node, "type", "veth", "peer", "name", "eth0", "netns", pod)
            run("ip", "-n", node, "addr", "add", f"{self.gw_ip[side]}/24", "dev", self.lxc[side])
            run("ip", "-n", node, "link", "set", self.lxc[side], "up")
            run("ip", "-n", pod, "addr", "add", f"{self.pod_ip[side]}/24", "dev", "eth0")
            run("ip", "-n", pod, "link", "set", "eth0", "up")
            run("ip", "-n", pod, "link", "set", "lo", "up")
            run("ip", "-n", pod, "route", "add", "default", "via", self.gw_ip[side])
            run("ip", "-n", node, "link", "add", self.vx, "type", "vxlan", "id", str(VNI), "dstport", str(VXLAN_PORT),
                "local", self.node_ip[side], "remote", self.node_ip[other], "dev", "eth0")
            run("ip", "-n", node, "addr", "add", f"10.{self.x}.100.{1 if side == 'A' else 2}/24", "dev", self.vx)
            run("ip", "-n", node, "link", "set", self.vx, "up")
            run("ip", "-n", node, "route", "add", f"10.{self.x}.{2 if side == 'A' else 1}.0/24",
                "via", f"10.{self.x}.100.{2 if side == 'A' else 1}", "dev", self.vx)
        return self

    def ping(self, source: str, target_ip: str, count: int = 1) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns[f"pod{source}"], "ping", "-c", str(count), "-W", "2",
                               "-i", "0.2", target_ip], capture_output=True, text=True)

    def destroy(self) -> None:
        for name in self.created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
