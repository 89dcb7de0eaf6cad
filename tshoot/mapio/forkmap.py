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


class Spool:
    """A share's rendered bytes, kept in a memfd rather than in this process's memory (a 512k-entry conntrack
    dump renders to ~200 MB of JSON): written out by write_out() with sendfile, never read back. Unmapped
    memfd pages are page cache, not the process's resident set."""

    def __init__(self, fd: int):
        self.fd, self.size = fd, os.lseek(fd, 0, os.SEEK_END)

    def __bool__(self) -> bool:
        return self.size > 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def render_slices(total: int, render, sep: bytes, workers: int | None = None) -> list[bytes | Spool]:
    """render(start, stop) over range(total) in chunks, the later shares on other CPUs in forked children,
    each share spooled chunk by chunk (joined with `sep`); the non-empty shares in order. A small dump stays
    in memory: a spool costs a descriptor, and a dump of every node of a big cluster has hundreds."""
    if total < MIN_SHARE:
        rendered = sep.join(filter(None, (render(a, min(a + CHUNK, total)) for a in range(0, total, CHUNK))))
        return [rendered] if rendered else []
    count = max(1, min(workers or cpus(), total // MIN_SHARE))
    shares = [(i * total // count, (i + 1) * total // count) for i in range(count)]

    def share(fd: int, start: int, stop: int) -> None:
        first = True
        for a in range(start, stop, CHUNK):
            rendered = render(a, min(a + CHUNK, stop))
            if rendered:
                _write_all(fd, rendered if first else sep + rendered)
                first = False

    fds = [os.memfd_create("tshoot-share") for _ in shares]
    children = []
    try:
        for fd, (start, stop) in list(zip(fds, shares))[1:]:
            pid = os.fork()
            if pid == 0:  # the child: render, write, leave without running the parent's cleanup
                code = 0
                try:
                    share(fd, start, stop)
                except TshootError as exc:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, str(exc).encode(), 0)
                    code = 3
                except BaseException as exc:  # noqa: BLE001 (reported by the parent, as one line)
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"unexpected {type(exc).__name__}: {exc}".encode(), 0)
                    code = 4
                os._exit(code)
            children.append((pid, fd))
        try:
            share(fds[0], *shares[0])
        finally:
            codes = {fd: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid, fd in children}
        for fd, code in codes.items():
            if code != 0:
                size = os.lseek(fd, 0, os.SEEK_END)
                message = os.pread(fd, size, 0).decode("utf-8", "replace")
                raise TshootError(message or f"a worker rendering the dump failed (exit {code})")
        spools = [Spool(fd) for fd in fds]
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    for spool in spools:
        if not spool:
            spool.close()
    return [spool for spool in spools if spool]


def write_out(pieces, stream) -> None:
    """Bytes and Spools, in order, to a binary stream (sys.stdout.buffer): a spool goes by sendfile, kernel to
    kernel, and is closed."""
    for piece in pieces:
        if not isinstance(piece, Spool):
            stream.write(piece)
            continue
        stream.flush()
        out, offset = stream.fileno(), 0
        try:
            while offset < piece.size:
                offset += os.sendfile(out, piece.fd, offset, piece.size - offset)
        except OSError:  # an output sendfile cannot write to: copy it through a small buffer
            while offset < piece.size:
                chunk = os.pread(piece.fd, min(1 << 20, piece.size - offset), offset)
                stream.write(chunk)
                offset += len(chunk)
            stream.flush()
        piece.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
