"""`tshoot net show`, `tshoot prog show`, `tshoot cgroup show`: parse, pick the backend (tshoot.node.choice),
ask the nodes (tshoot.node.fanout), print. The work is in tshoot.inspect.hooks_local and hooks_agent (the two
backends), tshoot.inspect.netshow and tshoot.inspect.programs (models, bpftool layouts)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tshoot.cli.options import (NODE_TIMEOUT_DEFAULT, PARALLEL_DEFAULT, AllNodes, Backend, Node, NodeTimeout,
                                Parallel)
from tshoot.core.command import Context, Kubeconfig, Output, Verbose, check_output, console, new_app
from tshoot.core.duration import parse_duration
from tshoot.core.errors import UsageError
from tshoot.node.choice import choose_backend
Bpffs = Annotated[Optional[str], typer.Option("--bpffs", metavar="DIR",
                                              help="bpffs to find pinned links in (local; default /sys/fs/bpf "
                                                   "when it is one)")]

net_app = new_app("net", help="BPF hooks on network interfaces.")
prog_app = new_app("prog", help="BPF programs.")
cgroup_app = new_app("cgroup", help="BPF programs attached to cgroups.")

NET_EPILOG = """Examples:

  tshoot net show --node k8s-guide-worker2         # bpftool net show, pods named

  tshoot net show --node k8s-guide-worker2 --raw   # bpftool's own lines

  tshoot net show --all-nodes -o json

  sudo tshoot net show --netns NAME                # this machine, one namespace
"""


@net_app.command("show", epilog=NET_EPILOG)
def net_show(
    node: Node = None, all_nodes: AllNodes = False,
    netns: Annotated[Optional[str], typer.Option("--netns", metavar="NAME",
                                                 help="a network namespace of this machine (local backend)")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="bpftool's own layout ('bpftool net show', or -j with -o json)")]
    = False,
    backend: Backend = "auto", bpffs: Bpffs = None, output: Output = "table",
    kubeconfig: Kubeconfig = None, context: Context = None, verbose: Verbose = False,
    timeout: NodeTimeout = NODE_TIMEOUT_DEFAULT, parallel: Parallel = PARALLEL_DEFAULT,
) -> None:
    """Every XDP, tcx and tc program on every interface, and what each interface serves (pod, cilium_host,
    overlay, uplink). With a cluster: every node's (or --node's)."""
    from tshoot.node.fanout import fan_out, failures, succeeded

    fmt = check_output(output)
    seconds = parse_duration(timeout)
    local_only = "--netns" if netns else "--bpffs" if bpffs else None
    chosen = choose_backend(backend, node, all_nodes, kubeconfig, local_only)
    if chosen == "local":
        from tshoot.inspect import hooks_local as local

        results = [local.net_show(netns, bpffs)]
        several = False
    else:
        from tshoot.inspect import hooks_agent as pod

        cluster = pod.connect(kubeconfig, context, seconds)
        names = pod.nodes(cluster, node)
        from tshoot.cli.progress import Progress

        with Progress(len(names)) as progress:
            results = fan_out(names, lambda name: pod.net_show(cluster, name), parallel, progress)
        several = not node
    failed = failures(results)
    if failed and not several:
        raise failed[0]
    shows = succeeded(results)
    if verbose:
        console(stderr=True).print(f"backend: {chosen}" + (f", nodes: {', '.join(s.node or '' for s in shows)}"
                                                            if chosen == "pod" else ""), style="dim")
    if shows:
        _print_shows(shows, fmt, raw, several=several)
    _report(failed)


def _report(failed) -> None:
    """Each node that failed on its own line (tshoot.node.fanout.NodeFailure.line); exit 1 when any did."""
    err = console(stderr=True)
    for failure in failed:
        err.print(f"tshoot: {failure.line()}", markup=False, highlight=False)
    raise typer.Exit(1 if failed else 0)


def _print_shows(shows, fmt: str, raw: bool, several: bool) -> None:
    from tshoot.cli.render import compact_json, dump
    from tshoot.inspect import netshow

    if raw and fmt == "table":
        for show in shows:
            if several:
                print(f"# node {show.node}")
            print(netshow.bpftool_text(show), end="")
    elif raw:
        data = {s.node: netshow.bpftool_json(s) for s in shows} if several else netshow.bpftool_json(shows[0])
        print(dump(data, fmt) if fmt == "yaml" else compact_json(data))
    elif fmt != "table":
        data = [s.to_dict() for s in shows] if several else shows[0].to_dict() if shows else {}
        print(dump(data, fmt))
    else:
        _net_table(shows, several)


def _net_table(shows, several: bool) -> None:
    from tshoot.cli.render import print_table

    stats = any(h.run_count is not None for show in shows for i in show.interfaces for h in i.hooks)
    columns = (["NODE"] if several else []) + ["IFINDEX", "INTERFACE", "SERVES", "HOOK", "PROG ID", "PROGRAM",
                                               "SECTION", "TAG", "LINK"] + (["RUNS", "NS/RUN"] if stats else [])
    no_runs = [""] * 2 if stats else []
    rows = []
    for show in shows:
        for interface in show.shown():
            first = ([show.node or ""] if several else []) + [str(interface.ifindex), interface.name,
                                                              interface.serves or "-"]
            blank = [""] * len(first)
            if not interface.hooks:
                none = "no BPF hook" if show.tcx_visible else "no tc/XDP hook (tcx: see note)"
                rows.append([*first, none, "", "", "", "", "", *no_runs])
            for n, hook in enumerate(interface.hooks):
                where = f"{hook.hook} {hook.direction or hook.attach}"
                runs = [] if not stats else ["-", "-"] if hook.run_count is None else [
                    str(hook.run_count), str(hook.run_time_ns // hook.run_count) if hook.run_count else "-"]
                rows.append([*(first if n == 0 else blank), where, str(hook.prog_id), hook.prog_name or "?",
                             hook.section or "-", hook.tag or "-", str(hook.link_id) if hook.link_id else "-", *runs])
        if show.flow_dissector:
            hook = show.flow_dissector
            rows.append([*([show.node or ""] if several else []), "", "-", "the network namespace", "flow_dissector",
                         str(hook.prog_id), hook.prog_name or "?", "-", hook.tag or "-", "-", *no_runs])
    print_table(columns, rows, right=("IFINDEX", "PROG ID", "LINK", "RUNS", "NS/RUN"))
    from tshoot.inspect.programs import STATS_UNSAID

    err = console(stderr=True)
    if not stats and any(show.backend == "pod" for show in shows):
        err.print(f"note: {STATS_UNSAID}", style="dim")
    for show in shows:
        for note in show.notes:
            err.print(f"note{f' ({show.node})' if several else ''}: {note}", style="dim")


# --- prog show ------------------------------------------------------------------------------------------

PROG_EPILOG = """Examples:

  tshoot prog show 2895 --node k8s-guide-worker2   # bpftool prog show id 2895, maps named

  sudo tshoot prog show 115 -o json
"""


@prog_app.command("show", epilog=PROG_EPILOG)
def prog_show(
    prog_id: Annotated[int, typer.Argument(metavar="ID", help="program id (bpftool net show prints it)", min=1)],
    node: Node = None, backend: Backend = "auto", bpffs: Bpffs = None, output: Output = "table",
    kubeconfig: Kubeconfig = None, context: Context = None, timeout: NodeTimeout = NODE_TIMEOUT_DEFAULT,
) -> None:
    """A program's type, tag, load time, sizes, run count and time (with the kernel's BPF statistics on) and
    maps (by their pinned names where pinned). Program ids are per node: with a cluster, give --node."""
    fmt = check_output(output)
    seconds = parse_duration(timeout)
    if choose_backend(backend, node, kubeconfig=kubeconfig, one_node=True) == "local":
        from tshoot.inspect import hooks_local as local

        program = local.prog_show(prog_id, bpffs)
    else:
        if bpffs:
            raise UsageError("--bpffs is for the local backend (the agent's bpftool finds pins itself)")
        from tshoot.inspect import hooks_agent as pod

        program = pod.prog_show(pod.connect(kubeconfig, context, seconds), node, prog_id)
    if fmt != "table":
        from tshoot.cli.render import dump

        print(dump(program.to_dict(), fmt))
        return
    from rich.table import Table

    out = console()
    facts = Table.grid(padding=(0, 2))
    for label, value in (
        ("program", f"{program.id} {program.name}"), ("type", program.type), ("tag", program.tag),
        ("license", "GPL-compatible" if program.gpl else "not GPL-compatible"),
        ("loaded at", f"{program.loaded_at_text} by uid {program.uid}"),
        ("size", f"xlated {program.xlated} B, jited {program.jited} B"
                 + (f", memlock {program.memlock} B" if program.memlock is not None else "")),
        ("btf id", str(program.btf_id or "-")),
        ("runs", _runs(program.run_count, program.run_time_ns)),
    ):
        facts.add_row(f"[bold]{label}[/bold]", value)
    out.print(facts)
    if program.maps:
        from tshoot.cli.render import print_table

        out.print()
        print_table(["MAP ID", "NAME", "TYPE"],
                    [[str(ref.id), ref.pinned or ref.name or "?", ref.type or "?"] for ref in program.maps],
                    right=("MAP ID",))
    for note in program.notes:
        console(stderr=True).print(f"note: {note}", style="dim")


def _runs(count: int | None, time_ns: int | None) -> str:
    """Run count and time as the kernel's BPF statistics count them ("-" when they are off)."""
    if count is None:
        return "- (kernel BPF statistics off)"
    return f"{count} runs, {time_ns} ns" + (f" ({time_ns // count} ns per run)" if count else "")


# --- cgroup show ----------------------------------------------------------------------------------------

CGROUP_EPILOG = """Examples:

  tshoot cgroup show --node k8s-guide-worker2      # Cilium's socket-LB programs

  sudo tshoot cgroup show /sys/fs/cgroup/unified/mygroup --tree -o yaml
"""


@cgroup_app.command("show", epilog=CGROUP_EPILOG)
def cgroup_show(
    path: Annotated[Optional[str], typer.Argument(metavar="[PATH]", help="cgroup v2 directory "
                                                  "(default: Cilium's /run/cilium/cgroupv2)")] = None,
    tree: Annotated[bool, typer.Option("--tree", help="every cgroup below PATH that has programs")] = False,
    effective: Annotated[bool, typer.Option("--effective", help="programs in effect (inherited ones too)")] = False,
    node: Node = None, backend: Backend = "auto", bpffs: Bpffs = None, output: Output = "table",
    kubeconfig: Kubeconfig = None, context: Context = None, timeout: NodeTimeout = NODE_TIMEOUT_DEFAULT,
) -> None:
    """Attach type, program, flags and link (with its pinned path) of every program on a cgroup. Cgroups
    are per node: with a cluster, give --node."""
    from tshoot.inspect.programs import CILIUM_CGROUP_ROOT

    fmt = check_output(output)
    seconds = parse_duration(timeout)
    root = path or CILIUM_CGROUP_ROOT
    if choose_backend(backend, node, kubeconfig=kubeconfig, one_node=True) == "local":
        from tshoot.inspect import hooks_local as local

        show = local.cgroup_show(root, effective=effective, tree=tree, bpffs=bpffs)
    else:
        if bpffs:
            raise UsageError("--bpffs is for the local backend (the agent's bpftool finds pins itself)")
        from tshoot.inspect import hooks_agent as pod

        show = pod.cgroup_show(pod.connect(kubeconfig, context, seconds), node, root, effective=effective, tree=tree)
    if fmt != "table":
        from tshoot.cli.render import dump

        print(dump(show.to_dict(), fmt))
        return
    from tshoot.cli.render import print_table

    rows = [[cgroup.path if n == 0 else "", attachment.attach_type, str(attachment.prog_id), attachment.prog_name or "?",
             attachment.flags or "-", str(attachment.link_id) if attachment.link_id else "-",
             ", ".join(attachment.pinned) or "-"]
            for cgroup in show.cgroups for n, attachment in enumerate(cgroup.attachments)]
    if rows:
        print_table(["CGROUP", "ATTACH TYPE", "PROG ID", "PROGRAM", "FLAGS", "LINK", "PINNED"], rows,
                    right=("PROG ID", "LINK"))
    else:
        console().print(f"no BPF programs attached to {root}" + (" or below" if tree else ""))
    for note in show.notes:
        console(stderr=True).print(f"note: {note}", style="dim")
