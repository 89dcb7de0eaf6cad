"""How tshoot reaches one API server: its address, one TLS context, the credentials, and a small pool of
keep-alive HTTPS connections shared by the threads of a fan-out.

Built on the standard library's http.client and ssl rather than on the kubernetes package's ApiClient: that
client costs ~200 ms of imports (urllib3, pydantic, its configuration module) before the first byte is sent,
which is most of an interactive `tshoot map lookup` (issue 18: one node at interactive speed, within 2 x
one `kubectl exec`). What tshoot asks of the API is plain JSON over HTTPS (tshoot.cluster.kube.request) and
the exec websocket (tshoot.cluster.kube.exec_in_pod, which takes this object's TLS options and headers).
The kubernetes package still loads the kubeconfigs this module cannot (exec plugins, auth providers):
tshoot.cluster.kube.api_client hands their result over as a `credentials` function.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
from urllib.parse import quote, quote_plus, urlsplit

from tshoot.core.errors import UsageError


# What a query's encoding (urllib.parse.quote_plus, client-go's url.Values.Encode) leaves as one character: the
# unreserved ones, and a space, which becomes "+". Every other byte of the UTF-8 text becomes %XX.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
# quote_plus as a table for str.translate, which applies it in C: quote_plus maps one character at a time in
# Python, ~1 ms for an exec's 5 KB script (tshoot.node.agent.Agent.exec_many), paid per node of a fan-out.
_QUERY_TABLE = {c: ("+" if c == 32 else f"%{c:02X}") for c in range(128) if c not in _UNRESERVED}
_ONE_CHARACTER = bytes(sorted(_UNRESERVED)) + b" "


def query_quote(text: str) -> str:
    """quote_plus(text): a query's key or value as it travels."""
    return text.translate(_QUERY_TABLE) if text.isascii() else quote_plus(text)


def query_length(text: str) -> int:
    """len(query_quote(text)), counted in C without building it."""
    raw = text.encode()
    return len(raw) + 2 * len(raw.translate(None, _ONE_CHARACTER))


def environment_proxy(scheme: str, hostname: str) -> tuple[str | None, str]:
    """The proxy kubectl would take from the environment for this server (Go's http.ProxyFromEnvironment):
    $HTTPS_PROXY (or $HTTP_PROXY for http://), unless $NO_PROXY names the host, a domain it is in, or a CIDR
    holding its address ("*": every host); loopback servers are never proxied. (proxy, the variable's name)."""
    import os

    name = f"{scheme}_proxy"
    value = os.environ.get(name) or os.environ.get(name.upper())
    if not value:
        return None, name
    import ipaddress

    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    if hostname == "localhost" or (address is not None and address.is_loopback):
        return None, name
    for entry in (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "").replace(" ", "").split(","):
        domain = entry.lstrip(".").lower()
        if entry == "*" or (domain and (hostname.lower() == domain or hostname.lower().endswith("." + domain))):
            return None, name
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return None, name
            except ValueError:
                continue
    return value if "://" in value else f"http://{value}", f"${name.upper()}"


class _Connection(http.client.HTTPSConnection):
    """An HTTPS connection to the API server: its TLS name may differ from the host it dials (kubeconfig's
    tls-server-name, and the API server's name behind a proxy's CONNECT tunnel), and it resumes the TLS session
    of an earlier connection of the command when it can (Api.session)."""

    def __init__(self, api: "Api", host: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout, context=api.context)
        self._api = api

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, and the proxy's CONNECT when tunnelling
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._api.tls_server_name,
                                              session=self._api.session)


class Api:
    """One API server as a kubeconfig context reaches it.

    `credentials()` gives the Authorization header's value (or None) each time it is needed, so a token that
    an exec plugin refreshes stays current in a long `--watch`."""

    IDLE_KEPT = 64  # keep-alive connections kept for reuse: enough for a fan-out's --parallel

    def __init__(self, server: str, *, ca_file: str | None = None, verify: bool = True,
                 cert_file: str | None = None, key_file: str | None = None, tls_server_name: str | None = None,
                 token: str | None = None, credentials=None, proxy: str | None = None):
        parts = urlsplit(server)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UsageError(f"the kubeconfig's server {server!r} is not an http(s):// URL; fix the cluster entry")
        self.host = server.rstrip("/")  # what messages name: the server as the kubeconfig writes it
        self.scheme, self.hostname = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")  # a server behind a path prefix (Rancher, proxies)
        self.verify = verify
        self.tls_server_name = tls_server_name or self.hostname
        self._credentials = credentials or (lambda: f"Bearer {token}" if token else None)
        where = "the kubeconfig's proxy-url"
        if proxy is None:
            proxy, where = environment_proxy(self.scheme, self.hostname)
        self.proxy = urlsplit(proxy) if proxy else None
        if self.proxy is not None and (self.proxy.scheme != "http" or not self.proxy.hostname):
            raise UsageError(f"{where} {proxy!r}: only http:// proxies are supported (CONNECT tunnels); set one, "
                             f"or remove it")
        self.context = self._tls(ca_file, verify, cert_file, key_file) if parts.scheme == "https" else None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.session: ssl.SSLSession | None = None  # a TLS session to resume (keep_session)

    @staticmethod
    def _tls(ca_file: str | None, verify: bool, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
        """One context for every request and exec of the command: certificates are loaded once, not once per
        connection (a 500-node fan-out opens hundreds)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            if verify:
                if ca_file:
                    context.load_verify_locations(cafile=ca_file)
                else:  # no CA in the kubeconfig: the public roots, as the kubernetes client does
                    import certifi

                    context.load_verify_locations(cafile=certifi.where())
            else:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if cert_file:
                context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"the kubeconfig's certificates cannot be loaded ({detail}); get a fresh "
                             f"kubeconfig") from None
        return context

    # --- what requests and execs share ------------------------------------------------------------
    @property
    def authority(self) -> str:
        """The Host an HTTP request names: host[:port], the port left out where it is the scheme's own."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"

    def target(self, path: str, query: list[tuple[str, str]] | None = None) -> str:
        # A query's spaces as "+", as client-go's url.Values.Encode writes them: an exec's command (a script of
        # bpftool lines, tshoot.node.agent.Agent.exec_many) stays a third shorter than with "%20", well inside
        # the 8 KB request line that proxies in front of API servers commonly allow.
        encoded = "&".join(f"{query_quote(key)}={query_quote(value)}" for key, value in query or ())
        return self.base_path + quote(path) + (f"?{encoded}" if encoded else "")

    def authorization(self) -> dict:
        value = self._credentials()
        return {"Authorization": value} if value else {}

    # --- requests -----------------------------------------------------------------------------------
    def send(self, method: str, path: str, query: list[tuple[str, str]] | None = None, body=None,
             headers: dict | None = None, timeout: float = 20) -> tuple[int, str, bytes]:
        """One request: (status, content type, body). A keep-alive connection is reused when one is idle; a
        reused connection the server closed in between is replaced once (nothing was processed on it)."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        headers = {"Accept": "application/json", "User-Agent": "tshoot", **(headers or {}), **self.authorization()}
        target = self.target(path, query)
        while True:
            connection, reused = self._take(timeout)
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()
                if reused:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            self.keep_session(connection.sock)
            self._give_back(connection, response)
            return response.status, response.getheader("Content-Type") or "", data

    def _take(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                # An idle connection with something to read has been closed by the server (or is out of step):
                # urllib3's is_connection_dropped test.
                if connection.sock is not None and not select.select([connection.sock], [], [], 0)[0]:
                    connection.sock.settimeout(timeout)
                    return connection, True
                connection.close()
        return self._new_connection(timeout), False

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.proxy is not None:
            host, port = self.proxy.hostname, self.proxy.port or 80
        else:
            host, port = self.hostname, self.port
        if self.context is None:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            connection = _Connection(self, host, port, timeout)
        if self.proxy is not None:
            connection.set_tunnel(self.hostname, self.port)
        return connection

    def dial(self, timeout: float):
        """A socket connected to the API server as requests are (proxy, TLS, resumed session): an exec's
        websocket is opened on it (tshoot.cluster.kube.exec_in_pod)."""
        connection = self._new_connection(timeout)
        try:
            connection.connect()
        except BaseException:
            connection.close()
            raise
        return connection.sock

    def keep_session(self, sock) -> None:
        """Remember the TLS session of a connection that has read an answer (TLS 1.3 sends its resumption ticket
        after the handshake): later connections resume it, and the server and this client skip the
        certificate signature and chain checks of a full handshake. A fan-out over 500 nodes opens a
        connection per exec."""
        if self.session is not None and getattr(sock, "session_reused", False):
            return  # resumed: the session kept still serves
        session = getattr(sock, "session", None)  # None on a plain http:// connection
        if session is not None and session.has_ticket:
            self.session = session

    def _give_back(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        if response.will_close or connection.sock is None:
            connection.close()
            return
        with self._lock:
            if len(self._idle) < self.IDLE_KEPT:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
