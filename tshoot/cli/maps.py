"""`tshoot map lookup|dump|list`: read Cilium's maps on this machine or on any node of a cluster.

Parsed like `tshoot key` (tshoot.cli.parsing; the key arguments come from each map's module, as for `tshoot key`), printed here;
the work is in tshoot.mapio.read (reading, decoding), tshoot.node.backend (where bytes come from) and
tshoot.cluster.enrich (what the numbers are).
"""

from __future__ import annotations

import gc
import sys

from tshoot.core import version as versions
from tshoot.node.backend import DEFAULT_BPFFS
from tshoot.core.errors import FieldError, UsageError
from tshoot.cli.parsing import Parser

LOOKUP_EPILOG = """examples:
  tshoot map lookup ipcache 10.244.1.5                          # every node of the cluster (or this one)
  tshoot map lookup ipcache 10.0.1.110 --node k8s-guide-worker  # the guide's lookup, in one command
  tshoot map lookup lxc 10.244.1.5 --node k8s-guide-control-plane -o json
  tshoot map lookup ipcache 10.96.0.0/16 --exact                # that CIDR entry itself, not the longest match
  tshoot map lookup lb4-services 10.96.0.10:53/udp              # the lab's DNS Service frontend
  tshoot map lookup policy --endpoint 2006 --identity 53731 --proto tcp --port 80 --node k8s-guide-worker
  sudo tshoot map lookup ipcache 10.244.1.5 --backend local     # on a node: its pinned maps
  tshoot map lookup ipcache 10.244.1.5 --node k8s-guide-worker --show-commands   # the kubectl/bpftool way
"""

DUMP_EPILOG = """filters (--filter EXPR, repeatable; comma-separated terms must all hold):
  FIELD=VALUE   FIELD!=VALUE   FIELD~TEXT (contains)   FIELD<N  FIELD>N  FIELD<=N  FIELD>=N
  FIELD is a key or value field as -o json shows it (key.FIELD / value.FIELD when both have it), or node.

examples:
  tshoot map dump ipcache --filter identity=53731
  tshoot map dump ipcache --filter prefix~10.244. --limit 20 --node k8s-guide-worker
  tshoot map dump lb4-services --filter role=frontend --filter flags~nodeport
  tshoot map dump lxc --all-nodes -o json
  sudo tshoot map dump ipcache --backend local -o json > ipcache.json
"""

LIST_EPILOG = """examples:
  tshoot map list --node k8s-guide-worker
  tshoot map list --all-nodes -o json
  sudo tshoot map list --backend local --bpffs /sys/fs/bpf
"""


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: tshoot map {lookup,dump,list} ...\n\n"
              "  lookup MAP KEY…   look a key up as the datapath does (longest prefix on LPM maps)\n"
              "  dump MAP          every entry, decoded (--filter, --limit)\n"
              "  list              the Cilium maps pinned on a node: type, sizes, entries, layout\n\n"
              "See 'tshoot map lookup --help' (and dump, list).")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in ("lookup", "dump", "list"):
        raise UsageError(f"unknown map command {command!r} (expected lookup, dump or list)")
    return {"lookup": _lookup, "dump": _dump, "list": _list}[command](rest)


# --- options every map command takes -------------------------------------------------------------------
def _common(parser: Parser) -> None:
    from tshoot.node.choice import BACKEND_HELP, BACKENDS
    from tshoot.node.fanout import DEFAULT_PARALLEL, PARALLEL_HELP, TIMEOUT_HELP

    where = parser.add_argument_group("where to read")
    where.add_argument("--backend", choices=list(BACKENDS), default="auto", help=BACKEND_HELP)
    where.add_argument("--node", metavar="NAME", help="the node to read (pod backend)")
    where.add_argument("--all-nodes", action="store_true", help="every node at once (the default on a cluster)")
    where.add_argument("--bpffs", metavar="DIR",
                       help=f"the BPF filesystem of the local backend (default {DEFAULT_BPFFS}; given, auto "
                            f"means local)")
    where.add_argument("--netns", metavar="NS", help="local backend: the node's network namespace, where ifindexes "
                                                     "are named (default: tshoot's own; given, auto means local)")
    where.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig (default: $KUBECONFIG, ./kubeconfig, ~/.kube/config)")
    where.add_argument("--context", metavar="NAME", help="kubeconfig context")
    where.add_argument("-n", "--namespace", metavar="NS", help="the Cilium agents' namespace (default: found: cilium or kube-system)")
    where.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N", help=PARALLEL_HELP)
    where.add_argument("--timeout", metavar="DURATION", help=TIMEOUT_HELP)
    parser.add_argument("--cilium-version", metavar="X.Y[.Z]",
                        help="the agents' Cilium version (default: from the agent's image tag; unknown for local)")
    parser.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    parser.add_argument("--show-commands", action="store_true",
                        help="print the kubectl/bpftool commands that do the same by hand (to stderr)")
    parser.add_argument("-v", "--verbose", action="store_true", help="say which backend, nodes and layouts were used")


def _parser(command: str, epilog: str, description: str) -> Parser:
    return Parser(prog=f"tshoot map {command}", epilog=epilog, description=description)


def _map_parser(command: str, argv: list[str], epilog: str, description: str, options=None):
    """The map comes first (its module adds its key arguments), as in `tshoot key`; `options(parser)` adds the
    command's own, listed by `--help` with or without a map. Returns (map, parameters of a pinned name, the
    pinned name itself or None for a short name, parser)."""
    from tshoot.maps import MAPS, find

    names = ", ".join(m.short + "".join(f" ({a})" for a in m.aliases) for m in MAPS)
    if not argv or argv[0].startswith("-"):
        parser = _parser(command, epilog, f"{description} MAP is one of: {names}, or a pinned name.")
        parser.add_argument("map", metavar="MAP")
        _common(parser)
        if options:
            options(parser)
        if not argv:
            parser.error("the map is missing, e.g. ipcache or lxc")
        parser.parse_args(argv)  # --help prints the help; anything else is missing the map
        parser.error("the map comes first, e.g. tshoot map " + command + " ipcache …")
    cmap, params = find(argv[0])
    pinned = argv[0] if cmap.match_pinned(argv[0]) is not None else None
    parser = _parser(f"{command} {argv[0]}", epilog, f"{description} {cmap.short}: {cmap.summary}")
    _common(parser)
    if options:
        options(parser)
    return cmap, params, pinned, parser


def _version(args) -> versions.Version | None:
    return versions.parse(args.cilium_version) if args.cilium_version else None


def _params(args, params: dict) -> dict:
    """Parameters of a per-endpoint map: from its pinned name, or from the map's own arguments."""
    merged = dict(params)
    for name in ("endpoint",):
        if getattr(args, name, None) is not None:
            merged[name] = getattr(args, name)
    return merged


# --- lookup ---------------------------------------------------------------------------------------------
def _lookup(argv: list[str]) -> int:
    from tshoot.mapio import read as mapread
    from tshoot.node.fanout import NodeFailure, succeeded

    cmap, params, pinned, parser = _map_parser("lookup", argv, LOOKUP_EPILOG,
                                               "Look a key up in a Cilium map, as the datapath does.", _lookup_options)
    start = parser.mark()
    cmap.add_key_arguments(parser)
    key_fields = (start, parser.mark())
    lifetimes = _add_clock_arguments(parser, cmap)
    args = parser.parse_args(argv[1:])
    for name, value in params.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    version = _version(args)
    session = _session(args)
    key = parser.values(args, key_fields)
    several = len(session.backends()) > 1
    streamed = None  # rows printed as nodes answer: a table of several nodes
    if several and args.output == "table":
        from tshoot.cli.mapview import StreamedEntries

        streamed = StreamedEntries(None)

    def work(backend):
        try:
            return mapread.lookup(backend, cmap, _params(args, params), key, version, args.exact, pinned)
        except FieldError as exc:
            raise parser.field_error(exc) from None

    def enricher_of(found: list):
        return session.enricher(found, cmap.field_kinds, args.ct_clock if lifetimes else None, clocks=lifetimes)

    def shown(result, progress) -> None:
        if streamed is not None and not isinstance(result, NodeFailure):
            streamed.enricher = streamed.enricher or enricher_of([result])
            progress.clear()
            streamed.write([(result.node, result.obj["key"], result.obj["value"])])

    results = _run(session, work, enrich="asked", shown=shown)
    found = succeeded(results)
    enricher = streamed.enricher if streamed is not None and streamed.enricher else enricher_of(found)
    _show_commands(args, found)
    if args.verbose:
        for r in found:
            _note(f"{r.node}: {r.info.name} ({r.info.map_type}): {r.how}; key layout: {r.dkey.reason}; "
                  f"value layout: {r.dvalue.reason}")
    from tshoot.cli import render

    if args.output != "table":
        objs = [dict(r.obj, node=r.node, enriched=enricher.entry(r.node, r.obj.get("key"), r.obj.get("value")))
                for r in found]
        if objs:
            print(render.dump(objs[0] if len(results) == 1 else objs, args.output))
    elif not several and found:
        print(_lookup_detail(found[0], enricher))
    return _report(results)


def _lookup_options(parser: Parser) -> None:
    parser.add_argument("--exact", action="store_true",
                        help="on an LPM map, the entry for exactly this prefix (default: the longest prefix covering it)")


def _lookup_detail(r, enricher) -> str:
    """One node's lookup as the guide reads it: the bytes, each member, what they mean."""
    from tshoot.cli import render
    from tshoot.cli.mapview import enriched_lines

    color = render.use_color()
    lines = [f"node {r.node}: {r.info.path} ({r.info.map_type}), {r.how}"]
    if r.key != r.asked:
        lines.append(f"  looked up {r.asked.hex(' ')}")
    for which, data, decoded in (("key", r.key, r.dkey), ("value", r.value, r.dvalue)):
        lines.append(render.annotated(which, data, decoded, color))
        lines.append(render.fields_line(decoded.fields))
    lines += enriched_lines(enricher.entry(r.node, r.obj.get("key"), r.obj.get("value")))
    return "\n".join(lines)


# --- dump -----------------------------------------------------------------------------------------------
def _import_meanwhile(module: str):
    """Import a module on a thread of its own; join() it before relying on the module being imported."""
    import importlib
    import threading

    thread = threading.Thread(target=importlib.import_module, args=(module,), daemon=True)
    thread.start()
    return thread


def _dump_options(parser: Parser) -> None:
    parser.add_argument("--filter", action="append", default=[], metavar="EXPR",
                        help="keep entries whose fields match, e.g. identity=53731 or prefix~10.244. (see below)")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N entries per node")


def _dump(argv: list[str]) -> int:
    from tshoot.mapio import read as mapread
    from tshoot.mapio.filter import Filter
    from tshoot.maps import progarray
    from tshoot.node.fanout import NodeFailure, succeeded

    if argv and progarray.is_prog_array(argv[0]):
        return _dump_prog_array(argv)
    cmap, params, pinned, parser = _map_parser("dump", argv, DUMP_EPILOG, "Every entry of a Cilium map, decoded.",
                                               _dump_options)
    lifetimes = _add_clock_arguments(parser, cmap)
    if lifetimes:
        parser.add_argument("--live", action="store_true", help="hide expired entries (lifetime before the node's now: "
                                                                "what the agent's GC deletes next)")
    if cmap.pins and any("{" in p.name for p in cmap.pins):
        parser.add_argument("--endpoint", type=int, metavar="ID", help="the endpoint whose map to read")
    args = parser.parse_args(argv[1:])
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    filters = Filter(args.filter)
    version = _version(args)
    session = _session(args)
    def work(backend):
        node_filters = filters
        if lifetimes and args.live:  # lifetime >= now: the agent's GC keeps it (pkg/maps/ctmap)
            node_filters = Filter([*args.filter, f"lifetime>={session.clock(backend.node, args.ct_clock).now}"])
        try:
            dumped = mapread.dump(backend, cmap, _params(args, params), version, node_filters, args.limit, pinned)
        except FieldError as exc:
            raise parser.field_error(exc) from None
        # JSON decodes while rendering, on every CPU (tshoot.mapio.forkmap); the rest decodes here, so that a
        # node whose entries cannot be read fails alone.
        return dumped if args.output == "json" else dumped.decode()

    # A dump allocates a few objects per entry and frees none before printing: the cyclic GC would only
    # rescan them (a fifth of the run on a 100k-entry map).
    gc.disable()
    # orjson's import (~20 ms: it loads dataclasses, uuid, datetime…) runs while the map is read, which
    # holds no GIL (a kernel walk, or an exec); it is over before rendering forks.
    encoder = _import_meanwhile("orjson") if args.output == "json" else None
    results = _run(session, work, enrich="every")
    if encoder is not None:
        encoder.join()
    found = succeeded(results)
    enricher = session.enricher(found, cmap.field_kinds, args.ct_clock if lifetimes else None, clocks=lifetimes)
    _show_commands(args, found)
    from tshoot.cli.mapview import dump_json, entry_table

    if args.output == "json":
        def report(node: str, message: str) -> None:
            results[[getattr(r, "node", None) for r in results].index(node)] = NodeFailure(node, message)

        from tshoot.mapio.forkmap import write_out

        sys.stdout.flush()
        write_out(dump_json(found, enricher, report), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        found = succeeded(results)
    elif args.output == "yaml":
        from tshoot.cli import render

        objs = [{"map": r.cmap.short, "cilium_version": versions.show(r.version) if r.version else None,
                 "key": k, "value": v, "node": r.node, "enriched": enricher.entry(r.node, k, v)}
                for r in found for k, v in zip(r.keys, r.values)]
        print(render.dump(objs, "yaml") if objs else "[]")
    else:
        rows = [(r.node, k, v) for r in found for k, v in zip(r.keys, r.values)]
        if rows:
            print(entry_table(rows, enricher, node_column=len(results) > 1))
        for r in found:
            if len(r.keys) < r.total:
                _note(f"{r.node}: {len(r.keys)} of {r.total} entries shown")
            elif not r.total:
                _note(f"{r.node}: {r.info.name} is empty")
    if args.verbose:
        for r in found:
            _note(f"{r.node}: {r.info.name} ({r.info.map_type}), {r.total} entries; " + "; ".join(r.reasons))
    return _report(results)


def _dump_prog_array(argv: list[str]) -> int:
    """A program array: slot -> program (id, name); for the policy arrays the slot is an endpoint, named."""
    from tshoot.cli import render
    from tshoot.cli.render import table
    from tshoot.mapio import read as mapread
    from tshoot.maps import progarray
    from tshoot.node.fanout import succeeded

    name = argv[0]
    parser = _parser(f"dump {name}", DUMP_EPILOG, f"The filled slots of program array {name}: the program in each.")
    _common(parser)
    args = parser.parse_args(argv[1:])
    session = _session(args)
    results = session.run(lambda backend: mapread.dump_prog_array(backend, name))
    found = succeeded(results)
    _show_commands(args, found)
    endpoints = progarray.slot_meaning(name) == "endpoint"
    enricher = session.enricher(found, {"endpoint_id": "endpoint"}) if endpoints else None
    rows = []
    for r in found:
        for slot in r.slots:
            said = enricher.entry(r.node, {"endpoint_id": slot["slot"]}, None) if enricher else {}
            pod = (said.get("endpoint_id") or {}).get("pod")
            rows.append({"node": r.node, "map": name, **slot, **({"pod": pod} if endpoints else {})})
    if args.output != "table":
        print(render.dump(rows, args.output))
    else:
        if rows:
            columns = ["slot", "program_id", "program", *(["pod"] if endpoints else [])]
            header = (["NODE"] if len(results) > 1 else []) + \
                [("ENDPOINT" if endpoints else "SLOT"), "PROGRAM ID", "PROGRAM", *(["POD"] if endpoints else [])]
            print(table(header, [([row["node"]] if len(results) > 1 else []) +
                                 ["-" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]))
        for r in found:
            if not r.slots:
                _note(f"{r.node}: every slot of {name} is empty")
    return _report(results)


# --- list -----------------------------------------------------------------------------------------------
def _list(argv: list[str]) -> int:
    from tshoot.mapio import read as mapread
    from tshoot.node.fanout import succeeded

    parser = _parser("list", LIST_EPILOG, "The Cilium maps pinned on a node: type, sizes, entries, layout tshoot reads them with.")
    _common(parser)
    parser.add_argument("--all", action="store_true", help="every pinned map, not only cilium_*")
    args = parser.parse_args(argv)
    version = _version(args)
    session = _session(args)
    results = _run(session, lambda b: mapread.list_maps(b, version, cilium_only=not args.all))
    found = succeeded(results)
    _show_commands(args, found)
    from tshoot.cli.mapview import list_rows, list_table

    if args.output != "table":
        from tshoot.cli import render

        print(render.dump(list_rows(found), args.output))
    elif found:
        print(list_table(found, node_column=len(results) > 1))
    return _report(results)


# --- shared ---------------------------------------------------------------------------------------------
def _add_clock_arguments(parser: Parser, cmap) -> bool:
    """--ct-clock for maps whose values carry a conntrack lifetime; whether the map has one."""
    if not any("lifetime" in layout.by_name for _, layout in cmap.values):
        return False
    parser.add_argument("--ct-clock", choices=["ktime", "jiffies"],
                        help="the agent's clock source for BPF (cilium status --verbose: 'Clock Source for BPF'); "
                             "default: cilium-config's enable-bpf-clock-probe, else the version's default")
    return True


def _session(args):
    from tshoot.mapio.session import Session

    from tshoot.core.duration import parse_duration
    from tshoot.node.fanout import DEFAULT_TIMEOUT

    if args.parallel < 1:
        raise UsageError("--parallel must be 1 or more")
    timeout = parse_duration(args.timeout) if args.timeout is not None else DEFAULT_TIMEOUT
    return Session(backend=args.backend, bpffs=args.bpffs, node=args.node, all_nodes=args.all_nodes,
                   kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace,
                   parallel=args.parallel, timeout=timeout, verbose=args.verbose, note=_note, netns=args.netns)


def _run(session, work, enrich: str | None = None, shown=None) -> list:
    """session.run with the progress line of a command that asks several nodes (tshoot.cli.progress);
    shown(result, progress) prints what a node's answer adds as it comes."""
    from tshoot.cli.progress import Progress

    with Progress(len(session.backends())) as progress:
        def on_answer(result) -> None:
            if shown is not None:
                shown(result, progress)
            progress(result)

        return session.run(work, enrich=enrich, on_answer=on_answer)


def _note(text: str) -> None:
    print(f"tshoot: {text}", file=sys.stderr)


def _show_commands(args, results) -> None:
    if not args.show_commands:
        return
    for r in results:
        print(f"# node {r.node}", file=sys.stderr)
        for command in r.commands:
            print(f"$ {command}", file=sys.stderr)


def _report(results) -> int:
    """Each failed node on its own line; exit 1 when any failed (the others were printed)."""
    from tshoot.node.fanout import failures as failed

    failures = failed(results)
    for f in failures:
        _note(f.line() if len(results) > 1 else f.message)
    if failures:
        sys.stdout.flush()
    return 1 if failures else 0


def register(app) -> None:
    """List `tshoot map` in the typer app's help; tshoot.main sends `tshoot map …` here without typer."""
    import typer

    def map_command(ctx) -> None:
        raise typer.Exit(run(ctx.args))

    map_command.__annotations__ = {"ctx": typer.Context, "return": None}  # real types: typer reads them
    app.command(name="map", add_help_option=False,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
                help="Read Cilium maps on a node or on every node: lookup (as the datapath), dump, list. "
                     "See 'tshoot map --help'.")(map_command)
