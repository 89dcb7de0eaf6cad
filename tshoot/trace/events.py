"""The tracer's records (struct event of bpf/trace.bpf.c) as events people read: where (node, pod or netns,
device), what happened there, the packet, and for a drop why (the kernel's reason, where it was freed).

What happened, from the tracepoint and the device:
  received      netif_receive_skb on a device           decapsulated  the same on a VXLAN device (the inner packet)
  transmitted   net_dev_start_xmit on a device          encapsulated  the same, of a VXLAN packet (outer, VNI, inner)
  redirected    the same, of a packet a BPF program sent to the device (bpf_redirect: skb->redirected), not
                the stack's routing, as Cilium delivers to a pod's lxc or to cilium_vxlan (the kernel keeps the
                bit until the next receive, so a VXLAN packet out of eth0 after it is "encapsulated" and
                carries "redirected": true in JSON)
  (a packet transmitted on a collect_md VXLAN device, as Cilium's cilium_vxlan, shows the tunnel key it
  carries there: the VNI and the remote node it is about to be encapsulated for)
  dropped       kfree_skb with a drop reason
"""

from __future__ import annotations

import bisect
import socket
import struct

# struct event (trace.bpf.c): ts, skb, location, netns, ifindex, reason, len, vni, kind, tunnel, pad,
# dev[16], dev_kind[8], then two struct packet (saddr, daddr, sport, dport (network order), proto, pad[3]),
# tunnel_remote, redirected, pad2[3].
RECORD = struct.Struct("<QQQIIIIIBBxx16s8s4s4s2s2sB3x4s4s2s2sB3x4sB3x")
VXLAN_PACKET, TUNNEL_KEY = 1, 2  # struct event's tunnel
RECEIVE, TRANSMIT, DROP = 1, 2, 3
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}


class Packet:
    __slots__ = ("saddr", "daddr", "sport", "dport", "proto")

    def __init__(self, saddr: bytes, daddr: bytes, sport: bytes, dport: bytes, proto: int):
        self.saddr, self.daddr = socket.inet_ntoa(saddr), socket.inet_ntoa(daddr)
        self.sport, self.dport = int.from_bytes(sport, "big"), int.from_bytes(dport, "big")
        self.proto = proto

    def as_dict(self) -> dict:
        out = {"src": self.saddr, "dst": self.daddr, "proto": PROTOCOL_NAMES.get(self.proto, self.proto)}
        if self.proto in (6, 17):
            out |= {"sport": self.sport, "dport": self.dport}
        elif self.proto == 1:  # the first two bytes of ICMP: type and code
            out |= {"icmp_type": self.sport >> 8, "icmp_code": self.sport & 0xFF}
        return out

    def show(self) -> str:
        if self.proto in (6, 17):
            return f"{self.saddr}:{self.sport} > {self.daddr}:{self.dport} {PROTOCOL_NAMES[self.proto]}"
        if self.proto == 1:
            return f"{self.saddr} > {self.daddr} icmp type {self.sport >> 8} code {self.sport & 0xFF}"
        return f"{self.saddr} > {self.daddr} proto {self.proto}"


class Event:
    __slots__ = ("ts", "skb", "location", "netns", "ifindex", "reason", "len", "vni", "kind", "device",
                 "device_kind", "outer", "inner", "tunnel_key", "redirected", "where", "node", "drop", "names")

    def __init__(self, data: bytes):
        (self.ts, self.skb, self.location, self.netns, self.ifindex, self.reason, self.len, self.vni, self.kind,
         tunnel, dev, dev_kind, *packets, remote, redirected) = RECORD.unpack(data)
        self.device = dev.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.device_kind = dev_kind.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.outer = Packet(*packets[:5])
        self.inner = Packet(*packets[5:]) if tunnel == VXLAN_PACKET else None
        # the VNI and remote node a VXLAN device is about to encapsulate the packet with
        self.tunnel_key = {"vni": self.vni, "remote": socket.inet_ntoa(remote)} if tunnel == TUNNEL_KEY else None
        self.redirected = bool(redirected)
        self.where: dict = {}
        self.node: str | None = None
        self.drop: dict | None = None
        self.names: dict = {}  # from the cluster: {"src": pod or node, "dst": …, "outer_src": node, "identity": labels}

    @property
    def packet(self) -> Packet:
        """The packet itself: a VXLAN packet's inner one."""
        return self.inner or self.outer

    @property
    def what(self) -> str:
        if self.kind == DROP:
            return "dropped"
        if self.kind == RECEIVE:
            return "decapsulated" if self.device_kind == "vxlan" else "received"
        # A VXLAN packet is "encapsulated" even with skb->redirected set: the kernel keeps the bit through
        # the VXLAN device's encapsulation, so the eth0 hop after a redirect to cilium_vxlan has it although
        # the stack routed the outer packet there; the tunnel is what the reader follows (JSON keeps
        # "redirected"). The hop Cilium's from-container redirects INTO cilium_vxlan is not encapsulated yet
        # (it carries a tunnel key): it is "redirected", and "encapsulated" the next one, out of eth0.
        if self.inner:
            return "encapsulated"
        return "redirected" if self.redirected else "transmitted"

    def as_dict(self, start_ns: int) -> dict:
        out = {"time": round((self.ts - start_ns) / 1e9, 6), "where": self.where.get("name"),
               "node": self.where.get("node"), "netns": self.netns, "device": self.device or None,
               "device_kind": self.device_kind or None, "ifindex": self.ifindex, "event": self.what,
               "packet": self.packet.as_dict(), "len": self.len, "skb": f"{self.skb:#x}"}
        if self.inner:
            out["outer"] = {**self.outer.as_dict(), "vni": self.vni}
        if self.tunnel_key:
            out["tunnel_key"] = self.tunnel_key
        if self.redirected:
            out["redirected"] = True
        if self.drop is not None:
            out["drop"] = self.drop
        if self.names:
            out["names"] = self.names
        return out

    def show(self, start_ns: int) -> str:
        where = self.where.get("name", f"netns:{self.netns}")
        if self.names.get("pod"):
            where = f"{where} ({self.names['pod']})"
        device = self.device or "-"
        line = f"{(self.ts - start_ns) / 1e9:9.6f} {where:<24} {device:<15} {self.what:<12} {self.packet.show()}"
        if self.names.get("src") or self.names.get("dst"):
            line += f"  ({self.names.get('src') or '?'} > {self.names.get('dst') or '?'})"
        if self.inner:
            line += f"  [outer {self.outer.saddr} > {self.outer.daddr} udp/{self.outer.dport} vni {self.vni}"
            identity = self.names.get("identity")
            line += f" = identity {','.join(identity)}]" if identity else "]"
        if self.tunnel_key:
            line += f"  [tunnel key vni {self.vni} to {self.tunnel_key['remote']}"
            identity = self.names.get("identity")
            line += f" = identity {','.join(identity)}]" if identity else "]"
        if self.drop is not None:
            line += f"  reason {self.drop['reason']} at {self.drop['location']}"
            if "normal" in self.drop:
                line += f" (normal: {self.drop['normal']})"
            program = self.drop.get("program")
            if program:
                line += f" by {program['hook']} {program['direction']} program {program['name']} (id {program['id']}) " \
                        f"on {program['interface']}"
        return line


class Symbols:
    """Kernel text addresses -> 'function+0xoff' from /proc/kallsyms (read on the first drop)."""

    def __init__(self, path: str = "/proc/kallsyms"):
        self.path = path
        self._addresses: list[int] | None = None
        self._names: list[str] = []

    def _load(self) -> None:
        rows = []
        try:
            with open(self.path) as f:
                for line in f:
                    address, kind, name = line.split()[:3]
                    if kind in "tT":
                        rows.append((int(address, 16), name))
        except OSError:
            pass
        rows.sort()
        self._addresses, self._names = [a for a, _ in rows], [n for _, n in rows]

    def name(self, address: int) -> str:
        if self._addresses is None:
            self._load()
        i = bisect.bisect_right(self._addresses, address) - 1
        if i < 0 or not self._addresses[i]:
            return f"{address:#x}"
        return f"{self._names[i]}+{address - self._addresses[i]:#x}"
