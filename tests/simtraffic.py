"""Real packets through the simulated cluster (tests/simdatapath.py): ping, a TCP or UDP exchange with a
server in another namespace, the packets a device received, and what cilium_metrics counted.

Pings, servers and clients are this interpreter run inside the namespaces (`ip netns exec`): the machine
has no ping, netcat or socat, and python's socket module is all they need (ping: an ICMP echo on a raw
socket, as root). A server answers with its
tag, the address the request came from (what masquerading or reverse NAT made of it) and the request.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections import Counter

# cilium_metrics' key (bpf/lib/common.h struct metrics_key): reason u8, dir in the low 2 bits of the next
# byte, then line/file (1.16+) or reserved bytes; the per-CPU value is {count u64, bytes u64}.
METRIC_INGRESS, METRIC_EGRESS = 1, 2
REASON_FORWARDED = 0
DROP_POLICY, DROP_MISSED_TAIL_CALL = 133, 140
DROP_UNROUTABLE, DROP_NO_SERVICE, DROP_EP_NOT_READY = 151, 158, 203

_SERVER = r"""
import socket, sys
proto, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", port))
if proto == "tcp":
    sock.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        conn, peer = sock.accept()
        conn.sendall(tag + b" " + peer[0].encode() + b" " + conn.recv(1024))
        conn.close()
    else:
        data, peer = sock.recvfrom(1024)
        sock.sendto(tag + b" " + peer[0].encode() + b" " + data, peer)
"""

# connect() on a UDP socket too: only a reply from the address asked is accepted (so a reply that was not
# reverse-NATed back to a Service's address never counts as an answer).
_CLIENT = r"""
import socket, sys
proto, address, port, sport, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
sock.settimeout(timeout)
if sport:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", sport))
try:
    sock.connect((address, port))
    sock.send(b"hello")
    print(sock.recv(1024).decode())
except OSError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


_PING = r"""
import os, socket, struct, sys, time
address, count, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF

def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF

answered = 0
for seq in range(1, count + 1):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"kindlab-ping"
    sock.sendto(body[:2] + struct.pack("!H", checksum(body)) + body[4:], (address, 0))
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, peer = sock.recvfrom(2048)
        except socket.timeout:
            break
        header = (data[0] & 0x0F) * 4
        kind, _, _, rid, rseq = struct.unpack_from("!BBHHH", data, header)
        if peer[0] == address and kind == 0 and rid == ident and rseq == seq:
            answered += 1
            break
print(f"{answered}/{count}")
sys.exit(0 if answered == count else 1)
"""


def run(netns: str, argv: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)


def ping(netns: str, address: str, count: int = 1, wait: float = 1.0) -> bool:
    """ICMP echo requests from netns; True when every one was answered by address."""
    return run(netns, [sys.executable, "-c", _PING, address, str(count), str(wait)]).returncode == 0


def rx_packets(netns: str, device: str) -> int:
    return int(run(netns, ["cat", f"/sys/class/net/{device}/statistics/rx_packets"]).stdout)


def exchange(netns: str, proto: str, address: str, port: int, sport: int = 0, timeout: float = 1.5) -> str | None:
    """One request from netns to address:port; the server's answer ("TAG PEER hello"), None without one."""
    r = run(netns, [sys.executable, "-c", _CLIENT, proto, address, str(port), str(sport), str(timeout)])
    return r.stdout.strip() if r.returncode == 0 else None


class Server:
    """A TCP or UDP server in netns answering on every address, until the `with` block ends."""

    def __init__(self, netns: str, proto: str, port: int, tag: str):
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", _SERVER, proto, str(port),
                                      tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"server {tag} in {netns} did not start: {self.proc.stderr.read()}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def metrics(path) -> Counter:
    """cilium_metrics at `path` (a pinned map), as packets per (reason, direction), summed over CPUs."""
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)], capture_output=True, text=True,
                         check=True).stdout
    counts: Counter = Counter()
    for entry in json.loads(out):
        key = bytes(int(b, 16) for b in entry["key"])
        reason, dir_byte = struct.unpack_from("<BB", key)
        for cpu in entry["values"]:
            counts[(reason, dir_byte & 0x3)] += struct.unpack_from("<Q", bytes(int(b, 16) for b in cpu["value"]))[0]
    return counts
