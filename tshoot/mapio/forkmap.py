"""Rendering a big dump on every CPU: contiguous slices of the entries, the later ones in forked children.

Decoding 100k entries is pure Python, so threads would take turns on one core. Forked children share the
parent's memory copy-on-write (the raw entries, the decoders): nothing is pickled on the way in, and each
child hands back only its rendered bytes, through a memfd (a pipe would block a child whose output
outgrows the pipe buffer while the parent is still busy with its own slice).
"""

from __future__ import annotations

import os

from tshoot.core.errors import TshootError

MIN_SHARE = 20_000  # below this many entries per CPU, a fork costs more than it saves
CHUNK = 10_000  # entries rendered at a time: each chunk's objects are freed before the next (memory stays small)


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def render_slices(total: int, render, sep: bytes, workers: int | None = None) -> list[bytes]:
    """render(start, stop) over range(total) in chunks, the later shares on other CPUs in forked children;
    the non-empty results in order, each worker's joined with `sep`."""
    count = max(1, min(workers or cpus(), total // MIN_SHARE))
    shares = [(i * total // count, (i + 1) * total // count) for i in range(count)]

    def share(start: int, stop: int) -> bytes:
        return sep.join(filter(None, (render(a, min(a + CHUNK, stop)) for a in range(start, stop, CHUNK))))

    children = []
    for start, stop in shares[1:]:
        fd = os.memfd_create("tshoot-share")
        pid = os.fork()
        if pid == 0:  # the child: render, write, leave without running the parent's cleanup
            code = 0
            try:
                _write_all(fd, share(start, stop))
            except TshootError as exc:
                _write_all(fd, str(exc).encode())
                code = 3
            except BaseException as exc:  # noqa: BLE001 (reported by the parent, as one line)
                _write_all(fd, f"unexpected {type(exc).__name__}: {exc}".encode())
                code = 4
            os._exit(code)
        children.append((pid, fd))
    try:
        out = [share(*shares[0])]
    finally:
        results = []
        for pid, fd in children:
            _, status = os.waitpid(pid, 0)
            size = os.lseek(fd, 0, os.SEEK_END)
            data = os.pread(fd, size, 0) if size else b""
            os.close(fd)
            results.append((os.waitstatus_to_exitcode(status), data))
    for code, data in results:
        if code != 0:
            raise TshootError(data.decode("utf-8", "replace") or f"a worker rendering the dump failed (exit {code})")
        out.append(data)
    return [piece for piece in out if piece]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
