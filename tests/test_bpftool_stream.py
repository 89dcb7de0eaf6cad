"""tshoot.core.bpftool.DumpStream: `bpftool -j map dump` read as it arrives over an exec stream, cut anywhere,
gives the same entries as the whole text parsed at once as JSON, for plain, per-CPU and BTF-carrying maps;
entries after the first are read by its shape (not as JSON) where bpftool prints them alike, and an entry
that is not quite alike is never misread. An error answer, entries bpftool could not read, a cut stream and
trailing junk are told apart. The dumps are real bpftool's, of real maps in a private bpffs."""

import json
import subprocess

import pytest

from tests.conftest import bpftool
from tests.pinned import create, fill, oracle_maps
from tshoot.core.bpftool import DumpStream, hex_list, per_cpu_bytes
from tshoot.core.errors import TshootError


def _dump(path) -> bytes:
    return subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)], capture_output=True,
                          check=True).stdout


def _streamed(text: bytes, size: int, batch: int = 1) -> DumpStream:
    """The text fed `size` bytes at a time; `batch`: read once that much is waiting (1: at every chunk)."""
    stream = DumpStream()
    stream.BATCH = batch
    for start in range(0, len(text), size):
        stream.feed(text[start:start + size])
    stream.finish()
    return stream


def _as_json(text: bytes) -> tuple[bytes, bytes]:
    """Every entry's key and value bytes, the dump parsed whole with json (per-CPU values as the kernel lays
    them out): what a DumpStream must give."""
    whole = json.loads(text)
    keys = b"".join(hex_list(e["key"]) for e in whole)
    values = b"".join(per_cpu_bytes([hex_list(v["value"]) for v in e["values"]]) if "values" in e
                      else hex_list(e["value"]) for e in whole)
    return keys, values


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("batch", [1, DumpStream.BATCH])
def test_a_dump_cut_anywhere_reads_as_the_whole(bpffs, size, batch):
    path = create(bpffs, "kl_stream_hash", "hash", 6, 10, 256)
    fill(path, [(bytes([i, 0, 0, 0, 1, 2]), bytes(range(i, i + 10))) for i in range(200)])
    text = _dump(path)
    stream = _streamed(text, size, batch)
    assert stream.count == 200
    assert (bytes(stream.keys), bytes(stream.values)) == _as_json(text)
    assert stream.answer is None
    assert stream.by_shape == 199  # all but the first read by its shape


@pytest.mark.parametrize("value_size", [5, 8, 12])
def test_per_cpu_values_are_kept_one_cpu_after_the_other(bpffs, value_size):
    """Each CPU's value padded to 8 bytes, as the kernel lays them out (5 and 12 bytes are padded)."""
    path = create(bpffs, f"kl_stream_pcpu{value_size}", "percpu_hash", 4, value_size, 512)
    fill(path, [(i.to_bytes(4, "little"), bytes((i + j) % 256 for j in range(value_size))) for i in range(300)])
    text = _dump(path)
    cpus = len(json.loads(text)[0]["values"])
    for size in (3, 4096):
        stream = _streamed(text, size)
        assert stream.count == 300 and len(stream.values) == 300 * cpus * (value_size + -value_size % 8)
        assert (bytes(stream.keys), bytes(stream.values)) == _as_json(text)
        assert stream.by_shape == 299


@pytest.fixture
def oracle(bpffs, tmp_path):
    return oracle_maps(bpffs, tmp_path)


def test_maps_with_btf_are_read_as_json(oracle):
    """bpftool adds each entry's "formatted" view (of lengths that vary with the values): read as JSON, the
    same bytes. The conntrack map is a hash, the metrics map a per-CPU hash."""
    ct, metrics = oracle / "ct4", oracle / "metrics"
    shown = json.loads(bpftool("-j", "map", "show", "pinned", str(ct)).stdout)
    key_size, value_size = shown["bytes_key"], shown["bytes_value"]
    fill(ct, [(i.to_bytes(key_size, "little"), (i * 7919).to_bytes(8, "little") * (value_size // 8))
              for i in range(0, 3000, 7)])
    fill(metrics, [(bytes([i, 1, 0, 0, 0, 0, 0, 0]), (i * 10 ** i).to_bytes(8, "little") * 2) for i in range(1, 9)])
    for path, count in ((ct, 429), (metrics, 8)):
        text = _dump(path)
        assert b'"formatted":' in text
        stream = _streamed(text, 1000)
        assert stream.count == count and stream.by_shape == 0
        assert (bytes(stream.keys), bytes(stream.values)) == _as_json(text)


def test_an_entry_gone_or_unreadable_and_a_digit_out_of_shape(bpffs):
    """bpftool prints {"key": […], "value": {"error": strerror}} for a key whose value it could not read: an
    entry deleted between its key walk and its lookup (ENOENT: an LRU map evicting, the agent's GC) is gone
    and left out, the others read by shape around it; any other error fails. A sockmap gives the real text
    (ENOSPC: its values are not readable with 4-byte values); the ENOENT one is a plain dump with one entry's
    value replaced by that text, as bpftool prints it."""
    sockmap = create(bpffs, "kl_stream_sock", "sockmap", 4, 4, 3)
    with pytest.raises(TshootError, match="could not read the value of key 00 00 00 00: No space left on device"):
        _streamed(_dump(sockmap), 64)

    path = create(bpffs, "kl_stream_gone", "hash", 4, 4, 64)
    fill(path, [(i.to_bytes(4, "little"), (i * 3).to_bytes(4, "little")) for i in range(50)])
    text = _dump(path)
    entries = text.split(b"},{")
    value = entries[20][entries[20].index(b'"value":'):]
    entries[20] = entries[20].replace(value, b'"value":{"error":"No such file or directory"}')
    gone = b"},{".join(entries)
    stream = _streamed(gone, 100)
    whole = [e for n, e in enumerate(json.loads(text)) if n != 20]
    assert (stream.count, stream.gone, stream.by_shape) == (49, 1, 48)
    assert bytes(stream.keys) == b"".join(hex_list(e["key"]) for e in whole)
    assert bytes(stream.values) == b"".join(hex_list(e["value"]) for e in whole)

    # a byte that is not "0x.." in an entry otherwise of the shape: JSON says it is not bpftool's
    entries = text.split(b"},{")
    entries[30] = entries[30].replace(b'"0x', b'"1x', 1)
    with pytest.raises(TshootError, match="unreadable entry"):
        _streamed(b"},{".join(entries), 100)


def test_an_empty_map_an_error_answer_and_broken_streams(bpffs):
    empty = _streamed(_dump(create(bpffs, "kl_stream_empty", "hash", 4, 4, 4)), 1)
    assert (empty.count, empty.answer) == (0, None)
    missing = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(bpffs / "nothing")], capture_output=True)
    answer = _streamed(missing.stdout, 3).answer
    assert missing.returncode != 0 and "error" in answer
    for broken in (b'[{"key":["0x01"],"value":["0x02"]}', b'[{"key":["0x01"],"value":["0x02"]}] trailing', b"Error"):
        with pytest.raises(TshootError, match="unreadable output"):
            _streamed(broken, 4)
