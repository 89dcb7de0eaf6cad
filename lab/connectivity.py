"""`lab check connectivity`: the guide's paths, tried with real packets from the lab's own pods, in seconds.

cilium-cli's `cilium connectivity test` runs ~100 scenarios for minutes, needs the internet, and says *that* a
scenario failed. This check runs the paths the guide walks through, as a matrix over every node, from the
net-tshoot pods through the API's exec (tshoot.cluster.kube.exec_in_pod: nothing to pull, no extra image):

  pod -> pod on the same node         net-tshoot on N -> net-echo on N          ICMP, TCP
  pod -> pod on another node (VXLAN)  net-tshoot on N -> net-echo on M          ICMP, TCP
  pod -> ClusterIP Service            net-tshoot on N -> net-echo's ClusterIP   TCP
  pod -> NodePort                     net-tshoot on N -> every node's NodePort  TCP
  node -> pod                         Cilium agent on N (host network) -> net-echo on M; TCP (the agent's
                                      image has no ping)
  pod -> world                        net-tshoot on N -> a target outside the cluster; ICMP, and UDP, which
                                      says what source address arrived (masqueraded to the node's or not)
  DNS                                 net-tshoot on N resolves net-echo's name through the cluster DNS

net-echo (manifests/tshoot/net-echo.yaml.j2) answers each TCP connection with the peer address it saw, so
a row also says whether the source was rewritten on the way. The commands are ping, bash (its /dev/tcp and
/dev/udp, timed with $EPOCHREALTIME), timeout and dig: in the netshoot image the pods run; bash and timeout
in the Cilium agent's.

"World" is a target the check starts and removes (lab: a container of the node image on kind's docker
network, answering UDP with socat; tests: a network namespace on the simulated docker network), so nothing
depends on the internet. It is injected (`World`), and it reports what reached it even when no reply could
come back: that is how an unmasqueraded source is told apart from a lost packet.

Every failed row is explained by `tshoot walk` for its source and destination (tshoot.walk.walker, in
process): the step where the walk stops, why, and the commands to reproduce it by hand. Run as root on the
kind host, whose kernel every node of the lab shares, the failed probes are also retried while `tshoot trace`
watches (tshoot.walk.trace, as `tshoot walk --trace` does): where each real packet was last seen (namespace,
device, what happened there; a drop's reason and the program that dropped it) is one more finding.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from tshoot.cluster import kube
from tshoot.cluster.cilium import AGENT_CONTAINER, agent_pods
from tshoot.core.errors import TshootError
from tshoot.node.fanout import fan_out

from .manifests import ECHO_LABEL, ECHO_SERVICE, TSHOOT_LABEL, TSHOOT_NAMESPACE

CLUSTER_DOMAIN = "cluster.local"  # kubeadm's default, which kind keeps
PARALLEL = 8  # execs at once: the API server and the kubelets take this without queueing
WAIT = 2.0  # seconds a probe waits for an answer
EXEC_SLACK = 10.0  # on top of the probe's own wait: the exec's round trip through the API server

SAME_NODE, OTHER_NODE = "pod → pod (same node)", "pod → pod (other node)"
CLUSTER_IP, NODE_PORT, NODE_POD = "pod → ClusterIP", "pod → NodePort", "node → pod"
WORLD, DNS = "pod → world", "pod → DNS"
PATHS = (SAME_NODE, OTHER_NODE, CLUSTER_IP, NODE_PORT, NODE_POD, WORLD, DNS)

# bash's /dev/tcp: connect (timed: the handshake's round trip), then the echo's one line.
TCP_SCRIPT = 't0=$EPOCHREALTIME; exec 3<>"/dev/tcp/$1/$2" || exit 1; t1=$EPOCHREALTIME; ' \
             'read -r -t "$3" reply <&3; echo "$t0 $t1 $reply"'
# bash's /dev/udp: one datagram, the reply timed (UDP has no handshake to time).
# (bash's read takes one byte per read(2), which on a datagram socket drops the rest of the datagram: head
# reads the whole datagram at once.)
UDP_SCRIPT = 'exec 3<>"/dev/udp/$1/$2" || exit 1; t0=$EPOCHREALTIME; printf "kindlab\\n" >&3; ' \
             'reply=$(timeout "$3" head -n 1 <&3) || exit 1; t1=$EPOCHREALTIME; echo "$t0 $t1 $reply"'
PING_TIME = re.compile(r"time[=<]([\d.]+) ?ms")
DIG_TIME = re.compile(r"^;; Query time: (\d+) msec", re.M)
DIG_SERVER = re.compile(r"^;; SERVER: ([^#\s]+)", re.M)
IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


# --- what is checked ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Where a probe runs: a net-tshoot pod, or a node (its Cilium agent, which shares the node's network)."""

    node: str
    ip: str
    namespace: str
    pod: str
    container: str
    is_node: bool = False

    @property
    def shown(self) -> str:
        return f"node {self.node}" if self.is_node else f"{self.namespace}/{self.pod}"

    def exec_shown(self) -> str:
        return f"kubectl -n {self.namespace} exec {self.pod} -c {self.container}"


@dataclass(frozen=True)
class Probe:
    path: str
    protocol: str  # icmp, tcp, udp or dns
    source: Source
    destination: str  # as shown: a pod, a Service, a node's NodePort, the world target
    address: str  # where the packet goes (for DNS: the name asked)
    port: int | None = None
    expect: str | None = None  # the address the answer must name (DNS: the ClusterIP; world: the node's)
    walk_from: str | None = None  # the pod the walk starts from when the source is not a pod
    dns_server_ip: str = ""  # DNS: the cluster DNS Service's address, where the walk of a failure goes

    def argv(self, wait: float) -> list[str]:
        w = f"{wait:g}"
        if self.protocol == "icmp":
            return ["ping", "-c", "1", "-W", w, self.address]
        if self.protocol == "dns":
            return ["dig", f"+time={max(1, round(wait))}", "+tries=1", "+noall", "+answer", "+stats", self.address]
        script = TCP_SCRIPT if self.protocol == "tcp" else UDP_SCRIPT
        return ["timeout", f"{wait + 1:g}", "bash", "-c", script, "probe", self.address, str(self.port), w]

    @property
    def traced_address(self) -> str:
        """Where the probe's packets go, for the trace of a retry (DNS: the cluster DNS Service)."""
        return self.dns_server_ip if self.protocol == "dns" else self.address

    @property
    def target(self) -> str:
        """The walk's destination: IP, or IP:PORT/PROTO."""
        if self.protocol == "dns":
            return f"{self.dns_server_ip}:53/udp"
        return f"{self.address}:{self.port}/{self.protocol}" if self.port else self.address


@dataclass
class Explanation:
    """Why a row failed, from the walk (and what the world target saw, and where the traced retry's packet
    was last seen)."""

    walk: str  # the tshoot walk command line
    verdict: str | None = None  # delivered, stopped, left; None when the walk itself failed
    step: dict | None = None  # the step where it stopped: {"step", "title", "node", "says"}
    reason: str | None = None
    findings: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # to reproduce by hand

    def to_dict(self) -> dict:
        return {"walk": self.walk, "verdict": self.verdict, "step": self.step, "reason": self.reason,
                "findings": self.findings, "commands": self.commands}


@dataclass
class Row:
    probe: Probe
    ok: bool
    latency_ms: float | None
    detail: str
    seen: str | None = None  # the source address the destination saw (TCP echo, world's UDP)
    explanation: Explanation | None = None

    def to_dict(self) -> dict:
        p = self.probe
        return {"source": p.source.shown, "source_node": p.source.node, "destination": p.destination,
                "path": p.path, "protocol": p.protocol, "address": p.address, "port": p.port,
                "result": "pass" if self.ok else "fail", "latency_ms": self.latency_ms, "detail": self.detail,
                "source_seen": self.seen,
                "explanation": self.explanation.to_dict() if self.explanation else None}


class World:
    """A target outside the cluster that answers a UDP datagram with the source address it saw, and keeps
    the sources that reached it. Used as a context manager: started on enter, removed on exit."""

    address: str
    port: int

    def arrivals(self) -> list[str]:
        return []

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc) -> None:
        return None


class FixedWorld(World):
    """An existing target (--world IP:PORT) that echoes the peer address; the check starts nothing and
    cannot see what reached it."""

    def __init__(self, address: str, port: int):
        self.address, self.port = address, port


class DockerWorld(World):
    """A container on the lab's docker network, from the image the lab's nodes run (already on this
    machine: nothing is pulled). socat, which kind's node image carries, answers each datagram with its
    source and writes the source, alone on a line, to the container's log."""

    PORT = 8081
    READY = re.compile(rb"(listening|receiving) on AF=")  # socat -d -d, once the socket is bound
    START_TIMEOUT = 10.0

    def __init__(self, cluster: str):
        self.cluster = cluster
        self.container = None

    def __enter__(self) -> "DockerWorld":
        import uuid

        from .nodes import docker_client, node_containers

        client = docker_client()
        nodes = node_containers(self.cluster, client)
        if not nodes:
            raise TshootError(f"no node containers of kind cluster {self.cluster!r}: is the lab up (lab status)? "
                              f"(or pass --world IP:PORT, or --world none)")
        network = next(iter(nodes[0].attrs["NetworkSettings"]["Networks"]))
        self.container = client.containers.run(
            nodes[0].image.id, name=f"{self.cluster}-world-{uuid.uuid4().hex[:6]}", detach=True,
            entrypoint=["socat"], network=network, labels={"io.x-k8s.kindlab.world": self.cluster},
            command=["-d", "-d", f"UDP4-RECVFROM:{self.PORT},fork",
                     "SYSTEM:echo $SOCAT_PEERADDR >&2; echo $SOCAT_PEERADDR"])  # logged, then answered
        try:
            deadline = time.monotonic() + self.START_TIMEOUT
            while not self.READY.search(self.container.logs(stdout=False, stderr=True)):
                self.container.reload()
                if self.container.status == "exited" or time.monotonic() > deadline:
                    last = self.container.logs().decode(errors="replace").strip().splitlines()[-1:]
                    raise TshootError(f"the world target (container {self.container.name}) did not start: "
                                      f"{last[0] if last else self.container.status} (or pass --world none)")
                time.sleep(0.05)
            self.container.reload()
            self.address = self.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
            if not self.address:
                raise TshootError(f"the world target (container {self.container.name}) has no IPv4 address on "
                                  f"docker network {network} (or pass --world none)")
        except BaseException:
            self.__exit__()
            raise
        self.port = self.PORT
        return self

    def arrivals(self) -> list[str]:
        """What the log holds so far (the engine collects it asynchronously, within milliseconds)."""
        lines = self.container.logs(stdout=False, stderr=True).decode(errors="replace").splitlines()
        return [line.strip() for line in lines if IPV4.fullmatch(line.strip())]

    def __exit__(self, *exc) -> None:
        if self.container is not None:
            self.container.remove(force=True)


# --- the lab's side of it --------------------------------------------------------------------------------

@dataclass
class Layout:
    """The lab as the check sees it: the pods it runs from and talks to, the Service, the nodes."""

    tshoot: dict[str, dict]  # node -> net-tshoot pod
    echo: dict[str, dict]  # node -> net-echo pod
    agents: dict[str, dict]  # node -> Cilium agent pod
    node_ips: dict[str, str]  # node -> InternalIP
    service: dict
    dns_server: str | None  # the cluster DNS Service's address (kube-dns), for the walk of a DNS failure


def _running(pods) -> dict[str, dict]:
    by_node: dict[str, dict] = {}
    for pod in pods:
        status = pod.get("status", {})
        if status.get("phase") == "Running" and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            by_node.setdefault(pod["spec"]["nodeName"], pod)
    return by_node


def discover(api) -> Layout:
    """The pods, Service and nodes the check needs; a missing part is one line naming how to get it."""

    tshoot = _running(kube.list_objects(api, kube.PODS, TSHOOT_NAMESPACE, TSHOOT_LABEL))
    echo = _running(kube.list_objects(api, kube.PODS, TSHOOT_NAMESPACE, ECHO_LABEL))
    install = "install them with 'lab cilium install' (make cilium), then 'lab cilium wait'"
    if not tshoot:
        raise TshootError(f"no running net-tshoot pod (label {TSHOOT_LABEL}) in namespace {TSHOOT_NAMESPACE}: "
                          f"{install}")
    if not echo:
        raise TshootError(f"no running net-echo pod (label {ECHO_LABEL}) in namespace {TSHOOT_NAMESPACE}: {install}")
    try:
        service = kube.get_object(api, kube.SERVICES, ECHO_SERVICE, TSHOOT_NAMESPACE)
    except TshootError as exc:
        raise TshootError(f"{exc}: the check talks to Service {TSHOOT_NAMESPACE}/{ECHO_SERVICE}; {install}") from None
    node_ips = {}
    for node in kube.list_objects(api, kube.NODES):
        address = next((a["address"] for a in node.get("status", {}).get("addresses", [])
                        if a.get("type") == "InternalIP" and ":" not in a["address"]), None)
        if address:
            node_ips[node["metadata"]["name"]] = address
    agents = _running(agent_pods(api))
    try:
        dns = kube.get_object(api, kube.SERVICES, "kube-dns", "kube-system")["spec"].get("clusterIP")
    except TshootError:
        dns = None  # the DNS row still runs (the pod's resolver); only its walk needs the address
    return Layout(tshoot, echo, agents, node_ips, service, dns)


def plan(layout: Layout, world: World | None) -> list[Probe]:
    """Every row, in the order the table lists them."""
    spec = layout.service["spec"]
    port = next(p for p in spec["ports"] if p.get("protocol", "TCP") == "TCP")
    service_name = f"{ECHO_SERVICE}.{TSHOOT_NAMESPACE}.svc.{CLUSTER_DOMAIN}"
    nodes = sorted(set(layout.tshoot) | set(layout.echo), key=lambda n: (n not in layout.tshoot, n))
    probes: list[Probe] = []

    # net-echo listens on the Service's target port (a number in the lab's manifest)
    echo_port = port["targetPort"] if isinstance(port.get("targetPort"), int) else port["port"]

    def source_of(pod: dict, is_node: bool = False) -> Source:
        node = pod["spec"]["nodeName"]
        ip = layout.node_ips.get(node, pod["status"]["podIP"]) if is_node else pod["status"]["podIP"]
        return Source(node, ip, pod["metadata"]["namespace"], pod["metadata"]["name"],
                      AGENT_CONTAINER if is_node else pod["spec"]["containers"][0]["name"], is_node)

    for node in nodes:
        pod = layout.tshoot.get(node)
        if pod is None:
            continue
        src = source_of(pod)
        for other in nodes:
            echo = layout.echo.get(other)
            if echo is None:
                continue
            ip = echo["status"]["podIP"]
            path = SAME_NODE if other == node else OTHER_NODE
            shown = f"{echo['metadata']['name']} ({ip})"
            probes.append(Probe(path, "icmp", src, shown, ip))
            probes.append(Probe(path, "tcp", src, shown, ip, echo_port, expect=src.ip))
        probes.append(Probe(CLUSTER_IP, "tcp", src, f"svc/{ECHO_SERVICE} ({spec['clusterIP']}:{port['port']})",
                            spec["clusterIP"], port["port"]))
        if port.get("nodePort"):
            for other in nodes:
                if other in layout.node_ips:
                    probes.append(Probe(NODE_PORT, "tcp", src, f"{other} ({layout.node_ips[other]}:{port['nodePort']})",
                                        layout.node_ips[other], port["nodePort"]))
        if world is not None:
            shown = f"world ({world.address}:{world.port})"
            probes.append(Probe(WORLD, "icmp", src, shown, world.address))
            probes.append(Probe(WORLD, "udp", src, shown, world.address, world.port,
                                expect=layout.node_ips.get(node)))
        probes.append(Probe(DNS, "dns", src, f"{service_name} → {spec['clusterIP']}", service_name,
                            expect=spec["clusterIP"], dns_server_ip=layout.dns_server or ""))
    for node in nodes:
        agent = layout.agents.get(node)
        if agent is None:
            continue
        src = source_of(agent, is_node=True)
        walk_from = layout.tshoot[node]["metadata"]["name"] if node in layout.tshoot else None
        for other in nodes:
            echo = layout.echo.get(other)
            if echo is not None:
                ip = echo["status"]["podIP"]
                probes.append(Probe(NODE_POD, "tcp", src, f"{echo['metadata']['name']} ({ip})", ip, echo_port,
                                    walk_from=walk_from))
    return probes


# --- running a probe ---------------------------------------------------------------------------------------

def judge(probe: Probe, code: int, out: str, err: str) -> tuple[bool, float | None, str, str | None]:
    """(passed, latency in ms, detail, source address seen) from the probe command's result."""
    last = ((err or out).strip().splitlines() or [f"exit code {code}"])[-1]
    if probe.protocol == "icmp":
        match = PING_TIME.search(out)
        if code == 0 and match:
            return True, float(match.group(1)), "echo reply", None
        return False, None, "no echo reply" if code == 1 else last, None
    if probe.protocol == "dns":
        answers = [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";")
                   and len(line.split()) >= 5 and line.split()[3] == "A"]
        took = DIG_TIME.search(out)
        server = DIG_SERVER.search(out)
        via = f" (server {server.group(1)})" if server else ""
        if code == 0 and probe.expect in answers:
            return True, float(took.group(1)) if took else None, f"{probe.address} is {probe.expect}{via}", None
        if code == 0:
            found = ", ".join(answers) or "no A record"
            return False, None, f"{probe.address}: {found}{via}, expected {probe.expect}", None
        return False, None, f"no answer: {last}", None
    parts = out.split(maxsplit=2)
    if code != 0 or len(parts) < 2:
        what = "no reply" if probe.protocol == "udp" else "no connection"
        return False, None, f"{what} ({'timed out' if code in (1, 124) else last})", None
    latency = round((float(parts[1].replace(",", ".")) - float(parts[0].replace(",", "."))) * 1000, 2)
    seen = parts[2].strip() if len(parts) > 2 else None
    if probe.protocol == "udp":  # the world: did the source arrive as its node?
        if seen == probe.expect:
            return True, latency, f"masqueraded: arrived as {seen} (node {probe.source.node})", seen
        if seen == probe.source.ip:
            return False, latency, f"not masqueraded: arrived as the pod's own {seen}", seen
        return False, latency, f"arrived as {seen}, expected the node's {probe.expect}", seen
    if not seen:
        return False, latency, "connected, but no answer", None
    if probe.expect and seen != probe.expect:
        return False, latency, f"the source was rewritten: arrived as {seen}, not {probe.expect}", seen
    return True, latency, f"answered; the destination saw {seen}", seen


def run_probe(api, probe: Probe, wait: float = WAIT) -> Row:
    try:
        code, out, err = kube.exec_in_pod(api, probe.source.namespace, probe.source.pod, probe.source.container,
                                          probe.argv(wait), timeout=wait + EXEC_SLACK)
    except TshootError as exc:
        return Row(probe, False, None, f"could not run the probe: {exc}")
    ok, latency, detail, seen = judge(probe, code, out, err)
    return Row(probe, ok, latency, detail, seen)


# --- explaining a failure ---------------------------------------------------------------------------------

def explain(probe: Probe, row: Row, walk, world: World | None, wait: float = WAIT) -> Explanation:
    """The walk for the row's source and destination; `walk(pod, namespace, destination, protocol, slot)`
    returns the walk's dict (tshoot.walk.setup.cluster_walk)."""
    pod = probe.walk_from or (None if probe.source.is_node else probe.source.pod)
    namespace = probe.source.namespace if not probe.walk_from else TSHOOT_NAMESPACE
    missing = None
    if probe.protocol == "dns" and not probe.dns_server_ip:
        missing = "the cluster DNS Service kube-system/kube-dns was not found"
    elif pod is None:
        missing = f"no net-tshoot pod on {probe.source.node} to start from"
    commands = [f"{probe.source.exec_shown()} -- {_shell(probe.argv(wait))}"]
    findings = []
    if probe.walk_from:
        findings.append(f"the walk starts at a pod: it follows {probe.walk_from}, on the same node, whose packets "
                        f"take the same ipcache, tunnel and destination decisions")
    if probe.protocol == "udp" and world is not None and not row.seen:
        arrived = world.arrivals()
        if probe.source.ip in arrived:
            findings.append(f"the world target received {probe.source.ip}, the pod's own address: the source node "
                            f"did not masquerade it, so the answer had no way back (masquerade on {probe.source.node})")
        elif probe.expect in arrived:
            findings.append(f"the world target received the datagram from {probe.expect} (masqueraded): the "
                            f"answer was lost on its way back")
        elif isinstance(world, FixedWorld):
            findings.append("the world target is not the check's own (--world): what reached it is unknown")
        else:
            findings.append("nothing reached the world target")
    if missing:
        return Explanation(f"(no walk: {missing})", findings=findings, commands=commands)
    protocol = "icmp" if probe.protocol == "icmp" else None
    shown = f"tshoot walk {pod} {probe.target}" + (f" --proto {protocol}" if protocol else "") + \
        (f" -n {namespace}" if namespace != "default" else "")
    commands.append(shown)
    try:
        result = walk(pod, namespace, probe.target, protocol, None)
        result = _worst_slot(result, lambda slot: walk(pod, namespace, probe.target, protocol, slot), findings)
    except TshootError as exc:
        return Explanation(shown, reason=f"the walk failed: {exc}", findings=findings, commands=commands)
    if result.get("slot"):
        shown += f" --slot {result['slot']}"
        commands[-1] = shown
    steps = result["steps"]
    last = steps[-1] if steps else None
    explanation = Explanation(shown, result["verdict"], None, result.get("reason"), findings, commands)
    if last:
        explanation.step = {"step": last["step"], "title": last["title"], "node": last["node"],
                            "says": last["says"]}
        commands.extend(c.split("   # ")[0] for c in last["commands"])
    # A pod address the ipcache knows only as a prefix (the world's 0.0.0.0/0) is an ipcache problem, even
    # where the walk follows it on (to the stack): name it.
    for step in steps:
        if step["title"] == "source node: ipcache lookup of the destination":
            matched, address = step["result"].get("matched"), step["result"].get("tunnel_endpoint")
            if matched and probe.path != WORLD and not matched.endswith("/32"):
                findings.append(f"the ipcache on {step['node']} has no entry of its own for the destination: "
                                f"{step['says']}; Cilium does not know a pod there (tunnel endpoint "
                                f"{address or 'none'})")
    if result["verdict"] == "delivered":
        findings.append("the walk finds every lookup open: the packet is lost outside the maps it reads "
                        "(no listener, the reply path, a device or a rule)")
    return explanation


LB_STEP = "source node: is it a Service? (load balancer)"


def _worst_slot(result: dict, walk_slot, findings: list[str]) -> dict:
    """A Service picks a backend per flow at random (lb4_select_backend_id()); the probe's may not be the
    one a walk follows first. Every slot is walked, and the first that does not deliver explains the row."""
    lb = next((s for s in result["steps"] if s["title"] == LB_STEP), None)
    slots = (lb or {}).get("result", {}).get("slots") or []
    if len(slots) < 2:
        return result
    walks = [(slot, result if slot["slot"] == lb["result"].get("chosen") else walk_slot(slot["slot"]))
             for slot in slots]
    summary = []
    for slot, walked in walks:
        backend = slot["backend"]
        where = f"{backend['address']}:{backend['port']}" if backend else f"backend {slot['backend_id']} (missing)"
        summary.append(f"slot {slot['slot']} → {where}: {walked['verdict']}")
    findings.append(f"the Service picks one of {len(slots)} backends per connection: " + "; ".join(summary))
    slot, worst = next(((slot, w) for slot, w in walks if w["verdict"] != "delivered"), walks[0])
    return {**worst, "slot": slot["slot"]}


def _shell(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


# --- the check ------------------------------------------------------------------------------------------------

TRACE_SKIPPED = ("the failed probes' real packets were not traced (where each was last seen): that needs root on "
                 "the kind host, whose kernel every node shares: sudo lab check connectivity")


def trace_retries(rows: list[Row], send, parallel: int = PARALLEL) -> list[str]:
    """Retry each failed row's probe (`send(probe)`, all at once) while one tracer watches this kernel for
    the packets of their sources, and add to each row's findings where its packet was last seen (places by
    namespace and device: the rows name the pods). Returns the notes for the whole report: why nothing was
    traced, when nothing was."""
    if os.geteuid() != 0:
        return [TRACE_SKIPPED]
    from tshoot.walk import trace as tracing

    expression = " or ".join(f"host {ip}" for ip in sorted({r.probe.source.ip for r in rows}))
    try:
        hops, summary = tracing.trace_while(
            expression, lambda: fan_out(rows, lambda r: send(r.probe), parallel, node_of=lambda r: r.probe.source.pod))
    except TshootError as exc:
        return [f"the failed probes' real packets were not traced: {exc}"]
    for row in rows:
        seen = tracing.observed(hops, row.probe.source.ip, row.probe.traced_address)
        row.explanation.findings.append(f"the real packet (the probe retried, traced on this kernel): "
                                        f"{tracing.describe(seen)}")
    return [f"{summary['lost']} trace events were lost: a finding may miss hops"] if summary["lost"] else []


@dataclass
class Report:
    rows: list[Row]
    seconds: float
    notes: list[str] = field(default_factory=list)  # about the whole check (the trace skipped, and why)

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_dict(self) -> dict:
        return {"passed": sum(r.ok for r in self.rows), "failed": sum(not r.ok for r in self.rows),
                "seconds": round(self.seconds, 2), "notes": self.notes, "rows": [r.to_dict() for r in self.rows]}


def check(kubeconfig: str | None, context: str | None, world: World | None, wait: float = WAIT,
          parallel: int = PARALLEL, on_plan=lambda probes: None, on_row=lambda row: None) -> Report:
    """Run the matrix (at most `parallel` probes at once), calling on_row(row) as each finishes; then walk
    every failure, and trace a retry of it where this process can (root on the kind host). Rows come back in
    plan order."""
    path = kube.kubeconfig_path(kubeconfig)
    name, _ = kube.current_context(path, context)
    api = kube.api_client(path, name)
    started = time.monotonic()
    layout = discover(api)
    with world if world is not None else _NoWorld() as target:
        probes = plan(layout, target)
        on_plan(probes)
        # run_probe answers every probe with a Row (a probe that cannot run is a failed row, not a failure of
        # the check), so the one fan-out yields rows only
        ordered = fan_out(probes, lambda probe: run_probe(api, probe, wait), parallel, on_answer=on_row,
                          node_of=lambda probe: probe.source.pod)
        seconds = time.monotonic() - started
        explain_all(ordered, path, name, target, wait, parallel)
        failed = [r for r in ordered if not r.ok]
        notes = trace_retries(failed, lambda probe: run_probe(api, probe, wait), parallel) if failed else []
    return Report(ordered, seconds, notes)


class _NoWorld:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def explain_all(rows: list[Row], kubeconfig: str, context: str, world: World | None, wait: float = WAIT,
                parallel: int = PARALLEL) -> None:
    """Walk every failed row, in parallel; rows with the same source and destination share one walk."""
    import threading
    from concurrent.futures import Future

    from tshoot.walk.setup import cluster_walk
    from tshoot.walk.walker import Packet

    walks: dict[tuple, Future] = {}
    lock = threading.Lock()

    def walk(pod: str, namespace: str, destination: str, protocol: str | None, slot: int | None) -> dict:
        key = (pod, namespace, destination, protocol, slot)
        with lock:
            mine = key not in walks
            if mine:
                walks[key] = Future()
        if mine:
            try:
                walks[key].set_result(cluster_walk(kubeconfig, context, pod, namespace, destination,
                                                   Packet(destination, protocol, None, slot), None))
            except Exception as exc:  # handed to every row waiting for this walk (explain() reports TshootError)
                walks[key].set_exception(exc)
        return walks[key].result()

    failed = [r for r in rows if not r.ok]
    explanations = fan_out(failed, lambda r: explain(r.probe, r, walk, world, wait), parallel,
                           node_of=lambda r: r.probe.source.pod)
    for row, explanation in zip(failed, explanations):
        row.explanation = explanation
