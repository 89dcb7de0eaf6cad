"""tshoot.cluster.transport against the tests' API server: every kind of kubeconfig a user brings (kind's client
certificate, a token, a token file, an exec plugin, a proxy, a CA that does not match), keep-alive connections
reused across requests and threads, and a reused connection the server closed in between."""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.kubeapi import KubeApiServer, objects
from tests.kubeapi.tls import make_certs, make_client_cert
from tshoot.cluster import kube
from tshoot.cluster.transport import environment_proxy
from tshoot.core.errors import TshootError, UsageError


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("transport-tls")
    cert, key, ca = make_certs(directory)
    return cert, key, ca, make_client_cert(directory)


@pytest.fixture
def server(certs):
    cert, key, ca, _ = certs
    api = KubeApiServer(tls=(cert, key), ca=ca).start()
    try:
        yield api
    finally:
        api.stop()


POD = ("default", "net-tshoot-l8vwz", "netshoot")  # a pod of the guide's lab (objects.kind_cluster)


def version(api) -> str:
    return kube.request(api, "GET", "/version")["gitVersion"]


def edit(path, change) -> str:
    doc = yaml.safe_load(path.read_text())
    change(doc["clusters"][0]["cluster"], doc["users"][0]["user"])
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_kinds_client_certificate_authenticates_requests_and_execs(server, certs, tmp_path):
    kubeconfig = server.write_kubeconfig(tmp_path / "kind", client_cert=certs[3])
    assert "token" not in kubeconfig.read_text()
    server.exec_handler = lambda namespace, pod, container, argv: (0, b"from the pod\n", b"")
    server.add(*objects.kind_cluster())
    api = kube.api_client(str(kubeconfig))
    assert version(api) == "v1.34.8"
    assert kube.exec_in_pod(api, *POD, ["echo"]) == (0, "from the pod\n", "")
    stranger = make_client_cert(certs[0].parent, user="stranger")
    with pytest.raises(TshootError, match="401 Unauthorized"):
        version(kube.api_client(str(server.write_kubeconfig(tmp_path / "other", client_cert=stranger))))


def test_certificate_data_is_read_from_memory_not_written_to_a_disk():
    path = kube._credential_file({"client-key-data": "a2V5"}, "client-key", "/nowhere")
    assert path.startswith("/proc/self/fd/") and os.readlink(path).startswith("/memfd:tshoot-client-key")
    with open(path, "rb") as file:
        assert file.read() == b"key"


def test_a_token_file_next_to_the_kubeconfig(server, tmp_path):
    (tmp_path / "token").write_text(server.token + "\n")
    assert version(kube.api_client(edit(server.write_kubeconfig(tmp_path / "kc"),
                                        lambda cluster, user: user.update(token=None, tokenFile="token")))) == "v1.34.8"


def test_an_exec_plugin_is_asked_for_the_token_through_the_kubernetes_loader(server, tmp_path):
    plugin = tmp_path / "credential-plugin"
    asked = tmp_path / "asked"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": server.token}}
    plugin.write_text(f"#!{sys.executable}\nopen({str(asked)!r}, 'a').write('x')\n"
                      f"print({json.dumps(json.dumps(credential))})\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    kubeconfig = edit(server.write_kubeconfig(tmp_path / "kc"), lambda cluster, user: (
        user.clear(), user.update(exec={"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                        "interactiveMode": "Never"})))
    api = kube.api_client(kubeconfig)
    assert version(api) == "v1.34.8" and asked.read_text() == "x"


def test_connections_are_kept_alive_across_requests_and_threads(server, tmp_path):
    api = kube.api_client(str(server.write_kubeconfig(tmp_path / "kc")))
    for _ in range(5):
        version(api)
    assert server._httpd.connections == 1
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda _: version(api), range(40))) == {"v1.34.8"}
    assert server._httpd.connections <= 5


def test_a_connection_the_server_closed_while_idle_is_replaced(server, tmp_path):
    api = kube.api_client(str(server.write_kubeconfig(tmp_path / "kc")))
    version(api)
    server._httpd.cut_connections()  # the server drops idle keep-alive connections (its idle timeout)
    assert version(api) == "v1.34.8"
    assert server._httpd.connections == 2


def test_a_ca_that_did_not_sign_the_server_is_one_line(server, tmp_path):
    other_ca = make_certs(tmp_path)[2]
    kubeconfig = edit(server.write_kubeconfig(tmp_path / "kc"), lambda cluster, user: (
        cluster.pop("certificate-authority-data"), cluster.update({"certificate-authority": str(other_ca)})))
    with pytest.raises(TshootError, match=r"^GET /version: TLS failure talking to https://127.0.0.1:\d+: "
                                          r"certificate verify failed.*does the kubeconfig's certificate authority "):
        version(kube.api_client(kubeconfig))
    insecure = edit(tmp_path / "kc", lambda cluster, user: (cluster.pop("certificate-authority"),
                                                             cluster.update({"insecure-skip-tls-verify": True})))
    assert version(kube.api_client(insecure)) == "v1.34.8"


def test_a_kubeconfig_whose_server_or_proxy_is_not_usable(server, tmp_path):
    with pytest.raises(UsageError, match="server 'ftp://x' is not an http"):
        kube.api_client(edit(server.write_kubeconfig(tmp_path / "kc"), lambda c, u: c.update(server="ftp://x")))
    with pytest.raises(UsageError, match="proxy-url 'socks5://p:1': only http:// proxies"):
        kube.api_client(edit(server.write_kubeconfig(tmp_path / "kc"), lambda c, u: c.update({"proxy-url":
                                                                                             "socks5://p:1"})))


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that relays bytes and remembers what it was asked to reach."""

    def __init__(self, resolve: dict | None = None):
        self.resolve = resolve or {}  # names only the proxy knows, as a corporate proxy's DNS does
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.asked: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        method, target = head.split(b" ")[:2]
        assert method == b"CONNECT"
        self.asked.append(target.decode())
        host, port = target.decode().rsplit(":", 1)
        upstream = socket.create_connection((self.resolve.get(host, host), int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pair = {client: upstream, upstream: client}
        try:
            while True:
                for ready in select.select(list(pair), [], [])[0]:
                    data = ready.recv(65536)
                    if not data:
                        return
                    pair[ready].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self):
        self.listener.close()


def test_requests_and_execs_go_through_the_kubeconfigs_proxy(server, tmp_path):
    proxy = ConnectProxy()
    try:
        server.exec_handler = lambda namespace, pod, container, argv: (0, b"ok", b"")
        server.add(*objects.kind_cluster())
        kubeconfig = edit(server.write_kubeconfig(tmp_path / "kc"), lambda c, u: c.update({"proxy-url": proxy.url}))
        api = kube.api_client(kubeconfig)
        assert version(api) == "v1.34.8"
        assert kube.exec_in_pod(api, *POD, ["true"])[:2] == (0, "ok")
        assert proxy.asked == [f"127.0.0.1:{server.port}"] * 2
    finally:
        proxy.close()


def test_the_environments_proxy_as_kubectl_takes_it(server, tmp_path, monkeypatch):
    """$HTTPS_PROXY for requests and execs alike; a name only the proxy resolves proves both went through it."""
    proxy = ConnectProxy(resolve={"k8s-guide-control-plane": "127.0.0.1"})
    try:
        server.exec_handler = lambda namespace, pod, container, argv: (0, b"ok", b"")
        server.add(*objects.kind_cluster())
        kubeconfig = str(server.write_kubeconfig(tmp_path / "kc",
                                                 server=f"https://k8s-guide-control-plane:{server.port}"))
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        api = kube.api_client(kubeconfig)
        assert version(api) == "v1.34.8" and kube.exec_in_pod(api, *POD, ["true"])[:2] == (0, "ok")
        assert proxy.asked == [f"k8s-guide-control-plane:{server.port}"] * 2
        monkeypatch.setenv("NO_PROXY", "example.com,.k8s-guide-control-plane,10.0.0.0/8")
        with pytest.raises(TshootError, match="cannot connect to the API server at https://k8s-guide-control-plane"):
            version(kube.api_client(kubeconfig))  # direct: only the proxy knows the name
    finally:
        proxy.close()


@pytest.mark.parametrize("host, no_proxy, proxied", [
    ("10.1.2.3", "", True), ("127.0.0.1", "", False), ("localhost", "", False), ("::1", "", False),
    ("api.corp.example", "corp.example", False), ("api.corp.example", ".example", False),
    ("api.corp.example", "other.example", True), ("10.1.2.3", "10.0.0.0/8", False),
    ("10.1.2.3", "10.1.2.3", False), ("10.1.2.3", "*", False), ("11.1.2.3", "10.0.0.0/8,bad/cidr", True)])
def test_no_proxy_rules(monkeypatch, host, no_proxy, proxied):
    monkeypatch.setenv("https_proxy", "proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    proxy, _ = environment_proxy("https", host)
    assert proxy == ("http://proxy.corp:3128" if proxied else None)


def test_later_connections_resume_the_tls_session(server, certs, tmp_path):
    """Each exec opens a connection: after the first answer, the others resume its TLS session (no certificate
    signature or chain check on either side), also with kind's client certificate."""
    for kubeconfig in (server.write_kubeconfig(tmp_path / "token"),
                       server.write_kubeconfig(tmp_path / "cert", client_cert=certs[3])):
        api = kube.api_client(str(kubeconfig))
        first = api.dial(5)
        assert not first.session_reused
        first.close()
        assert version(api) == "v1.34.8"
        later = api.dial(5)
        try:
            assert later.session_reused
        finally:
            later.close()
        api.close()  # the kept-alive connection goes: the next request resumes, and is still authenticated
        assert version(api) == "v1.34.8"
