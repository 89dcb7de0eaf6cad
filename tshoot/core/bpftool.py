"""Reading what bpftool prints: hex typed by a user, and `bpftool map lookup/dump` output (text or -j).

One home for this, because bytes reach tshoot this way from three places: the command line, a pipe
(`bpftool map lookup … | tshoot decode ipcache -`), and bpftool run inside a Cilium agent.
"""

from __future__ import annotations

from tshoot.core.errors import TshootError, UsageError


def parse_hex(text: str, what: str = "bytes") -> bytes:
    """'40 00 00 00', '0x40 0x00', '40000000', '4000 0000', '40:00' -> bytes; UsageError naming the accepted forms."""
    tokens = []
    for token in text.replace(",", " ").replace(":", " ").split():
        digits = token[2:] if token.lower().startswith("0x") else token
        if len(digits) > 2 and len(digits) % 2:
            raise UsageError(f"{what}: {token!r} has an odd count of hex digits (expected whole bytes, e.g. 40 00 00 00)")
        tokens += [digits] if len(digits) <= 2 else [digits[i : i + 2] for i in range(0, len(digits), 2)]
    try:
        return bytes(int(t, 16) for t in tokens)
    except ValueError:
        raise UsageError(f"{what}: {text.strip()!r} is not hex bytes (expected e.g. '40 00 00 00' or 40000000)") from None


def parse_output(text: str) -> list[tuple[bytes | None, bytes | None]]:
    """Entries (key, value) from bpftool's text or JSON output of `map lookup`, `map dump` or `map getnext`."""
    stripped = text.strip()
    if not stripped:
        raise UsageError("nothing on standard input (pipe bpftool's output, e.g. bpftool map lookup … | tshoot decode ipcache -)")
    if stripped[0] in "[{":
        return _parse_json(stripped)
    return _parse_text(stripped)


def _parse_json(text: str) -> list[tuple[bytes | None, bytes | None]]:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"standard input is not bpftool JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise UsageError("standard input is not bpftool JSON (nested too deeply)") from None
    if data is None:  # `bpftool -j map lookup` of a missing key
        raise TshootError("bpftool: no entry for that key")
    if isinstance(data, dict):
        if "error" in data:
            raise TshootError(f"bpftool: {' '.join(str(data['error']).split())}")
        data = [data]
    if not isinstance(data, list):
        raise UsageError(f"standard input is JSON {type(data).__name__}, not bpftool's (bpftool -j prints an "
                         f"entry or a list of entries)")
    entries = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise UsageError(f"entry {n} on standard input is not a bpftool entry but JSON {type(item).__name__} "
                             f'(expected {{"key": [...], "value": [...]}})')
        # BTF's "formatted" is left to `tshoot map`; a per-CPU map's "values" are laid out as the kernel gives them.
        key, value = _json_bytes(item, "key", n), _json_bytes(item, "value", n)
        values = item.get("values")
        if isinstance(values, list):  # a per-CPU map: [{"cpu": 0, "value": [...]}, …]
            if not all(isinstance(v, dict) for v in values):
                raise UsageError(f'entry {n}: "values" is not a list of {{"cpu": N, "value": [...]}}')
            value = per_cpu_bytes([_json_bytes(v, "value", n) or b"" for v in values])
        if key is None and value is None:
            raise UsageError(f'entry {n} on standard input has neither "key" nor "value" bytes '
                             f'(expected bpftool -j output, e.g. {{"key": ["0x40", …], "value": [...]}})')
        entries.append((key, value))
    if not entries:
        raise UsageError("standard input holds no entries (an empty bpftool -j dump)")
    return entries


def per_cpu_bytes(values: list[bytes]) -> bytes:
    """Values printed one per CPU (bpftool's "values" list) laid out as the kernel gives them: each rounded up
    to 8 bytes."""
    return b"".join(v + bytes(-len(v) % 8) for v in values)


def _json_bytes(item: dict, name: str, n: int) -> bytes | None:
    """bpftool -j's byte list (["0x40", "0x00", …]) under `name`; None when the entry has none."""
    words = item.get(name)
    if words is None or (name == "value" and isinstance(words, dict)):  # a BTF-formatted value has no bytes here
        return None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise UsageError(f'entry {n}: "{name}" is not a list of hex bytes like ["0x40", "0x00"]')
    return parse_hex(" ".join(words), f'entry {n} "{name}"')


def _parse_text(text: str) -> list[tuple[bytes | None, bytes | None]]:
    entries: list[tuple[bytes | None, bytes | None]] = []
    current: dict[str, bytearray] = {}
    target = None
    for line in text.splitlines():
        # a per-CPU map prints "value (CPU 00): …" per CPU: one value, each CPU's part rounded up to 8 bytes
        if line.lstrip().startswith("value (CPU "):
            if "value" in current:
                current["value"] += bytes(-len(current["value"]) % 8)
            else:
                current["value"] = bytearray()
            line = line.split("):", 1)[1]
            target = "value"
        words = line.split()
        if words and words[0] == "Error:":
            raise TshootError("bpftool: " + line.split(":", 1)[1].strip())
        if words[:1] == ["Found"]:
            continue
        if line.strip() in ("Not found", "<no entry>"):  # bpftool 7's answer to a lookup that misses
            raise TshootError("bpftool: no entry for that key")
        for word in words:
            if word in ("key:", "value:"):
                target = word[:-1]
                if target == "key" and current:
                    entries.append((_opt(current, "key"), _opt(current, "value")))
                    current = {}
                current[target] = bytearray()
            elif target and len(word) == 2:
                try:
                    current[target].append(int(word, 16))
                except ValueError:
                    raise UsageError(f"cannot read bpftool output: {word!r} in {line.strip()!r} is not a hex byte") from None
    if current:
        entries.append((_opt(current, "key"), _opt(current, "value")))
    if not entries:
        raise UsageError("no 'key:' or 'value:' found on standard input (expected bpftool map lookup/dump output)")
    return entries


def _opt(entry: dict[str, bytearray], name: str) -> bytes | None:
    return bytes(entry[name]) if name in entry else None


# Every hex digit bpftool prints ("0x%02hhx") read as one symbol: two entries of a dump print the same skeleton
# exactly when their texts are equal after this translation.
_SKELETON = bytes.maketrans(b"0123456789abcdef", b"h" * 16)
_ENOENT = "No such file or directory"  # strerror(ENOENT), as bpftool prints it


class DumpStream:
    """`bpftool -j map dump` read as it arrives (feed() each chunk of the exec stream, then finish()): every
    entry's key and value bytes kept, its JSON dropped once read. A 512k-entry conntrack map is ~270 MB of
    JSON text, and parsed whole into Python lists it would take gigabytes; read this way it takes its bytes.

    Entries are {"key": ["0x0a", …], "value": [...]} or, per-CPU, {"key": …, "values": [{"cpu": 0, "value":
    […]}, …]} (the values of every CPU kept one after the other, as per_cpu_bytes lays them out); other members
    (bpftool's "formatted" view of a map with BTF) are ignored. An entry whose value bpftool could not read
    ("value": {"error": …}, bpftool's map.c print_entry_error) is left out when it is gone (ENOENT: an LRU or
    the agent's GC deleted it between bpftool's key walk and its lookup, `gone` counts them) and is an error
    otherwise. A top-level object instead of the list ({"error": …}) is kept whole in `answer` for the caller
    to report.

    bpftool writes the entries of a map without BTF in one fixed shape: each entry the same text save its hex
    digits. Once one entry has been read as JSON, the entries that follow are read by that shape: a run of
    them is checked at once (bytes.translate maps every hex digit to one symbol, and the run must then equal
    the shape repeated) and their digits are taken column by column (a slice with a step per digit of an
    entry), so the cost is a few passes over the text at C speed instead of a JSON object per entry. Anything
    else (the first entry, BTF's "formatted", an error, the end) is read as JSON."""

    BATCH = 1 << 20  # text read per pass: big enough for the column slices to be cheap, whatever the frame size

    def __init__(self):
        import json

        self.keys, self.values = bytearray(), bytearray()
        self.count, self.gone, self.answer = 0, 0, None
        self.by_shape = 0  # entries read by the shape of an earlier one (the others: as JSON)
        self._pending = bytearray()
        self._started, self._ended = False, False
        self._decode = json.JSONDecoder().raw_decode
        self._shape: _Shape | None = None

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        if len(self._pending) >= self.BATCH:
            self._parse(final=False)

    def finish(self) -> None:
        """After the last chunk: TshootError when the text was not a whole JSON list (cut, or not bpftool's)."""
        self._parse(final=True)
        rest = self._pending.decode("utf-8", "replace").strip()
        if rest or (self._started and not self._ended):
            raise TshootError(f"bpftool -j map dump: unreadable output near {rest[:80]!r}")

    def _parse(self, final: bool) -> None:
        import json

        buf, pos, size = self._pending, 0, len(self._pending)
        text, base = "", 0  # buf[base:] as text, made when JSON is read (latin-1: one character per byte)
        skeleton = None  # buf translated by _SKELETON, made when entries are read by shape
        while True:
            while pos < size and buf[pos] in b" \t\r\n,":
                pos += 1
            if pos >= size or self._ended:
                break
            if self._started and buf[pos] == 0x5D:  # "]"
                self._ended, pos = True, pos + 1
                continue
            if self._started and self._shape is not None:
                if skeleton is None:
                    skeleton = buf.translate(_SKELETON)
                read = self._shape.read(buf, skeleton, pos, self)
                if read:
                    pos += read
                    continue
                if not final and size - pos < self._shape.stride:
                    break  # an entry not followed by its separator yet: read by shape with the next chunk
            if not text or pos < base:
                text, base = buf[pos:].decode("latin-1"), pos
            if not self._started:
                if buf[pos] == 0x7B:  # "{": an answer, not a dump (bpftool's {"error": …})
                    try:
                        _, end = self._decode(text, pos - base)
                    except json.JSONDecodeError:
                        break  # not all here yet
                    self.answer = json.loads(bytes(buf[pos:base + end]).decode("utf-8", "replace"))
                    self._ended, pos = True, base + end
                    continue
                if buf[pos] != 0x5B:  # "["
                    break  # finish() reports it
                self._started, pos = True, pos + 1
                continue
            try:
                item, end = self._decode(text, pos - base)
            except json.JSONDecodeError:
                break  # the entry is cut by the text's end (finish() reports one cut for good)
            self._add(item, bytes(buf[pos:base + end]))
            pos = base + end
        del buf[:pos]

    def _add(self, item, entry: bytes) -> None:
        """One entry read as JSON (`entry`: its text); the first plain one gives the shape the next are read by."""
        if not isinstance(item, dict) or not isinstance(item.get("key"), list):
            raise TshootError(f"bpftool -j map dump: unreadable entry {entry[:80].decode('latin-1')!r}")
        value = item.get("value")
        if isinstance(value, dict) and "error" in value:
            if str(value["error"]) == _ENOENT:
                self.gone += 1
                return
            raise TshootError(f"bpftool map dump could not read the value of key {hex_list(item['key']).hex(' ')}: "
                              f"{value['error']}")
        try:
            key = hex_list(item["key"])
            if "values" in item:
                value = per_cpu_bytes([hex_list(per_cpu["value"]) for per_cpu in item["values"]])
            else:
                value = hex_list(value)
        except (TypeError, KeyError, ValueError):
            raise TshootError(f"bpftool -j map dump: unreadable entry {entry[:80].decode('latin-1')!r}") from None
        self.keys += key
        self.values += value
        self.count += 1
        if self._shape is None and "formatted" not in item:
            self._shape = _Shape.of(entry, key, value, len(item["values"]) if "values" in item else None)


class _Shape:
    """Where an entry's key and value digits sit in its text, for every entry printed like one seen first
    (DumpStream says why). Per-CPU values are laid out as per_cpu_bytes does: each CPU's padded to 8 bytes."""

    def __init__(self, entry: bytes, key_size: int, value_size: int, cpus: int | None, digits: list[int]):
        """cpus: how many CPUs a per-CPU map's entry has values for, None for other maps."""
        self.skeleton = entry.translate(_SKELETON) + b","
        self.stride, self.tokens = len(self.skeleton), len(digits)
        self.key_width = 2 * key_size
        per_cpu = value_size + (-value_size % 8 if cpus else 0)
        cpus = cpus or 1
        self.value_width = 2 * per_cpu * cpus
        # (column in the entry's text, column in the key's or value's hex) of every digit
        self.key_columns = [(at + d, 2 * i + d) for i, at in enumerate(digits[:key_size]) for d in (0, 1)]
        self.value_columns = [(at + d, 2 * (cpu * per_cpu + i) + d)
                              for cpu in range(cpus)
                              for i, at in enumerate(digits[key_size + cpu * value_size:key_size + (cpu + 1) * value_size])
                              for d in (0, 1)]

    @classmethod
    def of(cls, entry: bytes, key: bytes, value: bytes, cpus: int | None) -> "_Shape | None":
        """The shape of a plain entry (only "key" and "value"/"values" lists of hex bytes; cpus: as __init__),
        checked by reading the entry itself with it; None for any other."""
        import re

        digits = [m.start() + 3 for m in re.finditer(rb'"0x[0-9a-f]{2}"', entry)]
        value_size = (len(digits) - len(key)) // (cpus or 1)
        if cpus == 0 or len(digits) != len(key) + value_size * (cpus or 1):
            return None
        shape = cls(entry, len(key), value_size, cpus, digits)
        keys, values = bytearray(), bytearray()
        return shape if shape._take(entry, 1, keys, values) and (keys, values) == (key, value) else None

    def read(self, buf: bytearray, skeleton: bytearray, pos: int, stream: DumpStream) -> int:
        """Read the entries of this shape at buf[pos:] (`skeleton`: buf translated), as many as are whole and
        followed by their separator ("," or the list's "]"); the bytes read, up to the last one's separator
        (left to the caller), 0 when the first is not of this shape."""
        stride, body = self.stride, self.skeleton[:-1]
        count = (len(buf) - pos) // stride
        if not count:
            return 0
        end = pos + count * stride - 1  # the last entry's separator
        if buf[end] not in b",]" or skeleton[pos:end] != self.skeleton * (count - 1) + body:
            # the run stops at the first entry not of this shape, or after one followed by "]"
            whole = 0
            for at in range(pos, end + 1, stride):
                if skeleton[at:at + stride - 1] != body or buf[at + stride - 1] not in b",]":
                    break
                whole += 1
                if buf[at + stride - 1] == 0x5D:  # "]"
                    break
            count, end = whole, pos + whole * stride - 1
            if not count:
                return 0
        run = bytes(buf[pos:end])
        if not self._take(run, count, stream.keys, stream.values):
            return 0
        stream.count += count
        stream.by_shape += count
        return count * self.stride - 1

    def _take(self, run: bytes, count: int, keys: bytearray, values: bytearray) -> bool:
        """Append the keys and values of `count` entries of this shape (`run`: their text, separated); False, leaving them to JSON, when a digit is not one of a "0x.." byte (a symbol of the
        skeleton only says that it is a hex digit: the count of '"0x' says that each byte's prefix is one)."""
        import binascii

        if run.count(b'"0x') != count * self.tokens:
            return False
        for width, columns, out in ((self.key_width, self.key_columns, keys),
                                    (self.value_width, self.value_columns, values)):
            digits = bytearray(b"0" * (width * count))  # padding of per-CPU values stays 00
            for source, target in columns:
                digits[target::width] = run[source::self.stride]
            out += binascii.a2b_hex(digits)
        return True


def hex_list(items: list[str]) -> bytes:
    """bpftool -j bytes ["0x40", "0x00", …] -> bytes."""
    return bytes.fromhex("".join(items).replace("0x", ""))
