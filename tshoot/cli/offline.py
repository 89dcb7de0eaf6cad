"""`tshoot key` and `tshoot decode`: the offline commands, parsed without typer so they start fast.

Typer costs ~90 ms to import; these two commands answer in a few milliseconds more than a bare
interpreter, so tshoot.main sends them here directly, and the typer app forwards to the same code.
This module parses and prints only; the work is in tshoot.maps and tshoot.mapio.decode.
"""

from __future__ import annotations

import sys

from tshoot.core import version as versions
from tshoot.core.errors import FieldError, UsageError
from tshoot.cli.parsing import Parser

PIN_DIR = "/sys/fs/bpf/tc/globals"

# Addresses: the lab's pods are in 10.244.0.0/16 and its Services in 10.96.0.0/16 (DNS 10.96.0.10); the
# guide's (10.0.x.x pods, 172.18.0.x nodes) are said to be the guide's.
KEY_EPILOG = """examples:
  tshoot key ipcache 10.244.1.5                             # a pod of the lab
  tshoot key ipcache 10.0.1.110 --cilium-version 1.9.1      # the guide's lookup key, in its Cilium
  tshoot key ipcache 10.96.0.0/16                           # a CIDR entry as the agent stores it
  tshoot key lxc 10.244.1.5
  tshoot key lb4-services 10.96.0.10:53/udp --slot 1        # the lab's DNS Service, its first backend slot
  tshoot key ipcache 10.244.1.5 --bpftool                   # the whole command to run in the agent
"""

DECODE_EPILOG = """examples:
  tshoot decode ipcache --value 'e3 d1 00 00 ac 12 00 05 00 00 00 00'   # the guide's pod, behind node 172.18.0.5
  tshoot decode lxc --key '0a f4 01 05 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00'
  tshoot decode lb4-services --key '0a 60 00 0a 00 35 00 00 11 00 00 00' --value '00 00 00 00 02 00 00 07 40 00 00 00'
  tshoot decode lb4-services --value '0b 00 00 00 00 00 00 07 00 00 00 00' -o json
  kubectl -n cilium exec POD -- bpftool map dump pinned /sys/fs/bpf/tc/globals/cilium_ipcache_v2 | tshoot decode ipcache -
"""


def run(argv: list[str]) -> int:
    """`tshoot key|decode …`; failures propagate to the entry point's handler (tshoot.core.errors.guarded)."""
    if argv[0] == "key":
        return _key(argv[1:])
    return _decode(argv[1:])


def _map_and_rest(command: str, argv: list[str], epilog: str):
    """The map name comes first; its module then adds its own arguments to the parser."""
    from tshoot.maps import MAPS, find

    if not argv or argv[0] in ("-h", "--help"):
        parser = Parser(prog=f"tshoot {command}", epilog=epilog,
                         description=f"{command} a Cilium map entry. MAP is one of: "
                         + ", ".join(m.short + "".join(f" ({a})" for a in m.aliases) for m in MAPS)
                         + ", or a pinned name (cilium_ipcache_v2, …).")
        parser.add_argument("map", metavar="MAP")
        if not argv:
            parser.error("the map is missing, e.g. ipcache or lxc")
        parser.print_help()
        raise SystemExit(0)
    cmap, params = find(argv[0])
    parser = Parser(prog=f"tshoot {command} {argv[0]}", epilog=epilog,
                     description=cmap.summary)
    parser.add_argument("--cilium-version", metavar="X.Y[.Z]",
                        help="the agent's Cilium version (its image tag); layouts and names depend on it")
    return cmap, params, parser


def _key(argv: list[str]) -> int:
    cmap, params, parser = _map_and_rest("key", argv, KEY_EPILOG)
    start = parser.mark()
    cmap.add_key_arguments(parser)
    key_fields = (start, parser.mark())
    parser.add_argument("--bpftool", action="store_true",
                        help="print the whole bpftool lookup command to run in the agent")
    args = parser.parse_args(argv[1:])
    for name, value in params.items():  # parameters spelled in a pinned name (the endpoint of a policy map)
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    # A pinned name tells the version range (cilium_policy_02006 is 1.9-1.16); a short name means the newest.
    version = versions.parse(args.cilium_version) if args.cilium_version else cmap.default_version(argv[0])
    cmap.check_name(argv[0], version)
    try:
        fields = cmap.key(version, **parser.values(args, key_fields))
        key = cmap.encode("key", fields, version)
        text = key.hex(" ")
        if args.bpftool:
            name = cmap.pinned_name(version, **_name_params(args))
            text = f"bpftool map lookup pinned {PIN_DIR}/{name} key hex {text}"
    except FieldError as exc:
        raise parser.field_error(exc) from None
    print(text)
    return 0


def _name_params(args) -> dict:
    return {k: v for k, v in vars(args).items() if k == "endpoint" and v is not None}


def _decode(argv: list[str]) -> int:
    cmap, _, parser = _map_and_rest("decode", argv, DECODE_EPILOG)
    parser.add_argument("stdin", nargs="?", choices=["-"], metavar="-",
                        help="read bpftool's output (text or -j) from stdin")
    parser.add_argument("--key", metavar="HEX", help="key bytes, e.g. '40 00 00 00 …'")
    parser.add_argument("--value", metavar="HEX", help="value bytes")
    parser.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    parser.add_argument("-v", "--verbose", action="store_true", help="say which layout was chosen and why")
    args = parser.parse_args(argv[1:])
    from tshoot.core.bpftool import parse_hex, parse_output
    from tshoot.mapio.decode import decode_entry
    from tshoot.cli import render

    if args.stdin and (args.key or args.value):
        raise UsageError("give either '-' (bpftool output on stdin) or --key/--value, not both")
    if args.stdin:
        entries = parse_output(_stdin_text())
    elif args.key or args.value:
        entries = [(parse_hex(args.key, "--key") if args.key else None,
                    parse_hex(args.value, "--value") if args.value else None)]
    else:
        raise UsageError("nothing to decode: give --key HEX, --value HEX, or '-' to read bpftool output from stdin")
    if cmap.per_cpu:  # bpftool prints a per-CPU map's value per CPU: decoded as their sum
        entries = [(key, cmap.fold_cpus(value) if value is not None else None) for key, value in entries]
    version = versions.parse(args.cilium_version) if args.cilium_version else None
    if version:
        cmap.check_name(argv[0], version)
    within = None if version else cmap.pinned_versions(argv[0])  # a pinned name says which versions it can be
    decoded = [decode_entry(cmap, key, value, version, within=within) for key, value in entries]
    if args.verbose:
        for _, dkey, dvalue in decoded:
            for which, d in (("key", dkey), ("value", dvalue)):
                if d:
                    print(f"tshoot: {which} layout: {d.reason}", file=sys.stderr)
    if args.output != "table":
        objs = [obj for obj, _, _ in decoded]
        print(render.dump(objs[0] if len(objs) == 1 else objs, args.output))
        return 0
    color = render.use_color()
    blocks = []
    for (obj, dkey, dvalue), (key, value) in zip(decoded, entries):
        parts = []
        for which, data, d in (("key", key, dkey), ("value", value, dvalue)):
            if d:
                parts.append(render.annotated(which, data, d, color))
                parts.append(render.fields_line(d.fields))
        blocks.append("\n".join(parts))
    print("\n\n".join(blocks))
    return 0


def _stdin_text() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"standard input is not text (byte {exc.start} is {data[exc.start]:#04x}): pipe bpftool's "
                         f"output, e.g. bpftool map lookup … | tshoot decode ipcache -") from None
