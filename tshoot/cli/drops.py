"""`tshoot drops`: parsing and printing; the work is tshoot.drops (counters, monitor)."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Optional

import typer

from tshoot.cli.options import NODE_TIMEOUT_DEFAULT, PARALLEL_DEFAULT, Backend, Node, NodeTimeout, Parallel
from tshoot.core.command import Context, Kubeconfig, Output, check_output

EXAMPLES = """Examples:

  tshoot drops                                   # every node's drop and forward counters (cilium_metrics)

  tshoot drops --watch --interval 2              # what increased since the last read, per node

  tshoot drops --monitor --duration 60s          # cilium-dbg monitor --type drop from every agent, merged

  sudo tshoot drops --backend local --bpffs /sys/fs/bpf --cilium-version 1.16   # on a node
"""


def drops(
    watch: Annotated[bool, typer.Option("--watch", help="read again every --interval and print what increased")] = False,
    interval: Annotated[str, typer.Option("--interval", metavar="DURATION",
                                          help="time between reads with --watch (2s, 500ms, 1m)")] = "2s",
    count: Annotated[Optional[int], typer.Option("--count", min=1,
                                                 help="stop after N reads (--watch) or N events (--monitor)")] = None,
    monitor: Annotated[bool, typer.Option("--monitor", help="stream every agent's drop events "
                                                            "(cilium-dbg monitor --type drop -j), merged and named")] = False,
    duration: Annotated[Optional[str], typer.Option("--duration", metavar="DURATION",
                                                    help="stop --watch or --monitor after this long (60s, 5m)")] = None,
    drops_only: Annotated[bool, typer.Option("--drops-only", help="leave forward counters out")] = False,
    backend: Backend = "auto",
    bpffs: Annotated[Optional[str], typer.Option("--bpffs", metavar="DIR",
                                                 help="local backend: the BPF filesystem (default /sys/fs/bpf; "
                                                      "given, auto means local)")] = None,
    node: Node = None,
    parallel: Parallel = PARALLEL_DEFAULT,
    timeout: NodeTimeout = NODE_TIMEOUT_DEFAULT,
    namespace: Annotated[Optional[str], typer.Option("-n", "--namespace", help="the Cilium agents' namespace")] = None,
    cilium_version: Annotated[Optional[str], typer.Option("--cilium-version", metavar="X.Y.Z",
                                                          help="names as this version gives them (default: the "
                                                               "agent's image tag; needed by --backend local on 1.16+)")] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    output: Output = "table",
) -> None:
    """Cilium's own account of its datapath: the drop and forward counters of cilium_metrics on every node, by
    reason and direction (and, from 1.16, the source file and line that counted), named as the node's Cilium
    version names them; --watch prints what increased; --monitor streams the agents' drop events."""
    from tshoot.core import version as versions
    from tshoot.core.duration import parse_duration
    from tshoot.core.errors import UsageError
    from tshoot.mapio.session import Session

    output = check_output(output, ("table", "json"))
    if monitor and watch:
        raise UsageError("give --watch (counters) or --monitor (events), not both")
    if count is not None and not (watch or monitor):
        raise UsageError("--count goes with --watch or --monitor")
    seconds = parse_duration(duration, "--duration") if duration is not None else None
    version = versions.parse(cilium_version) if cilium_version else None
    session = Session(backend=backend, bpffs=bpffs, node=node, kubeconfig=kubeconfig, context=context,
                      namespace=namespace, parallel=parallel, timeout=parse_duration(timeout), note=_note)
    if monitor:
        raise typer.Exit(_monitor(session, version, count, seconds, output))
    raise typer.Exit(_counters(session, version, watch, parse_duration(interval, "--interval"), count, seconds,
                               drops_only, output))


def _counters(session, version, watch: bool, interval: float, count, timeout, drops_only: bool, output: str) -> int:
    import time

    from tshoot.drops import counters

    backends = session.backends()
    results = counters.read_nodes(backends, version, session.parallel)
    failed = _failures(results, len(backends))
    if not watch:
        rows = [c for r in results if isinstance(r, list) for c in r if c.drop or not drops_only]
        if output == "json":
            from tshoot.cli.render import dump

            print(dump([c.as_dict() for c in rows], "json"))
        elif rows:
            print(_table(rows))
        else:
            _note("no counters: the datapath has counted nothing yet")
        return 1 if failed else 0
    last = counters.by_ident(results)
    _note(f"watching cilium_metrics on {', '.join(b.node for b in backends)} every {interval:g}s "
          f"(Ctrl-C to stop); a line per counter that grew")
    deadline = time.monotonic() + timeout if timeout else None
    reads = 1
    try:
        while (count is None or reads < count) and (deadline is None or time.monotonic() < deadline):
            time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
            results = counters.read_nodes(backends, version, session.parallel)
            reads += 1
            failed |= _failures(results, len(backends))
            stamp = time.strftime("%H:%M:%S")
            for counter, packets, size in counters.increases(last, [c for r in results if isinstance(r, list) for c in r]):
                if counter.drop or not drops_only:
                    _print_increase(stamp, counter, packets, size, output)
            last = {**last, **counters.by_ident(results)}
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 1 if failed else 0


def _print_increase(stamp: str, counter, packets: int, size: int, output: str) -> None:
    if output == "json":
        import json

        print(json.dumps({"time": stamp, **counter.as_dict(), "packets_added": packets, "bytes_added": size}))
        return
    kind = "DROP" if counter.drop else "fwd "
    where = f" at {counter.where}" if counter.where else ""
    print(f"{stamp} {counter.node} {kind} +{packets} pkts +{size} B  {counter.reason} ({counter.description}) "
          f"{counter.direction}{where}  total {counter.packets}")


def _table(rows) -> str:
    from tshoot.cli.render import table

    header = ["NODE", "REASON", "DIRECTION", "PACKETS", "BYTES", "WHERE", "DESCRIPTION"]
    return table(header, [[c.node, c.reason, c.direction, str(c.packets), str(c.bytes), c.where or "-",
                           c.description] for c in rows])


def _failures(results, total: int) -> bool:
    from tshoot.node.fanout import failures

    failed = failures(results)
    for f in failed:
        _note(f.line() if total > 1 else f.message)
    return bool(failed)


def _monitor(session, version, count, timeout, output: str) -> int:
    from tshoot.core.errors import UsageError
    from tshoot.drops.monitor import Stream
    from tshoot.node.fanout import succeeded

    if session.kind != "pod":
        raise UsageError("--monitor streams from the Cilium agents: it needs a cluster (--kubeconfig), not "
                         "--backend local (on a node, run 'cilium-dbg monitor --type drop' in the agent)")
    chosen = session.backends()
    failed = _failures(chosen, len(chosen))  # nodes without an agent
    backends = succeeded(chosen)
    if version is not None:
        for b in backends:
            b.version = version
    stream = Stream(backends, session.enricher(backends, {}), timeout)
    if output == "table":
        _note(f"streaming drop events from the agents on {', '.join(b.node for b in backends)} (Ctrl-C to stop)")
    seen = 0
    try:
        for event in stream.events(count):
            seen += 1
            _print_event(event, output)
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.stop()
    for node, why in sorted(stream.ended.items()):
        _note(f"{node}: {why}")
    if output == "table":
        _note(f"{seen} drop event{'s' if seen != 1 else ''}")
    return 1 if failed or (stream.ended and count is not None and seen < count) else 0


def _print_event(event: dict, output: str) -> None:
    if output == "json":
        import json

        print(json.dumps(event))
        return
    said = event["enriched"]

    def name(field: str) -> str:
        what = said.get(field) or {}
        text = what.get("pod") or what.get("node") or what.get("name") or ",".join(what.get("labels", [])[:2])
        value = event.get(field)
        return f"{value} ({text})" if text else str(value)

    flow = f"{name('src')}" + (f":{event['sport']}" if event["sport"] else "") + " -> " + \
        f"{name('dst')}" + (f":{event['dport']}" if event["dport"] else "")
    where = f" at {event['file']}:{event['line']}" if event.get("line") else ""
    print(f"{event['node']} DROP {event['reason'] or '?'} ({event['description']}){where}  "
          f"{flow if event['src'] else '(no packet summary)'} {event['protocol'] or ''}  "
          f"identity {name('src_identity')} -> {name('dst_identity')}, endpoint {name('source_endpoint')}")


def _note(text: str) -> None:
    print(f"tshoot: {text}", file=sys.stderr)


drops.__doc__ = inspect.cleandoc(drops.__doc__) + "\n\n" + EXAMPLES


def register(app: typer.Typer) -> None:
    app.command(name="drops")(drops)
