"""`cilium-dbg monitor --type drop -j` from every agent at once, merged into one stream of drop events, each
named in the cluster's words.

What an agent prints, one JSON object per line, is Go's DropNotifyVerbose (pkg/monitor/datapath_drop.go,
DropNotify.DumpJSON): {"cpu": "CPU 01:", "type": "drop", "mark": "0x…", "reason": "Policy denied",
"source": <endpoint id>, "bytes": N, "srcLabel": <identity>, "dstLabel": <identity>, "dstID": <endpoint id>,
"Line": N, "File": <file id>, "ExtError": N, "Ifindex": N, "summary": {"l3": {"src", "dst"}, "l4": {…},
"tcp"|"udp"|"icmpv4"…: text}} (Line, File, ExtError and Ifindex from 1.12; the summary when the drop
carries the packet: pkg/monitor/dissect.go DissectSummary). The reason is Go's text (api.DropReasonExt),
so it is mapped back to Cilium's C name through tshoot.maps.metrics.

The agent's CLI is `cilium-dbg` from 1.15 and `cilium` before; with the version unknown, cilium-dbg is tried
first. Each agent's stream is one exec (tshoot.node.agent Agent.exec, streaming); all of them run at
once through tshoot.node.fanout.
"""

from __future__ import annotations

import json
import queue
import threading
import time

from tshoot.core.errors import TshootError
from tshoot.maps import metrics
from tshoot.node.agent import NotInImage
from tshoot.node.fanout import NodeFailure, fan_out
from tshoot.core.version import Version

DBG_SINCE = (1, 15, 0)  # the agent image's CLI was renamed cilium -> cilium-dbg in 1.15
MONITOR_ARGS = ["monitor", "--type", "drop", "-j"]
MAX_STREAM = 365 * 24 * 3600.0  # a stream without --timeout runs until stopped


def monitor_argv(version: Version | None) -> list[list[str]]:
    """The commands to try in the agent, in order."""
    if version is None:
        return [["cilium-dbg", *MONITOR_ARGS], ["cilium", *MONITOR_ARGS]]
    return [["cilium-dbg" if version >= DBG_SINCE else "cilium", *MONITOR_ARGS]]


def parse_event(line: str, node: str, version: Version | None) -> dict | None:
    """One line of the monitor's output -> a drop event; None for what is not one (banners, other types)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if raw.get("type") != "drop":
        return None
    summary = raw.get("summary") or {}
    l3, l4 = summary.get("l3") or {}, summary.get("l4") or {}
    protocol = next((p for p in ("tcp", "udp", "sctp", "icmpv4", "icmpv6") if summary.get(p)), None)
    text = raw.get("reason", "")
    event = {
        "node": node, "cpu": (raw.get("cpu") or "").rstrip(":") or None,
        "reason": _c_name(text, version), "description": text,
        "source_endpoint": raw.get("source"), "bytes": raw.get("bytes"),
        "src_identity": raw.get("srcLabel"), "dst_identity": raw.get("dstLabel"),
        "dst_endpoint": raw.get("dstID") or None, "ifindex": raw.get("Ifindex"),
        "file": raw.get("File"), "line": raw.get("Line"), "ext_error": raw.get("ExtError"),
        "src": l3.get("src"), "dst": l3.get("dst"), "sport": _port(l4.get("src")), "dport": _port(l4.get("dst")),
        "protocol": protocol, "mark": raw.get("mark"),
    }
    files = metrics.files_of(version) if version else {}
    if isinstance(event["file"], int) and files:  # drop_notify numbers files as metrics do from 1.16
        event["file"] = metrics.file_name(event["file"], files)
    return event


def _port(text) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _c_name(text: str, version: Version | None) -> str | None:
    """Go's reason text -> Cilium's C name for the version (None when the text is not one Cilium prints)."""
    table = metrics.reasons_of(version) if version else metrics.REASONS
    base = text.rsplit(", ", 1)[0] if text.rsplit(", ", 1)[-1].lstrip("-").isdigit() else text
    for code, (name, description) in table.items():
        if description == base and metrics.is_drop(code):
            return name
    head = base.split(",")[0]
    return table[int(head)][0] if head.isdigit() and int(head) in table else None


def enrich(event: dict, enricher) -> dict:
    """What the numbers are: identities -> labels, endpoint ids -> pods, addresses -> pods or nodes."""
    node, said = event["node"], {}
    for field, explain in (("src_identity", enricher.identity), ("dst_identity", enricher.identity),
                           ("source_endpoint", enricher.endpoint), ("dst_endpoint", enricher.endpoint),
                           ("src", enricher.address), ("dst", enricher.address)):
        value = event.get(field)
        if value in (None, 0) and field.endswith("endpoint"):
            continue
        if value is not None:
            what = explain(node, value)
            if what:
                said[field] = what
    return {**event, "enriched": said}


class Stream:
    """Every agent's monitor at once. `events` yields enriched drop events as they come, merged in arrival
    order, until `count` events, `timeout` seconds, `stop()` or the end of every agent's stream; `ended` then
    holds each node whose stream ended or failed, with why."""

    def __init__(self, backends: list, enricher, timeout: float | None = None):
        self.backends, self.enricher, self.timeout = backends, enricher, timeout
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.ended: dict[str, str] = {}

    def stop(self) -> None:
        self._stop.set()

    def _one(self, backend) -> None:
        buffered = bytearray()

        def on_stdout(chunk: bytes) -> None:
            buffered.extend(chunk)
            while b"\n" in buffered:
                line, _, rest = bytes(buffered).partition(b"\n")
                buffered[:] = rest
                event = parse_event(line.decode("utf-8", "replace"), backend.node, backend.version)
                if event is not None:
                    self._queue.put(event)

        attempts = monitor_argv(backend.version)
        for i, argv in enumerate(attempts):
            try:
                code, _, err = backend.agent.exec(argv, "the drop monitor", timeout=self.timeout or MAX_STREAM,
                                                  on_stdout=on_stdout, stop=self._stop)
            except NotInImage:
                if i + 1 < len(attempts):  # cilium-dbg is 1.15's name: older agents have cilium
                    continue
                raise
            if buffered:
                on_stdout(b"\n")  # a last line without its newline
            if code is not None and not self._stop.is_set():
                detail = err.strip().splitlines()[-1] if err.strip() else "no message"
                raise TshootError(f"{argv[0]} monitor ended (exit {code}: {detail})")
            return

    def events(self, count: int | None = None):
        worker = threading.Thread(target=self._run_all, daemon=True)
        worker.start()
        deadline = time.monotonic() + self.timeout if self.timeout else None
        seen = 0
        try:
            while count is None or seen < count:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    event = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if not worker.is_alive() and self._queue.empty():
                        break
                    continue
                seen += 1
                yield enrich(event, self.enricher)
        finally:
            self._stop.set()
            worker.join(timeout=5)

    def _run_all(self) -> None:
        # every agent's stream at once: a stream lasts until stopped, so none may wait for a free worker
        results = fan_out(self.backends, self._one, max(1, len(self.backends)))
        for backend, result in zip(self.backends, results):
            if isinstance(result, NodeFailure):
                self.ended[backend.node] = result.message
