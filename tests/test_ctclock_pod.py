"""Conntrack lifetimes through the agents (the simulated datapath): the clock source comes from cilium-config's
enable-bpf-clock-probe, else the version's Helm default (the probe on before 1.13.5), and the node's now from
its /proc/timer_list, read in the agent."""

import json
import subprocess

import pytest

from tests import simdatapath
from tshoot.maps import find
from tshoot.node.backend import clocks_from_timer_list


def _fill_ct(s, node: str, lifetimes: dict[int, int]) -> None:
    cmap, _ = find("ct4")
    v = s.version
    path = s.map_path(node, cmap.pin(v).name)
    for sport, lifetime in lifetimes.items():
        key = cmap.encode("key", cmap.key(v, src=f"10.0.2.99:{sport}", dst="10.0.1.110:80"), v)
        fields = cmap.decode("value", bytes(cmap.layout_for("value", v).size), v).fields
        value = cmap.encode("value", {**fields, "lifetime": lifetime}, v)
        subprocess.run(["bpftool", "map", "update", "pinned", str(path), "key", "hex", *key.hex(" ").split(),
                        "value", "hex", *value.hex(" ").split()], check=True)


@pytest.mark.parametrize("version,config,clock", [("1.9.1", None, "jiffies"), ("1.16.15", None, "ktime"),
                                                  ("1.9.1", "false", "ktime")])
def test_lifetimes_through_the_agent_follow_the_clock_source(sim, kubeapi, tshoot, version, config, clock):
    s = sim(simdatapath.guide_scenario(version))
    if config is not None:
        kubeapi.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config",
                                                                           "namespace": "cilium"},
                     "data": {"enable-bpf-clock-probe": config}})
    with open("/proc/timer_list") as f:
        now_ns, jiffies = clocks_from_timer_list(f.read())
    now = now_ns // 10**9 if clock == "ktime" else jiffies >> 8
    _fill_ct(s, "k8s-guide-worker", {40000: now + 100, 40001: now - 100})
    where = ["--node", "k8s-guide-worker", "--kubeconfig", str(kubeapi.kubeconfig)]
    r = tshoot("map", "dump", "ct4", *where, "-o", "json", "-v")
    assert r.code == 0, r
    said = {obj["key"]["src_port"]: obj["enriched"]["lifetime"] for obj in json.loads(r.out)}
    assert said[40000]["clock"] == clock and "expires_in" in said[40000] and "expired" in said[40001], said
    assert f"conntrack lifetimes read with the {clock} clock" in r.err
    live = tshoot("map", "dump", "ct4", *where, "--live", "-o", "json")
    assert [obj["key"]["src_port"] for obj in json.loads(live.out)] == [40000]
