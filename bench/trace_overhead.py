#!/usr/bin/env python3
"""What `tshoot trace` costs the traffic it watches: one TCP stream between two pods on two nodes of a VXLAN
overlay (tests/tracetopo.py: pod A -> lxc -> VXLAN -> underlay -> VXLAN -> lxc -> pod B, every hop traced),
with the tracer attached during every other second, 10 seconds each way, in one run. Target (issue 19): the
stream keeps >= 90% of its throughput while traced, and the tracer reports the events it lost.

Why interleaved: on a machine shared with other work the throughput of two streams run one after the other
differs by a third; seconds alternating within one stream see the same load. The tracer is tshoot's own
(tshoot.trace.tracer.Tracer, as `tshoot trace host POD_B -o json` runs it: every event JSON-encoded and
written, here to /dev/null), its filter matching the stream, so every segment and ACK on every hop is an
event: the worst case. Its programs are attached, and its reader runs, in every other second only; the sender reports
its byte count every 100 ms, each interval counted for the state it falls in. Needs root, clang and
libbpf's headers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tracetopo import Overlay  # noqa: E402
from tshoot.trace import filter as filters  # noqa: E402
from tshoot.trace.tracer import Tracer  # noqa: E402

PORT = 5201
RECEIVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
buf = bytearray(1 << 20)
while c.recv_into(buf):
    pass
"""
SENDER = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
chunk, sent = b"x" * (1 << 18), 0
end = time.monotonic() + float(sys.argv[3])
report = time.monotonic()
print("start", flush=True)
while time.monotonic() < end:
    c.sendall(chunk); sent += len(chunk)
    now = time.monotonic()
    if now >= report:
        print(now, sent, flush=True); report = now + 0.1
print(time.monotonic(), sent, flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds traced and seconds not (default 10 each)")
    parser.add_argument("--target", type=float, default=0.10, help="largest acceptable loss (default 0.10)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit(f"{sys.argv[0]} needs root (network namespaces, BPF)")
    overlay = Overlay().build()
    receiver = subprocess.Popen(["ip", "netns", "exec", overlay.ns["podB"], sys.executable, "-c", RECEIVER, str(PORT)],
                                stdout=subprocess.PIPE, text=True)
    try:
        receiver.stdout.readline()
        with Tracer(filters.parse(f"host {overlay.pod_ip['B']}")) as tracer, open(os.devnull, "w") as sink:
            tracer.detach()
            done, active = threading.Event(), threading.Event()

            def consume() -> None:
                """The reader runs while the programs are attached, and only then: the seconds without
                the tracer carry none of its cost (what is still in the ring buffer waits)."""
                while not done.is_set():
                    if not active.wait(timeout=0.1):
                        continue
                    for event in tracer.events(stop=lambda: done.is_set() or not active.is_set()):
                        print(json.dumps(event.as_dict(tracer.start_ns)), file=sink, flush=True)

            reader = threading.Thread(target=consume, daemon=True)
            reader.start()
            total = 2 * args.seconds
            sender = subprocess.Popen(["ip", "netns", "exec", overlay.ns["podA"], sys.executable, "-c", SENDER,
                                       overlay.pod_ip["B"], str(PORT), str(total + 1)], stdout=subprocess.PIPE, text=True)
            sender.stdout.readline()
            time.sleep(0.5)  # past slow start
            windows = []  # (start, end, attached)
            for second in range(total):
                attached = second % 2 == 1
                if attached:
                    tracer.attach()
                    active.set()
                start = time.monotonic()
                time.sleep(1.0)
                if attached:
                    tracer.detach()
                    active.clear()
                windows.append((start, time.monotonic(), attached))
            samples = [tuple(map(float, line.split())) for line in sender.stdout]
            sender.wait()
            done.set()
            reader.join(timeout=10)
            summary = tracer.summary.as_dict()
    finally:
        receiver.kill()
        overlay.destroy()
    sent = {True: 0.0, False: 0.0}
    spent = {True: 0.0, False: 0.0}
    for (t0, b0), (t1, b1) in zip(samples, samples[1:]):
        middle = (t0 + t1) / 2
        for start, end, attached in windows:
            if start <= middle < end:
                sent[attached] += b1 - b0
                spent[attached] += t1 - t0
    rate = {state: sent[state] / spent[state] for state in sent}
    kept = rate[True] / rate[False]
    print(f"without the tracer {rate[False] / 1e6:.0f} MB/s, with it {rate[True] / 1e6:.0f} MB/s "
          f"({args.seconds} s each, alternating every second); tracer: {summary['events']} events shown, "
          f"{summary['lost']} lost (counted and reported)")
    loss = 1 - kept
    print(f"throughput kept {kept:.1%} (loss {loss:.1%}, target <= {args.target:.0%})  "
          f"{'OK' if loss <= args.target else 'OVER TARGET'}")
    return 0 if loss <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
