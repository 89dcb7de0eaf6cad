"""lab.nodes.docker_client against the real engine, and against sockets where no Docker engine answers."""

from __future__ import annotations

import http.server
import subprocess
import threading

import pytest

from lab.nodes import docker_client
from tshoot.core.errors import TshootError


@pytest.mark.docker
def test_the_client_speaks_the_engines_own_api_version(docker_engine):
    engine = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"], capture_output=True,
                            text=True, check=True).stdout.strip()
    client = docker_client()
    try:
        assert client.api.api_version == engine
        assert client.containers.list(filters={"label": "kindlab-test=never-set"}) == []
    finally:
        client.close()


def test_no_engine_at_the_socket_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(TshootError, match=r"^cannot reach the Docker engine \(.*\); is docker running\?$"):
        docker_client()


class _NotDocker(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"404 page not found\n")

    def log_message(self, *args):
        pass


def test_a_server_that_is_not_docker_is_named_as_such(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotDocker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{server.server_port}")
        with pytest.raises(TshootError, match=r"/_ping answered 404 404 page not found"):
            docker_client()
    finally:
        server.shutdown()
