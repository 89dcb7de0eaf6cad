"""The lab's connectivity check (lab/connectivity.py) on the simulated cluster (tests/simdatapath.py).

`scenario()` is the guide's three-node cluster plus what `lab cilium install` adds for the check: a
net-echo pod on every node and the net-echo Service, taken from the rendered manifests (the Service's
ports and NodePort are the lab's own). `Workloads` then runs, in the pods' network namespaces, what their
containers would run:

  * net-echo: a TCP server answering each connection with the peer address (the manifest's socat);
  * CoreDNS: a small DNS responder (no DNS server is installed here) answering the cluster's Service
    names with their ClusterIPs, behind the kube-dns Service the sim load-balances;
  * the pods' /etc/resolv.conf, as kubelet writes it (ClusterFirst), through `ip netns exec`'s
    /etc/netns/NAME/ bind mounts;
  * the world: a network namespace on the sim's docker network (its bridge) with a UDP server that answers
    with the sender's address and records it, what the lab's DockerWorld container does with socat.

The check's commands (ping, bash, timeout, dig) run on this machine's binaries inside the namespaces; the
packets cross the project's datapath programs like any other.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from lab import connectivity
from lab.manifests import ECHO_SERVICE, TSHOOT_NAMESPACE, Target, documents, render_tshoot
from lab.releases import release
from tests import simdatapath
from tests.kubeapi import objects

ECHO_IDENTITY = 41230
WORLD_IP = "172.18.0.250"  # on the sim's docker network, like a container kind's network gives an address
ECHO_CLUSTER_IP = "10.96.118.21"

_ECHO = r"""
import socket, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", int(sys.argv[1])))
sock.listen(64)
print("ready", flush=True)
while True:
    conn, peer = sock.accept()
    conn.sendall(peer[0].encode() + b"\n")
    conn.close()
"""

# A DNS responder for A queries (RFC 1035 4.1): the names given as NAME=ADDRESS, NXDOMAIN for the others.
_DNS = r"""
import socket, struct, sys
names = dict(arg.split("=", 1) for arg in sys.argv[1:])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(4096)
    ident, flags = struct.unpack_from("!HH", data)
    pos, labels = 12, []
    while data[pos]:
        labels.append(data[pos + 1:pos + 1 + data[pos]].decode().lower())
        pos += 1 + data[pos]
    qtype, _ = struct.unpack_from("!HH", data, pos + 1)
    question = data[12:pos + 5]
    name = ".".join(labels)
    answer = b""
    if name in names and qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton(names[name])
    rcode = 0 if name in names else 3
    header = struct.pack("!HHHHHH", ident, 0x8480 | (flags & 0x0100) | rcode, 1, 1 if answer else 0, 0, 0)
    sock.sendto(header + question + answer, peer)
"""

_WORLD = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", int(sys.argv[1])))
log = open(sys.argv[2], "a")
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(2048)
    log.write(peer[0] + "\n")
    log.flush()
    try:
        sock.sendto(peer[0].encode() + b"\n", peer)
    except OSError:  # no route back (an unmasqueraded pod address): the arrival is recorded all the same
        pass
"""


def scenario(version: str = "1.19.4") -> dict:
    """simdatapath.guide_scenario() with the lab's net-echo DaemonSet pods and Service."""
    base = simdatapath.guide_scenario(version)
    shape = "1.9" if version.startswith("1.9") else "1.19"
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in documents(render_tshoot(Target("k8s-guide", release())))}
    ds_doc, svc_doc = rendered[("DaemonSet", ECHO_SERVICE)], rendered[("Service", ECHO_SERVICE)]
    labels = ds_doc["spec"]["selector"]["matchLabels"]
    container = ds_doc["spec"]["template"]["spec"]["containers"][0]
    ds = objects.daemonset(ECHO_SERVICE, TSHOOT_NAMESPACE, labels, container["image"], container["name"],
                           len(base["nodes"]))
    security = objects.pod_identity_labels(TSHOOT_NAMESPACE, labels)
    added = [ds, objects.identity(ECHO_IDENTITY, security)]
    pods = []
    for index, node in enumerate(base["nodes"]):
        ip = str(ipaddress.ip_network(node.pod_cidr)[77])
        pod = objects.pod(f"{ECHO_SERVICE}-{objects.suffix('echo' + node.name)}", TSHOOT_NAMESPACE, node,
                          {**labels, "pod-template-generation": "1"}, [(container["name"], container["image"])],
                          ip=ip, owner=ds)
        pods.append(pod)
        added += [pod, objects.endpoint(pod, node.ip, 500 + index, ECHO_IDENTITY, security, shape)]
    service = objects.service(ECHO_SERVICE, TSHOOT_NAMESPACE, ECHO_CLUSTER_IP, svc_doc["spec"]["ports"],
                              svc_doc["spec"]["selector"], svc_doc["metadata"]["labels"])
    service["spec"]["type"] = svc_doc["spec"]["type"]
    added.append(service)
    added.append(objects.endpoints(ECHO_SERVICE, TSHOOT_NAMESPACE, [(p["status"]["podIP"], p) for p in pods],
                                   [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]}
                                    for p in svc_doc["spec"]["ports"]]))
    base["objects"] = base["objects"] + added
    return base


class NetnsWorld(connectivity.World):
    """The world target as a network namespace on the sim's docker network."""

    def __init__(self, sim, port: int = 8081):
        self.sim, self.address, self.port = sim, WORLD_IP, port
        self.netns = f"kl-wld-{uuid.uuid4().hex[:6]}"
        self.log = sim.workdir / f"world-{self.netns}.log"
        self.proc = None

    def __enter__(self) -> "NetnsWorld":
        uplink = f"x{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        prefix = ipaddress.ip_network(simdatapath.BRIDGE_CIDR).prefixlen
        for argv in (["-n", self.sim.underlay, "link", "add", uplink, "type", "veth", "peer", "name", "eth0",
                      "netns", self.netns],
                     ["-n", self.sim.underlay, "link", "set", uplink, "master", "br0", "up"],
                     ["-n", self.netns, "addr", "add", f"{self.address}/{prefix}", "dev", "eth0"],
                     ["-n", self.netns, "link", "set", "eth0", "up"], ["-n", self.netns, "link", "set", "lo", "up"]):
            subprocess.run(["ip", *argv], check=True)
        self.log.touch()
        self.proc = _serve(self.netns, _WORLD, str(self.port), str(self.log))
        return self

    def arrivals(self) -> list[str]:
        return self.log.read_text().split()

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            _stop(self.proc)
        subprocess.run(["ip", "netns", "delete", self.netns], check=False)


def _serve(netns: str, script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", script, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        _stop(proc)
        raise RuntimeError(f"server in {netns} did not start: {proc.stderr.read()}")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


class Workloads:
    """What the pods' containers run, for as long as the `with` block lasts."""

    def __init__(self, sim, scenario_objects: list[dict]):
        self.sim, self.objects = sim, scenario_objects
        self.procs: list[subprocess.Popen] = []
        self.resolv_dirs: list[Path] = []

    def __enter__(self) -> "Workloads":
        pods = [o for o in self.objects if o.get("kind") == "Pod" and o["metadata"]["name"] in self.sim.pods]
        names = {f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc.{connectivity.CLUSTER_DOMAIN}":
                 s["spec"]["clusterIP"] for s in self.objects if s.get("kind") == "Service"}
        dns = next(s["spec"]["clusterIP"] for s in self.objects
                   if s.get("kind") == "Service" and s["metadata"]["name"] == "kube-dns")
        echo_port = next(s["spec"]["ports"][0]["targetPort"] for s in self.objects
                         if s.get("kind") == "Service" and s["metadata"]["name"] == ECHO_SERVICE)
        try:
            for pod in pods:
                name, labels = pod["metadata"]["name"], pod["metadata"].get("labels", {})
                netns = self.sim.pods[name].netns
                if labels.get("name") == ECHO_SERVICE:
                    self.procs.append(_serve(netns, _ECHO, str(echo_port)))
                elif labels.get("k8s-app") == "kube-dns":
                    self.procs.append(_serve(netns, _DNS, *(f"{k}={v}" for k, v in names.items())))
                # kubelet's resolv.conf for a ClusterFirst pod
                directory = Path("/etc/netns") / netns
                directory.mkdir(parents=True, exist_ok=True)
                self.resolv_dirs.append(directory)
                search = f"{pod['metadata']['namespace']}.svc.{connectivity.CLUSTER_DOMAIN} " \
                         f"svc.{connectivity.CLUSTER_DOMAIN} {connectivity.CLUSTER_DOMAIN}"
                (directory / "resolv.conf").write_text(f"search {search}\nnameserver {dns}\noptions ndots:5\n")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            _stop(proc)
        for directory in self.resolv_dirs:
            shutil.rmtree(directory, ignore_errors=True)
