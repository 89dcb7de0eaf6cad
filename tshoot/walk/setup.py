"""How a walk is set up: on a cluster (the source is a pod, nodes are reached through their Cilium agents)
or on this machine (the source is a local endpoint's IP, maps from a local bpffs). Both build a
tshoot.walk.walker.WalkContext and run a Walker on it."""

from __future__ import annotations

from tshoot.core.addr import in_prefix, parse_endpoint, parse_ip, show_ip, show_protocol
from tshoot.core.errors import TshootError, UsageError
from tshoot.core.version import Version
from tshoot.node.fanout import DEFAULT_TIMEOUT
from tshoot.walk.walker import HostFirewall, Node, Packet, Source, WalkContext, Walker, Left

HOST_FIREWALL_KEY = "enable-host-firewall"  # cilium-config; option.EnableHostFirewall, default false


def parse_destination(text: str, protocol: str | None, port: int | None) -> tuple[str, str | None, int | None]:
    """'10.32.0.10:53/udp' -> ('10.32.0.10', 'udp', 53); '10.0.1.110' -> ('10.0.1.110', protocol, port)."""
    try:
        family, raw = parse_ip(text)
        return show_ip(raw), protocol, port
    except UsageError:
        pass
    if ":" in text and (text.startswith("[") or text.count(":") == 1):
        family, raw, parsed_port, parsed_proto = parse_endpoint(text)
        return show_ip(raw), (show_protocol(parsed_proto).lower() if parsed_proto is not None else protocol or "tcp"), \
            parsed_port
    raise UsageError(f"destination {text!r}: expected a pod name, an IP, or a Service as IP:PORT[/PROTO] "
                     f"(e.g. 10.32.0.10:53/udp)")


def host_firewall(config: dict[str, str] | None, override: bool | None) -> HostFirewall:
    """The host firewall setting a verdict assumes: the flag when given, else the cilium-config ConfigMap
    (Helm writes the key only when enabled), else the agent's default (off)."""
    if override is not None:
        return HostFirewall(override, f"--host-firewall {'on' if override else 'off'}")
    if config is None:
        return HostFirewall(False, "the agent's default (no cluster to read cilium-config from; "
                                   "--host-firewall on if the node runs it)")
    value = config.get(HOST_FIREWALL_KEY)
    if value is None:
        return HostFirewall(False, f"cilium-config has no {HOST_FIREWALL_KEY}: the default, off")
    return HostFirewall(value.strip().lower() == "true", f"cilium-config {HOST_FIREWALL_KEY}={value}")


def _pod_cidr_of(cidrs: list[str], ip: str) -> str | None:
    """The CIDR of `cidrs` that holds `ip` (the node's pod CIDR of the source's family)."""
    return next((cidr for cidr in cidrs if in_prefix(ip, cidr)), None)


def cluster_walk(kubeconfig: str | None, context: str | None, source: str, namespace: str, destination: str,
                 packet: Packet, version: Version | None, firewall: bool | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> dict:
    """A walk on a cluster: the source is a pod; each node is reached through its Cilium agent, each exec
    in it bounded by `timeout` seconds."""
    from tshoot.cluster import kube
    from tshoot.inspect import hooks_agent as hooks
    from tshoot.node.agent import pod_backends

    api = kube.api_client(kubeconfig, context)
    pod = kube.get_object(api, kube.PODS, source, namespace)
    node_name = pod.get("spec", {}).get("nodeName")
    source_ip = pod.get("status", {}).get("podIP")
    if not node_name or not source_ip:
        raise TshootError(f"pod {namespace}/{source} has no node or no IP yet (phase "
                          f"{pod.get('status', {}).get('phase', '?')}): nothing to walk")
    try:
        packet.destination, packet.protocol, packet.port = parse_destination(destination, packet.protocol, packet.port)
    except UsageError:
        if ":" in destination:  # meant as IP:PORT; pod names have no colon
            raise
        pod_namespace, _, name = destination.rpartition("/")
        target = kube.get_object(api, kube.PODS, name, pod_namespace or namespace)
        packet.destination = target.get("status", {}).get("podIP")
        if not packet.destination:
            raise TshootError(f"destination pod {pod_namespace or namespace}/{name} has no IP yet") from None
    from tshoot.walk import ahead

    def node(name: str) -> Node:
        [backend] = pod_backends(api, name, timeout=timeout)
        return Node(name, backend, lambda: hooks.net_show(cluster, name, backend.agent), version or backend.version)

    container = pod["spec"]["containers"][0]["name"]

    def run(argv: list[str]):
        return kube.exec_in_pod(api, namespace, source, container, argv)

    # each node made once, each command in the source pod run once: by the walk, or ahead of it (its reads
    # asked at once in the background, tshoot.walk.ahead), the first ones while the cluster is read
    # the cluster asked only what the walk names (a few small requests), never listed whole: on a 500-node
    # cluster its lists are megabytes (tshoot.cluster.model)
    cluster = hooks.Cluster(api)
    cluster.timeout = timeout
    nodes, run_in_pod = ahead.Shared(node), ahead.Shared(run)
    reads = ahead.ReadAhead(nodes, run_in_pod, node_name, source_ip, packet)
    reads.begin(cluster.pod_node_by_ip.get)
    start = Source(f"{namespace}/{source}", source_ip, node_name, run_in_pod, f"kubectl -n {namespace} exec {source}",
                   _pod_cidr_of(cluster.pod_cidrs.get(node_name, []), source_ip))
    context = WalkContext(nodes, start, packet, cluster, host_firewall(cluster.config, firewall))
    reads.start(cluster.pod_node_by_ip.get(packet.destination))
    return Walker(context).run()


def local_walk(bpffs: str, source_ip: str, destination: str, packet: Packet, version: Version | None,
               node_netns: str | None, pod_netns: str | None, firewall: bool | None = None) -> dict:
    """A walk on this machine: the source is a local endpoint's IP; maps from the local bpffs, hooks from
    the node's network namespace; the route step runs in the pod's namespace when --pod-netns names it."""
    import socket
    import subprocess

    from tshoot.inspect import hooks_local as hooks
    from tshoot.node.local import LocalBackend

    backend = LocalBackend(bpffs, version)
    name = socket.gethostname()
    here = Node(name, backend, lambda: hooks.net_show(node_netns, bpffs), version)
    packet.destination, packet.protocol, packet.port = parse_destination(destination, packet.protocol, packet.port)

    def in_netns(netns: str | None, argv: list[str]):
        full = ["ip", "netns", "exec", netns, *argv] if netns else argv
        proc = subprocess.run(full, capture_output=True, text=True)
        return proc.returncode, proc.stdout, proc.stderr

    def nodes(wanted: str) -> Node:
        if wanted != name:
            raise Left(f"the packet continues on node {wanted}, which the local backend cannot reach "
                        f"(walk from a cluster with the pod backend to follow it)")
        return here

    source = show_ip(parse_ip(source_ip)[1])
    start = Source(f"endpoint {source}", source, name, (lambda argv: in_netns(pod_netns, argv)) if pod_netns else None,
                   f"ip netns exec {pod_netns}", _local_pod_cidr(in_netns, node_netns, source))
    return Walker(WalkContext(nodes, start, packet, host_firewall=host_firewall(None, firewall))).run()


def _local_pod_cidr(in_netns, netns: str | None, source_ip: str) -> str | None:
    """The node's own pod CIDR, as Cilium routes it through cilium_host (the route holding the source)."""
    import json

    code, out, _ = in_netns(netns, ["ip", "-j", "route", "show", "dev", "cilium_host"])
    if code != 0:
        return None
    cidrs = [r["dst"] for r in json.loads(out or "[]") if "/" in r.get("dst", "")]
    return _pod_cidr_of(cidrs, source_ip)
