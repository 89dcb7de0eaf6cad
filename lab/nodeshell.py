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

from tshoot.errors import TshootError

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

    def run(self, script: str, stdin: str | None = None) -> ShellResult:
        """Run `script` (sh syntax); `stdin` is fed to it through a here-document."""
        return self.run_all([(script, stdin)])[0]

    def run_all(self, jobs: list[tuple[str, str | None]]) -> list[ShellResult]:
        """Run (script, stdin) jobs side by side in the node, in one round trip; results in the jobs' order.

        Each job's stdout and stderr go to files under the node's /tmp (kind mounts a tmpfs there), so that
        neither can interleave with another's; they are printed between markers once every job has ended."""
        mark = f"KINDLAB-{uuid.uuid4().hex}"
        files = f"/tmp/{mark.lower()}"
        lines = []
        for i, (script, stdin) in enumerate(jobs):
            # stdin is the whole script's (a here-document), or nothing: never the shell's own input, which
            # carries the next commands
            feed = "</dev/null &" if stdin is None else \
                f"<<'{mark}' &\n{stdin}{'' if stdin.endswith(chr(10)) or not stdin else chr(10)}{mark}"
            lines += [f"{{ {script}\n}} >{files}.{i}.out 2>{files}.{i}.err {feed}", f"kl_p{i}=$!"]
        for i in range(len(jobs)):
            lines.append(f"wait $kl_p{i}; kl_r{i}=$?")
        for i in range(len(jobs)):
            lines.append(f"printf '%s out {i} %d\\n' '{mark}' \"$kl_r{i}\"; cat {files}.{i}.out; "
                         f"printf '\\n%s err {i}\\n' '{mark}'; cat {files}.{i}.err; printf '\\n%s done {i}\\n' '{mark}'")
        lines += [f"rm -f {files}.*", f"printf '%s end\\n' '{mark}'"]
        self._send(("\n".join(lines) + "\n").encode())
        end = f"{mark} end\n".encode()
        while end not in self._out:
            self._read_frame()
        raw, _, self._out = self._out.partition(end)
        results = []
        for i in range(len(jobs)):
            _, _, raw = raw.partition(f"{mark} out {i} ".encode())
            rc_text, _, raw = raw.partition(b"\n")
            out, _, raw = raw.partition(f"\n{mark} err {i}\n".encode())
            err, _, raw = raw.partition(f"\n{mark} done {i}\n".encode())
            results.append(ShellResult(int(rc_text), out.decode(errors="replace"), err.decode(errors="replace")))
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_WR)  # EOF on the shell's stdin: it exits
            while self._read_frame(at_eof_ok=True):
                pass
        except (OSError, NodeShellError):
            pass
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

    def _read_frame(self, at_eof_ok: bool = False) -> bool:
        header = self._recv_exactly(8, at_eof_ok)
        if header is None:
            return False
        stream, size = struct.unpack(">BxxxL", header)
        data = self._recv_exactly(size, at_eof_ok) or b""
        if stream == STDOUT:
            self._out += data
        elif stream == STDERR:
            self._err += data
        return True

    def _recv_exactly(self, n: int, at_eof_ok: bool) -> bytes | None:
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
                if at_eof_ok:
                    return None
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
