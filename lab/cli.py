"""The `lab` typer app: parsing and printing only; the work is in the modules of this package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tshoot.cli.app import app as tshoot_app
from tshoot.core.command import Context, Kubeconfig, Output, check_output, console, new_app
from tshoot.core.duration import parse_duration

app = new_app("lab", help="The kind + Cilium networking lab: bring it up, inspect it, clean it up. The guide's "
                          "sequence, in this order, is what 'make lab' runs.\n\nExamples:\n\n"
                          "  lab up\n  lab cilium install\n  lab cilium wait\n  lab nuke pods\n"
                          "  lab nuke kube-proxy\n  lab cilium wait\n  lab cilium check")
app.add_typer(tshoot_app, name="tshoot", help="The tshoot commands (the same as the 'tshoot' program).")
cilium_app = new_app("cilium", help="Install Cilium in the lab, wait for it, check it, restart it, unhook it.")
app.add_typer(cilium_app, name="cilium")

# --- options shared by the commands that describe the lab ----------------------------------------------
Name = Annotated[str, typer.Option("--name", envvar="KIND_CLUSTER_NAME", metavar="NAME",
                                   help="kind cluster name (nodes are NAME-control-plane, NAME-worker, …)")]
CiliumVersion = Annotated[Optional[str], typer.Option(
    "--cilium-version", envvar="CILIUM_VERSION", metavar="X.Y[.Z]",
    help="Cilium release: 1.19.4 (default), 1.18.3 or 1.16.15 (the templates pin their images)")]
Workers = Annotated[int, typer.Option("--workers", metavar="N", help="worker nodes")]
KubeProxyMode = Annotated[str, typer.Option("--kube-proxy-mode", metavar="MODE",
                                            help="iptables (the guide removes it later), ipvs, nftables or none")]
PodSubnet = Annotated[str, typer.Option("--pod-subnet", metavar="CIDR", help="pod addresses (kind's podSubnet)")]
ServiceSubnet = Annotated[str, typer.Option("--service-subnet", metavar="CIDR", help="ClusterIP range")]
NodeImage = Annotated[Optional[str], typer.Option(
    "--node-image", metavar="IMAGE@sha256:…", help="another kind node image, pinned by digest")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print exactly the actions it would take, take none")]
Timeout = Annotated[str, typer.Option("--timeout", metavar="DURATION",
                                      help="give up after this long (15m survives slow first image pulls)")]
Interval = Annotated[str, typer.Option("--interval", metavar="DURATION", hidden=True, help="time between polls")]


def _spec(name, cilium_version, workers=2, kube_proxy_mode="iptables", pod_subnet=None, service_subnet=None,
          node_image=None):
    from .kind import DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, ClusterSpec
    from .releases import release

    return ClusterSpec(name=name, workers=workers, kube_proxy_mode=kube_proxy_mode,
                       pod_subnet=pod_subnet or DEFAULT_POD_SUBNET, service_subnet=service_subnet or DEFAULT_SERVICE_SUBNET,
                       cilium=release(cilium_version), node_image_override=node_image)


def _warn(lines) -> None:
    err = console(stderr=True)
    for line in lines:
        err.print(f"[yellow]warning:[/] {line}")


def _print_data(data, fmt: str) -> None:
    from tshoot.cli.render import dump

    typer.echo(dump(data, fmt))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console().print(table)


STATUS_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


# --- the cluster -------------------------------------------------------------------------------------

@app.command(help="Create the kind cluster (reused when it exists and is healthy) and write ./kubeconfig.\n\n"
                  "Examples:\n\n  lab up\n\n  lab up --kube-proxy-mode none --pod-subnet 10.200.0.0/16")
def up(name: Name = "k8s-guide", cilium_version: CiliumVersion = None, workers: Workers = 2,
       kube_proxy_mode: KubeProxyMode = "iptables", pod_subnet: PodSubnet = "", service_subnet: ServiceSubnet = "",
       node_image: NodeImage = None,
       kubeconfig: Annotated[Path, typer.Option("--kubeconfig", metavar="PATH",
                                                help="kubeconfig file kind writes")] = Path("kubeconfig")) -> None:
    from .lifecycle import up as bring_up

    spec = _spec(name, cilium_version, workers, kube_proxy_mode, pod_subnet, service_subnet, node_image)
    _warn(spec.warnings())
    outcome = bring_up(spec, kubeconfig.absolute())
    typer.echo(outcome.message)


@app.command(help="Delete the kind cluster (after detaching Cilium's cgroup programs from the host).\n\n"
                  "Examples:\n\n  lab down\n\n  lab down --dry-run")
def down(name: Name = "k8s-guide", dry_run: DryRun = False,
         unhook: Annotated[bool, typer.Option("--unhook/--no-unhook",
                                              help="run cilium-unhook first (the guide's advice)")] = True,
         kubeconfig: Annotated[Path, typer.Option("--kubeconfig", metavar="PATH",
                                                  help="kubeconfig kind removes the lab's context from")]
         = Path("kubeconfig")) -> None:
    from .lifecycle import down as tear_down

    for outcome in tear_down(name, kubeconfig.absolute(), dry_run=dry_run, unhook=unhook):
        typer.echo(outcome.message)


@app.command(help="The lab at a glance: kind cluster, node containers, API server, nodes, Cilium, net-tshoot.\n\n"
                  "Examples:\n\n  lab status\n\n  lab status -o json")
def status(name: Name = "k8s-guide", kubeconfig: Kubeconfig = None, context: Context = None,
           output: Output = "table") -> None:
    from .status import collect

    fmt = check_output(output)
    report = collect(name, kubeconfig, context)
    if fmt != "table":
        _print_data(report.to_dict(), fmt)
    else:
        _table(f"lab {name}", ["part", "state", "detail"],
               [[part.name, STATUS_STYLE.get(part.state, part.state), part.detail] for part in report.parts])
    raise typer.Exit(0 if report.healthy else 1)


@app.command(help="Print exactly what would be created or applied, nothing else: the kind config, or the\n"
                  "manifests as one multi-document YAML stream (--helm: the chart values instead).\n\n"
                  "Examples:\n\n  lab render kind > kind.yaml\n\n  lab render cilium --cilium-version 1.18 | "
                  "kubectl apply --server-side -f -\n\n  lab render tshoot")
def render(what: Annotated[str, typer.Argument(metavar="kind|cilium|tshoot")],
           name: Name = "k8s-guide", cilium_version: CiliumVersion = None, workers: Workers = 2,
           kube_proxy_mode: KubeProxyMode = "iptables", pod_subnet: PodSubnet = "",
           service_subnet: ServiceSubnet = "", node_image: NodeImage = None,
           helm: Annotated[bool, typer.Option("--helm", help="cilium: the Helm values 'lab cilium install --helm' "
                                                            "passes to the official chart")] = False) -> None:
    from .manifests import Target, render_cilium, render_tshoot

    if what not in ("kind", "cilium", "tshoot"):
        raise typer.BadParameter(f"{what!r}: render kind, cilium or tshoot", param_hint="'WHAT'")
    spec = _spec(name, cilium_version, workers, kube_proxy_mode, pod_subnet, service_subnet, node_image)
    _warn(spec.warnings())
    target = Target(spec.name, spec.cilium)
    if what == "kind":
        from .kind import render_config

        text = render_config(spec)
    elif what == "cilium" and helm:
        from .helm import render_values

        text = render_values(target)
    else:
        text = render_cilium(target) if what == "cilium" else render_tshoot(target)
    typer.echo(text, nl=False)


# --- Cilium ------------------------------------------------------------------------------------------

@cilium_app.command("install", help="Apply Cilium (VXLAN, kube-proxy replacement, BPF masquerade) and the "
                                    "net-tshoot DaemonSet by server-side apply; --helm installs the official "
                                    "chart instead.\n\nExamples:\n\n  lab cilium install\n\n"
                                    "  lab cilium install --cilium-version 1.18 --helm")
def cilium_install(name: Name = "k8s-guide", cilium_version: CiliumVersion = None, kubeconfig: Kubeconfig = None,
                   context: Context = None, dry_run: DryRun = False,
                   helm: Annotated[bool, typer.Option("--helm", help="install Cilium with the official Helm "
                                                                    "chart (helm on PATH)")] = False) -> None:
    from .cilium import install
    from .manifests import Target
    from .releases import release

    target = Target(name, release(cilium_version))
    for line in install(target, kubeconfig, context, helm=helm, dry_run=dry_run):
        typer.echo(line)


def _wait_display():
    """A live per-node table on a terminal; one line per change otherwise (logs, CI, make)."""
    from .progress import WaitDisplay

    return WaitDisplay(console(stderr=True))


@cilium_app.command("wait", help="Wait until the Cilium agent on every node is ready, showing per node: "
                                 "scheduled, image pulled, init done, ready.\n\nExamples:\n\n"
                                 "  lab cilium wait\n\n  lab cilium wait --timeout 30m")
def cilium_wait(kubeconfig: Kubeconfig = None, context: Context = None, timeout: Timeout = "15m",
                interval: Interval = "2s") -> None:
    from .cilium import wait_ready

    seconds = parse_duration(timeout)
    with _wait_display() as display:
        message = wait_ready(kubeconfig, context, seconds, show=display.update,
                             interval=parse_duration(interval, "--interval"))
    typer.echo(message)


@cilium_app.command("check", help="Run 'cilium-dbg status' in every agent and show one table: health daemon, "
                                  "controllers, cluster health, kube-proxy replacement. Exit 1 when any is "
                                  "unhealthy.\n\nExamples:\n\n  lab cilium check\n\n  lab cilium check -o json")
def cilium_check(kubeconfig: Kubeconfig = None, context: Context = None, output: Output = "table") -> None:
    from .cilium import check

    fmt = check_output(output)
    statuses = check(kubeconfig, context)
    if fmt != "table":
        _print_data([s.to_dict() for s in statuses], fmt)
    else:
        def ratio(pair, word):
            return f"{pair[0]}/{pair[1]} {word}" if pair else "-"

        _table("cilium status per agent", ["node", "agent", "health daemon", "controllers", "cluster health",
                                           "KubeProxyReplacement", "problems"],
               [[s.node, s.pod, s.health_daemon or "-", ratio(s.controllers, "healthy"),
                 ratio(s.cluster_health, "reachable") if s.cluster_health else (s.cluster_health_text or "-"),
                 s.kube_proxy_replacement or "-",
                 "[green]none[/]" if s.healthy else f"[red]{'; '.join(s.problems())}[/]"] for s in statuses])
    raise typer.Exit(0 if all(s.healthy for s in statuses) else 1)


@cilium_app.command("restart", help="Restart the Cilium agents (a rolling restart of the DaemonSet, like "
                                    "kubectl rollout restart) and wait for them.\n\nExamples:\n\n"
                                    "  lab cilium restart")
def cilium_restart(name: Name = "k8s-guide", kubeconfig: Kubeconfig = None, context: Context = None,
                   timeout: Timeout = "15m", interval: Interval = "2s") -> None:
    from .cilium import restart

    seconds = parse_duration(timeout)
    with _wait_display() as display:
        message = restart(name, kubeconfig, context, seconds, show=display.update,
                          interval=parse_duration(interval, "--interval"))
    typer.echo(message)


# --- the guide's helpers -----------------------------------------------------------------------------

@app.command(help="A shell in the net-tshoot pod on NODE: the guide's `NODE=k8s-guide-worker2 make tshoot`.\n\n"
                  "It runs `kubectl exec -it` for the terminal (the API's exec stream without a TTY would lose "
                  "job control and line editing).\n\nExamples:\n\n  lab shell --node k8s-guide-worker2\n\n"
                  "  lab shell --node k8s-guide-worker -- ip -4 -br addr show dev eth0")
def shell(node: Annotated[str, typer.Option("--node", envvar="NODE", metavar="NODE", help="node name")],
          command: Annotated[Optional[list[str]], typer.Argument(metavar="[-- COMMAND…]",
                                                                 help="run this instead of bash")] = None,
          kubeconfig: Kubeconfig = None, context: Context = None) -> None:
    from .shell import run_shell

    raise typer.Exit(run_shell(node, command or ["bash"], kubeconfig, context))


@app.command(help="Check this machine for the lab: docker, kind, kubectl, helm, inotify limits, cgroup v2 and\n"
                  "cgroup namespaces, bpffs, kernel and BTF, subnets against host routes. Exit 1 on any fail.\n\n"
                  "Examples:\n\n  lab doctor\n\n  lab doctor --pod-subnet 10.200.0.0/16 -o json")
def doctor(name: Name = "k8s-guide", cilium_version: CiliumVersion = None, pod_subnet: PodSubnet = "",
           service_subnet: ServiceSubnet = "", output: Output = "table") -> None:
    from .doctor import FAIL, run

    fmt = check_output(output)
    checks = run(_spec(name, cilium_version, pod_subnet=pod_subnet, service_subnet=service_subnet))
    if fmt != "table":
        _print_data([c.to_dict() for c in checks], fmt)
    else:
        _table("lab doctor", ["check", "status", "detail"], [[c.name, STATUS_STYLE[c.status], c.detail] for c in checks])
        fixes = [c for c in checks if c.fix]
        if fixes:
            out = console()
            out.print("\nto fix:")
            for c in fixes:
                out.print(f"  {c.name}: {c.fix}")
    raise typer.Exit(1 if any(c.status == FAIL for c in checks) else 0)


# --- clean-up: lab nuke kube-proxy | pods, lab cilium unhook -----------------------------------
# Every command proves it targets the lab (lab/guard.py) before anything else; the work is in lab/cleanup.py.

nuke_app = new_app("nuke", help="Remove what the guide replaces with Cilium: kube-proxy, and every pod's old network.")
app.add_typer(nuke_app, name="nuke")


@nuke_app.command("kube-proxy")
def nuke_kube_proxy(kubeconfig: Kubeconfig = None, context: Context = None, name: Name = "k8s-guide",
                    dry_run: DryRun = False,
                    timeout: Annotated[str, typer.Option(metavar="DURATION", help="how long to wait for kube-proxy pods "
                                                         "to go (90, 2m, 1m30s)")] = "2m"):
    """Delete kube-proxy (DaemonSet, ConfigMap) and what it left on every node: KUBE-* iptables chains, and more.

    IPv4 and IPv6, nft and legacy backends, all nodes at once; only KUBE-* chains and the rules that jump to them go, and kube-proxy's own tables of its nftables mode (ip and ip6 kube-proxy) and interface of its ipvs mode (kube-ipvs0); every other rule stays as it was. Running it again changes nothing.

    Examples:

      lab nuke kube-proxy --dry-run

      lab nuke kube-proxy --name k8s-guide --context kind-k8s-guide
    """
    from .cleanup import kube_proxy

    raise typer.Exit(kube_proxy(name, kubeconfig, context, dry_run, parse_duration(timeout)))


@nuke_app.command("pods")
def nuke_pods(kubeconfig: Kubeconfig = None, context: Context = None, name: Name = "k8s-guide",
              dry_run: DryRun = False,
              include_cni: Annotated[bool, typer.Option("--include-cni", help="restart the CNI's agents too")] = False,
              timeout: Annotated[str, typer.Option(metavar="DURATION", help="how long to wait for the pods to be "
                                                   "back (600, 10m, 1m30s)")] = "5m"):
    """Restart every pod (all namespaces) so it gets its network from the new CNI, and wait until they are back.

    The CNI's own agents, finished pods, static pods and pods no controller would recreate are left alone (and listed). Stragglers are named when --timeout runs out (exit 1).

    Examples:

      lab nuke pods --dry-run

      lab nuke pods --timeout 600
    """
    from .cleanup import all_pods

    raise typer.Exit(all_pods(name, kubeconfig, context, dry_run, include_cni, parse_duration(timeout)))


def cilium_unhook(kubeconfig: Kubeconfig = None, context: Context = None, name: Name = "k8s-guide",
                  dry_run: DryRun = False,
                  via: Annotated[str, typer.Option(help="auto: the node's Cilium agent when one runs, else docker; "
                                                        "agent; docker (needs root)")] = "auto"):
    """Detach Cilium's socket-LB programs (cil_sock*) from every node's cgroup root and remove their link pins.

    Every program that is not Cilium's stays attached; the cgroup is listed again afterwards to prove it. Do this before deleting the lab (lab down offers it).

    Examples:

      lab cilium unhook --dry-run

      sudo lab cilium unhook --via docker
    """
    from tshoot.core.errors import UsageError

    from .cleanup import cilium_unhook as unhook

    if via not in ("auto", "agent", "docker"):
        raise UsageError(f"--via {via!r}: use auto, agent or docker")
    raise typer.Exit(unhook(name, kubeconfig, context, dry_run, via))


cilium_app.command("unhook")(cilium_unhook)


# --- lab check: the lab forwards ----------------------------------------------------------------------------

check_app = new_app("check", help="Check that the lab forwards: the guide's paths with real packets.")
app.add_typer(check_app, name="check")


@check_app.command("connectivity")
def check_connectivity(
        kubeconfig: Kubeconfig = None, context: Context = None, output: Output = "table",
        name: Name = "k8s-guide",
        timeout: Annotated[str, typer.Option("--timeout", metavar="DURATION",
                                             help="how long each probe waits for its answer")] = "2s",
        world: Annotated[str, typer.Option("--world", metavar="docker|none|IP:PORT",
                                           help="the pod → world target: docker starts one on kind's network and "
                                                "removes it; IP:PORT is an existing UDP target that answers with the "
                                                "sender's address; none skips those rows")] = "docker",
        parallel: Annotated[int, typer.Option("--parallel", min=1, max=64, metavar="N",
                                              help="probes at once (default 8)")] = 8) -> None:
    """The guide's paths as a matrix, from the net-tshoot pods (API exec), in seconds; every failure walked.

    Rows: pod → pod on the same node and on every other node (ICMP, TCP), pod → ClusterIP Service, pod → NodePort on every node, node → pod (TCP), pod → world (ICMP, and UDP: masqueraded or not), DNS (the Service's name through the cluster DNS). Each row gives source, destination, path, result and latency, printed as it finishes. For each failed row, `tshoot walk` for its source and destination says where the path stops and how to reproduce it by hand; run as root on the kind host, a retry of the probe is traced (`tshoot trace`) and the explanation says where the real packet was last seen. Exit 0 when every row passes, 1 otherwise.

    Examples:

      lab check connectivity

      lab check connectivity -o json

      lab check connectivity --world none --timeout 5s
    """
    from .connectivity import DockerWorld, FixedWorld, check

    fmt = check_output(output)
    wait = parse_duration(timeout)
    if world == "docker":
        target = DockerWorld(name)
    elif world == "none":
        target = None
    else:
        from tshoot.core.addr import parse_endpoint, show_ip

        _, raw, port, _ = parse_endpoint(world)
        target = FixedWorld(show_ip(raw), port)
    out = console()
    widths: dict[str, int] = {}
    columns = ("source", "destination", "path", "proto")

    def cells(probe) -> list[str]:
        return [probe.source.shown, probe.destination, probe.path, probe.protocol]

    def on_plan(probes) -> None:
        for i, column in enumerate(columns):
            widths[column] = max([len(column)] + [len(cells(p)[i]) for p in probes])
        out.print("  ".join(c.upper().ljust(widths[c]) for c in columns) + "  RESULT  LATENCY   DETAIL",
                  style="bold", markup=False)

    def on_row(row) -> None:
        latency = f"{row.latency_ms:.2f}ms" if row.latency_ms is not None else "-"
        line = "  ".join(v.ljust(widths[c]) for c, v in zip(columns, cells(row.probe)))
        result = "[green]pass[/]  " if row.ok else "[red]FAIL[/]  "
        out.print(f"{_escape(line)}  {result}  {latency:<8}  {_escape(row.detail)}")

    live = {"on_plan": on_plan, "on_row": on_row} if fmt == "table" else {}  # json/yaml: one document at the end
    report = check(kubeconfig, context, target, wait, parallel, **live)
    if fmt != "table":
        _print_data(report.to_dict(), fmt)
        raise typer.Exit(0 if report.passed else 1)
    failed = [r for r in report.rows if not r.ok]
    out.print(f"\n{len(report.rows) - len(failed)}/{len(report.rows)} passed in {report.seconds:.1f}s")
    for note in report.notes:
        out.print(f"note: {_escape(note)}")
    for row in failed:
        p, why = row.probe, row.explanation
        out.print(f"\n[red]✗[/] {_escape(p.source.shown)} → {_escape(p.destination)}, {p.path} ({p.protocol}): "
                  f"{_escape(row.detail)}")
        if why is None:
            continue
        if why.step:
            out.print(f"  walk {why.verdict} at step {why.step['step']} ({_escape(why.step['title'])})"
                      + (f" on {why.step['node']}" if why.step["node"] else "") + ":")
        if why.reason:
            out.print(f"    {_escape(why.reason)}")
        for finding in why.findings:
            out.print(f"  - {_escape(finding)}")
        out.print("  by hand:")
        for command in why.commands:
            out.print(f"    {command}", markup=False)
    raise typer.Exit(0 if report.passed else 1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
