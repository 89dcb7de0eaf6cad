"""Pod exec as the API server serves it: a websocket upgrade of GET …/pods/NAME/exec speaking the
channel protocol (v5.channel.k8s.io or v4.channel.k8s.io), and handlers that run the command.

Channel protocol: every binary message starts with its channel byte, 1 stdout, 2 stderr, 3 the error
channel, which carries a metav1.Status when the command ends: {"status": "Success"}, or "Failure" with
reason NonZeroExitCode and the exit code in details.causes[{reason: ExitCode, message: N}], or
InternalError when the command could not start. Then the server closes the websocket.

The websocket framing and handshake come from the `websockets` library (its Sans-I/O ServerProtocol),
driven over the socket the HTTP server already accepted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, ERROR = 1, 2, 3
FRAME = 256 * 1024  # long output is sent as several messages, as the real server streams it


class ExecStartError(Exception):
    """The command could not start (no such binary in the image, ...): an InternalError on the error channel."""


def success_status() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_status(argv: list[str], code: int) -> dict:
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {_show(argv)}, "
                       f"exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def start_failure_status(message: str) -> dict:
    text = f"error executing command in container: {message}"
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {text}",
            "reason": "InternalError", "details": {"causes": [{"message": text}]}, "code": 500}


def _show(argv: list[str]) -> str:
    return "[" + " ".join(argv) + "]"


def serve(handler, run, argv: list[str], protocols: tuple[str, ...]) -> None:
    """Upgrade the request held by `handler` (a BaseHTTPRequestHandler) and stream the result of `run()`.

    `run()` returns (exit_code, stdout, stderr) or raises ExecStartError."""
    from websockets.server import ServerProtocol
    from websockets.typing import Subprotocol

    protocol = ServerProtocol(subprotocols=[Subprotocol(p) for p in protocols], max_size=None)
    # The request as it came (http.server has read it off the socket): the protocol parses it itself, and
    # from then on reads frames, the client's close among them (_await_close).
    protocol.receive_data(f"{handler.command} {handler.path} HTTP/1.1\r\n".encode()
                          + b"".join(f"{k}: {v}\r\n".encode() for k, v in handler.headers.items()) + b"\r\n")
    sock = handler.connection
    handler.close_connection = True
    requests = protocol.events_received()
    if not requests:  # not a websocket request: the protocol has answered 400
        _flush(protocol, sock)
        return
    response = protocol.accept(requests[0])
    protocol.send_response(response)
    _flush(protocol, sock)
    if response.status_code != 101:
        return
    try:
        code, out, err = run()
        for channel, data in ((STDOUT, out), (STDERR, err)):
            for start in range(0, len(data), FRAME):
                protocol.send_binary(bytes([channel]) + data[start:start + FRAME])
                _flush(protocol, sock)
        status = success_status() if code == 0 else exit_status(argv, code)
    except ExecStartError as exc:
        status = start_failure_status(str(exc))
    protocol.send_binary(bytes([ERROR]) + json.dumps(status).encode())
    protocol.send_close(1000)
    _flush(protocol, sock)
    _await_close(protocol, sock)


def _flush(protocol, sock) -> None:
    for chunk in protocol.data_to_send():
        if chunk:
            sock.sendall(chunk)


def _await_close(protocol, sock, timeout: float = 2.0) -> None:
    """Read until the client answers our close frame (or goes away), as a well-behaved server does."""
    sock.settimeout(timeout)
    try:
        while not protocol.close_expected() or protocol.state.name != "CLOSED":
            data = sock.recv(65536)
            if not data:
                break
            protocol.receive_data(data)
            protocol.events_received()
            _flush(protocol, sock)
            if protocol.state.name == "CLOSED":
                break
    except (OSError, socket.timeout):
        pass


@dataclass(frozen=True)
class SimNode:
    """A simulated node: its network namespace (None: the host's) and its private bpffs."""

    netns: str | None
    bpffs: str | os.PathLike | None


class NodeExec:
    """An exec handler that runs the real command for a pod on a simulated node.

    The command runs inside the node's network namespace (`ip netns exec`) and in a private mount
    namespace where the node's bpffs is bind-mounted on /sys/fs/bpf, so `bpftool map lookup pinned
    /sys/fs/bpf/tc/globals/cilium_ipcache …` run "in the agent" reads the test's real kernel map.
    `missing` names binaries the pod's image lacks: their exec fails as containerd's does, and a shell in
    the pod does not find them on its PATH (exit 127, the shell's own "not found").
    """

    PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

    def __init__(self, server, nodes: dict[str, SimNode], missing: tuple[str, ...] = (), timeout: float = 60):
        self.server, self.nodes, self.missing, self.timeout = server, nodes, set(missing), timeout

    def __call__(self, namespace: str, pod: str, container: str, argv: list[str]) -> tuple[int, bytes, bytes]:
        node_name = self.server.get("pods", name=pod, namespace=namespace).get("spec", {}).get("nodeName")
        node = self.nodes.get(node_name)
        if node is None:
            raise ExecStartError(f"pod {namespace}/{pod} runs on {node_name!r}, which is not a simulated node "
                                 f"(known: {', '.join(sorted(self.nodes))})")
        if argv[0] in self.missing or shutil.which(argv[0]) is None:
            raise ExecStartError(f'failed to exec in container: failed to start exec: OCI runtime exec failed: exec '
                                 f'failed: unable to start container process: exec: "{argv[0]}": executable file not '
                                 f"found in $PATH: unknown")
        if self.missing:  # the pod's PATH lacks them; the node's own commands (ip netns exec, mount) keep the host's
            argv = ["env", f"PATH={_path_without(frozenset(self.missing))}", *argv]
        proc = subprocess.run(self.command(node, argv), capture_output=True, timeout=self.timeout)
        return proc.returncode, proc.stdout, proc.stderr

    @staticmethod
    def command(node: SimNode, argv: list[str]) -> list[str]:
        inner = ["unshare", "--mount", "--propagation", "private", "--"]
        if node.bpffs is not None:
            # ip netns exec mounts a fresh /sys for the netns; the bind mount goes on top of that one.
            inner += ["sh", "-c", 'mount --bind "$0" /sys/fs/bpf && exec "$@"', str(node.bpffs), *argv]
        else:
            inner += argv
        return (["ip", "netns", "exec", node.netns] if node.netns else []) + inner


_PATHS_WITHOUT: dict[frozenset, str] = {}  # made once per session and set of missing programs


def _path_without(missing: frozenset) -> str:
    """A PATH directory of links to every program of this machine's but `missing`."""
    if missing not in _PATHS_WITHOUT:
        import tempfile

        where = tempfile.mkdtemp(prefix="kl-image-path-")
        for directory in NodeExec.PATH_DIRS:
            for name in os.listdir(directory) if os.path.isdir(directory) else []:
                if name not in missing and not os.path.lexists(os.path.join(where, name)):
                    os.symlink(os.path.join(directory, name), os.path.join(where, name))
        _PATHS_WITHOUT[missing] = where
    return _PATHS_WITHOUT[missing]


def commands_of(argv: list[str]) -> list[list[str]]:
    """The commands an exec ran: argv itself, or each command of a `sh -c` script as tshoot writes one
    (tshoot.node.agent.Agent.exec_many: a function that marks each command's end, then one command a line, a
    here-document's lines are its input)."""
    return [command for command, _ in _script(argv)]


def batched_of(argv: list[str]) -> list[list[str]]:
    """The bpftool commands of every `bpftool [-j] batch file -` an exec ran (its here-document's lines), in order."""
    import shlex

    return [shlex.split(line) for command, given in _script(argv) if command[-3:] == ["batch", "file", "-"]
            for line in given]


def _script(argv: list[str]) -> list[tuple[list[str], list[str]]]:
    """(command, the lines of its here-document) for each command of an exec (commands_of)."""
    import shlex

    if argv[:2] != ["sh", "-c"]:
        return [(argv, [])]
    commands, until = [], None
    for line in argv[2].splitlines():
        if until is not None:
            if line == until:
                until = None
            else:
                commands[-1][1].append(line)
            continue
        if line.startswith("e() {"):
            continue
        command = line.split(" </dev/null; ")[0].split(" <<'")[0]
        if " <<'" in line:
            until = line.split(" <<'")[1].split("'")[0]
        commands.append((shlex.split(command), []))
    return commands


def script_mark(argv: list[str]) -> str | None:
    """The random mark of the exec_many call that wrote this exec's script (the execs one call was cut into
    share it: one round trip), None for a plain command."""
    import re

    found = re.search(r"tshoot-[0-9a-f]{24}", argv[2]) if argv[:2] == ["sh", "-c"] else None
    return found.group(0) if found else None


class SharedBpffsExec:
    """An exec handler for a big simulated cluster: every agent sees one bpffs (nodes share one pinned map, as
    bench/scale.py's 500 nodes do). The agent's pinned paths in argv are rewritten to that bpffs and the command
    runs directly, without NodeExec's network and mount namespaces (one process per exec instead of four).
    `counted` holds (pod, bytes of stdout) per exec: what crossed the exec stream."""

    AGENT_BPFFS = "/sys/fs/bpf"

    def __init__(self, bpffs: str | os.PathLike, timeout: float = 60):
        self.bpffs, self.timeout = str(bpffs), timeout
        self.counted: list[tuple[str, int]] = []

    def __call__(self, namespace: str, pod: str, container: str, argv: list[str]) -> tuple[int, bytes, bytes]:
        if shutil.which(argv[0]) is None:
            raise ExecStartError(f'exec: "{argv[0]}": executable file not found in $PATH: unknown')
        # paths are arguments, or words of a `sh -c` script of several commands (Agent.exec_many)
        argv = [a.replace(self.AGENT_BPFFS + "/", self.bpffs + "/") for a in argv]
        proc = subprocess.run(argv, capture_output=True, timeout=self.timeout)
        self.counted.append((pod, len(proc.stdout)))
        return proc.returncode, proc.stdout, proc.stderr
