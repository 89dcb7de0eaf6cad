"""The proof a destructive command must have before it writes anything: it is aimed at the lab.

Three facts, all read without writing and without one request to the API server:
  1. the kube context is the lab's kind context, `kind-<cluster>`;
  2. that context's API server is the address the lab's own control-plane container publishes (docker's
     mapping of its port 6443; or, from inside the kind network, the container itself on 6443);
  3. the containers the command will touch carry the lab's kind labels (io.x-k8s.kind.cluster=<cluster>).
A kubeconfig whose context is called kind-k8s-guide but points at another server (a stale file, a copied
context) fails 2. Anything short of the proof is refused with one line and exit 2, whatever other flags were
given: `--dry-run` is refused too, so that a dry run never shows a plan for the wrong cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tshoot.core.errors import TshootError, UsageError

from .nodes import CLUSTER_LABEL, ROLE_LABEL, docker_client, node_containers

API_PORT = "6443/tcp"
NODE_ROLES = ("control-plane", "worker")
# With several control planes kind puts a load balancer in front of them; it publishes the API port instead.
API_ROLES = ("external-load-balancer", "control-plane")
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
ANY_ADDRESS = {"", "0.0.0.0", "::"}


class Refusal(UsageError):
    """The command is not provably aimed at the lab (exit 2, nothing written)."""

    def __init__(self, reason: str):
        super().__init__(f"refusing: {reason}")


@dataclass
class Lab:
    """A proven lab: everything a destructive command may touch, and nothing else."""

    cluster: str
    context: str
    server: str
    kubeconfig: str | None
    api_container: object                      # the container that publishes the API server
    nodes: list = field(default_factory=list)  # node containers (control-plane first), all with the lab's labels
    docker: object = None

    def api_client(self):
        from tshoot.cluster.kube import api_client

        return api_client(self.kubeconfig, self.context)


def kind_context(cluster: str) -> str:
    return f"kind-{cluster}"


def published_addresses(container) -> list[tuple[str, str]]:
    """(host address, port) pairs under which `container` can be reached on its API port."""
    attrs = container.attrs
    found = [(b.get("HostIp", ""), str(b.get("HostPort", "")))
             for b in (attrs.get("NetworkSettings", {}).get("Ports") or {}).get(API_PORT) or []]
    # kind's internal kubeconfig (`kind get kubeconfig --internal`) names the container on the kind network.
    found.append((container.name, "6443"))
    for net in (attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
        for ip in (net.get("IPAddress"), net.get("GlobalIPv6Address")):
            if ip:
                found.append((ip, "6443"))
    return found


def same_endpoint(host: str, port: str, published: tuple[str, str]) -> bool:
    pub_host, pub_port = published
    if port != pub_port:
        return False
    if host == pub_host:
        return True
    return pub_host in ANY_ADDRESS and host in LOOPBACK_NAMES


def server_endpoint(server: str) -> tuple[str, str]:
    parts = urlsplit(server)
    if not parts.hostname:
        raise Refusal(f"the context's API server {server!r} is not a URL")
    return parts.hostname, str(parts.port or (443 if parts.scheme == "https" else 80))


def prove(cluster: str, kubeconfig: str | None = None, context: str | None = None, client=None) -> Lab:
    """The Lab, or Refusal (exit 2). Reads the kubeconfig and docker only."""
    from tshoot.cluster.kube import current_context

    expected = kind_context(cluster)
    try:  # a kubeconfig that cannot be read is a UsageError worded by tshoot.cluster.kube.read_kubeconfig
        name, entry = current_context(kubeconfig, context)
    except UsageError:
        raise
    except TshootError as exc:  # no kubeconfig at all: the message already says what to do
        raise UsageError(str(exc)) from None
    if name != expected:
        raise Refusal(f"context {name!r} is not the lab's kind context {expected!r} "
                      f"(use --context {expected}, or --name <cluster> for another kind lab)")
    server = entry.get("server") or ""
    host, port = server_endpoint(server)

    client = client or docker_client()
    labelled = node_containers(cluster, client, all_states=True)
    api_containers = sorted((c for c in labelled if c.labels.get(ROLE_LABEL) in API_ROLES and c.status == "running"),
                            key=lambda c: API_ROLES.index(c.labels[ROLE_LABEL]))
    if not api_containers:
        raise Refusal(f"no running control-plane container of kind cluster {cluster!r} "
                      f"(docker label {CLUSTER_LABEL}={cluster}): is the lab up?")
    api = next((c for c in api_containers
                if any(same_endpoint(host, port, p) for p in published_addresses(c))), None)
    if api is None:
        shown = ", ".join(f"{h or '0.0.0.0'}:{p}" for c in api_containers for h, p in published_addresses(c)[:1])
        raise Refusal(f"context {name!r} points at {server}, but the lab's {api_containers[0].name} publishes its "
                      f"API server at {shown} (stale kubeconfig? 'kind export kubeconfig --name {cluster}')")

    nodes = [c for c in labelled if c.labels.get(ROLE_LABEL) in NODE_ROLES]
    return Lab(cluster=cluster, context=name, server=server, kubeconfig=kubeconfig, api_container=api,
               nodes=nodes, docker=client)
