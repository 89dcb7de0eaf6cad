"""The lab's node containers, found the way kind marks them: docker labels, never hard-coded names."""

from __future__ import annotations

from tshoot.errors import TshootError

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
DEFAULT_CLUSTER = "k8s-guide"


def docker_client():
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=60)
        if client.api.base_url.startswith("http+docker://"):
            # A local socket (unix or ssh): no HTTP proxy or netrc applies, and requests would look them up in
            # the environment again on every call (a few ms per exec with a large environment).
            client.api.trust_env = False
        client.ping()
        return client
    except DockerException as exc:
        raise TshootError(f"cannot reach the Docker engine ({exc}); is docker running?") from None


def node_containers(cluster: str = DEFAULT_CLUSTER, client=None, all_states: bool = False) -> list:
    """The cluster's node containers (control-plane first, then workers by name)."""
    client = client or docker_client()
    found = client.containers.list(all=all_states, filters={"label": f"{CLUSTER_LABEL}={cluster}"})
    return sorted(found, key=lambda c: (c.labels.get(ROLE_LABEL) != "control-plane", c.name))
