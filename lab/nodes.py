"""The lab's node containers, found the way kind marks them: docker labels, never hard-coded names."""

from __future__ import annotations

from tshoot.core.errors import TshootError

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
DEFAULT_CLUSTER = "k8s-guide"


def docker_client(timeout: float = 60):
    import docker
    from docker.errors import DockerException
    from requests import RequestException

    try:
        # The API version is negotiated the way the docker CLI does it, from /_ping's Api-Version header:
        # docker-py's own negotiation asks /version, for which the engine queries containerd and runc (~10 ms
        # of every lab command). /_ping is unversioned, so any version will do for the probe.
        probe = docker.from_env(timeout=timeout, version=docker.constants.MINIMUM_DOCKER_API_VERSION)
        answer = probe.api.get(probe.api.base_url + "/_ping")
        probe.close()
        if answer.status_code != 200 or "Api-Version" not in answer.headers:
            raise DockerException(f"/_ping answered {answer.status_code} {answer.text.strip()[:200]}")
        client = docker.from_env(timeout=timeout, version=answer.headers["Api-Version"])
        if client.api.base_url.startswith("http+docker://"):
            # A local socket (unix or ssh): no HTTP proxy or netrc applies, and requests would look them up in
            # the environment again on every call (a few ms per exec with a large environment).
            client.api.trust_env = False
        return client
    except (DockerException, RequestException) as exc:
        raise TshootError(f"cannot reach the Docker engine ({exc}); is docker running?") from None


def node_containers(cluster: str = DEFAULT_CLUSTER, client=None, all_states: bool = False) -> list:
    """The cluster's node containers (control-plane first, then workers by name)."""
    client = client or docker_client()
    found = client.containers.list(all=all_states, filters={"label": f"{CLUSTER_LABEL}={cluster}"})
    return sorted(found, key=lambda c: (c.labels.get(ROLE_LABEL) != "control-plane", c.name))
