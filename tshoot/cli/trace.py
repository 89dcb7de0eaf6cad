"""`tshoot trace`: parsing and printing; the tracer is tshoot.trace."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Optional

import typer

from tshoot.core.command import Context, Kubeconfig, Output, check_output

EXAMPLES = """Examples:

  sudo tshoot trace host 10.0.1.110                       # every hop of that pod's packets, on every node

  sudo tshoot trace --from 10.0.2.99 --to 10.0.1.110 --proto icmp --count 20

  sudo tshoot trace 'udp and port 53 and not host 10.0.0.215'

  sudo tshoot trace --pod default/net-tshoot-4gmzr -o json     # pod names need a reachable kubeconfig

Path: CO-RE BPF programs (compiled at first use with clang: apt-get install clang libbpf-dev) on the BTF tracepoints netif_receive_skb, net_dev_start_xmit and kfree_skb, loaded through libbpf. Every node of a kind lab shares this kernel, so one tracer sees every hop. bcc is not used: it compiles against kernel headers, and where they do not match the running kernel (as here) it reads wrong offsets without an error.
"""


def trace(
    expression: Annotated[Optional[list[str]], typer.Argument(
        metavar="[FILTER]", help="pcap-style: host/net/port/proto/tcp/udp/icmp with and/or/not, e.g. 'host 10.0.1.110 "
                                 "and icmp'")] = None,
    pod: Annotated[Optional[str], typer.Option("--pod", metavar="NS/NAME", help="packets to or from this pod")] = None,
    source: Annotated[Optional[str], typer.Option("--from", metavar="POD|ADDRESS", help="packets from this pod or address")] = None,
    destination: Annotated[Optional[str], typer.Option("--to", metavar="POD|ADDRESS", help="packets to this pod or address")] = None,
    proto: Annotated[Optional[str], typer.Option("--proto", help="tcp, udp, icmp or a number")] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=1, max=65535, help="source or destination port")] = None,
    count: Annotated[Optional[int], typer.Option("--count", min=1, help="stop after N events")] = None,
    timeout: Annotated[Optional[str], typer.Option("--timeout", metavar="DURATION",
                                                   help="stop after this long (10s, 1m, 500ms)")] = None,
    namespace: Annotated[str, typer.Option("-n", "--namespace", help="namespace of pods named without one")] = "default",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    output: Output = "table",
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="say which tracing path ran and the kernel filter")] = False,
) -> None:
    """Follow packets hop by hop across every node and pod of the lab, until Ctrl-C, --count or --timeout:
    where (node, pod or network namespace; device), what happened (received, transmitted, redirected there by
    a BPF program, encapsulated with the outer addresses and the VNI — Cilium's source identity —,
    decapsulated, dropped with the kernel's reason and, for a tc drop, the program on that interface). A
    summary at the end (packets, drops, events the ring buffer lost). Needs root."""
    from tshoot.core.duration import parse_duration
    from tshoot.trace import filter as filters
    from tshoot.trace.tracer import PATH, Tracer, need_root

    output = check_output(output, ("table", "json"))
    seconds = parse_duration(timeout) if timeout is not None else None
    need_root()
    terms = [" ".join(expression) if expression else None]
    if pod:
        terms.append(f"host {_address(pod, namespace, kubeconfig, context)}")
    if source:
        terms.append(f"src host {_address(source, namespace, kubeconfig, context)}")
    if destination:
        terms.append(f"dst host {_address(destination, namespace, kubeconfig, context)}")
    if proto:
        terms.append(f"proto {proto}")
    if port:
        terms.append(f"port {port}")
    text = filters.combine(*terms)
    tree = filters.parse(text)
    if verbose:
        addresses, number, kernel_port = filters.prefilter(tree)
        _note(f"tracing path: {PATH}; filter {text or '(everything)'}; the kernel keeps addresses "
              f"{', '.join(addresses) or 'any'}, protocol {number or 'any'}, port {kernel_port or 'any'}")
    import json
    import signal

    # Ctrl-C ends the trace between two events (a KeyboardInterrupt inside libbpf's callback would be lost)
    interrupted: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    with Tracer(tree, cluster=_cluster(kubeconfig, context)) as tracer:
        _note(f"tracing{' (Ctrl-C to stop)' if count is None and timeout is None else ''}: attached")
        if output == "table":
            print(f"{'TIME':>9} {'WHERE':<24} {'DEVICE':<15} {'EVENT':<12} PACKET")
        for event in tracer.events(count, seconds, stop=lambda: bool(interrupted)):
            print(json.dumps(event.as_dict(tracer.start_ns)) if output == "json" else event.show(tracer.start_ns),
                  flush=True)  # as it happens, also into a pipe
        summary = tracer.summary.as_dict()
    if output == "json":
        print(json.dumps({"summary": summary}))
    else:
        _note(f"{summary['events']} events, {summary['packets']} packets, {summary['dropped']} dropped, "
              f"{summary['lost']} events lost")
    if summary["lost"]:
        _note(f"{summary['lost']} events did not fit the ring buffer and were lost: narrow the filter")


def _address(text: str, namespace: str, kubeconfig: str | None, context: str | None) -> str:
    """An IPv4 address as given, or a pod's (NS/NAME or NAME in -n) from the cluster."""
    import ipaddress

    from tshoot.core.errors import UsageError

    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    from tshoot.cluster import kube

    if not kube.kubeconfig_reachable(kubeconfig):
        raise UsageError(f"{text!r} is not an IPv4 address, and pods are found in a cluster: pass --kubeconfig "
                         f"(or give the pod's IP)")
    ns, _, name = text.rpartition("/")
    pod = kube.get_object(kube.api_client(kubeconfig, context), kube.PODS, name, ns or namespace)
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise UsageError(f"pod {ns or namespace}/{name} has no IP yet")
    return ip


def _cluster(kubeconfig: str | None, context: str | None):
    """The cluster's pods, nodes and identities when a kubeconfig is reachable (names for what the trace sees),
    else None: the host's view (namespaces and devices) only."""
    from tshoot.cluster import kube
    from tshoot.cluster.model import Cluster

    if not kube.kubeconfig_reachable(kubeconfig):
        return None
    try:
        return Cluster.fetch(kube.api_client(kubeconfig, context))
    except Exception as exc:  # TshootError or the API's own: names are a help, the trace runs without them
        _note(f"no names from the cluster ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
              f"the host's view only")
        return None


def _note(text: str) -> None:
    print(f"tshoot: {text}", file=sys.stderr)


trace.__doc__ = inspect.cleandoc(trace.__doc__) + "\n\n" + EXAMPLES


def register(app: typer.Typer) -> None:
    app.command(name="trace")(trace)
