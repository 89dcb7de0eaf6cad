"""The clean-up commands end to end: prove the target is the lab, act (or plan), show what happened.

Each returns the exit code: 0 done (or nothing to do), 1 something failed (per node or per pod, with the
reason shown). A target that is not provably the lab never gets here: lab.guard.prove raises Refusal
(exit 2) before anything is read from the API server or written anywhere.
"""

from __future__ import annotations

from tshoot.core.command import console

from . import guard, kubeproxy, pods, unhook


def _progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=console(stderr=True), transient=True)


def _table(*columns: str):
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _target(out, lab: guard.Lab, dry_run: bool) -> None:
    out.print(f"lab {lab.cluster}: context {lab.context} -> {lab.server} (published by {lab.api_container.name}), "
              f"{len(lab.nodes)} nodes")
    if dry_run:
        out.print("[bold]dry run[/]: these are the exact actions; none is taken")


def kube_proxy(cluster: str, kubeconfig: str | None, context: str | None, dry_run: bool, timeout: float) -> int:
    lab = guard.prove(cluster, kubeconfig, context)
    out = console()
    _target(out, lab, dry_run)
    api = lab.api_client()
    objects = kubeproxy.remove_objects(api, dry_run)
    for obj in objects:
        verb = {"deleted": "deleted", "absent": "already absent", "would delete": "would delete"}[obj.state]
        out.print(f"{obj.kind} {obj.name}: {verb}")
    if not dry_run:
        with _progress() as progress:
            task = progress.add_task("waiting for kube-proxy pods to terminate")
            left = kubeproxy.wait_pods_gone(api, timeout, on_count=lambda n: progress.update(
                task, description=f"waiting for {n} kube-proxy pod(s) to terminate"))
        if left:
            out.print(f"[red]kube-proxy pods still running after {timeout:g}s: {', '.join(left)}; their rules would "
                      f"come back, so no node was touched (run again once they are gone)[/]")
            return 1
    with _progress() as progress:
        tasks = {c.name: progress.add_task(f"{c.name}: connecting") for c in lab.nodes}
        # kube-proxy in iptables or ipvs mode deletes its nftables tables as it starts (platformCleanup): they
        # are only looked for when it ran in nftables mode, or when its ConfigMap no longer says.
        nftables = kubeproxy.proxy_mode(objects) in (None, "nftables")
        reports = kubeproxy.clean_nodes(lab.nodes, dry_run, on_stage=lambda node, stage: progress.update(
            tasks[node], description=f"{node}: {stage}"), nftables=nftables)
    table = _table("NODE", "BACKEND", "CHAINS", "RULES", "RESULT")
    for report in reports:
        if report.error:
            table.add_row(report.node, "", "", "", f"[red]failed: {report.error}[/]")
        for entry in report.backends:
            result = ("nothing to remove" if not entry.removal else "would remove" if dry_run
                      else "removed" if entry.applied else "not touched")
            notes = "; ".join(entry.notes)
            table.add_row(report.node, entry.name, str(entry.chains), str(entry.rules),
                          result + (f" ({notes})" if notes else ""))
    out.print(table)
    if dry_run:
        for report in reports:
            for entry in report.backends:
                if entry.removal:
                    command, script = entry.removal
                    if script is None:
                        out.print(f"\n{report.node}: {command}", highlight=False, markup=False)
                    else:
                        out.print(f"\n{report.node}: {command} <<EOF\n{script}EOF", highlight=False, markup=False)
        return 1 if any(r.error for r in reports) else 0
    failed = [r for r in reports if r.error]
    applied = [(r, e) for r in reports for e in r.backends if e.applied]
    chains, rules = sum(e.chains for _, e in applied), sum(e.rules for _, e in applied)
    if not failed and not applied and all(o.state == "absent" for o in objects):
        out.print(f"nothing to do: no kube-proxy DaemonSet or ConfigMap, and no rule of kube-proxy's on any of "
                  f"{len(reports)} nodes")
    else:
        out.print(f"removed {chains} chains and {rules} rules of kube-proxy's on {len({r.node for r, _ in applied})} "
                  f"node(s); every other rule is as it was")
    if failed:
        out.print(f"[red]{len(failed)} node(s) failed: {', '.join(r.node for r in failed)}[/]")
        return 1
    return 0


def all_pods(cluster: str, kubeconfig: str | None, context: str | None, dry_run: bool, include_cni: bool,
             timeout: float) -> int:
    lab = guard.prove(cluster, kubeconfig, context)
    out = console()
    _target(out, lab, dry_run)
    api = lab.api_client()
    chosen, skipped = pods.select(api, include_cni)
    for key, why in skipped:
        out.print(f"left alone: {key}: {why}")
    if dry_run:
        for ref in chosen:
            out.print(f"would delete pod {ref.key}")
        return 0
    if not chosen:
        out.print("nothing to restart")
        return 0
    failed = pods.delete(api, chosen)
    for key, error in failed:
        out.print(f"[red]could not delete {key}: {error}[/]")
    deleted = [ref for ref in chosen if ref.key not in {k for k, _ in failed}]
    out.print(f"deleted {len(deleted)} pod(s); waiting for their controllers to bring them back")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("pods back"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("back", total=len(deleted))
        stragglers = pods.wait_back(api, deleted, timeout, on_progress=lambda done, total: progress.update(
            task, completed=done))
    if stragglers:
        table = _table("CONTROLLER", "LOST", "BACK", "REPLACEMENTS")
        for s in stragglers:
            table.add_row(s.owner, str(s.expected), str(s.back), ", ".join(s.states) or "none yet")
        out.print(f"[red]not back after {timeout:g}s:[/]")
        out.print(table)
        return 1
    out.print(f"all {len(deleted)} pod(s) are back")
    return 1 if failed else 0


def cilium_unhook(cluster: str, kubeconfig: str | None, context: str | None, dry_run: bool, via: str) -> int:
    lab = guard.prove(cluster, kubeconfig, context)
    out = console()
    _target(out, lab, dry_run)
    api = None if via == "docker" else lab.api_client()
    reports = unhook.unhook_cluster(lab, api, via, dry_run)
    table = _table("NODE", "VIA", "PROGRAM", "ATTACH TYPE", "ID", "HOW")
    for report in reports:
        if report.error:
            table.add_row(report.node, report.via, "", "", "", f"[red]failed: {report.error}[/]")
        for prog in report.removed:
            how = f"link {prog.link_id} detached" if prog.link_id is not None else "detached"
            table.add_row(report.node, report.via, prog.name, prog.attach_type, str(prog.prog_id),
                          ("would be " if dry_run else "") + how)
    out.print(table)
    for report in reports:
        if report.pins:
            out.print(f"{report.node}: {'would remove' if dry_run else 'removed'} link pins {', '.join(report.pins)}")
        if report.kept:
            out.print(f"{report.node}: left attached (not Cilium's): "
                      f"{', '.join(f'{p.name} ({p.attach_type}, {p.prog_id})' for p in report.kept)}")
        if dry_run:
            for action in report.actions:
                out.print(f"{report.node}: {' '.join(action.argv)}", markup=False)
    removed = sum(len(r.removed) for r in reports if not r.error)
    failed = [r for r in reports if r.error]
    if not dry_run:
        if removed or any(r.pins for r in reports):
            out.print(f"removed {removed} Cilium program(s) from {len(reports) - len(failed)} node(s); verified: none "
                      f"left, every other program still attached")
        elif not failed:
            out.print(f"nothing to do: no Cilium program attached on any of {len(reports)} node(s)")
    return 1 if failed else 0
