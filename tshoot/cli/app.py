"""The `tshoot` typer app: every command group, each defined in its own module of this package."""

from __future__ import annotations

import typer

from tshoot.cli import catalog, drops, maps, trace, walk
from tshoot.core.command import new_app, run
from tshoot.cli.net import cgroup_app, net_app, prog_app
from tshoot.cli.objects import register as register_objects

app = new_app(
    "tshoot",
    help="Inspect Cilium's BPF datapath: build map keys, decode map bytes, read maps on any node.\n\n"
    "Examples:\n\n"
    "  tshoot key ipcache 10.244.1.5                       # the lab's pods are in 10.244.0.0/16\n"
    "  tshoot decode ipcache --value 'e3 d1 00 00 ac 12 00 05 00 00 00 00'\n"
    "  tshoot map lookup ipcache 10.244.1.5 --node k8s-guide-worker\n"
    "  tshoot walk POD 10.96.0.10:53/udp                   # a pod to the lab's DNS Service",
)

_FORWARD = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@app.command(context_settings=_FORWARD, add_help_option=False,
             help="Build a map key as bpftool takes it: tshoot key ipcache 10.244.1.5 [--bpftool]. "
                  "See 'tshoot key MAP --help'.")
def key(ctx: typer.Context) -> None:
    from tshoot.cli.offline import run as offline

    raise typer.Exit(offline(["key", *ctx.args]))


@app.command(context_settings=_FORWARD, add_help_option=False,
             help="Decode map bytes (--key/--value HEX, or bpftool output on stdin with '-'). "
                  "See 'tshoot decode MAP --help'.")
def decode(ctx: typer.Context) -> None:
    from tshoot.cli.offline import run as offline

    raise typer.Exit(offline(["decode", *ctx.args]))


register_objects(app)  # endpoints, endpoint, identity, nodes, whois
app.add_typer(net_app)
app.add_typer(prog_app)
app.add_typer(cgroup_app)
app.command(name="maps")(catalog.maps)
maps.register(app)
walk.register(app)
drops.register(app)
trace.register(app)


def main(argv: list[str] | None = None) -> int:
    return run(app, argv, "tshoot")
