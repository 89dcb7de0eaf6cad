"""Running a program's main(argv) inside the test process: thousands of command lines in seconds.

A subprocess per command line costs ~0.2-0.5 s of interpreter and import time; in-process, only the command's
own work is paid. Standard streams are real text wrappers over bytes (with `.buffer`, as the commands that
write bytes expect), and the environment and working directory are restored afterwards. The process boundary
itself (a closed pipe, /dev/full, the launcher) is for subprocess tests (tests.conftest.run_cli); so is a process's state a command leaves
behind on purpose, except the garbage collector, which is turned back on.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import sys


class Outcome:
    def __init__(self, code, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Outcome(code={self.code!r}, out={self.out[:400]!r}, err={self.err[:600]!r})"


def _stream(data: bytes = b"") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict", newline=None, write_through=True)


@contextlib.contextmanager
def _environment(env: dict[str, str | None], cwd: str | None):
    saved = {k: os.environ.get(k) for k in env}
    here = os.getcwd()
    try:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if cwd:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(here)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_main(main, argv: list[str], stdin: bytes = b"", env: dict[str, str | None] | None = None,
             cwd: str | None = None) -> Outcome:
    """main(argv) with these streams, environment and directory; what it returned and printed."""
    streams = (sys.stdin, sys.stdout, sys.stderr)
    collecting = gc.isenabled()  # `tshoot map dump` turns the collector off for the rest of its process
    sys.stdin, sys.stdout, sys.stderr = _stream(stdin), _stream(), _stream()
    out, err = sys.stdout, sys.stderr
    try:
        with _environment({"NO_COLOR": "1", "COLUMNS": "100", **(env or {})}, cwd):
            code = main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        if collecting:
            gc.enable()
    return Outcome(code, out.buffer.getvalue().decode("utf-8", "replace"),
                   err.buffer.getvalue().decode("utf-8", "replace"))
