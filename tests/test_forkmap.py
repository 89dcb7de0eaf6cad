"""tshoot.mapio.forkmap: a big dump rendered on every CPU in forked children, spooled in memfds and sent to the
output with sendfile, in order; a child's failure is the parent's one-line error; small dumps stay in memory."""

import os

import pytest

from tshoot.core.errors import TshootError
from tshoot.mapio.forkmap import MIN_SHARE, Spool, render_slices, write_out


def _render(start: int, stop: int) -> bytes:
    return b",".join(b"%d" % i for i in range(start, stop))


def _written(pieces, tmp_path, how: str) -> bytes:
    if how == "file":
        with open(tmp_path / "out", "wb") as out:
            write_out(pieces, out)
        return (tmp_path / "out").read_bytes()
    import threading

    read_end, write_end = os.pipe()  # a pipe, as to a shell's | less: sendfile into it, read meanwhile
    got = []
    reader = threading.Thread(target=lambda: got.append(b"".join(iter(lambda: os.read(read_end, 1 << 16), b""))))
    reader.start()
    with open(write_end, "wb") as out:
        write_out(pieces, out)
    reader.join()
    os.close(read_end)
    return got[0]


@pytest.mark.parametrize("how", ["file", "pipe"])
def test_shares_are_written_in_order(tmp_path, how):
    total = 4 * MIN_SHARE + 123
    pieces = render_slices(total, _render, b",", workers=4)
    assert len(pieces) == 4 and all(isinstance(p, Spool) for p in pieces)
    assert _written([b"[", *sum(([p, b","] for p in pieces), [])[:-1], b"]"], tmp_path, how) == \
        b"[" + _render(0, total) + b"]"


def test_a_small_dump_stays_in_memory():
    assert render_slices(10, _render, b",") == [_render(0, 10)]
    assert render_slices(0, _render, b",") == []


def test_a_childs_failure_is_one_line_and_leaves_no_descriptor():
    def failing(start: int, stop: int) -> bytes:
        if start >= 3 * MIN_SHARE:
            raise TshootError("entry 61234 cannot be decoded")
        return _render(start, stop)

    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(TshootError, match="entry 61234 cannot be decoded"):
        render_slices(4 * MIN_SHARE, failing, b",", workers=4)
    assert len(os.listdir("/proc/self/fd")) == before
