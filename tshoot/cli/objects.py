"""`tshoot endpoints`, `endpoint get`, `identity get|list`, `nodes`, `whois`: parsing and printing only.

The work is in tshoot.cluster.objects; heavy libraries (kubernetes, rich, yaml) are imported when a command runs.
`-o json|yaml` prints API objects exactly as the server returns them where the command shows API objects
(endpoints, endpoint get, identity get of an allocated identity), kubectl-style (sorted keys, a List
for several, managedFields left out), and the joined rows otherwise (nodes, whois, identity list).
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from tshoot.cli.options import NODE_TIMEOUT_DEFAULT, PARALLEL_DEFAULT, NodeTimeout, Parallel
from tshoot.cli.progress import Progress
from tshoot.cli.render import cell, dump, print_table
from tshoot.core.duration import parse_duration
from tshoot.core.command import Context, Kubeconfig, check_output, console, new_app
from tshoot.core.errors import TshootError, UsageError

Namespace = Annotated[Optional[str], typer.Option("-n", "--namespace", metavar="NS",
                                                  help="namespace (default: the context's, else default)")]
AllNamespaces = Annotated[bool, typer.Option("-A", "--all-namespaces", help="every namespace")]
Timeout = Annotated[str, typer.Option("--request-timeout", metavar="DURATION",
                                      help="give up on an API request after this long (20s, 1m, 500ms)")]
WideOutput = Annotated[str, typer.Option("-o", "--output", metavar="table|wide|json|yaml", help="output format")]
Output = Annotated[str, typer.Option("-o", "--output", metavar="table|json|yaml", help="output format")]

endpoint_app = new_app("endpoint", help="One CiliumEndpoint.")
identity_app = new_app("identity", help="Security identities: reserved ones by name, the others from CiliumIdentity "
                                        "objects.")


def register(app: typer.Typer) -> None:
    app.command(name="endpoints", epilog=ENDPOINTS_EXAMPLES)(endpoints)
    app.add_typer(endpoint_app, name="endpoint")
    app.add_typer(identity_app, name="identity")
    app.command(name="nodes", epilog=NODES_EXAMPLES)(nodes)
    app.command(name="whois", epilog=WHOIS_EXAMPLES)(whois)


ENDPOINTS_EXAMPLES = """Examples:

  tshoot endpoints -A                       # every endpoint, like kubectl get cep -A

  tshoot endpoints --node k8s-guide-worker2 -o wide

  tshoot endpoint get net-tshoot-l8vwz -o yaml   # the guide's kubectl get cep … -oyaml
"""
NODES_EXAMPLES = """Examples:

  tshoot nodes            # InternalIP, pod CIDRs, cilium_host, health and ingress addresses per node

  tshoot nodes -o wide
"""
WHOIS_EXAMPLES = """Examples:

  tshoot whois 10.244.1.5      # a pod of the lab: its endpoint and identity, its node

  tshoot whois 172.18.0.2      # a node (kind's nodes are on docker's 172.18.0.0/16)

  tshoot whois 10.96.0.10      # a Service and its backends
"""


def _api(kubeconfig: str | None, context: str | None):
    from tshoot.cluster import kube

    return kube.api_client(kubeconfig, context)


def _namespace(namespace: str | None, all_namespaces: bool, kubeconfig: str | None, context: str | None):
    from tshoot.cluster import kube

    if all_namespaces and namespace:
        raise UsageError("give either -n NAMESPACE or -A, not both")
    if all_namespaces:
        return None
    return namespace or kube.default_namespace(kubeconfig, context)


# --- printing --------------------------------------------------------------------------------------

def _served(obj: dict) -> dict:
    """An object as kubectl prints it: managedFields left out."""
    return {**obj, "metadata": {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}}


def _listed(objs: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": [_served(o) for o in objs], "kind": "List", "metadata": {"resourceVersion": ""}}


def _table(headers: list[str], rows: list[list[str]], empty: str) -> None:
    """A kubectl-style table (tshoot.cli.render.table, columns three spaces apart), or `empty` on stderr."""
    if not rows:
        console(stderr=True).print(empty, markup=False)
        return
    print_table(headers, rows, gap=3)


def _details(pairs: list[tuple[str, str]]) -> None:
    """`Key:   value` lines, like kubectl describe; multi-line values continue under the value column."""
    width = max(len(key) for key, _ in pairs) + 4
    for key, value in pairs:
        first, *rest = value.split("\n")
        print(f"{key + ':':<{width}}{first}")
        for more in rest:
            print(" " * width + more)


# --- endpoints -------------------------------------------------------------------------------------

def endpoints(
    node: Annotated[Optional[str], typer.Option("--node", metavar="NODE", help="only endpoints on this node "
                                                                               "(name or IP)")] = None,
    namespace: Namespace = None,
    all_namespaces: AllNamespaces = False,
    output: WideOutput = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    request_timeout: Timeout = "20s",
) -> None:
    """CiliumEndpoints: endpoint id, identity, IPv4, IPv6, node and state of every pod Cilium manages."""
    from tshoot.cluster import objects

    output = check_output(output, ("table", "wide", "json", "yaml"))
    timeout = parse_duration(request_timeout, "--request-timeout")
    ns = _namespace(namespace, all_namespaces, kubeconfig, context)
    objs, rows = objects.list_endpoints(_api(kubeconfig, context), ns, node, timeout)
    if output in ("json", "yaml"):
        print(dump(_listed(objs), output, api_objects=True))
        return
    headers = (["NAMESPACE"] if ns is None else []) + ["NAME", "ENDPOINT ID", "IDENTITY", "IPV4", "IPV6", "NODE",
                                                       "STATE"]
    if output == "wide":
        headers += ["NODE IP", "POD", "IDENTITY LABELS"]
    table = []
    for row in rows:
        cells = ([row["namespace"]] if ns is None else []) + [
            row["name"], cell(row["endpoint_id"]), cell(row["identity"]), cell(row["ipv4"]), cell(row["ipv6"]),
            cell(row["node"]), cell(row["state"])]
        if output == "wide":
            cells += [cell(row["node_ip"]), cell(row["pod"]), cell(row["identity_labels"])]
        table.append(cells)
    where = "in any namespace" if ns is None else f"in namespace {ns}"
    _table(headers, table, f"No CiliumEndpoints {where}{' on node ' + node if node else ''}.")


@endpoint_app.command("get", epilog=ENDPOINTS_EXAMPLES)
def endpoint_get(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the CiliumEndpoint, named like its pod")],
    namespace: Namespace = None,
    output: Output = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    request_timeout: Timeout = "20s",
) -> None:
    """One CiliumEndpoint: its identity and labels, addresses, node, state, pod (-o yaml: the object as served)."""
    from tshoot.cluster import objects

    output = check_output(output)
    ns = _namespace(namespace, False, kubeconfig, context)
    obj, row = objects.get_endpoint(_api(kubeconfig, context), name, ns, parse_duration(request_timeout, "--request-timeout"))
    if output != "table":
        print(dump(_served(obj), output, api_objects=True))
        return
    node = row["node"] + (f" ({row['node_ip']})" if row["node_ip"] and row["node_ip"] != row["node"] else "")
    _details([("Name", row["name"]), ("Namespace", row["namespace"]), ("Endpoint ID", cell(row["endpoint_id"])),
              ("Identity", "\n".join([cell(row["identity"]), *row["identity_labels"]])),
              ("IPv4", cell(row["ipv4"])), ("IPv6", cell(row["ipv6"])), ("Node", cell(node)),
              ("State", cell(row["state"])), ("Pod", cell(row["pod"])),
              ("Container ID", cell(row["container_id"]))])


# --- identities ------------------------------------------------------------------------------------

@identity_app.command("get", epilog="""Examples:

  tshoot identity get 53731     # the guide's net-tshoot identity

  tshoot identity get 6         # reserved: remote-node, no lookup needed
""")
def identity_get(
    identity: Annotated[str, typer.Argument(metavar="ID", help="numeric identity (or a reserved name: host, world…)")],
    output: Output = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    request_timeout: Timeout = "20s",
) -> None:
    """The labels of a security identity. Reserved identities (1-10) are named without asking the cluster."""
    from tshoot.cluster import objects
    from tshoot.core.identity import parse_identity

    output = check_output(output)
    number = parse_identity(identity)
    if objects.reserved_identity(number):  # known without a kubeconfig or a cluster
        row, obj = objects.reserved_identity(number), None
    else:
        row, obj = objects.get_identity(_api(kubeconfig, context), number, parse_duration(request_timeout, "--request-timeout"))
    if output != "table":
        print(dump(_served(obj), output, api_objects=True) if obj else dump(row, output))
        return
    _table(["ID", "LABELS"], [[str(row["id"]), "\n".join(row["labels"])]], "")
    if row["reserved"]:
        print(f"reserved identity {row['reserved']}: {row['meaning']}")


@identity_app.command("list", epilog="""Examples:

  tshoot identity list

  tshoot identity list -l io.kubernetes.pod.namespace=kube-system
""")
def identity_list(
    selector: Annotated[Optional[str], typer.Option("-l", "--selector", metavar="SELECTOR",
                                                    help="label selector on the CiliumIdentity objects")] = None,
    reserved: Annotated[bool, typer.Option("--reserved/--no-reserved",
                                           help="include the reserved identities (not with -l)")] = True,
    output: Output = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    request_timeout: Timeout = "20s",
) -> None:
    """Every security identity: reserved ones by name, then the CiliumIdentity objects with their labels."""
    from tshoot.cluster import objects

    output = check_output(output)
    unreachable = None
    try:
        rows = objects.list_identities(_api(kubeconfig, context), selector, reserved,
                                       parse_duration(request_timeout, "--request-timeout"))
    except TshootError as exc:  # no cluster: the reserved identities are still known, the failure still said
        if selector or not reserved:
            raise
        rows, unreachable = objects.reserved_identities(), exc
    if output != "table":
        print(dump(rows, output))
    else:
        _table(["ID", "NAMESPACE", "LABELS"],
               [[str(r["id"]), cell(r["namespace"]), "\n".join(r["labels"])] for r in rows],
               "No identities match.")
    if unreachable is not None:
        sys.stdout.flush()
        print(f"tshoot: only the reserved identities: {unreachable}", file=sys.stderr)
        raise typer.Exit(1)


# --- nodes -----------------------------------------------------------------------------------------

def nodes(
    output: WideOutput = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    request_timeout: Timeout = "20s",
) -> None:
    """Nodes and their CiliumNodes: InternalIP, the pod CIDRs Cilium allocates from, cilium_host, health and
    ingress addresses."""
    from tshoot.cluster import objects

    output = check_output(output, ("table", "wide", "json", "yaml"))
    rows = objects.nodes_view(_api(kubeconfig, context), parse_duration(request_timeout, "--request-timeout"))
    if output in ("json", "yaml"):
        print(dump(rows, output))
        return
    headers = ["NAME", "READY", "INTERNAL-IP", "POD CIDRS", "CILIUM-HOST", "HEALTH", "INGRESS"]
    if output == "wide":
        headers += ["ROLES", "EXTERNAL-IP", "K8S POD CIDRS", "KUBELET"]
    problems = any(r["problems"] for r in rows)
    if problems:
        headers.append("PROBLEMS")
    table = []
    for r in rows:
        cells = [r["name"], r["ready"], cell(r["internal_ip"]), cell(r["pod_cidrs"]),
                 cell(r["cilium_internal_ips"]), cell(r["health_ips"]), cell(r["ingress_ips"])]
        if output == "wide":
            cells += [cell(r["roles"]), cell(r["external_ip"]), cell(r["k8s_pod_cidrs"]), cell(r["kubelet"])]
        if problems:
            cells.append("; ".join(r["problems"]) or "-")
        table.append(cells)
    _table(headers, table, "No nodes.")


# --- whois -----------------------------------------------------------------------------------------

def whois(
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="an IPv4 or IPv6 address")],
    output: Output = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    request_timeout: Timeout = "20s",
    ipcache: Annotated[bool, typer.Option("--ipcache", help="also ask every node's ipcache, through its Cilium "
                                                            "agent (what the datapath itself answers)")] = False,
    timeout: NodeTimeout = NODE_TIMEOUT_DEFAULT, parallel: Parallel = PARALLEL_DEFAULT,
) -> None:
    """What is behind an address: the endpoint and pod, a node (InternalIP, cilium_host, health, ingress),
    a Service and its backends, a pod CIDR, or the world; with the identity the datapath uses for it."""
    from tshoot.core import addr
    from tshoot.cluster import objects

    output = check_output(output)
    addr.parse_ip(address)  # a bad address is a usage error before any request
    api = _api(kubeconfig, context)
    lookup = None
    progress = Progress()
    if ipcache:
        from tshoot.mapio.read import ipcache_entries

        seconds = parse_duration(timeout)
        lookup = lambda wanted: ipcache_entries(api, wanted, parallel, seconds, progress.expect, progress)  # noqa: E731
    with progress:
        result = objects.whois(api, address, ipcache=lookup,
                               timeout=parse_duration(request_timeout, "--request-timeout"))
    failed = [e for e in result.get("ipcache", []) if e.get("error")]
    if output != "table":
        print(dump(result, output))
        _report_nodes(failed)
        return
    rows = []
    for match in result["matches"]:
        identity, labels = "-" if match["identity"] is None else str(match["identity"]), match["identity_labels"]
        if len(labels) == 1 and labels[0].startswith("reserved:"):
            identity = f"{identity} ({labels[0].split(':', 1)[1]})"
        elif labels:
            identity = "\n".join([identity, *labels])
        rows.append([match["kind"], match["name"], cell(match["node"]), identity, match["detail"]])
    _table(["KIND", "NAME", "NODE", "IDENTITY", "DETAIL"], rows, "")
    if "ipcache" in result:
        print()
        _table(["NODE", "IPCACHE ENTRY", "IDENTITY", "TUNNEL ENDPOINT"],
               [[e["node"], cell(e["prefix"]), cell(e.get("identity")), cell(e.get("tunnel_endpoint"))]
                for e in result["ipcache"] if not e.get("error")], "")
    _report_nodes(failed)


def _report_nodes(failed: list[dict]) -> None:
    """Each node whose ipcache could not be read on its own line (tshoot.node.fanout); exit 1 when any."""
    sys.stdout.flush()
    for entry in failed:
        print(f"tshoot: {entry['node']}: {entry['error']}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)
