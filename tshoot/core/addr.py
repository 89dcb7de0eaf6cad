"""Addresses as users type them, parsed without the `ipaddress` module (it costs start-up time)."""

from __future__ import annotations

import _socket

from tshoot.core.errors import UsageError

IPV4, IPV6 = "ipv4", "ipv6"
_AF = {IPV4: _socket.AF_INET, IPV6: _socket.AF_INET6}
BITS = {IPV4: 32, IPV6: 128}
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132, "any": 0}
PROTOCOL_NAMES = {v: k.upper() for k, v in PROTOCOLS.items() if k != "any"}


def parse_ip(text: str) -> tuple[str, bytes]:
    """'10.0.1.110' -> ('ipv4', b'\\n\\x00\\x01n'); IPv6 likewise. UsageError when it is neither."""
    for family in (IPV4, IPV6) if ":" not in text else (IPV6,):
        try:
            return family, _socket.inet_pton(_AF[family], text)
        except (OSError, ValueError):
            pass
    raise UsageError(f"{text!r} is not an IP address (expected e.g. 10.0.1.110 or fd00::1)")


def parse_prefix(text: str) -> tuple[str, bytes, int]:
    """'10.0.0.0/8' -> ('ipv4', masked address bytes, 8); a bare address is a host prefix (/32, /128).

    Host bits beyond the prefix are cleared, as the agent stores them (netip.Prefix.Masked)."""
    address, slash, length = text.partition("/")
    family, raw = parse_ip(address)
    bits = BITS[family]
    if not slash:
        return family, raw, bits
    if not length.isdigit() or int(length) > bits:
        raise UsageError(
            f"{text!r}: prefix length must be 0 to {bits} for {'IPv4' if bits == 32 else 'IPv6'} "
            f"(expected e.g. {'10.0.0.0/8' if bits == 32 else 'fd00::/64'})"
        )
    plen = int(length)
    number = int.from_bytes(raw, "big") & (((1 << plen) - 1) << (bits - plen))
    return family, number.to_bytes(len(raw), "big"), plen


def in_prefix(ip: str, cidr: str) -> bool:
    """Whether the address lies in the prefix (same family, same leading bits); False for a malformed CIDR."""
    try:
        family, network, length = parse_prefix(cidr)
    except UsageError:
        return False
    return parse_ip(ip)[0] == family and parse_prefix(f"{ip}/{length}")[1] == network


def show_ip(raw: bytes) -> str:
    """Address bytes -> text, IPv6 in RFC 5952 form (inet_ntop would print '::1:0' as '::0.1.0.0')."""
    if len(raw) == 4:
        return _socket.inet_ntop(_socket.AF_INET, raw)
    groups = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 16, 2)]
    best_start, best_len, start = -1, 1, None
    for i, group in enumerate(groups + [1]):
        if group == 0 and start is None:
            start = i
        elif group != 0 and start is not None:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = None
    text = [f"{g:x}" for g in groups]
    if best_start >= 0:
        text[best_start : best_start + best_len] = [""]
        if best_start == 0:
            text.insert(0, "")
        if best_start + best_len == 8:
            text.append("")
    return ":".join(text)


def parse_protocol(text: str) -> int:
    """'tcp', 'UDP', '6' -> IP protocol number."""
    name = text.lower()
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    if name.isdigit() and int(name) < 256:
        return int(name)
    raise UsageError(f"unknown protocol {text!r} (expected tcp, udp, sctp, icmp, icmpv6, any or a number 0-255)")


def show_protocol(number: int) -> str:
    return PROTOCOL_NAMES.get(number, "ANY" if number == 0 else str(number))


def parse_endpoint(text: str, default_protocol: str | None = None) -> tuple[str, bytes, int, int | None]:
    """'10.32.0.10:53/udp', '[fd00::a]:443' -> (family, address bytes, port, protocol or None)."""
    spec, slash, proto = text.partition("/")
    if spec.startswith("["):
        address, _, port = spec[1:].partition("]:")
    else:
        address, colon, port = spec.rpartition(":")
        if not colon or ":" in address:
            address, port = "", ""
    if not address or not port.isdigit() or int(port) > 65535:
        raise UsageError(
            f"{text!r} is not ADDRESS:PORT[/PROTO] (expected e.g. 10.32.0.10:53/udp or [fd00::a]:443/tcp)"
        )
    family, raw = parse_ip(address)
    protocol = parse_protocol(proto) if slash else (parse_protocol(default_protocol) if default_protocol else None)
    return family, raw, int(port), protocol
