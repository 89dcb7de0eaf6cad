"""Enrichment: what the numbers in a map entry are, in the cluster's words.

identity -> its labels (CiliumIdentity; reserved identities by name, without asking), tunnel endpoint ->
the node with that InternalIP, ifindex -> the interface on that node, lxc_id -> the CiliumEndpoint and
its pod, an address -> the pod or node that has it.

The cluster (tshoot.cluster.model) is listed once per command (`Cluster.fetch`: a dump), or asked only what the
answers name (`Cluster(api)`: a lookup); each distinct value is explained once, never per entry. What cannot be
said is said ("missing": why), never fatal. Each map module says what its fields
name (CiliumMap.field_kinds), so a renamed field fails tests/test_map_names.py instead of going unexplained.
"""

from __future__ import annotations

from operator import methodcaller

from tshoot.cluster.model import Cluster
from tshoot.core.addr import parse_ip
from tshoot.core.errors import UsageError
from tshoot.core.identity import RESERVED, UNKNOWN, reserved_labels

# What a field can name (CiliumMap.field_kinds declares it per field of each map); the explainer of each.
KINDS = ("identity", "node_address", "interface", "endpoint", "address", "lifetime")


def _host_address(text) -> str | None:
    """'10.0.1.110', '10.0.1.110/32', 'fd00::1/128' -> the address; a wider prefix or a non-address -> None."""
    if not isinstance(text, str):
        return None
    address, slash, plen = text.partition("/")
    try:
        family, _ = parse_ip(address)
    except UsageError:
        return None
    if slash and plen != ("32" if family == "ipv4" else "128"):
        return None
    return address


_NOTHING: dict = {}  # shared by every entry with nothing said (never mutated)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


class Enricher:
    """Explains fields of decoded entries. `interfaces(node)` gives {ifindex: name} for a node (or raises).

    Without a cluster (None) only what needs no cluster is said: reserved identities, interface names;
    the command says once that the rest cannot be (Session.enricher)."""

    def __init__(self, cluster: Cluster | None, kinds: dict[str, str], interfaces=None, clocks=None):
        self.cluster, self.interfaces = cluster, interfaces
        self.kinds = kinds  # field name -> what it names (the map's CiliumMap.field_kinds)
        self.clocks = clocks  # node -> tshoot.mapio.ctclock.NodeClock, for conntrack lifetimes (None: not asked)
        self._clocks: dict[str, object] = {}
        self._interfaces: dict[str, dict[int, str] | str] = {}  # per node: the table, or why there is none
        self._said: dict[tuple, dict | None] = {}  # (node, field, value) -> what was said
        self._asked: set[tuple] = set()  # (field, value) explained on some node: the cluster's answer is kept

    def entry(self, node: str, key_fields: dict | None, value_fields: dict | None) -> dict:
        """{"field": {what it is}} for the fields of one entry this can explain."""
        self.parts(node, [key_fields or {}, value_fields or {}])  # the key's and the value's asked side by side
        return {**self.parts(node, [key_fields or {}])[0], **self.parts(node, [value_fields or {}])[0]}

    def parts(self, node: str, many: list[dict]) -> list[dict]:
        """What can be said about each of many keys' (or values') fields, by columns: each distinct value
        of a field is explained once, and a column with nothing to say (identities of a dump without a
        cluster) costs nothing per entry. Entries with nothing said share one empty dict."""
        names = set().union(*many) if len(many) > 1 else set(many[0]) if many else set()
        wanted = []  # (field, explainer, each entry's value, the distinct values)
        for name in sorted(names):
            explain = self._explainer(name)
            if explain is None:
                continue
            try:
                values = list(map(methodcaller("get", name), many))
                distinct = set(values)
            except TypeError:  # a list field: compare its items
                values = [_hashable(fields.get(name)) for fields in many]
                distinct = set(values)
            wanted.append((name, explain, values, [v for v in distinct if v is not None and
                                                    (v != 0 or self.kinds.get(name) == "identity")]))
        self._explain_all(node, [(name, explain, value) for name, explain, _, distinct in wanted for value in distinct
                                 if (node, name, value) not in self._said])
        columns = []
        for name, _, values, distinct in wanted:
            said = {value: self._said[(node, name, value)] for value in distinct
                    if self._said[(node, name, value)] is not None}
            if said:
                columns.append((name, list(map(said.get, values))))
        if not columns:
            return [_NOTHING] * len(many)
        if len(columns) == 1:
            name, found = columns[0]
            return [{name: f} if f is not None else _NOTHING for f in found]
        out = []
        for row in zip(*(found for _, found in columns)):
            part = {name: f for (name, _), f in zip(columns, row) if f is not None}
            out.append(part or _NOTHING)
        return out

    def _explain_all(self, node: str, pending: list[tuple]) -> None:
        """Each (field, explainer, value) said once. A cluster that is asked as things are named (one lookup's
        identity, pod and node) is asked for them side by side: each is a request that mostly waits. Values
        another node's entry named already are answered from what the cluster kept: no threads for those."""
        def said(item) -> dict | None:
            _, explain, value = item
            return explain(node, list(value) if isinstance(value, tuple) else value)

        fresh = {(name, value) for name, _, value in pending} - self._asked
        self._asked |= fresh
        if len(fresh) > 1 and self.cluster is not None and self.cluster.asks:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(8, len(pending))) as pool:
                answers = list(pool.map(said, pending))
        else:
            answers = list(map(said, pending))
        for (name, _, value), answer in zip(pending, answers):
            self._said[(node, name, value)] = answer

    def _explainer(self, name: str):
        """The method explaining a field, by what the map says it names; None when nothing can be said (or
        not without a cluster, interfaces, clocks)."""
        kind = self.kinds.get(name)
        if kind == "identity":
            return self.identity
        if kind == "interface":
            return self.interface if self.interfaces is not None else None
        if kind == "lifetime":
            return self.lifetime if self.clocks is not None else None
        if self.cluster is None:
            return None
        return {"node_address": self.node_address, "endpoint": self.endpoint, "address": self.address}.get(kind)

    def identity(self, node: str, number) -> dict | None:
        if number in RESERVED:
            name = reserved_labels(number)[0]
            return {"name": name, "meaning": RESERVED[number][1]} if number == UNKNOWN else {"name": name}
        if self.cluster is None:
            return None  # no cluster at all: said once for the command (Session.enricher), not per entry
        labels = self.cluster.identity_labels.get(number)
        if labels is None:
            return {"missing": f"no CiliumIdentity {number} in the cluster"}
        return {"labels": labels}

    def node_address(self, node: str, address) -> dict | None:
        if self.cluster is None:
            return None
        name = self.cluster.node_by_ip.get(address)
        return {"node": name} if name else {"missing": f"no node has address {address}"}

    def interface(self, node: str, ifindex) -> dict:
        if self.interfaces is None:
            return {"missing": "interface names are not known for this backend"}
        table = self._node_fact(self._interfaces, node, self.interfaces, "list the interfaces")
        if isinstance(table, str):
            return {"missing": table}
        name = table.get(ifindex)
        return {"interface": name} if name else {"missing": f"no interface {ifindex} on {node}"}

    def lifetime(self, node: str, lifetime) -> dict:
        """A conntrack lifetime as time from the node's now (tshoot.mapio.ctclock)."""
        clock = self._node_fact(self._clocks, node, self.clocks, "read the clocks")
        return {"missing": clock} if isinstance(clock, str) else clock.explain(lifetime)

    @staticmethod
    def _node_fact(cache: dict, node: str, fetch, what: str):
        """fetch(node), asked once per node; what it could not say as a sentence (enrichment never fails)."""
        if node not in cache:
            try:
                cache[node] = fetch(node)
            except Exception as exc:  # enrichment never fails the command
                cache[node] = f"cannot {what} of {node}: {exc}"
        return cache[node]

    def endpoint(self, node: str, number) -> dict | None:
        if self.cluster is None:
            return None
        name = self.cluster.endpoint_pod(node, number)
        if name is None:
            return {"missing": f"no CiliumEndpoint with id {number} on {node}"}
        return {"endpoint": name, "pod": name}

    def address(self, node: str, text) -> dict | None:
        """The pod or node with that address; None for what is not a single address (a CIDR)."""
        address = _host_address(text)
        if address is None:
            return None
        if self.cluster is None:
            return None
        pod = self.cluster.pod_by_ip.get(address)
        if pod:
            return {"pod": pod}
        node = self.cluster.node_by_ip.get(address)
        if node:
            return {"node": node}
        return {"missing": f"no pod or node has address {address}"}
