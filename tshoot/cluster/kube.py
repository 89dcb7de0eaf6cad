"""Connecting to a Kubernetes API server the way kubectl does: --kubeconfig, --context, KUBECONFIG,
and the lab's ./kubeconfig when nothing else is given. Requests and execs travel over
tshoot.cluster.transport (the standard library's http.client); the kubernetes package is imported only to
load a kubeconfig that needs its loader (exec plugins, auth providers).

Reading and exec go through a few functions every command shares: `get_object`, `list_objects`
(paginated with limit/continue), `exec_in_pod` (the websocket channel protocol), `request`. Objects
are plain dicts exactly as the API returns them (what `-o yaml` shows); every request has a timeout;
every failure is a TshootError with one line that says what failed and what to do.
"""

from __future__ import annotations

import json
import os
import time
from collections import namedtuple
from collections.abc import Iterator

from tshoot.core.errors import TshootError, UsageError

# Light imports only (no dataclasses, pathlib, typing): `tshoot map --backend local` imports this module to
# ask whether a kubeconfig is reachable, and its start-up time is part of what it costs.
LAB_KUBECONFIG = "kubeconfig"  # written by `lab up` in the directory it runs from, like the guide's lab
REQUEST_TIMEOUT = 20  # seconds per API request: a hanging server must not hang the tool
PAGE_SIZE = 500  # objects per list request (kubectl's --chunk-size default)


def kubeconfig_path(explicit: str | None = None) -> str:
    """--kubeconfig, else $KUBECONFIG (first file of the list), else ./kubeconfig, else ~/.kube/config."""
    if explicit:
        if not os.path.isfile(explicit):
            raise UsageError(f"--kubeconfig {explicit}: no such file")
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        for candidate in env.split(os.pathsep):
            if candidate and os.path.isfile(candidate):
                return candidate
    if os.path.isfile(LAB_KUBECONFIG):
        return LAB_KUBECONFIG
    home = os.path.join(os.path.expanduser("~"), ".kube", "config")
    if os.path.isfile(home):
        return home
    raise TshootError("no kubeconfig found (run 'make up' to create the lab's ./kubeconfig, or pass --kubeconfig)")


def kubeconfig_reachable(explicit: str | None = None) -> bool:
    try:
        kubeconfig_path(explicit)
        return True
    except TshootError:
        return False


_KUBECONFIG_FIX = "pass a working one with --kubeconfig ('make up' writes the lab's ./kubeconfig)"


def read_kubeconfig(path: str) -> dict:
    """The kubeconfig at `path` as the mapping it must be; a UsageError naming what is wrong with the file and
    the fix otherwise (the one wording of both programs: lab.guard refuses with it too)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise UsageError(f"kubeconfig {path}: cannot read it ({exc.strerror}); {_KUBECONFIG_FIX}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"kubeconfig {path} is not UTF-8 text (a binary file?); {_KUBECONFIG_FIX}") from None
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"kubeconfig {path} is not valid YAML ({' '.join(str(exc).split())}); "
                         f"{_KUBECONFIG_FIX}") from None
    if doc is None:
        raise UsageError(f"kubeconfig {path} is empty; {_KUBECONFIG_FIX}")
    if not isinstance(doc, dict):
        raise UsageError(f"kubeconfig {path} is a YAML {type(doc).__name__}, not a mapping of clusters, contexts "
                         f"and users; {_KUBECONFIG_FIX}")
    return doc


def _context_entry(path: str, doc: dict, context: str | None) -> dict:
    """The context entry `context` names, else the current context's (kubectl's rule)."""
    contexts = [c for c in doc.get("contexts") or [] if isinstance(c, dict) and isinstance(c.get("context"), dict)]
    known = ", ".join(str(c.get("name")) for c in contexts) or "none"
    name = context or doc.get("current-context")
    if not contexts:
        raise UsageError(f"kubeconfig {path} has no usable contexts; {_KUBECONFIG_FIX}")
    if not name:
        raise UsageError(f"kubeconfig {path} has no current context: pick one with --context NAME (known: {known})")
    chosen = next((c for c in contexts if c.get("name") == name), None)
    if chosen is None:
        raise UsageError(f"context {name!r} is not in {path}: pick one with --context NAME (known: {known})")
    return chosen


def api_client(kubeconfig: str | None = None, context: str | None = None):
    """The API server that kubeconfig and context reach (tshoot.cluster.transport.Api)."""
    path = kubeconfig_path(kubeconfig)
    doc = read_kubeconfig(path)
    chosen = _context_entry(path, doc, context)
    api = _static_api(path, doc, chosen)
    return api if api is not None else _loaded_api(path, doc, chosen)


def _loaded_api(path: str, doc: dict, chosen: dict):
    """Exec plugins, auth providers: the kubernetes package's own loader reads the context (~250 ms of imports,
    paid only by such kubeconfigs); its token is asked for at each request, so the loader's refresh runs."""
    from tshoot.cluster.transport import Api

    client = _kubernetes_client()
    configuration = client.Configuration()
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        # temp_file_path: certificate files the kubeconfig names by relative path are found next to it.
        config.load_kube_config_from_dict(doc, context=chosen["name"], client_configuration=configuration,
                                          persist_config=False,
                                          temp_file_path=os.path.dirname(os.path.abspath(path)))
    except ConfigException as exc:
        raise UsageError(f"kubeconfig {path}: {' '.join(str(exc).split())}; {_KUBECONFIG_FIX}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # the loader indexes entries unchecked
        raise UsageError(f"kubeconfig {path} is malformed ({type(exc).__name__}: {exc}) in context "
                         f"{chosen['name']!r}; {_KUBECONFIG_FIX}") from None
    return Api(configuration.host, ca_file=configuration.ssl_ca_cert, verify=configuration.verify_ssl,
               cert_file=configuration.cert_file, key_file=configuration.key_file,
               tls_server_name=configuration.tls_server_name, proxy=configuration.proxy,
               credentials=lambda: configuration.get_api_key_with_prefix("BearerToken", alias="authorization"))


def _kubernetes_client():
    """kubernetes.client without the rest of the package: `import kubernetes` runs its __init__, which imports
    config, dynamic, utils and the watch/informer machinery (~450 ms); the package is registered bare, its
    submodules imported on demand (`from kubernetes import config` still imports config)."""
    import sys

    if "kubernetes" not in sys.modules:
        import importlib.util
        import types

        spec = importlib.util.find_spec("kubernetes")
        if spec is None:
            raise TshootError("the kubernetes package is not installed: reinstall tshoot (pip install -e .)")
        package = types.ModuleType("kubernetes")
        package.__spec__, package.__path__ = spec, list(spec.submodule_search_locations or [])
        sys.modules["kubernetes"] = package
    from kubernetes import client

    return client


# The kubeconfig entries read here; a context using any other (exec, auth-provider, username…) is loaded by
# the kubernetes package instead.
_STATIC_CLUSTER = {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
                   "tls-server-name", "proxy-url", "extensions"}
_STATIC_USER = {"token", "tokenFile", "client-certificate", "client-certificate-data", "client-key",
                "client-key-data", "extensions"}


def _static_api(path: str, doc: dict, chosen: dict):
    """The API server of a context whose credentials are static (kind's client certificate, a token), read as
    kubectl reads them; None when the context needs more (api_client falls back to the kubernetes loader)."""
    def entry(kind: str, name) -> dict | None:
        found = next((e.get(kind) for e in doc.get(kind + "s") or []
                      if isinstance(e, dict) and e.get("name") == name), None)
        return found if isinstance(found, dict) else None

    cluster = entry("cluster", chosen["context"].get("cluster"))
    user = entry("user", chosen["context"].get("user")) or {}
    if cluster is None or not cluster.get("server") or set(cluster) - _STATIC_CLUSTER or set(user) - _STATIC_USER:
        return None
    from tshoot.cluster.transport import Api

    base = os.path.dirname(os.path.abspath(path))
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            with open(os.path.join(base, user["tokenFile"])) as file:
                token = file.read().strip()
        except OSError as exc:
            raise UsageError(f"kubeconfig {path}: tokenFile {user['tokenFile']}: {exc.strerror}; "
                             f"{_KUBECONFIG_FIX}") from None
    return Api(str(cluster["server"]), ca_file=_credential_file(cluster, "certificate-authority", base),
               verify=not cluster.get("insecure-skip-tls-verify", False),
               cert_file=_credential_file(user, "client-certificate", base),
               key_file=_credential_file(user, "client-key", base),
               tls_server_name=cluster.get("tls-server-name"), token=token, proxy=cluster.get("proxy-url"))


def _credential_file(entry: dict, name: str, base: str) -> str | None:
    """The file holding a certificate or key: its path (relative to the kubeconfig), or NAME-data in an
    anonymous memory file named by /proc/self/fd (ssl reads certificates from paths only; a client key is then
    never written to a disk, and nothing is left behind by a command that is killed)."""
    if entry.get(name):
        return os.path.join(base, entry[name])
    data = entry.get(name + "-data")
    if not data:
        return None
    import base64
    import binascii

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise UsageError(f"kubeconfig: {name}-data is not base64; {_KUBECONFIG_FIX}") from None
    fd = os.memfd_create(f"tshoot-{name}")  # lives as long as the command: the TLS context loads it once
    os.write(fd, raw)
    return f"/proc/self/fd/{fd}"


def default_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace commands use without -n: the context's, else "default" (kubectl's rule)."""
    path = kubeconfig_path(kubeconfig)
    return _context_entry(path, read_kubeconfig(path), context)["context"].get("namespace") or "default"


def current_context(kubeconfig: str | None = None, context: str | None = None) -> tuple[str, dict]:
    """(context name, its cluster entry) as the kubeconfig resolves them."""
    path = kubeconfig_path(kubeconfig)
    doc = read_kubeconfig(path)
    chosen = _context_entry(path, doc, context)
    wanted = chosen["context"].get("cluster")
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or []
                    if isinstance(c, dict) and c.get("name") == wanted), {})
    return chosen["name"], cluster if isinstance(cluster, dict) else {}


# --- resources -----------------------------------------------------------------------------------

class Resource(namedtuple("Resource", "group version plural kind namespaced missing_hint", defaults=("",))):
    """A resource type as the API addresses it; missing_hint: what it means when the server does not serve
    this type at all."""

    __slots__ = ()

    @property
    def display(self) -> str:
        """kubectl's name for the type: "pods", "ciliumendpoints.cilium.io"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        return f"{base}/{subresource}" if subresource else base


_CILIUM_CRD = "is Cilium installed? Its operator registers this CRD at start-up"
PODS = Resource("", "v1", "pods", "Pod", True)
NODES = Resource("", "v1", "nodes", "Node", False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", False)
SERVICES = Resource("", "v1", "services", "Service", True)
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints", True)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
DAEMONSETS = Resource("apps", "v1", "daemonsets", "DaemonSet", True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment", True)
CILIUM_ENDPOINTS = Resource("cilium.io", "v2", "ciliumendpoints", "CiliumEndpoint", True, _CILIUM_CRD)
CILIUM_IDENTITIES = Resource("cilium.io", "v2", "ciliumidentities", "CiliumIdentity", False, _CILIUM_CRD)
CILIUM_NODES = Resource("cilium.io", "v2", "ciliumnodes", "CiliumNode", False, _CILIUM_CRD)


# --- requests ------------------------------------------------------------------------------------

def request(api, method: str, path: str, query: list[tuple[str, str]] | None = None, body=None,
            content_type: str | None = None, timeout: float = REQUEST_TIMEOUT, what: str | None = None,
            resource: Resource | None = None):
    """One API request; the decoded JSON body (or text). Failures become one-line TshootErrors."""
    what = what or f"{method} {path}"
    try:
        status, kind, data = api.send(method, path, query, body,
                                      {"Content-Type": content_type} if content_type else None, timeout)
    except Exception as exc:  # socket, TLS and HTTP errors: classified into one line each
        raise _transport_error(exc, api.host, what, timeout) from None
    text = data.decode("utf-8", "replace")
    if not 200 <= status < 300:
        raise api_error(status, text, what, api.host, resource)
    if "json" in kind:
        return json.loads(text)
    return text


def get_object(api, resource: Resource, name: str, namespace: str | None = None,
               timeout: float = REQUEST_TIMEOUT) -> dict:
    where = f"{namespace}/{name}" if resource.namespaced and namespace else name
    return request(api, "GET", resource.path(namespace, name), timeout=timeout,
                   what=f"get {resource.display} {where}", resource=resource)


def list_objects(api, resource: Resource, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, limit: int = PAGE_SIZE,
                 timeout: float = REQUEST_TIMEOUT) -> Iterator[dict]:
    """Every matching object, fetched `limit` at a time (limit/continue), each page within `timeout`.

    namespace None lists across all namespaces (kubectl -A)."""
    query = [("limit", str(limit))]
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    scope = f" in namespace {namespace}" if resource.namespaced and namespace else ""
    token = None
    while True:
        page = request(api, "GET", resource.path(namespace), query + ([("continue", token)] if token else []),
                       timeout=timeout, what=f"list {resource.display}{scope}", resource=resource)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


class NotFound(TshootError):
    """The API server answered 404 with a Status: that object does not exist (kubectl's NotFound)."""


def no_such_node(node: str, known) -> TshootError:
    """An unknown node is a fact about the cluster (exit 1, like kubectl's NotFound), not a malformed argument."""
    return TshootError(f"no node named {node!r} (nodes: {', '.join(sorted(set(known))) or 'none'})")


def api_error(code: int, body: str, what: str, host: str, resource: Resource | None = None) -> TshootError:
    """The one line for an API error status, from the metav1.Status the server sent (or its text)."""
    try:
        status = json.loads(body)
        message = status.get("message") or body.strip()
    except ValueError:
        status, message = None, body.strip()
    if code == 401:
        return TshootError(f"{what}: 401 Unauthorized: the API server at {host} rejected the kubeconfig's "
                           f"credentials (expired token or certificate? get a fresh kubeconfig)")
    if code == 403:
        return TshootError(f"{what}: 403 Forbidden: {message} (ask for RBAC permission or use another --context)")
    if code == 404 and status is None and resource is not None:
        hint = f": {resource.missing_hint}" if resource.missing_hint else ""
        return TshootError(f"{what}: the API server does not serve {resource.display} "
                           f"({resource.group or 'core'}/{resource.version}){hint}")
    if code == 404:
        return NotFound(f"{what}: {message}")
    if code == 410:
        return TshootError(f"{what}: the list expired before it was read (410 Gone): run the command again")
    reason = (status or {}).get("reason") or ""
    return TshootError(f"{what}: the API server answered {code}{' ' + reason if reason else ''}: {message}")


def _transport_error(exc: Exception, host: str, what: str, timeout: float) -> TshootError:
    """Socket-level failures (refused, timed out, TLS, cut) as one line each."""
    import http.client
    import socket
    import ssl

    detail = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return TshootError(f"{what}: cannot connect to the API server at {host}: connection refused "
                           f"(is the cluster running? 'make up' starts the lab)")
    if isinstance(exc, socket.gaierror):
        return TshootError(f"{what}: cannot connect to the API server at {host}: {exc.strerror or detail}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TshootError(f"{what}: the API server at {host} did not answer within {timeout:g}s "
                           f"(overloaded or unreachable?)")
    if isinstance(exc, ssl.SSLError):
        reason = (f"certificate verify failed: {exc.verify_message}" if isinstance(exc, ssl.SSLCertVerificationError)
                  else getattr(exc, "reason", None) or detail)
        return TshootError(f"{what}: TLS failure talking to {host}: {reason} (does the kubeconfig's certificate "
                           f"authority belong to this server?)")
    if isinstance(exc, (ConnectionError, http.client.HTTPException)):
        return TshootError(f"{what}: the API server at {host} cut the connection ({detail})")
    if isinstance(exc, OSError) and exc.strerror:
        return TshootError(f"{what}: cannot connect to the API server at {host}: {exc.strerror}")
    return TshootError(f"{what}: cannot talk to the API server at {host}: {type(exc).__name__}: {detail}")


# --- exec ----------------------------------------------------------------------------------------

class ExecError(TshootError):
    """The command could not run in the pod (not found in the image, container not running, ...).

    `status` is the metav1.Status the API server sent on the error channel, when it sent one."""

    def __init__(self, message: str, status: dict | None = None):
        super().__init__(message)
        self.status = status


class CommandNotFound(ExecError):
    """The container has no such executable: the runtime could not start argv[0]."""


# How container runtimes word "no such executable" in the Status of a failed exec (runc, crun): the
# Status carries no reason of its own for it (InternalError, like any other start failure).
_NOT_FOUND_WORDS = ("executable file not found", "no such file or directory")

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STOP_POLL = 0.5  # seconds: how soon a stopped stream notices
STDOUT, STDERR, ERROR = 1, 2, 3


def exec_in_pod(api, namespace: str, pod: str, container: str | None, argv: list[str],
                timeout: float = REQUEST_TIMEOUT, text: bool = True, on_stdout=None,
                stop=None) -> tuple[int | None, str | bytes, str | bytes]:
    """Run argv in a container: (exit code, stdout, stderr), like `kubectl exec` without a terminal.

    Streaming (`cilium-dbg monitor`, a big `bpftool -j map dump`): `on_stdout(bytes)` gets stdout frame by
    frame as it arrives instead of it being returned (stdout is then empty), `timeout` bounds the whole stream,
    and setting `stop` (a threading.Event) ends it early, closing the stream (which ends the command); the
    exit code is then None.

    Speaks the API server's websocket channel protocol (v5/v4.channel.k8s.io, tshoot.cluster.channel) on a
    socket the transport dialled as it dials for requests (Api.dial: proxy, TLS, a resumed session), with a
    timeout for the upgrade (kubernetes.stream has none: a hung API server would hang the tool) and every
    failure told apart (it folds them into one string); stdout and stderr stay apart and the exit code comes
    from the error channel's Status."""
    import socket

    from tshoot.cluster import channel

    what = f"exec {argv[0]} in pod {namespace}/{pod}"
    query = [("command", arg) for arg in argv] + [("stdout", "true"), ("stderr", "true")]
    if container:
        query.append(("container", container))
    target = api.target(PODS.path(namespace, pod, "exec"), query)
    deadline = time.monotonic() + timeout
    out, err, status = bytearray(), bytearray(), bytearray()
    sock = stream = None
    finished = stopped = False
    poll = STOP_POLL if stop is not None else float("inf")  # how often a stream looks at `stop`
    try:
        sock = api.dial(min(timeout, REQUEST_TIMEOUT))
        stream = channel.Channel.open(sock, target, api.authority, api.authorization(), EXEC_PROTOCOLS)
        api.keep_session(sock)
        while True:
            sock.settimeout(max(0.001, min(deadline - time.monotonic(), poll)))
            try:
                opcode, data = stream.message()
            except socket.timeout:
                if stop is not None and (stop.is_set() or time.monotonic() >= deadline):
                    stopped = True
                    break
                if time.monotonic() < deadline:
                    continue
                raise
            if opcode == channel.CLOSE:
                finished = True
                break
            if data:
                number, payload = data[0], data[1:]
                if number == STDOUT and on_stdout is not None:
                    on_stdout(payload)
                    continue
                {STDOUT: out, STDERR: err, ERROR: status}.get(number, bytearray()).extend(payload)
    except channel.UpgradeRefused as exc:
        raise api_error(exc.status, exc.body.decode("utf-8", "replace"), what, api.host, PODS) from None
    except channel.StreamCut:
        pass  # the server closed the TCP connection without a close frame: judge by the status received
    except Exception as exc:
        raise _transport_error(exc, api.host, what, timeout) from None
    finally:
        if stream is not None and (finished or stopped):
            stream.close()  # answer the server's close frame, or end a stream we stopped
        if sock is not None:
            sock.close()
    code = None if stopped else _exit_code(bytes(status), what)
    if text:
        return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return code, bytes(out), bytes(err)


def _exit_code(status: bytes, what: str) -> int:
    if not status:
        raise ExecError(f"{what}: the stream ended without an exit status (the connection was cut?)")
    try:
        parsed = json.loads(status)
    except ValueError:
        raise ExecError(f"{what}: unreadable exit status {status[:200]!r}") from None
    if parsed.get("status") == "Success":
        return 0
    if parsed.get("reason") == "NonZeroExitCode":
        for cause in (parsed.get("details") or {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
    message = str(parsed.get("message") or parsed)
    error = CommandNotFound if any(w in message.lower() for w in _NOT_FOUND_WORDS) else ExecError
    raise error(f"{what}: {message}", parsed)
