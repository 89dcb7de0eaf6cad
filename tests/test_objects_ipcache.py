"""`tshoot whois --ipcache`: the API's answer beside every node's ipcache, read through the agents."""

import json

from tests import simdatapath


def test_whois_asks_every_nodes_ipcache(sim, kubeapi, tshoot):
    sim(simdatapath.guide_scenario("1.19.4"))
    r = tshoot("whois", "10.0.1.110", "--ipcache", "--kubeconfig", str(kubeapi.kubeconfig), "-o", "json")
    assert r.code == 0, r
    entries = {e["node"]: e for e in json.loads(r.out)["ipcache"]}
    assert set(entries) == {"k8s-guide-control-plane", "k8s-guide-worker", "k8s-guide-worker2"}
    assert {e["identity"] for e in entries.values()} == {53731}
    assert entries["k8s-guide-control-plane"]["tunnel_endpoint"] is None  # its own pod: no tunnel
    assert entries["k8s-guide-worker"]["tunnel_endpoint"] == "172.18.0.5"
    assert all("k8s:name=net-tshoot" in e["identity_labels"] for e in entries.values())
    # the identity's labels asked once for the three nodes that hold it
    assert len(kubeapi.requests_to("/apis/cilium.io/v2/ciliumidentities/53731")) == 1
    table = tshoot("whois", "10.0.1.110", "--ipcache", "--kubeconfig", str(kubeapi.kubeconfig))
    assert "IPCACHE ENTRY" in table.out and "10.0.1.110/32" in table.out
