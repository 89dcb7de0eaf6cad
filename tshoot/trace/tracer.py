"""Running the tracer: the CO-RE object (tshoot.trace.build) loaded and attached through libbpf
(tshoot.node.libbpf), its filter set, its ring buffer drained, each record made an event, named and
filtered, until a count, a timeout or a stop.

Which path ran: CO-RE through libbpf. bcc (python3-bpfcc) compiles against the running kernel's headers;
where they do not match the kernel (as on this project's test machine, shared/reference/tracing.md §6) bcc
reads wrong offsets without an error, so tshoot does not use it for fields: CO-RE relocates every member
from the kernel's own BTF. PATH says it for --help and -v.

A drop by a tc program (reason TC_INGRESS / TC_EGRESS) names the program the kernel runs first at that hook
of that device (tcx before tc), read with tshoot.inspect.hooks_local in the device's namespace.
"""

from __future__ import annotations

import os
import struct
import time

from tshoot.node import libbpf
from tshoot.core.errors import TshootError
from tshoot.trace import build
from tshoot.trace.events import DROP, RECORD, TRANSMIT, Event, Symbols
from tshoot.trace.filter import Node, matches, prefilter
from tshoot.trace.names import Namespaces

PATH = "CO-RE (clang-compiled BPF, BTF from /sys/kernel/btf/vmlinux, loaded through libbpf)"
PROGRAMS = ("trace_receive", "trace_transmit", "trace_drop")
MAX_ADDRS = 8  # struct config in trace.bpf.c
DRAIN_EVERY = 0.005  # seconds: the programs never wake the reader (BPF_RB_NO_WAKEUP)
BATCH = 64  # records taken from the ring buffer at a time (a few milliseconds of work)
MAX_PAUSE = 0.25  # seconds: the longest pause, so that a stop or a timeout is seen at once (one-off work, such
# as reading /proc/kallsyms on the first drop, must not buy a long sleep)
# The reader's share of one CPU while packets flood in. Past it the ring buffer fills and the kernel side
# counts what it could not write (the summary's "lost"): the traffic being watched keeps its CPU, which is
# what bench/trace_overhead.py measures (issue 19: <= 10% throughput lost; measured on a shared 2-CPU machine:
# median 87% kept with a 5% share, 96% with 2%). At 2%, a flood still shows several hundred events a second.
CPU_SHARE = 0.02
TC_REASONS = {"TC_INGRESS": "ingress", "TC_EGRESS": "egress"}
# Frees the kernel reports as drops that are normal traffic (tracing.md §2.4): shown, not counted as dropped.
NORMAL = {("NO_SOCKET", "ping_rcv"): "the copy of an echo reply for ping's raw socket (the reply was delivered)"}


def need_root() -> None:
    if os.geteuid() != 0:
        raise TshootError("tshoot trace loads BPF programs into the kernel and needs root: run it with sudo "
                          "on the kind host (sudo tshoot trace …)")


def config_bytes(expression: Node | None) -> bytes:
    """struct config: the addresses, protocol and port the kernel keeps packets for (filter.prefilter)."""
    addresses, proto, port = prefilter(expression)
    if len(addresses) > MAX_ADDRS:
        addresses = []  # more than the kernel holds: user space filters alone
    packed = b"".join(_ipv4(a) for a in addresses).ljust(4 * MAX_ADDRS, b"\0")
    return packed + struct.pack("<IBx", len(addresses), proto) + port.to_bytes(2, "big")


def _ipv4(text: str) -> bytes:
    import socket

    return socket.inet_aton(text)


class Summary:
    def __init__(self):
        self.events = self.dropped = self.lost = self.emitted = 0
        self.skbs: set[int] = set()

    def as_dict(self) -> dict:
        return {"events": self.events, "packets": len(self.skbs), "dropped": self.dropped, "lost": self.lost}


class Tracer:
    """with Tracer(expression) as t: for event in t.events(count, timeout): …  (t.summary at the end)."""

    def __init__(self, expression: Node | None, namespaces: Namespaces | None = None, cluster=None):
        self.expression = expression
        self.cluster = cluster  # tshoot.cluster.model.Cluster when a cluster was reachable: names for addresses
        self.namespaces = namespaces or Namespaces()
        self.summary = Summary()
        self.reasons: dict[int, str] = {}
        self.symbols = Symbols()
        self._obj = None
        self._links: list[int] = []
        self._ring = None
        self._pending: list[Event] = []
        self._programs: dict[tuple, dict | None] = {}
        self.start_ns = 0

    # --- set-up ---------------------------------------------------------------------------------------
    def __enter__(self) -> "Tracer":
        need_root()
        path = str(build.object_path())
        try:
            self._obj = libbpf.open_object(path)
            libbpf.update(libbpf.object_map_fd(self._obj, "config"), bytes(4), config_bytes(self.expression))
            self.reasons = {v: n.removeprefix("SKB_DROP_REASON_") for v, n in libbpf.kernel_enum("skb_drop_reason").items()}
            self._counters = libbpf.object_map_fd(self._obj, "counters")
            self._ring = libbpf.RingBuffer(libbpf.object_map_fd(self._obj, "events"), self._record)
            self.start_ns = time.monotonic_ns()
            self.attach()
        except OSError as exc:
            self.__exit__(None, None, None)
            detail = "; ".join(libbpf.last_messages(3))
            raise TshootError(f"loading the tracer failed: {exc.strerror} ({exc.filename})"
                              + (f": {detail}" if detail else "")) from None
        return self

    def attach(self) -> None:
        """Attach the programs (done on entering; again after detach())."""
        for name in PROGRAMS:
            self._links.append(libbpf.attach_program(self._obj, name))

    def detach(self) -> None:
        """Detach the programs, keeping the object and what it counted (bench/trace_overhead.py toggles)."""
        for link in self._links:
            libbpf.destroy_link(link)
        self._links = []

    def __exit__(self, *exc) -> None:
        self.detach()
        if self._ring is not None:
            self._ring.free()
            self._ring = None
        if self._obj is not None:
            self._obj, obj = None, self._obj
            libbpf.close_object(obj)

    # --- events ---------------------------------------------------------------------------------------
    def _record(self, data: bytes) -> bool:
        """One record from the ring buffer; True (stop consuming) when this drain's batch is full."""
        try:
            self._pending.append(Event(data[: RECORD.size]))
        except struct.error:
            pass  # a record of another size: never written by this object
        return len(self._pending) >= BATCH

    def events(self, count: int | None = None, timeout: float | None = None, stop=None):
        """Matching events as they come, named, until `count`, `timeout` seconds or `stop()` is true."""
        deadline = time.monotonic() + timeout if timeout else None
        seen = 0
        while True:
            started = time.process_time()
            self._ring.consume()
            pending, self._pending = self._pending, []
            for event in pending:
                if stop is not None and stop():
                    break
                if not matches(self.expression, event):
                    continue
                self._name(event)
                self.summary.events += 1
                self.summary.skbs.add(event.skb)
                if event.kind == DROP and "normal" not in event.drop:
                    self.summary.dropped += 1
                seen += 1
                yield event
                if count is not None and seen >= count:
                    self._count_lost()
                    return
            if (deadline is not None and time.monotonic() >= deadline) or (stop is not None and stop()):
                self._count_lost()
                return
            busy = time.process_time() - started  # this process's CPU (printing included), not the wall clock
            time.sleep(min(MAX_PAUSE, max(DRAIN_EVERY, busy / CPU_SHARE - busy)))

    def _count_lost(self) -> None:
        cpus = libbpf.possible_cpus()
        for slot, attr in ((0, "lost"), (1, "emitted")):
            raw = libbpf.lookup(self._counters, slot.to_bytes(4, "little"), 8 * cpus) or bytes(8 * cpus)
            setattr(self.summary, attr, sum(struct.unpack(f"<{cpus}Q", raw)))

    def _name(self, event: Event) -> None:
        event.where = self.namespaces.lookup(event.netns)
        if self.cluster is not None:
            event.names = cluster_names(self.cluster, event)
        if event.kind != DROP:
            return
        reason = self.reasons.get(event.reason, str(event.reason))
        event.drop = {"reason": reason, "code": event.reason, "location": self.symbols.name(event.location)}
        normal = NORMAL.get((reason, event.drop["location"].split("+", 1)[0]))
        if normal:
            event.drop["normal"] = normal
        direction = TC_REASONS.get(reason)
        if direction and event.ifindex:
            program = self._tc_program(event, direction)
            if program:
                event.drop["program"] = program

    def _tc_program(self, event: Event, direction: str) -> dict | None:
        """The program that runs first at that tc hook of the device, in the device's namespace."""
        key = (event.netns, event.ifindex, direction)
        if key not in self._programs:
            self._programs[key] = None
            known = event.where.get("name")
            if known and not known.startswith("netns:"):
                from tshoot.inspect.hooks_local import net_show
                from tshoot.inspect.netshow import interface_by_ifindex, program_for

                try:
                    show = net_show(event.where.get("path"))
                    interface = interface_by_ifindex(show, event.ifindex)
                    hook = program_for(interface, direction)
                except TshootError:
                    hook = None
                if hook is not None:
                    self._programs[key] = {"id": hook.prog_id, "name": hook.prog_name, "hook": hook.hook,
                                           "direction": direction, "interface": interface.name,
                                           "section": hook.section}
        return self._programs[key]


def cluster_names(cluster, event: Event) -> dict:
    """What the cluster calls the event's addresses (pods, nodes), the VNI (Cilium's source identity: its
    labels) and, in a pod's namespace inside a node, the pod (its eth0 sends from and receives at its IP)."""
    def named(address: str) -> str | None:
        return cluster.pod_by_ip.get(address) or cluster.node_by_ip.get(address)

    packet = event.packet
    names = {"src": named(packet.saddr), "dst": named(packet.daddr)}
    if event.tunnel_key:
        names["remote"] = named(event.tunnel_key["remote"])
    if event.inner or event.tunnel_key:
        if event.inner:
            names |= {"outer_src": named(event.outer.saddr), "outer_dst": named(event.outer.daddr)}
        labels = cluster.labels(event.vni)  # reserved identities by name, the others from their CiliumIdentity
        if labels:
            names["identity"] = labels
    if event.where.get("node") and "/" in event.where.get("name", ""):
        pod = cluster.pod_by_ip.get(packet.saddr if event.kind == TRANSMIT else packet.daddr)
        if pod:
            names["pod"] = pod
    return {k: v for k, v in names.items() if v}
