"""Which packets `tshoot trace` shows: pcap-style expressions for the common primitives, parsed here.

    host ADDR | src host ADDR | dst host ADDR | net CIDR | [src|dst] port N | proto NAME | tcp | udp | icmp
    joined with and / or / not (&&, ||, !) and parentheses; "and" binds tighter than "or", as in pcap.

A VXLAN packet matches when its outer or its inner packet does for addresses (the overlay hop of a pod's
packet is that packet), and by its inner packet for protocol and ports. The kernel side (trace.bpf.c) only
pre-filters: `prefilter()` gives the addresses one of which every match must involve, and a protocol and
port every match must have, when the expression says so; this module decides.
"""

from __future__ import annotations

import ipaddress

from tshoot.core.errors import UsageError

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}


class Node:
    """One term: op in (and, or, not, host, net, port, proto); `where` src/dst/None."""

    def __init__(self, op: str, *args, where: str | None = None):
        self.op, self.args, self.where = op, args, where

    def __repr__(self) -> str:
        return f"{self.op}{'[' + self.where + ']' if self.where else ''}{self.args}"


def parse(text: str) -> Node | None:
    """The expression's tree; None for an empty one (everything). UsageError naming the problem."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").replace("&&", " and ").replace("||", " or ") \
        .replace("!", " not ").split()
    if not tokens:
        return None
    parser = _Parser(tokens)
    node = parser.expr()
    if parser.pos != len(tokens):
        raise UsageError(f"filter {text!r}: unexpected {tokens[parser.pos]!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos].lower() if self.pos < len(self.tokens) else None

    def take(self, what: str) -> str:
        if self.pos >= len(self.tokens):
            raise UsageError(f"filter ends where {what} was expected")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expr(self) -> Node:
        node = self.conj()
        while self.peek() == "or":
            self.pos += 1
            node = Node("or", node, self.conj())
        return node

    def conj(self) -> Node:
        node = self.unary()
        while self.peek() == "and":
            self.pos += 1
            node = Node("and", node, self.unary())
        return node

    def unary(self) -> Node:
        word = self.peek()
        if word == "not":
            self.pos += 1
            return Node("not", self.unary())
        if word == "(":
            self.pos += 1
            node = self.expr()
            if self.take("')'") != ")":
                raise UsageError("filter: missing ')'")
            return node
        return self.primitive()

    def primitive(self) -> Node:
        word = self.take("a primitive (host, net, port, proto, tcp, udp, icmp)").lower()
        where = None
        if word in ("src", "dst"):
            where, word = word, self.take("host, net or port after " + word).lower()
        if word == "host":
            return Node("host", _address(self.take("an address")), where=where)
        if word == "net":
            text = self.take("a CIDR")
            try:
                return Node("net", ipaddress.IPv4Network(text, strict=False), where=where)
            except ValueError:
                raise UsageError(f"filter: {text!r} is not an IPv4 network (e.g. 10.0.1.0/24)") from None
        if word == "port":
            return Node("port", _port(self.take("a port")), where=where)
        if where:
            raise UsageError(f"filter: {where} goes with host, net or port, not {word!r}")
        if word in ("proto", "ip"):
            if word == "ip" and self.peek() != "proto":
                return Node("proto", None)  # "ip": every IPv4 packet
            if word == "ip":
                self.pos += 1
            return Node("proto", protocol(self.take("a protocol")))
        if word in PROTOCOLS:
            return Node("proto", PROTOCOLS[word])
        raise UsageError(f"filter: unknown primitive {word!r} (host, net, port, proto, tcp, udp, icmp, and, or, not)")


def protocol(text: str) -> int:
    if text.lower() in PROTOCOLS:
        return PROTOCOLS[text.lower()]
    if text.isdigit() and int(text) < 256:
        return int(text)
    raise UsageError(f"unknown protocol {text!r} (tcp, udp, icmp or a number)")


def _address(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise UsageError(f"filter: {text!r} is not an IPv4 address (tshoot trace follows IPv4)") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"filter: {text!r} is not a port (1-65535)")
    return int(text)


# --- evaluation --------------------------------------------------------------------------------------------
def matches(node: Node | None, event) -> bool:
    """Whether a trace event (tshoot.trace.events.Event) matches."""
    if node is None:
        return True
    op = node.op
    if op == "and":
        return matches(node.args[0], event) and matches(node.args[1], event)
    if op == "or":
        return matches(node.args[0], event) or matches(node.args[1], event)
    if op == "not":
        return not matches(node.args[0], event)
    packets = [event.outer, event.inner] if event.inner else [event.outer]
    if op == "host":
        return any(_at(p, node.where, lambda a: a == node.args[0]) for p in packets)
    if op == "net":
        return any(_at(p, node.where, lambda a: ipaddress.IPv4Address(a) in node.args[0]) for p in packets)
    packet = event.inner or event.outer
    if op == "port":
        if packet.proto not in (6, 17):
            return False
        ports = {"src": [packet.sport], "dst": [packet.dport]}.get(node.where, [packet.sport, packet.dport])
        return node.args[0] in ports
    if op == "proto":
        return node.args[0] is None or packet.proto == node.args[0]
    raise ValueError(op)


def _at(packet, where: str | None, test) -> bool:
    if where == "src":
        return test(packet.saddr)
    if where == "dst":
        return test(packet.daddr)
    return test(packet.saddr) or test(packet.daddr)


def prefilter(node: Node | None) -> tuple[list[str], int, int]:
    """(addresses, protocol, port) the kernel may require: every match involves one of the addresses
    ([] = no such set), has that protocol (0 = any) and that port as source or destination (0 = any)."""
    if node is None:
        return [], 0, 0
    if node.op == "and":
        a1, p1, o1 = prefilter(node.args[0])
        a2, p2, o2 = prefilter(node.args[1])
        addresses = a1 if a1 and (not a2 or len(a1) <= len(a2)) else a2
        return addresses, p1 or p2, o1 or o2
    if node.op == "or":
        a1, p1, o1 = prefilter(node.args[0])
        a2, p2, o2 = prefilter(node.args[1])
        addresses = a1 + [a for a in a2 if a not in a1] if a1 and a2 else []
        return addresses, p1 if p1 == p2 else 0, o1 if o1 == o2 else 0
    if node.op == "host":
        return [node.args[0]], 0, 0
    if node.op == "proto" and node.args[0] is not None:
        return [], node.args[0], 0
    if node.op == "port":
        return [], 0, node.args[0]
    return [], 0, 0  # not, net: the kernel cannot narrow them down safely


def combine(*terms: str | None) -> str:
    """Several expressions that must all hold (the --from/--to/--proto/--port options and a FILTER)."""
    present = [t for t in terms if t]
    return " and ".join(f"({t})" for t in present)
