"""C struct layouts as data: where each member of a Cilium map key or value sits, and how it is encoded.

A Layout mirrors one C struct exactly as the BPF compiler lays it out (offsets, sizes, bitfields,
union members overlapping). It knows nothing about what the fields mean; each map module
(tshoot/maps/<map>.py) turns raw fields into the names users see. Kept free of heavy imports:
`tshoot key` and `tshoot decode` load this on every run.
"""

from __future__ import annotations

from tshoot.core.addr import show_ip

# Field kinds: how the bytes of a member are read.
U = "u"  # unsigned integer, host order (little-endian on x86_64/arm64)
BE = "be"  # unsigned integer, network order (ports, rev-NAT indexes)
IP4 = "ip4"  # 4 address bytes in network order
IP6 = "ip6"  # 16 address bytes
MAC = "mac"  # mac_t: a u64 holding the 6 wire-order bytes, then 2 zero bytes
PAD = "pad"  # padding or reserved bytes, expected zero
KINDS = (U, BE, IP4, IP6, MAC, PAD)


class Field:
    """One C member: `name` is its C path ("lpm_key.prefixlen"), `bits` = (low bit, width) for bitfields."""

    __slots__ = ("name", "offset", "size", "kind", "bits")

    def __init__(self, name: str, offset: int, size: int, kind: str = U, bits: tuple[int, int] | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown field kind {kind!r}")
        self.name, self.offset, self.size, self.kind, self.bits = name, offset, size, kind, bits

    @property
    def end(self) -> int:
        return self.offset + self.size

    def read(self, data: bytes) -> int | bytes:
        raw = data[self.offset : self.end]
        if self.kind in (U, BE):
            value = int.from_bytes(raw, "little" if self.kind == U else "big")
            if self.bits:
                low, width = self.bits
                value = (value >> low) & ((1 << width) - 1)
            return value
        return bytes(raw)

    def write(self, buf: bytearray, value: int | bytes) -> None:
        if self.kind in (U, BE):
            order = "little" if self.kind == U else "big"
            if self.bits:
                low, width = self.bits
                if not 0 <= value < (1 << width):
                    raise ValueError(f"{self.name} holds {width} bits, {value} does not fit")
                current = int.from_bytes(buf[self.offset : self.end], order)
                current &= ~(((1 << width) - 1) << low)
                value = current | (value << low)
            elif not 0 <= value < (1 << (8 * self.size)):
                raise ValueError(f"{self.name} is {self.size} bytes, {value} does not fit")
            buf[self.offset : self.end] = value.to_bytes(self.size, order)
        else:
            if len(value) != self.size:
                raise ValueError(f"{self.name} takes {self.size} bytes, got {len(value)}")
            buf[self.offset : self.end] = value

    def show(self, value: int | bytes) -> str:
        """The value as a person reads it, for tables and annotated hex."""
        if self.kind in (IP4, IP6):
            return show_ip(value)
        if self.kind == MAC:
            return format_mac(value)
        if self.kind == PAD:
            return "0" if not any(value) else value.hex(" ")
        return str(value)


class Layout:
    """A C struct: its name, sizeof, and members (union members overlap)."""

    def __init__(self, c_name: str, size: int, fields: list[Field]):
        self.c_name, self.size, self.fields = c_name, size, fields
        self.by_name = {f.name: f for f in fields}
        for f in fields:
            if f.end > size:
                raise ValueError(f"{c_name}.{f.name} ends at {f.end}, past sizeof {size}")

    def __repr__(self) -> str:
        return f"Layout({self.c_name}, {self.size})"

    def unpack(self, data: bytes) -> dict[str, int | bytes]:
        if len(data) != self.size:
            raise ValueError(f"struct {self.c_name} is {self.size} bytes, got {len(data)}")
        return {f.name: f.read(data) for f in self.fields}

    @property
    def scalar(self) -> bool:
        """A plain integer type (c_name "__u16", "__u32": the backends and rev-NAT keys), not a struct."""
        return self.c_name.startswith("__")

    @property
    def c_type(self) -> str:
        return self.c_name if self.scalar else f"struct {self.c_name}"

    def bit_positions(self) -> dict[str, tuple[int, int]]:
        """Each member's (bit offset, bit size), named as BTF names them (tshoot.core.btf.BTFStruct.members).

        A scalar layout is one unnamed member, as in BTF."""
        if self.scalar:
            return {"": (0, 8 * self.size)}
        return {f.name: (8 * f.offset + f.bits[0], f.bits[1]) if f.bits else (8 * f.offset, 8 * f.size)
                for f in self.fields}

    def pack(self, values: dict[str, int | bytes]) -> bytes:
        """Bytes with the given members set and everything else zero, as `struct x k = {...}` in C."""
        buf = bytearray(self.size)
        for name, value in values.items():
            self.by_name[name].write(buf, value)
        return bytes(buf)


def format_mac(value: bytes) -> str:
    """mac_t bytes (wire order in the low 6 bytes) -> 'aa:bb:cc:dd:ee:ff'."""
    return ":".join(f"{b:02x}" for b in value[:6])


def parse_mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"{text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return bytes(int(p, 16) for p in parts) + b"\0\0"


def flag_names(value: int, names: dict[int, str]) -> list[str]:
    """The names of the set bits of `value`, lowest first; unnamed bits as 'bitN'."""
    out = []
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            out.append(names.get(1 << bit, f"bit{bit}"))
        bit += 1
    return out


def flag_value(names: list[str], table: dict[int, str]) -> int:
    lookup = {v: k for k, v in table.items()}
    value = 0
    for name in names:
        if name in lookup:
            value |= lookup[name]
        elif name.startswith("bit") and name[3:].isdigit():
            value |= 1 << int(name[3:])
        else:
            raise ValueError(f"unknown flag {name!r} (known: {', '.join(table.values())})")
    return value
