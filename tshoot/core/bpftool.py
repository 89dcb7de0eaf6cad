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


class DumpStream:
    """`bpftool -j map dump` read as it arrives (feed() each chunk of the exec stream, then finish()): every
    entry's key and value bytes kept, its JSON dropped once read. A 512k-entry conntrack map is ~270 MB of
    JSON text, and parsed whole into Python lists it would take gigabytes; read this way it takes its bytes.

    Entries are {"key": ["0x0a", …], "value": [...]} or, per-CPU, {"key": …, "values": [{"cpu": 0, "value":
    […]}, …]} (the values of every CPU kept one after the other, as per_cpu_bytes lays them out); other members (bpftool's "formatted" view
    of a map with BTF) are ignored. A top-level object instead of the list ({"error": …}) is kept whole in
    `answer` for the caller to report."""

    def __init__(self):
        import codecs
        import json

        self.keys, self.values = bytearray(), bytearray()
        self.count, self.answer = 0, None
        self._text, self._started, self._ended = "", False, False
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._decode = json.JSONDecoder().raw_decode

    def feed(self, chunk: bytes) -> None:
        self._text += self._utf8.decode(chunk)
        self._parse(final=False)

    def finish(self) -> None:
        """After the last chunk: TshootError when the text was not a whole JSON list (cut, or not bpftool's)."""
        self._text += self._utf8.decode(b"", final=True)
        self._parse(final=True)
        if self._text.strip() or (self._started and not self._ended):
            raise TshootError(f"bpftool -j map dump: unreadable output near {self._text.strip()[:80]!r}")

    def _parse(self, final: bool) -> None:
        import json

        text, pos, size = self._text, 0, len(self._text)
        while True:
            while pos < size and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= size or self._ended:
                break
            if not self._started:
                if text[pos] == "{":  # an answer, not a dump: bpftool's {"error": …}
                    try:
                        self.answer, pos = self._decode(text, pos)
                    except json.JSONDecodeError:
                        break  # not all here yet
                    self._ended = True
                    continue
                if text[pos] != "[":
                    break  # finish() reports it
                self._started, pos = True, pos + 1
                continue
            if text[pos] == "]":
                self._ended, pos = True, pos + 1
                continue
            try:
                item, end = self._decode(text, pos)
            except json.JSONDecodeError:
                break  # the entry is cut by the chunk's end (finish() reports one cut for good)
            self._add(item)
            pos = end
        self._text = text[pos:]

    def _add(self, item: dict) -> None:
        self.keys += hex_list(item["key"])
        if "values" in item:
            self.values += per_cpu_bytes([hex_list(per_cpu["value"]) for per_cpu in item["values"]])
        else:
            self.values += hex_list(item["value"])
        self.count += 1


def hex_list(items: list[str]) -> bytes:
    """bpftool -j bytes ["0x40", "0x00", …] -> bytes."""
    return bytes.fromhex("".join(items).replace("0x", ""))
