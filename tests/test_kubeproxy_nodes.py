"""KUBE-* removal on real node containers (real Docker engine, real iptables nft and legacy, IPv4 and IPv6).

Every node is loaded with a realistic kube-proxy ruleset beside rules that must survive (tests/kuberules.py).
The expected result is not computed by the code under test: it is what iptables-save prints in a clean
network namespace loaded with the same restore file minus kube-proxy's lines.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from lab import kubeproxy
from tests import kuberules

FAMILIES = ("iptables", "ip6tables")
KINDS = ("nft", "legacy")


def save(cluster, node, family: str, kind: str, counters: bool = True) -> str:
    return kuberules.comparable(cluster.sh(node, f"{family}-{kind}-save"), counters)


def load(cluster, node, kinds) -> None:
    for kind in kinds:
        for family in FAMILIES:
            text = kuberules.restore_text(family)
            cluster.sh(node, f"{family}-{kind}-restore <<'EOF'\n{text}EOF")


def reference_saves(netns, kinds) -> dict[tuple[str, str], str]:
    """What every backend must read after the removal: the keep-only rules, loaded in a clean netns."""
    ns = netns("kpref")
    expected = {}
    for kind in KINDS:
        for family in FAMILIES:
            if kind in kinds:
                subprocess.run(["ip", "netns", "exec", ns, f"{family}-{kind}-restore"], check=True, text=True,
                               input=kuberules.restore_text(family, keep_only=True))
            out = subprocess.run(["ip", "netns", "exec", ns, f"{family}-{kind}-save"], check=True, text=True,
                                 capture_output=True).stdout
            expected[family, kind] = kuberules.comparable(out)
    return expected


def kube_counts(family: str) -> tuple[int, int]:
    """(rules, chains) kube-proxy owns in the ruleset, counted from the markings, not by the code under test."""
    lines = [line for table in kuberules.ruleset(family).values() for line, kube in table if kube]
    return sum(line.startswith("-A ") for line in lines), sum(line.startswith(":") for line in lines)


@pytest.mark.docker
@pytest.mark.parametrize("kinds", [("nft",), ("legacy",), ("nft", "legacy")], ids=["nft", "legacy", "both"])
def test_removes_exactly_kube_rules_on_every_node_and_twice_is_a_no_op(kind_cluster, netns, kinds):
    cluster = kind_cluster(workers=2)
    for node in cluster.nodes:
        load(cluster, node, kinds)
    expected = reference_saves(netns, kinds)
    before = {(n.name, f, k): save(cluster, n, f, k) for n in cluster.nodes for f in FAMILIES for k in KINDS}
    assert all("KUBE-SERVICES" in before[n.name, f, k] for n in cluster.nodes for f in FAMILIES for k in kinds)

    reports = kubeproxy.clean_nodes(cluster.nodes)

    assert [r.node for r in reports] == [n.name for n in cluster.nodes]
    per_backend = sum(kube_counts(f)[0] for f in FAMILIES), sum(kube_counts(f)[1] for f in FAMILIES)
    for report in reports:
        assert report.error is None, report
        assert (report.rules, report.chains) == (per_backend[0] * len(kinds), per_backend[1] * len(kinds))
        assert {b.name for b in report.backends if b.applied} == {f"{f}-{k}" for f in FAMILIES for k in kinds}
        assert not any("changed" in note for b in report.backends for note in b.notes)
    for node in cluster.nodes:
        for family in FAMILIES:
            for kind in KINDS:
                assert save(cluster, node, family, kind) == expected[family, kind], (node.name, family, kind)

    again = kubeproxy.clean_nodes(cluster.nodes)
    assert all(r.error is None and r.rules == 0 and r.chains == 0 for r in again), again
    assert not any(b.applied for r in again for b in r.backends)
    for node in cluster.nodes:
        for family in FAMILIES:
            for kind in KINDS:
                assert save(cluster, node, family, kind) == expected[family, kind]
    for node in cluster.nodes:
        assert leftovers(cluster, node) == "", node.name


def leftovers(cluster, node, within: float = 5.0) -> str:
    """The node shell's job files still in the node's /tmp: the shell removes them as it ends, which nothing
    waits for, so give it a moment."""
    deadline = time.monotonic() + within
    while True:
        found = cluster.sh(node, "ls -d /tmp/kindlab-* 2>/dev/null || true").strip()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.docker
def test_dry_run_plans_and_touches_nothing(kind_cluster):
    cluster = kind_cluster(workers=1)
    for node in cluster.nodes:
        load(cluster, node, ("nft",))
    before = {n.name: save(cluster, n, "iptables", "nft") + save(cluster, n, "ip6tables", "nft") for n in cluster.nodes}

    reports = kubeproxy.clean_nodes(cluster.nodes, dry_run=True)

    rules = sum(kube_counts(f)[0] for f in FAMILIES)
    assert all(r.error is None and r.rules == rules and not any(b.applied for b in r.backends) for r in reports)
    assert {n.name: save(cluster, n, "iptables", "nft") + save(cluster, n, "ip6tables", "nft")
            for n in cluster.nodes} == before


@pytest.mark.docker
def test_a_failing_exec_on_one_node_is_reported_and_the_others_finish(kind_cluster, netns):
    cluster = kind_cluster(workers=2)
    for node in cluster.nodes:
        load(cluster, node, ("nft",))
    broken = cluster.nodes[1]
    cluster.sh(broken, "rm /usr/sbin/iptables-nft-restore && printf '#!/bin/sh\\necho \"iptables-nft-restore: "
                       "line 4 failed\" >&2\\nexit 1\\n' >/usr/sbin/iptables-nft-restore && "
                       "chmod 755 /usr/sbin/iptables-nft-restore")
    broken_before = save(cluster, broken, "iptables", "nft")
    expected = reference_saves(netns, ("nft",))

    reports = {r.node: r for r in kubeproxy.clean_nodes(cluster.nodes)}

    assert "line 4 failed" in reports[broken.name].error
    assert "unchanged" in reports[broken.name].error
    assert save(cluster, broken, "iptables", "nft") == broken_before
    for node in cluster.nodes:
        if node is not broken:
            assert reports[node.name].error is None
            assert save(cluster, node, "iptables", "nft") == expected["iptables", "nft"]


@pytest.mark.docker
def test_a_node_stopped_mid_run_is_reported_and_the_others_finish(kind_cluster, netns):
    cluster = kind_cluster(workers=2)
    for node in cluster.nodes:
        load(cluster, node, ("nft",))
    victim = cluster.nodes[2]
    # Its IPv6 dump announces itself, then hangs: the test kills the container right then.
    cluster.sh(victim, "rm /usr/sbin/ip6tables-nft-save && printf '#!/bin/bash\\ntouch /tmp/saving\\nsleep 60\\n' "
                       ">/usr/sbin/ip6tables-nft-save && chmod 755 /usr/sbin/ip6tables-nft-save")
    marker = Path(f"/proc/{cluster.pid(victim)}/root/tmp/saving")
    expected = reference_saves(netns, ("nft",))

    def stop_when_saving():
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        victim.kill()

    stopper = threading.Thread(target=stop_when_saving)
    stopper.start()
    reports = {r.node: r for r in kubeproxy.clean_nodes(cluster.nodes, timeout=45)}
    stopper.join()

    assert "exited" in reports[victim.name].error, reports[victim.name]
    for node in cluster.nodes:
        if node is not victim:
            assert reports[node.name].error is None, reports[node.name]
            assert save(cluster, node, "iptables", "nft") == expected["iptables", "nft"]


def nft_load(cluster, node, text: str) -> None:
    cluster.sh(node, f"nft -f - <<'EOF'\n{text}EOF")


def nft_tables(cluster, node) -> dict[str, str]:
    """Every nftables table of the node but iptables-nft's (compared through iptables-save), listed whole."""
    names = [line.split(None, 1)[1] for line in cluster.sh(node, "nft list tables").splitlines()]
    return {name: cluster.sh(node, f"nft list table {name}") for name in names
            if name.split()[1] not in ("filter", "nat", "mangle", "raw", "security")}


@pytest.mark.docker
def test_nftables_mode_tables_go_whole_and_every_other_table_stays(kind_cluster, netns):
    # kube-proxy in nftables mode on every node; kubelet still writes its KUBE-* canaries through iptables-nft.
    cluster = kind_cluster(workers=1)
    for node in cluster.nodes:
        nft_load(cluster, node, kuberules.nft_text())
        load(cluster, node, ("nft",))
    kept_before = {n.name: {name: text for name, text in nft_tables(cluster, n).items()
                            if name not in ("ip kube-proxy", "ip6 kube-proxy")} for n in cluster.nodes}
    assert all(set(tables) == {"inet user-firewall", "inet kube-proxy", "ip kube-proxy-debug"}
               for tables in kept_before.values())
    expected = reference_saves(netns, ("nft",))

    reports = kubeproxy.clean_nodes(cluster.nodes)

    chains, rules = kuberules.nft_counts()
    for report in reports:
        assert report.error is None, report
        entry = next(b for b in report.backends if b.name == "nftables")
        assert (entry.chains, entry.rules, entry.applied) == (chains, rules, True)
        assert not entry.notes
    for node in cluster.nodes:
        assert nft_tables(cluster, node) == kept_before[node.name]
        for family in FAMILIES:
            assert save(cluster, node, family, "nft") == expected[family, "nft"]

    again = kubeproxy.clean_nodes(cluster.nodes)
    assert all(r.error is None and r.rules == 0 and "nftables" not in [b.name for b in r.backends] for r in again)
    assert all(nft_tables(cluster, n) == kept_before[n.name] for n in cluster.nodes)


@pytest.mark.docker
def test_nftables_mode_of_one_family_only(kind_cluster):
    cluster = kind_cluster(workers=0)
    node = cluster.nodes[0]
    nft_load(cluster, node, kuberules.nft_text(families=("ip6",), keep=False))

    [report] = kubeproxy.clean_nodes(cluster.nodes, dry_run=True)

    [entry] = report.backends
    assert (entry.name, entry.chains, entry.rules) == ("nftables", *kuberules.nft_counts(("ip6",)))
    assert entry.removal == ("nft -f -", "delete table ip6 kube-proxy\n")
    assert "ip6 kube-proxy" in nft_tables(cluster, node)


@pytest.mark.docker
def test_nft_refusing_the_removal_leaves_both_tables_and_says_so(kind_cluster):
    cluster = kind_cluster(workers=0)
    node = cluster.nodes[0]
    nft_load(cluster, node, kuberules.nft_text(keep=False))
    # This node's nft lists as usual but refuses every change (as a kernel without nf_tables' newer features
    # would): the transaction is all or nothing, so neither family's table may go.
    cluster.sh(node, "cat /usr/sbin/nft >/usr/sbin/nft.real && chmod 755 /usr/sbin/nft.real && rm /usr/sbin/nft && printf '#!/bin/sh\\n[ \"$1\" = -f ] && "
                     "{ echo \"Error: Could not process rule: Operation not supported\" >&2; exit 1; }\\n"
                     "exec /usr/sbin/nft.real \"$@\"\\n' >/usr/sbin/nft && chmod 755 /usr/sbin/nft")
    before = nft_tables(cluster, node)

    [report] = kubeproxy.clean_nodes(cluster.nodes)

    assert report.error == ("nft refused the removal, nftables is unchanged: Error: Could not process rule: "
                            "Operation not supported")
    assert nft_tables(cluster, node) == before


@pytest.mark.docker
def test_a_node_without_nft_is_cleaned_of_its_iptables_rules(kind_cluster, netns):
    cluster = kind_cluster(workers=0)
    node = cluster.nodes[0]
    load(cluster, node, ("nft",))
    cluster.sh(node, "rm /usr/sbin/nft")  # kind before v0.23
    expected = reference_saves(netns, ("nft",))

    [report] = kubeproxy.clean_nodes(cluster.nodes)

    assert report.error is None, report
    assert [b.name for b in report.backends] == ["iptables-nft", "ip6tables-nft"]
    for family in FAMILIES:
        assert save(cluster, node, family, "nft") == expected[family, "nft"]


# kube-proxy's ipvs mode binds every service IP to kube-ipvs0, a dummy interface. This kernel has no dummy
# driver (shared/reference/environment.md), so a bridge of that name stands in: the removal goes by name.
IPVS_ADDRESSES = ("10.96.0.1/32", "10.96.0.10/32", "10.96.12.34/32")


def add_kube_ipvs0(cluster, node) -> None:
    cluster.sh(node, "ip link add kube-ipvs0 type bridge && "
                     + " && ".join(f"ip address add {a} dev kube-ipvs0" for a in IPVS_ADDRESSES))


def links(cluster, node) -> list[str]:
    return sorted(line.split(":")[1].strip().split("@")[0] for line in cluster.sh(node, "ip -o link").splitlines())


@pytest.mark.docker
def test_ipvs_mode_interface_goes_and_its_leftovers_are_named(kind_cluster, netns):
    cluster = kind_cluster(workers=1)
    for node in cluster.nodes:
        load(cluster, node, ("nft",))
        add_kube_ipvs0(cluster, node)
    before = {n.name: links(cluster, n) for n in cluster.nodes}
    assert all("kube-ipvs0" in names and "eth0" in names for names in before.values())
    expected = reference_saves(netns, ("nft",))

    dry = kubeproxy.clean_nodes(cluster.nodes, dry_run=True, nftables=False)

    for report in dry:
        ipvs = next(b for b in report.backends if b.name == "ipvs (kube-ipvs0)")
        assert ipvs.addresses == list(IPVS_ADDRESSES) and ipvs.removal == ("ip link delete kube-ipvs0", None)
    assert {n.name: links(cluster, n) for n in cluster.nodes} == before

    reports = kubeproxy.clean_nodes(cluster.nodes, nftables=False)

    for report in reports:
        assert report.error is None, report
        ipvs = next(b for b in report.backends if b.name == "ipvs (kube-ipvs0)")
        assert ipvs.applied and "ipvsadm" in ipvs.notes[0]
    for node in cluster.nodes:
        assert links(cluster, node) == [name for name in before[node.name] if name != "kube-ipvs0"]
        for family in FAMILIES:
            assert save(cluster, node, family, "nft") == expected[family, "nft"]
    again = kubeproxy.clean_nodes(cluster.nodes, nftables=False)
    assert all(r.error is None and not any(b.removal for b in r.backends) for r in again), again
