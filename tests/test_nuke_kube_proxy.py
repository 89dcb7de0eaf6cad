"""`lab nuke kube-proxy` end to end: the real CLI, the test API server behind the control plane's published
port, kind-like node containers holding a realistic kube-proxy ruleset (nft, IPv4 and IPv6)."""

from __future__ import annotations

import pytest

from lab import kubeproxy
from tests import kuberules
from tests.kubeapi import objects
from tests.test_kubeproxy_nodes import (FAMILIES, add_kube_ipvs0, links, load, nft_load, nft_tables,
                                        reference_saves, save)

KUBE_PROXY_IMAGE = "registry.k8s.io/kube-proxy:v1.34.8"


def add_kube_proxy(lab, mode: str = "iptables") -> None:
    labels = {"k8s-app": "kube-proxy"}
    ds = objects.daemonset("kube-proxy", "kube-system", labels, KUBE_PROXY_IMAGE, "kube-proxy", 3, host_network=True)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
          "data": {"config.conf": f"mode: {mode}\n"}}
    lab.api.add(ds, cm)
    stored = lab.api.get("daemonsets", "kube-proxy", "kube-system")
    for spec in objects.guide_nodes(lab.cluster.name):
        lab.api.add(objects.pod(f"kube-proxy-{objects.suffix(spec.name)}", "kube-system", spec, labels,
                                [("kube-proxy", KUBE_PROXY_IMAGE)], owner=stored, host_network=True))


def rules(lab) -> dict:
    # The API requests cross the control plane's network namespace: its chain counters move, its rules must not.
    return {(n.name, f): save(lab.cluster, n, f, "nft", counters=False) for n in lab.cluster.nodes for f in FAMILIES}


@pytest.mark.docker
def test_nuke_kube_proxy_removes_objects_and_rules_then_says_nothing_to_do(kind_lab, netns, lab):
    add_kube_proxy(kind_lab)
    for node in kind_lab.cluster.nodes:
        load(kind_lab.cluster, node, ("nft",))
    expected = reference_saves(netns, ("nft",))

    r = lab("nuke", "kube-proxy", "--kubeconfig", str(kind_lab.kubeconfig), "--name", kind_lab.cluster.name)

    assert r.code == 0, r
    assert "DaemonSet kube-system/kube-proxy: deleted" in r.out and "ConfigMap kube-system/kube-proxy: deleted" in r.out
    assert [(w.method, w.path) for w in kind_lab.api.writes()] == [
        ("DELETE", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"),
        ("DELETE", "/api/v1/namespaces/kube-system/configmaps/kube-proxy")]
    assert kind_lab.api.list("pods", "kube-system", "k8s-app=kube-proxy") == []
    for (node, family), text in rules(kind_lab).items():
        assert text == expected[family, "nft"], (node, family)
    for node in kind_lab.cluster.nodes:
        assert node.name in r.out

    again = lab("nuke", "kube-proxy", "--kubeconfig", str(kind_lab.kubeconfig), "--name", kind_lab.cluster.name)

    assert again.code == 0, again
    assert "nothing to do" in again.out
    assert len(kind_lab.api.writes()) == 2  # the second run wrote nothing
    for (node, family), text in rules(kind_lab).items():
        assert text == expected[family, "nft"], (node, family)


@pytest.mark.docker
def test_dry_run_prints_the_exact_actions_and_takes_none(kind_lab, lab):
    add_kube_proxy(kind_lab)
    for node in kind_lab.cluster.nodes:
        load(kind_lab.cluster, node, ("nft",))
    before = rules(kind_lab)

    r = lab("nuke", "kube-proxy", "--dry-run", "--kubeconfig", str(kind_lab.kubeconfig), "--name", kind_lab.cluster.name)

    assert r.code == 0, r
    assert kind_lab.api.writes() == []
    assert rules(kind_lab) == before
    assert "DaemonSet kube-system/kube-proxy: would delete" in r.out
    kube_jumps = [line for table in kuberules.ruleset("iptables").values() for line, kube in table
                  if kube and line.startswith("-A ") and not line.startswith("-A KUBE-")]
    for line in kube_jumps:  # every jump into a KUBE-* chain, deleted by its exact specification
        assert "-D " + line[3:] in r.out
    assert "-X KUBE-SERVICES" in r.out and "-F KUBE-SVC-TCOU7JCQXEZGVUNU" in r.out
    assert "KIND-MASQ-AGENT" not in "\n".join(l for l in r.out.splitlines() if l.startswith(("-D", "-F", "-X")))


@pytest.mark.docker
def test_a_failing_node_is_named_and_the_command_exits_1(kind_lab, lab):
    for node in kind_lab.cluster.nodes:
        load(kind_lab.cluster, node, ("nft",))
    broken = kind_lab.cluster.nodes[2]
    kind_lab.cluster.sh(broken, "rm /usr/sbin/ip6tables-nft-restore && printf '#!/bin/sh\\necho \"ip6tables-nft-restore:"
                                " line 9 failed\" >&2\\nexit 4\\n' >/usr/sbin/ip6tables-nft-restore && "
                                "chmod 755 /usr/sbin/ip6tables-nft-restore")

    r = lab("nuke", "kube-proxy", "--kubeconfig", str(kind_lab.kubeconfig), "--name", kind_lab.cluster.name)

    assert r.code == 1, r
    failed_rows = [line.split()[0] for line in r.out.splitlines()
                   if line.startswith(kind_lab.cluster.name) and "failed:" in line]
    assert failed_rows == [broken.name], r.out
    assert "line 9 failed" in r.out
    assert ":KUBE-SERVICES" not in save(kind_lab.cluster, kind_lab.cluster.nodes[0], "ip6tables", "nft")
    assert ":KUBE-SERVICES" in save(kind_lab.cluster, broken, "ip6tables", "nft")


@pytest.mark.docker
def test_nftables_mode_dry_run_names_the_tables_then_the_run_deletes_them(kind_lab, lab):
    add_kube_proxy(kind_lab, mode="nftables")
    for node in kind_lab.cluster.nodes:
        nft_load(kind_lab.cluster, node, kuberules.nft_text())
    args = ("nuke", "kube-proxy", "--kubeconfig", str(kind_lab.kubeconfig), "--name", kind_lab.cluster.name)

    dry = lab(*args, "--dry-run")

    assert dry.code == 0, dry
    for node in kind_lab.cluster.nodes:
        assert (f"{node.name}: nft -f - <<EOF\ndelete table ip kube-proxy\ndelete table ip6 kube-proxy\nEOF"
                in dry.out), dry.out
        assert "ip kube-proxy" in nft_tables(kind_lab.cluster, node)

    r = lab(*args)

    assert r.code == 0, r
    chains, rules = kuberules.nft_counts()
    rows = [line.split() for line in r.out.splitlines() if line.startswith(kind_lab.cluster.name)]
    assert sorted(row[:5] for row in rows if row[1] == "nftables") == sorted(
        [node.name, "nftables", str(chains), str(rules), "removed"] for node in kind_lab.cluster.nodes), r.out
    kept = {"inet user-firewall", "inet kube-proxy", "ip kube-proxy-debug"}
    for node in kind_lab.cluster.nodes:
        assert set(nft_tables(kind_lab.cluster, node)) == kept

    # The ConfigMap is gone now, and with it what mode kube-proxy ran in: a table left behind is looked for.
    node = kind_lab.cluster.nodes[1]
    nft_load(kind_lab.cluster, node, kuberules.nft_text(families=("ip",), keep=False))

    again = lab(*args)

    assert again.code == 0, again
    assert set(nft_tables(kind_lab.cluster, node)) == kept
    assert f"removed {kuberules.nft_counts(('ip',))[0]} chains and {kuberules.nft_counts(('ip',))[1]} rules of " \
           f"kube-proxy's on 1 node(s)" in " ".join(again.out.split()), again.out


def test_the_mode_comes_from_kubeadms_config():
    def configmap(text):
        return [kubeproxy.ObjectReport("DaemonSet", "kube-system/kube-proxy", "deleted", {"kind": "DaemonSet"}),
                kubeproxy.ObjectReport("ConfigMap", "kube-system/kube-proxy", "deleted",
                                       {"data": {"config.conf": text, "kubeconfig.conf": "apiVersion: v1\n"}})]

    config = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: {}\nport: 0\n"
    assert kubeproxy.proxy_mode(configmap(config.format('""'))) == "iptables"  # kubeadm's default
    assert kubeproxy.proxy_mode(configmap(config.format("ipvs"))) == "ipvs"
    assert kubeproxy.proxy_mode(configmap(config.format("nftables"))) == "nftables"
    assert kubeproxy.proxy_mode(configmap("mode: [unclosed\n")) is None
    assert kubeproxy.proxy_mode(configmap("")) is None
    assert kubeproxy.proxy_mode([kubeproxy.ObjectReport("ConfigMap", "kube-system/kube-proxy", "absent")]) is None


@pytest.mark.docker
def test_ipvs_mode_dry_run_names_the_interface_then_the_run_deletes_it(kind_lab, lab):
    add_kube_proxy(kind_lab, mode="ipvs")
    for node in kind_lab.cluster.nodes:
        load(kind_lab.cluster, node, ("nft",))
        add_kube_ipvs0(kind_lab.cluster, node)
    args = ("nuke", "kube-proxy", "--kubeconfig", str(kind_lab.kubeconfig), "--name", kind_lab.cluster.name)

    dry = lab(*args, "--dry-run")

    assert dry.code == 0, dry
    for node in kind_lab.cluster.nodes:
        assert f"{node.name}: ip link delete kube-ipvs0\n" in dry.out, dry.out
        assert "kube-ipvs0" in links(kind_lab.cluster, node)

    r = lab(*args)

    assert r.code == 0, r
    assert "IPVS virtual servers and ipsets stay: kind nodes have no ipvsadm or ipset" in " ".join(r.out.split())
    for node in kind_lab.cluster.nodes:
        assert "kube-ipvs0" not in links(kind_lab.cluster, node)
