"""`tshoot walk`: parsing and printing; the walk itself is tshoot.walk."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tshoot.cli.options import NODE_TIMEOUT_DEFAULT, Backend, NodeTimeout
from tshoot.core.command import Context, Kubeconfig, Output, check_output, console

EXAMPLES = """Examples:

  tshoot walk net-tshoot-xbw6q 10.244.1.5            # pod to pod across the tunnel (the guide's walk)
  tshoot walk net-tshoot-xbw6q net-tshoot-4gmzr      # the destination named as a pod
  tshoot walk net-tshoot-xbw6q 10.96.0.10:53/udp     # the lab's DNS Service: load balancer, backend, pod
  sudo tshoot walk 10.244.2.7 10.244.1.5 --backend local --pod-netns POD_NS   # on a node, no cluster API
  sudo tshoot walk net-tshoot-xbw6q 10.244.1.5 --trace    # and the real packet beside it (on the kind host)
"""


def walk(
    source: Annotated[str, typer.Argument(help="the source pod (or, with --backend local, a local endpoint's IP)")],
    destination: Annotated[str, typer.Argument(help="a pod (NAME or NS/NAME), an IP, or a Service IP:PORT (or IP:PORT/PROTO)")],
    namespace: Annotated[str, typer.Option("-n", "--namespace", help="the source pod's namespace")] = "default",
    proto: Annotated[Optional[str], typer.Option("--proto", help="tcp, udp, sctp, icmp (default: any; tcp with a port)")] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=1, max=65535, help="destination port")] = None,
    slot: Annotated[Optional[int], typer.Option("--slot", min=1, help="for a Service: follow this backend slot")] = None,
    backend: Backend = "auto",
    bpffs: Annotated[Optional[str], typer.Option("--bpffs", help="local backend: the BPF filesystem (default "
                                                 "/sys/fs/bpf)")] = None,
    netns: Annotated[Optional[str], typer.Option("--netns", help="local backend: the node's network namespace")] = None,
    pod_netns: Annotated[Optional[str], typer.Option("--pod-netns", help="local backend: the source pod's netns")] = None,
    cilium_version: Annotated[Optional[str], typer.Option("--cilium-version", metavar="X.Y.Z",
                                                          help="override the version read from the agents' image")] = None,
    host_firewall: Annotated[Optional[str], typer.Option("--host-firewall", metavar="on|off",
                                                         help="whether the nodes run Cilium's host firewall (default: "
                                                              "cilium-config's enable-host-firewall; off for local)")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="also send the packet for real from the source pod while "
                                                        "tracing it on this host (root; see tshoot trace), and "
                                                        "mark where it disagrees with the walk")] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    output: Output = "table",
    timeout: NodeTimeout = NODE_TIMEOUT_DEFAULT,
) -> None:
    """Follow a packet from a pod to its destination, lookup by lookup, as the guide's "day in the life of a
    packet" does by hand. Exit 0 when delivered (or handed to the host stack), 1 when the walk stops."""
    from tshoot.core import version as versions
    from tshoot.core.duration import parse_duration
    from tshoot.core.errors import UsageError
    from tshoot.node.backend import DEFAULT_BPFFS
    from tshoot.node.choice import choose_backend
    from tshoot.walk import setup
    from tshoot.walk.walker import Packet

    output = check_output(output)
    seconds = parse_duration(timeout)
    local_only = next((flag for flag, given in (("--netns", netns), ("--pod-netns", pod_netns), ("--bpffs", bpffs))
                       if given), None)
    backend = choose_backend(backend, kubeconfig=kubeconfig, local_only=local_only)
    version = versions.parse(cilium_version) if cilium_version else None
    if host_firewall not in (None, "on", "off"):
        raise UsageError(f"--host-firewall {host_firewall!r}: expected on or off")
    firewall = None if host_firewall is None else host_firewall == "on"
    if port is not None and proto is None:
        proto = "tcp"
    packet = Packet(destination, proto, port, slot)
    if trace:
        from tshoot.trace.tracer import need_root

        need_root()
        if backend == "local" and not pod_netns:
            raise UsageError("--trace sends the packet from the source pod: walk a pod (--backend pod) or give "
                             "--pod-netns with --backend local")
    if backend == "pod":
        result = setup.cluster_walk(kubeconfig, context, source, namespace, destination, packet, version, firewall,
                                    timeout=seconds)
    else:
        result = setup.local_walk(bpffs or DEFAULT_BPFFS, source, destination, packet, version, netns, pod_netns,
                                  firewall)
    if trace:
        result["trace"] = _trace(result, backend, kubeconfig, context, namespace, source, pod_netns)
    if output != "table":
        from tshoot.cli.render import dump

        print(dump(result, output))
    else:
        _print(result)
    disagrees = trace and not result["trace"]["agrees"]
    raise typer.Exit(1 if result["verdict"] == "stopped" or disagrees else 0)


def _trace(result: dict, backend: str, kubeconfig, context, namespace: str, source: str, pod_netns) -> dict:
    from tshoot.walk import trace as tracing

    if backend == "pod":
        from tshoot.cluster import kube
        from tshoot.cluster.model import Cluster

        send = tracing.pod_sender(kubeconfig, context, namespace, source)
        cluster = Cluster.fetch(kube.api_client(kubeconfig, context))
    else:
        send, cluster = tracing.netns_sender(pod_netns), None
    return tracing.observe(result, send, cluster)


def _print(result: dict) -> None:
    from rich.markup import escape

    out = console()
    src, dst = result["source"], result["destination"]
    target = dst["address"] + (f":{dst['port']}" if dst["port"] else "") + (f"/{dst['protocol']}" if dst["protocol"] else "")
    out.print(f"[bold]walk[/] {escape(src['pod'])} ({src['ip']} on {src['node']}) -> {escape(target)}")
    for step in result["steps"]:
        where = f" [dim]\\[{escape(step['node'])}][/]" if step["node"] else ""
        out.print(f"\n[bold]{step['step']}. {escape(step['title'])}[/]{where}")
        for command in step["commands"]:
            out.print(f"   [dim]$ {escape(command)}[/]")
        if step["says"]:
            out.print(f"   -> {escape(step['says'])}")
    verdict = result["verdict"]
    style = {"delivered": "green", "left": "yellow", "stopped": "red"}[verdict]
    closing = {"delivered": "delivered", "left": "left the walk's reach", "stopped": "STOPPED"}[verdict]
    if "trace" in result:
        _print_trace(out, result["trace"])
    counter = result.get("counter")
    if counter:
        out.print(f"\ncilium_metrics on {escape(counter['node'])} counts it: {counter['reason']} "
                  f"({escape(counter['description'] or str(counter['code']))}) {counter['direction']}, in "
                  f"{counter['program']} [dim](tshoot drops --node {escape(counter['node'])})[/]")
    out.print(f"\n[bold {style}]{closing}[/]" + (f": {escape(result['reason'])}" if result["reason"] else ""))


def _print_trace(out, traced: dict) -> None:
    from rich.markup import escape

    out.print(f"\n[bold]the real packet[/] [dim]($ {escape(' '.join(traced['probe']))} in the source pod, traced "
              f"on this host)[/]")
    for hop in traced["hops"]:
        packet = hop["packet"]
        drop = hop.get("drop")
        why = f" {drop['reason']} at {drop['location']}" if drop else ""
        out.print(f"   {escape(hop['where'] or '?')} {escape(hop['device'] or '-')} {hop['event']} "
                  f"{packet['src']} > {packet['dst']}{escape(why)}")
    if traced["agrees"]:
        out.print(f"   [green]agrees with the walk[/] (the real packet: {traced['observed']['verdict']})")
    else:
        out.print(f"   [bold red]DISAGREES[/]: {escape(traced['disagreement'])}")


walk.__doc__ += "\n\n" + EXAMPLES


def register(app: typer.Typer) -> None:
    app.command(name="walk")(walk)
