"""lab.nftkube: kube-proxy's nftables-mode tables, read by the real nft in a network namespace."""

from __future__ import annotations

import subprocess

import pytest

from lab import nftkube
from tests import kuberules


def read(ns: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", nftkube.READ], capture_output=True, text=True)


def test_reads_kube_proxys_tables_and_nothing_else(netns):
    ns = netns("nftkube")
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=kuberules.nft_text(), text=True, check=True)

    result = read(ns)

    assert result.returncode == 0, result.stderr
    written = {family: kuberules.nft_kube_proxy(family) for family in ("ip", "ip6")}
    assert nftkube.parse(result.stdout) == [
        nftkube.KubeTable(family, len(chains), sum(len(rules) for _, _, rules in chains), len(sets))
        for family, (chains, sets) in written.items()]


def test_no_kube_proxy_table_reads_as_none(netns):
    ns = netns("nftkube")
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=kuberules.NFT_KEPT, text=True, check=True)

    result = read(ns)

    assert (result.returncode, result.stdout) == (0, "")
    assert nftkube.parse(result.stdout) == []


def test_removal_is_one_transaction_for_both_families():
    tables = [nftkube.KubeTable("ip", 1, 1, 0), nftkube.KubeTable("ip6", 1, 1, 0)]
    assert nftkube.removal_script(tables) == "delete table ip kube-proxy\ndelete table ip6 kube-proxy\n"


@pytest.mark.parametrize("line", ['{"nftables": [{"metainfo": {"version": "1.0.6"}}]}', "Error: syntax error",
                                  '{"tables": []}'])
def test_anything_but_a_table_listing_is_refused(line):
    with pytest.raises(nftkube.ListingError, match="line 1: not a table in JSON"):
        nftkube.parse(line + "\n")
