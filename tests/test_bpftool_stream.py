"""tshoot.core.bpftool.DumpStream: `bpftool -j map dump` read as it arrives over an exec stream, cut anywhere,
gives the same entries as the whole text parsed at once; an error answer, a cut stream and trailing junk are
told apart. The dumps are real bpftool's, of real maps in a private bpffs."""

import json
import subprocess

import pytest

from tests.pinned import create, fill
from tshoot.core.bpftool import DumpStream, hex_list
from tshoot.core.errors import TshootError


def _dump(path) -> bytes:
    return subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)], capture_output=True,
                          check=True).stdout


def _streamed(text: bytes, size: int) -> DumpStream:
    stream = DumpStream()
    for start in range(0, len(text), size):
        stream.feed(text[start:start + size])
    stream.finish()
    return stream


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_a_dump_cut_anywhere_reads_as_the_whole(bpffs, size):
    path = create(bpffs, "kl_stream_hash", "hash", 6, 10, 256)
    fill(path, [(bytes([i, 0, 0, 0, 1, 2]), bytes(range(i, i + 10))) for i in range(200)])
    text = _dump(path)
    whole = json.loads(text)
    stream = _streamed(text, size)
    assert stream.count == len(whole) == 200
    assert bytes(stream.keys) == b"".join(hex_list(e["key"]) for e in whole)
    assert bytes(stream.values) == b"".join(hex_list(e["value"]) for e in whole)
    assert stream.answer is None


def test_per_cpu_values_are_kept_one_cpu_after_the_other(bpffs):
    path = create(bpffs, "kl_stream_pcpu", "percpu_hash", 4, 8, 16)
    fill(path, [(bytes([1, 0, 0, 0]), bytes(8))])
    whole = json.loads(_dump(path))
    stream = _streamed(_dump(path), 5)
    cpus = len(whole[0]["values"])
    assert stream.count == 1 and len(stream.values) == 8 * cpus


def test_an_empty_map_an_error_answer_and_broken_streams(bpffs):
    empty = _streamed(_dump(create(bpffs, "kl_stream_empty", "hash", 4, 4, 4)), 1)
    assert (empty.count, empty.answer) == (0, None)
    missing = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(bpffs / "nothing")], capture_output=True)
    answer = _streamed(missing.stdout, 3).answer
    assert missing.returncode != 0 and "error" in answer
    for broken in (b'[{"key":["0x01"],"value":["0x02"]}', b'[{"key":["0x01"],"value":["0x02"]}] trailing', b"Error"):
        with pytest.raises(TshootError, match="unreadable output"):
            _streamed(broken, 4)
