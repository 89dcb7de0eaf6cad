"""A shell in a node container, driven over ONE docker exec (no TTY), for many commands in a row.

Each `docker exec` costs a round of API calls and a process start in the engine (~60 ms here); a command that
needs to look (iptables-save), think (in Python) and act (iptables-restore) on every node would pay it
several times. This keeps one `sh` open per node on a hijacked exec connection, sends it commands, and reads
back each command's stdout, stderr and exit status, framed by a random marker.

The Docker SDK has no API for an interactive exec session: it hands out the raw socket (exec_start with
socket=True) and this module speaks Docker's stream framing on it (8-byte header: stream, size).
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from dataclasses import dataclass

from tshoot.core.errors import TshootError

STDOUT, STDERR = 1, 2


class NodeShellError(TshootError):
    """The shell went away (container stopped, engine gone) or did not answer in time."""


@dataclass
class ShellResult:
    rc: int
    out: str
    err: str


class NodeShell:
    def __init__(self, container, timeout: float = 60.0):
        self.container = container
        api = container.client.api
        self._api = api
        self._exec_id = api.exec_create(container.id, ["sh"], stdin=True, stdout=True, stderr=True,
                                        tty=False)["Id"]
        self._response = api.exec_start(self._exec_id, socket=True, tty=False)
        self._sock: socket.socket = getattr(self._response, "_sock", self._response)
        self._sock.settimeout(timeout)
        self._out = b""
        self._err = b""  # the shell's own complaints (syntax errors); commands' stderr is captured per command
        self._closed = False
        self._files = f"/tmp/kindlab-{uuid.uuid4().hex}"  # this session's job files, removed when it closes

    def run_all(self, jobs: list[tuple[str, str | None]], side_by_side: bool = True) -> list[ShellResult]:
        """Run (script, stdin) jobs in the node, in one round trip; results in the jobs' order. A script is sh
        syntax; its stdin, when given, is fed to it through a here-document.

        Jobs run side by side, or one after the other when side_by_side is false (writers that contend for
        the same kernel lock only wait for each other, and longer). Each job's stdout and stderr go to files
        under the node's /tmp (kind mounts a tmpfs there), so that neither can interleave with another's;
        they are printed between markers once every job has ended. Few processes are spent on the framing
        (one cat per call): under load, process starts are what costs."""
        mark = f"KINDLAB-{uuid.uuid4().hex}"
        files = self._files
        lines = []
        # Every job runs in a subshell of its own (an `exit` in it ends the job, not the session): a
        # background group is one; in turn, parentheses make one.
        background = " &" if side_by_side else ""
        opening, closing = ("{ ", "}") if side_by_side else ("( ", ")")
        for i, (script, stdin) in enumerate(jobs):
            # stdin is the whole script's (a here-document), or nothing: never the shell's own input, which
            # carries the next commands
            redirect = f">{files}.{i}.out 2>{files}.{i}.err"
            if stdin is None:
                lines.append(f"{opening}{script}\n{closing} {redirect} </dev/null{background}")
            else:
                body = stdin if stdin.endswith("\n") or not stdin else stdin + "\n"
                lines.append(f"{opening}{script}\n{closing} {redirect} <<'{mark}'{background}\n{body}{mark}")
            lines.append(f"kl_p{i}=$!" if side_by_side else f"kl_rc{i}=$?")
        printed = []
        for i in range(len(jobs)):
            # The markers go into files too (printf is a shell builtin): one cat prints everything, in order.
            status = f"wait $kl_p{i}; kl_rc{i}=$?; " if side_by_side else ""
            lines += [f"{status}printf '%s out {i} %d\\n' '{mark}' $kl_rc{i} >{files}.{i}.head",
                      f"printf '\\n%s err {i}\\n' '{mark}' >{files}.{i}.mid",
                      f"printf '\\n%s done {i}\\n' '{mark}' >{files}.{i}.tail"]
            printed += [f"{files}.{i}.{part}" for part in ("head", "out", "mid", "err", "tail")]
        lines += [f"cat {' '.join(printed)}", f"printf '%s end\\n' '{mark}'"]
        self._send(("\n".join(lines) + "\n").encode())
        return self._results(mark, len(jobs))

    def _results(self, mark: str, count: int) -> list[ShellResult]:
        end = f"{mark} end\n".encode()
        while end not in self._out:
            self._read_frame()
        raw, _, self._out = self._out.partition(end)
        results = []
        for i in range(count):
            _, _, raw = raw.partition(f"{mark} out {i} ".encode())
            rc_text, _, raw = raw.partition(b"\n")
            out, _, raw = raw.partition(f"\n{mark} err {i}\n".encode())
            err, _, raw = raw.partition(f"\n{mark} done {i}\n".encode())
            results.append(ShellResult(int(rc_text), out.decode(errors="replace"), err.decode(errors="replace")))
        return results

    def close(self) -> None:
        """Tell the shell to remove this session's job files and to end (EOF on its stdin), and go: it does
        both on its own, so nothing waits for it to exit."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.sendall(f"rm -f {self._files}.*\n".encode())
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the connection broke: the shell is gone with its container (kind's /tmp is a tmpfs)
        finally:
            self._sock.close()
            self._response.close()

    def __enter__(self) -> "NodeShell":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise NodeShellError(f"{self.container.name}: cannot send to the shell ({exc}): {self._why()}") from None

    def _read_frame(self) -> None:
        stream, size = struct.unpack(">BxxxL", self._recv_exactly(8))
        data = self._recv_exactly(size)
        if stream == STDOUT:
            self._out += data
        elif stream == STDERR:
            self._err += data

    def _recv_exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self._sock.recv(n - len(buf))
            except socket.timeout:
                raise NodeShellError(f"{self.container.name}: no answer from the shell within "
                                     f"{self._sock.gettimeout():.0f}s") from None
            except OSError as exc:
                raise NodeShellError(f"{self.container.name}: the shell connection broke ({exc}): {self._why()}") \
                    from None
            if not chunk:
                raise NodeShellError(f"{self.container.name}: the shell ended before the command finished: "
                                     f"{self._why()}")
            buf += chunk
        return buf

    def _why(self, settle: float = 2.0) -> str:
        """What became of the container: the usual reason a shell in it goes away. The engine closes the
        exec's stream before it records the container as stopped, so give its state a moment to settle."""
        deadline = time.monotonic() + settle
        while True:
            try:
                self.container.reload()
                state = self.container.attrs.get("State", {})
            except Exception as exc:  # the engine itself may be gone; say so rather than hide the first error
                return f"cannot inspect the container ({exc})"
            if not state.get("Running"):
                return f"the container is {state.get('Status', 'not running')}"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        shell_err = self._err.decode(errors="replace").strip()
        return shell_err.splitlines()[-1] if shell_err else "the container is still running"
