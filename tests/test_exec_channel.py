"""tshoot.cluster.channel, the client side of an exec stream, against the `websockets` library's own server
protocol (another implementation of RFC 6455) on a socket pair: the upgrade both ways, fragments, a ping in
the middle of a message, a timeout in the middle of a frame, a refusal's Status, a close each way."""

from __future__ import annotations

import socket

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from tshoot.cluster import channel

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


class Peer:
    """The server end: reads the client's upgrade request, answers it with ServerProtocol, sends what a test
    asks and parses what the client sends back."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.protocol = ServerProtocol(subprotocols=[Subprotocol(p) for p in PROTOCOLS])
        self.request: Request | None = None

    def read_request(self) -> Request:
        """The client's upgrade request, as the websockets library parses it (it fails on a malformed one)."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        self.protocol.receive_data(data)
        (self.request,) = self.protocol.events_received()
        return self.request

    def accept(self) -> None:
        self.protocol.send_response(self.protocol.accept(self.read_request()))
        self.flush()

    def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            self.sock.sendall(chunk)

    def received(self) -> list[Frame]:
        self.sock.settimeout(2)
        self.protocol.receive_data(self.sock.recv(65536))
        return [event for event in self.protocol.events_received() if isinstance(event, Frame)]


@pytest.fixture
def pair():
    client, server = socket.socketpair()
    client.settimeout(2)
    yield client, Peer(server)
    client.close()
    server.close()


def _open(client: socket.socket) -> channel.Channel:
    return channel.Channel.open(client, "/api/v1/namespaces/cilium/pods/agent/exec?command=true", "api:6443",
                                {"Authorization": "Bearer t"}, PROTOCOLS)


def _opened(pair) -> tuple[channel.Channel, Peer]:
    import threading

    client, peer = pair
    answered = threading.Thread(target=peer.accept)
    answered.start()
    stream = _open(client)
    answered.join()
    return stream, peer


def test_the_upgrade_is_a_websocket_clients_and_names_the_channel_protocols(pair):
    stream, peer = _opened(pair)
    assert stream.protocol == "v5.channel.k8s.io"  # the server's choice, from the client's offer
    headers = peer.request.headers
    assert (headers["Host"], headers["Authorization"], headers["Sec-WebSocket-Version"]) == ("api:6443", "Bearer t", "13")
    assert peer.request.path == "/api/v1/namespaces/cilium/pods/agent/exec?command=true"


def test_fragments_are_put_together_and_a_ping_between_them_is_answered(pair):
    stream, peer = _opened(pair)
    peer.protocol.send_binary(b"\x01first ", fin=False)
    peer.protocol.send_ping(b"are you there")
    peer.protocol.send_continuation(b"second ", fin=False)
    peer.protocol.send_continuation(b"third", fin=True)
    peer.protocol.send_binary(b"\x03{}")
    peer.flush()
    assert stream.message() == (channel.BINARY, b"\x01first second third")
    assert stream.message() == (channel.BINARY, b"\x03{}")
    assert [(f.opcode, f.data) for f in peer.received()] == [(Opcode.PONG, b"are you there")]


def test_a_timeout_in_the_middle_of_a_frame_loses_no_byte(pair):
    stream, peer = _opened(pair)
    peer.protocol.send_binary(b"\x01" + bytes(range(256)) * 400)  # 102401 bytes: a 64-bit length
    wire = b"".join(peer.protocol.data_to_send())
    pair[0].settimeout(0.2)
    peer.sock.sendall(wire[:3000])
    with pytest.raises(socket.timeout):
        stream.message()
    peer.sock.sendall(wire[3000:])
    assert stream.message() == (channel.BINARY, b"\x01" + bytes(range(256)) * 400)


def test_a_close_from_the_server_is_returned_and_answered(pair):
    stream, peer = _opened(pair)
    peer.protocol.send_close(1000)
    peer.flush()
    assert stream.message()[0] == channel.CLOSE
    stream.close()
    frames = peer.received()
    assert [f.opcode for f in frames] == [Opcode.CLOSE] and Close.parse(frames[0].data).code == 1000


def test_a_refused_upgrade_carries_its_status_and_body(pair):
    import threading

    client, peer = pair
    body = b'{"kind":"Status","status":"Failure","message":"pods \\"agent\\" is forbidden","code":403}'

    def refuse():
        peer.read_request()
        peer.sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)

    answered = threading.Thread(target=refuse)
    answered.start()
    with pytest.raises(channel.UpgradeRefused) as refused:
        _open(client)
    answered.join()
    assert (refused.value.status, refused.value.body) == (403, body)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n\r\n",  # an accept that is not the key's
    b"SSH-2.0-OpenSSH_9.6\r\n\r\n",  # not HTTP at all
])
def test_an_answer_that_is_not_a_websockets_is_a_cut_stream(pair, answer):
    import threading

    client, peer = pair

    def answer_wrongly():
        peer.read_request()
        peer.sock.sendall(answer)

    answered = threading.Thread(target=answer_wrongly)
    answered.start()
    with pytest.raises(channel.StreamCut):
        _open(client)
    answered.join()


def test_a_connection_that_ends_without_a_close_frame_is_a_cut_stream(pair):
    stream, peer = _opened(pair)
    peer.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(channel.StreamCut):
        stream.message()
