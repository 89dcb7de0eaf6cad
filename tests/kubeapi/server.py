"""A local Kubernetes API server for tests: the real wire protocol, in-memory objects.

The real `kubernetes` client (and anything else that speaks the API) works against it unchanged:
discovery, get/list (selectors, limit/continue), watch, create, replace, delete (one or a collection),
merge/strategic/JSON patches, server-side apply, the /status subresource, pods/log and pods/exec over
the websocket channel protocol. Errors are metav1.Status objects with the real reasons and messages.

For tests it adds what a real cluster cannot give: fault injection per path (any status code, or a
hang past the client's timeout), latency, a log of every request, and direct access to the objects.
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import execution
from .objects import STANDARD_NAMESPACES
from .resources import api_group, resource_list
from .store import ApiError, Store

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PATCH_TYPES = {"application/merge-patch+json": "merge", "application/strategic-merge-patch+json": "strategic",
               "application/json-patch+json": "json", "application/apply-patch+yaml": "apply",
               "application/apply-patch+cbor": "apply"}
KUBERNETES_VERSION = {"major": "1", "minor": "34", "gitVersion": "v1.34.8", "gitCommit": "", "gitTreeState": "clean",
                      "buildDate": "2026-05-14T00:00:00Z", "goVersion": "go1.24.9", "compiler": "gc",
                      "platform": "linux/amd64"}
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
_VERB_OF = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class Recorded:
    """One request as it reached the server."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: bytes
    user_agent: str | None
    target: str = ""  # the request line's target as sent: path and encoded query

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass
class Fault:
    pattern: str
    method: str | None
    status: int | None = None
    message: str | None = None
    hang: float | None = None
    times: int | None = None  # None: every matching request
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class Route:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


class KubeApiServer:
    """Serve the Kubernetes API on 127.0.0.1 (a free port), over HTTPS when given a certificate pair."""

    def __init__(self, tls: tuple[Path, Path] | None = None, ca: Path | None = None, token: str | None = None,
                 user: str = "kubernetes-admin"):
        self.store = Store()
        self.token = token if token is not None else secrets.token_hex(16)
        self.user = user
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # seconds added to every request
        self.exec_latency = 0.0  # seconds added to every exec, before the command runs
        self.exec_handler = None  # fn(namespace, pod, container, argv) -> (exit_code, stdout, stderr)
        self.exec_protocols = execution.CHANNEL_PROTOCOLS
        self.logs: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> log text
        self.reactors: list = []  # fn(server, verb, resource, obj) after every write through the API
        self.ca = ca
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self, tls, ca)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="kubeapi", daemon=True)
        for name in STANDARD_NAMESPACES:
            self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
                      "labels": {"kubernetes.io/metadata.name": name}},
                      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> "KubeApiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection, as a server that goes away does."""
        self._stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.cut_connections()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self._httpd.tls else 'http'}://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path, context: str = "kind-k8s-guide", namespace: str | None = None,
                         token: str | None = None, server: str | None = None,
                         client_cert: tuple[Path, Path] | None = None) -> Path:
        """A kubeconfig for this server, shaped like kind's (cluster, user and context named alike): the user
        holds the server's token, or `client_cert` (certificate, key) as kind writes its admin's."""
        import base64

        import yaml

        cluster = {"server": server or self.url}
        if self.ca is not None:
            cluster["certificate-authority-data"] = base64.b64encode(Path(self.ca).read_bytes()).decode()
        ctx = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        config = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": context,
                  "clusters": [{"name": context, "cluster": cluster}],
                  "contexts": [{"name": context, "context": ctx}],
                  "users": [{"name": context, "user": {"token": token if token is not None else self.token}}]}
        if client_cert is not None:
            config["users"][0]["user"] = {f"client-{what}-data": base64.b64encode(Path(file).read_bytes()).decode()
                                          for what, file in zip(("certificate", "key"), client_cert)}
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # --- objects, for tests (not recorded, no faults) ---------------------------------------------

    def resource(self, plural: str, group: str | None = None):
        """The served resource type named by its plural ("pods", "ciliumendpoints"), newest version."""
        with self.store.lock:
            found = [r for r in self.store.resources.values()
                     if r.plural == plural and (group is None or r.group == group)]
        if not found:
            raise KeyError(f"no resource {plural!r} is served (is its CRD stored?)")
        return sorted(found, key=lambda r: r.version)[-1]

    def add(self, *objects: dict, fill: bool = True) -> list[dict]:
        """Store objects as a cluster holds them: uid, resourceVersion, creationTimestamp filled in unless
        `fill=False` (then the object is served exactly as given, e.g. as printed in the guide)."""
        stored = []
        for obj in objects:
            resource = self.store.find_kind(obj["apiVersion"], obj["kind"])
            stored.append(self.store.create(resource, obj, obj.get("metadata", {}).get("namespace"), fill=fill,
                                            from_api=False))
        return stored

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict:
        return self.store.get(self.resource(plural), namespace, name)

    def list(self, plural: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        return self.store.list(self.resource(plural), namespace, label_selector)["items"]

    def put(self, obj: dict) -> dict:
        """Create or replace an object (a controller or kubelet writing, status included)."""
        resource = self.store.find_kind(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        with self.store.lock:
            try:
                self.store.get(resource, meta.get("namespace"), meta["name"])
            except ApiError:
                return self.add(obj)[0]
            body = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
            self.store.replace(resource, meta.get("namespace"), meta["name"], body)
            return self.store.replace(resource, meta.get("namespace"), meta["name"], body, subresource="status")

    def delete(self, plural: str, name: str, namespace: str | None = None, propagation: str | None = None) -> dict:
        """Delete as the API does (dependents go too, unless propagation="Orphan")."""
        return self.store.delete(self.resource(plural), namespace, name, propagation=propagation)

    # --- faults and the request log ----------------------------------------------------------------

    def fail(self, pattern: str, status: int, message: str | None = None, method: str | None = None,
             times: int | None = None) -> Fault:
        """Answer requests whose path matches `pattern` (glob) with this status code (a real Status body)."""
        fault = Fault(pattern, method, status=status, message=message, times=times)
        self.faults.append(fault)
        return fault

    def hang(self, pattern: str, seconds: float = 3600, method: str | None = None, times: int | None = None) -> Fault:
        """Accept matching requests and never answer (until `seconds` pass or the server stops)."""
        fault = Fault(pattern, method, hang=seconds, times=times)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_write]

    def requests_to(self, pattern: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern) and method in (None, r.method)]

    def _record(self, request: Recorded) -> None:
        with self._log_lock:
            self.requests.append(request)

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._log_lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _react(self, verb: str, resource, obj: dict) -> None:
        for reactor in list(self.reactors):
            reactor(self, verb, resource, obj)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # socketserver's 5 drops SYNs of concurrent clients: a 1 s retransmit each

    def __init__(self, address, handler, api: KubeApiServer, tls, ca):
        self.api = api
        self.open: set = set()
        self.open_lock = threading.Lock()
        self.connections = 0  # accepted so far: how many a client opened (keep-alive reuses them)
        self.tls = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(str(tls[0]), str(tls[1]))
            if ca is not None:  # client certificates signed by the CA authenticate, as kind's admin one does
                self.tls.verify_mode = ssl.CERT_OPTIONAL
                self.tls.load_verify_locations(str(ca))
        super().__init__(address, handler)

    def get_request(self):
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's net/http: no Nagle delay on replies
        if self.tls is not None:
            # The handshake happens in the request's own thread, on first read: a slow client blocks nobody.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request, client_address):
        with self.open_lock:
            self.open.add(request)
            self.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.open_lock:
            connections, self.open = list(self.open), set()
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # clients that time out and go away are part of the tests; no tracebacks on stderr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")

    # --- request pipeline -------------------------------------------------------------------------

    def _authenticated(self) -> bool:
        """The bearer token, or a client certificate the CA signed for the server's user (kube-apiserver's
        x509 authenticator takes the user from the subject's CN)."""
        if self.headers.get("Authorization") == f"Bearer {self.server.api.token}":
            return True
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        subject = dict(pair for rdn in (cert or {}).get("subject", ()) for pair in rdn)
        return subject.get("commonName") == self.server.api.user

    def _serve(self, method: str) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        path, query = split.path.rstrip("/") or "/", parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api._record(Recorded(method, path, query, self.headers.get("Content-Type"), body,
                             self.headers.get("User-Agent"), self.path))
        try:
            if api.token and not self._authenticated():
                raise ApiError(401, "Unauthorized", "Unauthorized")
            fault = api._fault_for(method, path)
            if fault is not None and fault.hang is not None:
                api._stopping.wait(fault.hang)
                self.close_connection = True
                return
            if api.latency:
                time.sleep(api.latency)
            if fault is not None:
                raise self._fault_error(fault, method, path, query)
            self._dispatch(method, path, query, body)
        except ApiError as exc:
            self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _fault_error(self, fault: Fault, method: str, path: str, query) -> ApiError:
        code = fault.status
        reason = REASONS.get(code, "Unknown")
        route = self._route(path, quiet=True)
        what = route.plural if route else path
        if route and route.group:
            what = f"{route.plural}.{route.group}"
        verb = _VERB_OF.get(method, method.lower())
        if method == "GET" and route and not route.name:
            verb = "watch" if _flag(query, "watch") else "list"
        if fault.message:
            message = fault.message
        elif code == 403:
            scope = f'in the namespace "{route.namespace}"' if route and route.namespace else "at the cluster scope"
            target = f"{what} \"{route.name}\"" if route and route.name else what
            message = (f'{target} is forbidden: User "{self.server.api.user}" cannot {verb} resource '
                       f'"{route.plural + ("/" + route.subresource if route.subresource else "") if route else path}" '
                       f'in API group "{route.group if route else ""}" {scope}')
        elif code == 404:
            message = f'{what} "{route.name}" not found' if route and route.name else "the server could not find the requested resource"
        elif code == 500:
            message = "Internal error occurred: etcdserver: request timed out"
        elif code == 503:
            message = "the server is currently unable to handle the request"
        elif code == 429:
            message = "the server has received too many requests and has asked us to try again later"
        else:
            message = f"{reason}"
        details = None
        if route:
            details = {"kind": route.plural, **({"name": route.name} if route.name else {}),
                       **({"group": route.group} if route.group else {})}
        if code == 500:
            details = {**(details or {}), "causes": [{"message": "etcdserver: request timed out"}]}
        return ApiError(code, reason, message, details)

    def _dispatch(self, method: str, path: str, query, body: bytes) -> None:
        api = self.server.api
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send_text(200, "ok")
        if path == "/version":
            return self._send_json(200, KUBERNETES_VERSION)
        if path == "/api":
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "172.18.0.4:6443"}]})
        if path == "/apis":
            return self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
        if m := re.fullmatch(r"/apis/([^/]+)", path):
            group = next((g for g in self._groups() if g["name"] == m[1]), None)
            if group is None:
                return self._not_found()
            return self._send_json(200, {"kind": "APIGroup", "apiVersion": "v1", **group})
        if m := re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path):
            group, version = (m[2] or ""), (m[3] or m[1])
            with api.store.lock:
                served = [r for r in api.store.resources.values() if r.group == group and r.version == version]
            if not served:
                return self._not_found()
            return self._send_json(200, resource_list(served[0].group_version, served))
        route = self._route(path)
        if route is None:
            return self._not_found()
        resource = api.store.resource(route.group, route.version, route.plural)
        if resource is None or (route.subresource and route.subresource not in resource.subresources):
            return self._not_found()
        if route.subresource == "exec":
            return self._exec(route, query)
        if route.subresource == "log":
            return self._log(route, query)
        if route.subresource not in (None, "status"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        self._crud(method, resource, route, query, body)

    def _groups(self) -> list[dict]:
        versions: dict[str, list[str]] = {}
        with self.server.api.store.lock:
            for res in self.server.api.store.resources.values():
                if res.group and res.version not in versions.setdefault(res.group, []):
                    versions[res.group].append(res.version)
        return [api_group(group, sorted(v, reverse=True)) for group, v in sorted(versions.items())]

    def _route(self, path: str, quiet: bool = False) -> Route | None:
        m = re.fullmatch(r"/api/v1/(.+)|/apis/([^/]+)/([^/]+)/(.+)", path)
        if not m:
            return None
        group, version, rest = (m[2] or ""), (m[3] or "v1"), (m[4] or m[1]).split("/")
        namespace = None
        # /namespaces/NS/<plural>… addresses namespaced objects; /namespaces/NAME[/status|finalize] a namespace.
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        return Route(group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None,
                     rest[2] if len(rest) > 2 else None)

    # --- CRUD -------------------------------------------------------------------------------------

    def _crud(self, method: str, resource, route: Route, query, body: bytes) -> None:
        api, store = self.server.api, self.server.api.store
        if (not resource.namespaced and route.namespace) or (resource.namespaced and route.name and not route.namespace):
            return self._not_found()  # /api/v1/namespaces/x/nodes and /api/v1/pods/NAME are no routes
        dry_run = "All" in query.get("dryRun", [])
        manager = _one(query, "fieldManager") or _default_manager(self.headers.get("User-Agent"))
        ns = route.namespace
        if method == "GET" and route.name is None:
            if _flag(query, "watch"):
                return self._watch(resource, route, query)
            limit = _one(query, "limit")
            result = store.list(resource, ns, _one(query, "labelSelector"), _one(query, "fieldSelector"),
                                int(limit) if limit and limit.isdigit() and int(limit) > 0 else None,
                                _one(query, "continue"))
            return self._send_json(200, result)
        if method == "GET":
            return self._send_json(200, store.get(resource, ns, route.name))
        if method == "POST" and route.name is None:
            obj = _decode(body)
            created = store.create(resource, obj, ns, manager=manager, dry_run=dry_run)
            if not dry_run:
                api._react("create", resource, created)
            return self._send_json(201, created)
        if method == "PUT" and route.name:
            obj = _decode(body)
            updated = store.replace(resource, ns, route.name, obj, manager=manager, dry_run=dry_run,
                                    subresource=route.subresource)
            if not dry_run:
                api._react("update", resource, updated)
            return self._send_json(200, updated)
        if method == "PATCH" and route.name:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            patch_type = PATCH_TYPES.get(content_type)
            if patch_type is None or (patch_type == "strategic" and resource.custom):
                accepted = [t for t, kind in PATCH_TYPES.items() if not (kind == "strategic" and resource.custom)]
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                               f"accepted media types include: {', '.join(accepted)}")
            patch = _decode_yaml(body) if patch_type == "apply" else _decode(body)
            force = _flag(query, "force")
            if force and patch_type != "apply":
                raise ApiError(422, "Invalid", "force: Forbidden: may not be specified for non-apply patch")
            obj, created = store.patch(resource, ns, route.name, patch_type, patch,
                                       manager=_one(query, "fieldManager") if patch_type == "apply" else manager,
                                       force=force, dry_run=dry_run, subresource=route.subresource)
            if not dry_run:
                api._react("create" if created else "patch", resource, obj)
            return self._send_json(201 if created else 200, obj)
        if method == "DELETE":
            options = _decode(body) if body else {}
            if route.name is None:
                result = store.delete_collection(resource, ns, _one(query, "labelSelector"),
                                                 _one(query, "fieldSelector"), dry_run=dry_run)
                return self._send_json(200, result)
            propagation = options.get("propagationPolicy") or _one(query, "propagationPolicy")
            deleted = store.delete(resource, ns, route.name, dry_run, propagation, options.get("preconditions"))
            if not dry_run:
                api._react("delete", resource, deleted)
            if resource.custom:
                return self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                             "details": {"name": route.name, "group": resource.group,
                                                         "kind": resource.plural,
                                                         "uid": deleted["metadata"].get("uid")}})
            return self._send_json(200, deleted)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _watch(self, resource, route: Route, query) -> None:
        """Watch events as chunked JSON lines, like the real server (resourceVersion and timeoutSeconds honoured)."""
        from .selectors import FieldSelector, LabelSelector, allowed_fields

        api, store = self.server.api, self.server.api.store
        labels = LabelSelector(_one(query, "labelSelector"))
        fields = FieldSelector(_one(query, "fieldSelector"), resource.plural, allowed_fields(resource.plural))
        timeout = float(_one(query, "timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        since = _one(query, "resourceVersion")

        def wanted(obj: dict) -> bool:
            meta = obj.get("metadata", {})
            return ((route.namespace is None or meta.get("namespace") == route.namespace)
                    and labels.matches(meta.get("labels")) and fields.matches(obj))

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        with store.lock:
            if since in (None, "", "0"):
                initial = store.list(resource, route.namespace)
                since = int(initial["metadata"]["resourceVersion"])
                pending = [("ADDED", obj) for obj in initial["items"] if wanted(obj)]
            else:
                since = int(since)
                events = store.watch_events(resource, since)
                if events is None:
                    gone = ApiError(410, "Expired", f"too old resource version: {since} ({store.revision})")
                    self._chunk({"type": "ERROR", "object": gone.status()})
                    return self._chunk(None)
                pending = []
        try:
            while True:
                for kind, obj in pending:
                    self._chunk({"type": kind, "object": {"apiVersion": resource.group_version, "kind": resource.kind,
                                                          **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}}})
                with store.lock:
                    events = store.watch_events(resource, since) or []
                    while not events and not api._stopping.is_set() and time.monotonic() < deadline:
                        store.changed.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                        events = store.watch_events(resource, since) or []
                if not events:
                    break
                since = events[-1][0]
                pending = [(kind, obj) for _, kind, obj in events if wanted(obj)]
            self._chunk(None)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def _chunk(self, event: dict | None) -> None:
        data = b"" if event is None else json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # --- pods/exec and pods/log -------------------------------------------------------------------

    def _container(self, route: Route, query) -> tuple[dict, str]:
        api = self.server.api
        pod = api.store.get(api.store.resource("", "v1", "pods"), route.namespace, route.name)
        names = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
        init = [c["name"] for c in pod.get("spec", {}).get("initContainers", [])]
        container = _one(query, "container")
        if not container:
            if len(names) != 1:
                extra = f" or one of the init containers: [{' '.join(init)}]" if init else ""
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {route.name}, "
                               f"choose one of: [{' '.join(names)}]{extra}")
            container = names[0]
        if container not in names + init:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {route.name}")
        return pod, container

    def _exec(self, route: Route, query) -> None:
        api = self.server.api
        pod, container = self._container(route, query)
        argv = query.get("command", [])
        if not argv:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        if "websocket" not in (self.headers.get("Upgrade") or "").lower():
            raise ApiError(400, "BadRequest", "Upgrade request required")
        if pod.get("status", {}).get("phase") != "Running":
            raise ApiError(400, "BadRequest", f'unable to upgrade connection: container not found ("{container}")')

        def run():
            if api.exec_latency:
                time.sleep(api.exec_latency)
            if api.exec_handler is None:
                raise execution.ExecStartError("this test server has no exec handler (set server.exec_handler)")
            return api.exec_handler(route.namespace, route.name, container, list(argv))

        execution.serve(self, run, argv, tuple(api.exec_protocols))

    def _log(self, route: Route, query) -> None:
        _, container = self._container(route, query)
        text = self.server.api.logs.get((route.namespace, route.name, container), "")
        tail = _one(query, "tailLines")
        if tail and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail):] if int(tail) else [])
        self._send_text(200, text)

    # --- responses --------------------------------------------------------------------------------

    def _send_json(self, code: int, body: dict) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        """Unknown paths (a group or resource that is not served) get the real server's plain-text 404."""
        self._send_text(404, "404 page not found\n")


def _one(query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _flag(query, name: str) -> bool:
    return (_one(query, name) or "").lower() in ("true", "1")


def _default_manager(user_agent: str | None) -> str:
    """The server names a writer without fieldManager after its user agent, up to the first '/'."""
    return (user_agent or "unknown").split("/")[0] or "unknown"


def _decode(body: bytes):
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"couldn't get version/kind; json parse error: {exc}") from None


def _decode_yaml(body: bytes):
    import yaml

    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise ApiError(400, "BadRequest", f"error decoding YAML: {exc}") from None
