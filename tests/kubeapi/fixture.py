"""pytest fixtures for the local Kubernetes API server (registered by tests/conftest.py).

    def test_something(kubeapi):             # an empty cluster (the four standard namespaces)
        kubeapi.add(*objects.kind_cluster())
        tshoot("endpoints", "--kubeconfig", str(kubeapi.kubeconfig))

    def test_other(kubeapi_cluster):         # the guide's lab, Cilium 1.19.4, already loaded

`kubeapi.kubeconfig` is a kubeconfig for it (context kind-k8s-guide, HTTPS with its own CA, a bearer
token); `kubeapi.write_kubeconfig(path, context=...)` writes others.
"""

from __future__ import annotations

import pytest

from . import objects
from .server import KubeApiServer
from .tls import make_certs


@pytest.fixture(scope="session")
def kubeapi_certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("kubeapi-tls"))


@pytest.fixture
def kubeapi(kubeapi_certs, tmp_path):
    cert, key, ca = kubeapi_certs
    server = KubeApiServer(tls=(cert, key), ca=ca).start()
    server.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeapi_cluster(kubeapi):
    kubeapi.add(*objects.kind_cluster())
    return kubeapi
