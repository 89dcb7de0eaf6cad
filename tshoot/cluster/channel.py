"""The client side of a pod exec stream: the websocket (RFC 6455) that GET …/pods/NAME/exec upgrades to, on
a socket the transport dialled (tshoot.cluster.transport.Api.dial), carrying the API server's channel
protocol (v5/v4.channel.k8s.io: each binary message is one channel byte, then data).

Written here rather than taken from websocket-client (kubernetes.stream's library): that library reads the
upgrade's answer one byte per Python call and each frame in three reads, ~0.4 ms more CPU per exec (measured
side by side) that a fan-out over 500 nodes pays on one interpreter lock; the `websockets` library's sans-I/O
client costs ~110 ms of imports, half of a one-node lookup. The part of the protocol an exec needs is small:
the upgrade and its check, frames read (a server never masks them, RFC 6455 5.1), fragments put together, a
ping answered, a close answered or sent. Frames are parsed from a buffer and taken only when whole, so a
socket timeout (how a stream looks at its stop flag) can come anywhere without losing a byte.
"""

from __future__ import annotations

import base64
import hashlib
import os

_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
READ = 65536


class UpgradeRefused(Exception):
    """The API server answered the upgrade with another status (403, 404, …): `status`, `body`."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}")
        self.status, self.body = status, body


class StreamCut(ConnectionError):
    """The connection ended without a close frame, or carried what is not a websocket."""


class Channel:
    """An open exec stream: messages() in order, then close()."""

    def __init__(self, sock, buffered: bytes = b""):
        self.sock = sock
        self._buffer = bytearray(buffered)
        self._fragments: list[bytes] = []
        self._opcode = None  # the data message being put together from fragments
        self.protocol: str | None = None

    @classmethod
    def open(cls, sock, target: str, authority: str, headers: dict, protocols: tuple[str, ...]) -> "Channel":
        """Upgrade GET `target` on `sock` (Host: `authority`), offering `protocols`; UpgradeRefused for any
        answer but 101, StreamCut for a 101 that is not a websocket's."""
        key = base64.b64encode(os.urandom(16))
        lines = [f"GET {target} HTTP/1.1", f"Host: {authority}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13",
                 f"Sec-WebSocket-Protocol: {', '.join(protocols)}", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        channel = cls(sock)
        head = channel._head()
        status_line, *field_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise StreamCut(f"not an HTTP answer to the upgrade: {status_line[:80]!r}")
        fields = {}
        for line in field_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if int(code) != 101:
            raise UpgradeRefused(int(code), channel._body(fields))
        accept = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest()).decode()
        if fields.get("upgrade", "").lower() != "websocket" or fields.get("sec-websocket-accept") != accept:
            raise StreamCut("the API server's answer to the upgrade is not a websocket's")
        channel.protocol = fields.get("sec-websocket-protocol")
        return channel

    def _head(self) -> bytes:
        """The answer's status line and fields, up to the empty line; what follows stays in the buffer."""
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._buffer[:end])
                del self._buffer[:end + 4]
                return head
            if len(self._buffer) > READ:
                raise StreamCut("the API server's answer to the upgrade has no end of its header")
            self._fill()

    def _body(self, fields: dict) -> bytes:
        """A refusal's body (the metav1.Status), as long as its Content-Length says; none without one."""
        length = fields.get("content-length", "")
        size = int(length) if length.isdigit() else 0
        try:
            while len(self._buffer) < size:
                self._fill()
        except OSError:
            pass
        return bytes(self._buffer[:size])

    def _fill(self) -> None:
        data = self.sock.recv(READ)
        if not data:
            raise StreamCut("the API server closed the connection")
        self._buffer += data

    def message(self) -> tuple[int, bytes]:
        """The next whole message, (opcode, payload): a data message's fragments put together, a ping answered
        on the way; a close frame is returned as (CLOSE, its payload). Socket timeouts pass through."""
        while True:
            opcode, final, payload = self._frame()
            if opcode == PING:
                self._send(PONG, payload)
                continue
            if opcode == CLOSE:
                return CLOSE, payload
            if opcode not in (TEXT, BINARY, CONTINUATION):
                continue  # a pong: nothing an exec asked for
            if opcode != CONTINUATION:
                self._opcode, self._fragments = opcode, []
            elif self._opcode is None:
                raise StreamCut("the API server continued a message it never began")
            self._fragments.append(payload)
            if final:
                whole = self._fragments[0] if len(self._fragments) == 1 else b"".join(self._fragments)
                opcode, self._opcode, self._fragments = self._opcode, None, []
                return opcode, whole

    def _frame(self) -> tuple[int, bool, bytes]:
        """One frame (opcode, FIN, payload), taken from the buffer once it is all there."""
        buffer = self._buffer
        while True:
            if len(buffer) >= 2:
                first, second = buffer[0], buffer[1]
                if second & 0x80:
                    raise StreamCut("the API server sent a masked frame (RFC 6455 5.1 forbids it)")
                size, start = second & 0x7F, 2
                if size == 126 and len(buffer) >= 4:
                    size, start = int.from_bytes(buffer[2:4], "big"), 4
                elif size == 127 and len(buffer) >= 10:
                    size, start = int.from_bytes(buffer[2:10], "big"), 10
                if size < 126 or start > 2:
                    if len(buffer) >= start + size:
                        payload = bytes(buffer[start:start + size])
                        del buffer[:start + size]
                        return first & 0x0F, bool(first & 0x80), payload
            self._fill()

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        """A control frame (<= 125 bytes), masked as every client frame must be (RFC 6455 5.3)."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self, code: int = 1000) -> None:
        """Say goodbye: answer the server's close, or end a stream the client stops (the command ends)."""
        try:
            self._send(CLOSE, code.to_bytes(2, "big"))
        except OSError:
            pass
