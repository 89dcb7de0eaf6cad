"""tshoot.cluster.enrich.Enricher keeps what it said about a bounded number of values: a dump whose fields hold
more distinct values (a conntrack map's addresses) says the same about each, in bounded memory."""

from tshoot.cluster import enrich
from tshoot.cluster.enrich import Enricher
from tshoot.cluster.model import Cluster


def _cluster() -> Cluster:
    pod = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {}, "status": {"podIP": "10.0.0.5"}}
    node = {"metadata": {"name": "w1"}, "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}}
    return Cluster(pods=[pod], nodes=[node])


def test_what_is_said_does_not_depend_on_the_memo_bound(monkeypatch):
    kinds = {"src_addr": "address", "dst_addr": "address"}
    keys = [{"src_addr": f"10.0.{i // 256}.{i % 256}", "dst_addr": "172.18.0.2" if i % 3 else "10.0.0.5"}
            for i in range(600)]
    unbounded = Enricher(_cluster(), kinds).parts("w1", keys)
    monkeypatch.setattr(enrich, "MEMO_LIMIT", 16)
    bounded = Enricher(_cluster(), kinds)
    said = [part for start in range(0, len(keys), 100) for part in bounded.parts("w1", keys[start:start + 100])]
    assert said == unbounded
    assert said[5] == {"src_addr": {"pod": "shop/web"}, "dst_addr": {"node": "w1"}}
    assert said[6] == {"src_addr": {"missing": "no pod or node has address 10.0.0.6"}, "dst_addr": {"pod": "shop/web"}}
    assert all(len(said) <= 16 for said in bounded._said.values())
