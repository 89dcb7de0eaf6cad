"""`lab nuke kube-proxy`: kube-proxy's objects out of the API, and its rules out of every node.

The guide's version (`kubectl delete ds/cm kube-proxy`, then per hard-coded node
`docker exec -it <node> bash -c 'iptables-restore <(iptables-save | grep -v KUBE)'`) leaves IPv6, the other
iptables backend, and whatever kube-proxy re-writes while it is still terminating; it drops unrelated lines
that mention KUBE, and needs a TTY. Here:
  * the DaemonSet goes first, and the node rules are only touched once no kube-proxy pod is left to put
    them back;
  * every node of the lab (found by its kind labels) is cleaned at the same time, each through one shell
    on one docker exec (lab/nodeshell.py): dump every backend that exists there (iptables and ip6tables,
    nft and legacy) and look for what kube-proxy's other modes leave (lab/nftkube.py: nftables tables;
    lab/ipvskube.py: the kube-ipvs0 interface), plan the exact deletions (lab/iptsave.py), apply them
    (iptables-restore --noflush, nft -f, ip link delete), read again and check that nothing of kube-proxy's
    is left and that nothing else changed;
  * a node that fails (stopped, an iptables error) is reported with its reason; the others finish.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tshoot.cluster import kube
from tshoot.core.errors import TshootError
from tshoot.node.fanout import NodeFailure, fan_out

from . import ipvskube, iptsave, nftkube
from .nodeshell import NodeShell

NAMESPACE = "kube-system"
NAME = "kube-proxy"
POD_SELECTOR = "k8s-app=kube-proxy"
COMMAND_NOT_FOUND = 127
REMOVAL_REFUSED = 86  # the exit status a removal job uses when its removal command failed (no re-read follows)


@dataclass(frozen=True)
class Backend:
    family: str  # iptables (IPv4) or ip6tables (IPv6)
    kind: str    # nft or legacy

    @property
    def name(self) -> str:
        return f"{self.family}-{self.kind}"

    @property
    def save(self) -> str:
        if self.kind == "legacy":
            # Legacy tables of a network namespace are listed in /proc/net/ip{,6}_tables_names: when it is
            # empty (or absent: ip_tables not loaded) there is nothing to read, and no process is spent on it.
            names = "/proc/net/ip_tables_names" if self.family == "iptables" else "/proc/net/ip6_tables_names"
            return f"if read -r _ <{names} 2>/dev/null; then {self.name}-save; fi"
        return f"{self.name}-save"

    @property
    def restore(self) -> str:
        # legacy iptables serialises writers with the xtables lock (kubelet, Docker): wait for it
        return f"{self.name}-restore --noflush" + (" --wait=10" if self.kind == "legacy" else "")


BACKENDS = (Backend("iptables", "nft"), Backend("ip6tables", "nft"),
            Backend("iptables", "legacy"), Backend("ip6tables", "legacy"))


@dataclass
class BackendReport:
    """One iptables backend of a node: what it held (dump) and what of it is kube-proxy's (plans)."""
    backend: Backend
    dump: iptsave.Dump
    notes: list[str] = field(default_factory=list)
    applied: bool = False

    def __post_init__(self):
        self.plans = iptsave.plan(self.dump)

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def rules(self) -> int:
        return sum(p.rule_count for p in self.plans)

    @property
    def chains(self) -> int:
        return sum(len(p.chains) for p in self.plans)

    @property
    def removal(self) -> tuple[str, str | None] | None:
        """(command, its input or None) that removes kube-proxy's part, or None when there is none."""
        return (self.backend.restore, iptsave.restore_script(self.plans)) if self.plans else None

    @property
    def reread(self) -> str:
        return self.backend.save

    def check(self, text: str) -> str | None:
        """The re-read after the removal: a failure to report, or None; a change elsewhere becomes a note."""
        after = iptsave.parse(text)
        left = iptsave.plan(after)
        if iptsave.kept(after) != iptsave.kept(self.dump):
            self.notes.append("other rules changed while KUBE-* rules were removed (another writer?)")
        if left:
            return (f"{self.name}: {sum(p.rule_count for p in left)} KUBE-* rules are back right after removal: "
                    f"is kube-proxy still running on this node?")
        return None


@dataclass
class NftablesReport:
    """kube-proxy's own nftables tables (its nftables mode), removed whole."""
    tables: list[nftkube.KubeTable]
    notes: list[str] = field(default_factory=list)
    applied: bool = False
    name = "nftables"
    reread = nftkube.READ

    @property
    def rules(self) -> int:
        return sum(t.rules for t in self.tables)

    @property
    def chains(self) -> int:
        return sum(t.chains for t in self.tables)

    @property
    def removal(self) -> tuple[str, str | None] | None:
        return ("nft -f -", nftkube.removal_script(self.tables)) if self.tables else None

    def check(self, text: str) -> str | None:
        back = nftkube.parse(text)
        if back:
            return (f"nftables: {', '.join(t.name for t in back)} back right after removal: is kube-proxy still "
                    f"running on this node?")
        return None


@dataclass
class IpvsReport:
    """kube-proxy's ipvs-mode interface, kube-ipvs0, and the service addresses it holds."""
    addresses: list[str]
    notes: list[str] = field(default_factory=lambda: [ipvskube.LEFT_BEHIND])
    applied: bool = False
    name = f"ipvs ({ipvskube.DEVICE})"
    reread = ipvskube.READ
    chains = rules = 0  # an interface, no rule: the IPVS servers behind it stay (LEFT_BEHIND)

    @property
    def removal(self) -> tuple[str, str | None] | None:
        return (ipvskube.REMOVE, None)

    def check(self, text: str) -> str | None:
        if ipvskube.parse(text) is not None:
            return f"{ipvskube.DEVICE} is back right after removal: is kube-proxy still running on this node?"
        return None


@dataclass
class NodeReport:
    node: str
    backends: list[BackendReport | NftablesReport | IpvsReport] = field(default_factory=list)
    error: str | None = None

    @property
    def rules(self) -> int:
        return sum(b.rules for b in self.backends)

    @property
    def chains(self) -> int:
        return sum(b.chains for b in self.backends)


@dataclass
class ObjectReport:
    kind: str
    name: str
    state: str  # "deleted", "absent", "would delete"
    obj: dict | None = None  # as it was before the deletion


def proxy_mode(objects: list[ObjectReport]) -> str | None:
    """kube-proxy's mode as its ConfigMap (kubeadm's config.conf) said, or None when that cannot be known."""
    import yaml

    configmap = next((o.obj for o in objects if o.kind == "ConfigMap" and o.obj), None)
    if configmap is None:
        return None
    try:
        config = yaml.safe_load(configmap.get("data", {}).get("config.conf", ""))
    except yaml.YAMLError:
        return None
    if not isinstance(config, dict):
        return None
    return config.get("mode") or "iptables"  # "" is the default mode, iptables on Linux


def _checked(node: str, command: str, result) -> str:
    if result.rc != 0:
        raise NodeFailure(node, f"{command} failed (exit {result.rc}): {_first_line(result.err or result.out)}")
    return result.out


def _dump(node: str, command: str, result) -> tuple[iptsave.Dump, list[str]]:
    return iptsave.parse(_checked(node, command, result)), [line for line in result.err.splitlines() if line.strip()]


def clean_node(container, dry_run: bool = False, timeout: float = 60, on_stage=None,
               nftables: bool = True) -> NodeReport:
    """Plan (and unless dry_run, apply and verify) the removal of kube-proxy's rules on one node container;
    kube-proxy's nftables-mode tables are looked for when `nftables` (nft costs twice an iptables-save).

    Two round trips to the node's shell: everything is read side by side, then every backend that holds
    kube-proxy's rules gets its removal and its verifying re-read, one backend after the other. An nft client
    that deleted rules waits, as it exits, for the kernel to free them after an RCU grace period, holding the
    network namespace's nf_tables commit lock: IPv4's and IPv6's restores side by side only queue behind
    each other's waits, and measured slower than in turn."""
    report = NodeReport(container.name)
    stage = on_stage or (lambda node, text: None)
    shell = None
    try:
        shell = NodeShell(container, timeout)
        stage(container.name, "reading rules")
        scripts = [b.save for b in BACKENDS] + [ipvskube.READ] + ([nftkube.READ] if nftables else [])
        reads = shell.run_all([(script, None) for script in scripts])
        saves, ipvs, listing = reads[:len(BACKENDS)], reads[len(BACKENDS)], reads[len(BACKENDS) + 1:]
        installed = [(b, r) for b, r in zip(BACKENDS, saves) if r.rc != COMMAND_NOT_FOUND]
        if not installed:
            raise NodeFailure(container.name, "no iptables-nft-save or iptables-legacy-save in the node")
        for backend, result in installed:
            dump, stderr = _dump(container.name, f"{backend.name}-save", result)
            if dump.tables:  # else the backend holds no table on this node
                report.backends.append(BackendReport(backend, dump, dump.notes + stderr))
        # No nft in the node (kind < 0.23): no Kubernetes of kube-proxy's nftables mode runs there either.
        if listing and listing[0].rc != nftkube.NO_NFT:
            tables = nftkube.parse(_checked(container.name, "nft list tables", listing[0]))
            if tables:
                report.backends.append(NftablesReport(tables))
        addresses = ipvskube.parse(_checked(container.name, f"ip address show dev {ipvskube.DEVICE}", ipvs))
        if addresses is not None:
            report.backends.append(IpvsReport(addresses))
        todo = [entry for entry in report.backends if entry.removal]
        if dry_run or not todo:
            return report
        stage(container.name, "removing kube-proxy's rules")
        results = shell.run_all([(f"{e.removal[0]} || exit {REMOVAL_REFUSED}\n{e.reread}", e.removal[1])
                                 for e in todo], side_by_side=False)
        failures = []
        for entry, result in zip(todo, results):
            command = entry.removal[0].split()[0]
            if result.rc == REMOVAL_REFUSED:
                failures.append(f"{command} refused the removal, {entry.name} is unchanged: {_first_line(result.err)}")
                continue
            entry.applied = True
            failure = entry.check(_checked(container.name, f"re-reading {entry.name}", result))
            if failure:
                failures.append(failure)
        if failures:
            raise NodeFailure(container.name, "; ".join(failures))
    except (NodeFailure, iptsave.SaveFormatError, nftkube.ListingError) as exc:
        report.error = str(exc)
    except TshootError as exc:  # the shell went away: the container stopped, the engine is gone
        report.error = str(exc).removeprefix(f"{container.name}: ")
    except Exception as exc:  # docker.errors.APIError and friends: the engine refused the exec
        report.error = _docker_reason(exc)
    finally:
        if shell is not None:
            shell.close()
    return report


def clean_nodes(containers, dry_run: bool = False, timeout: float = 60, on_stage=None,
                nftables: bool = True) -> list[NodeReport]:
    """clean_node on every node at once (tshoot.node.fanout); the reports come back in the nodes' order."""
    return fan_out(containers, lambda c: clean_node(c, dry_run, timeout, on_stage, nftables),
                   node_of=lambda c: c.name)


def remove_objects(api, dry_run: bool = False) -> list[ObjectReport]:
    """Delete the kube-proxy DaemonSet (its pods go with it), then its ConfigMap; or say what would go."""
    reports = []
    for resource in (kube.DAEMONSETS, kube.CONFIGMAPS):
        obj = None
        try:
            # Looked up first, so that a second run sends no write at all.
            obj = kube.get_object(api, resource, NAME, NAMESPACE)
            uid = obj["metadata"].get("uid")
            state = "would delete"
            if not dry_run:
                kube.request(api, "DELETE", resource.path(NAMESPACE, NAME),
                             body={"propagationPolicy": "Background", "preconditions": {"uid": uid}},
                             content_type="application/json", what=f"delete {resource.kind} {NAMESPACE}/{NAME}",
                             resource=resource)
                state = "deleted"
        except kube.NotFound:
            state = "absent"
        reports.append(ObjectReport(resource.kind, f"{NAMESPACE}/{NAME}", state, obj))
    return reports


def wait_pods_gone(api, timeout: float, on_count=None, interval: float = 1.0) -> list[str]:
    """Wait until no kube-proxy pod is left; returns the names still there when time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        pods = [p["metadata"]["name"] for p in kube.list_objects(api, kube.PODS, NAMESPACE, POD_SELECTOR)]
        if on_count:
            on_count(len(pods))
        if not pods or time.monotonic() >= deadline:
            return pods
        time.sleep(interval)


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def _docker_reason(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
