"""Program arrays (tail calls) on the simulated datapath: `tshoot map dump` shows slot -> program (id, name) and,
for cilium_call_policy, the endpoint's pod; `tshoot map list` counts filled slots, not max_entries."""

import json
import subprocess

import pytest

from tests import simdatapath


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])
def test_call_policy_dump_names_program_and_pod(sim, kubeapi, tshoot, version):
    s = sim(simdatapath.guide_scenario(version))
    node = "k8s-guide-control-plane"
    pod = s.pods["net-tshoot-4gmzr"]
    # what the slot holds, read with bpftool: the endpoint's policy program the datapath tail-calls
    [slot] = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                        str(s.map_path(node, "cilium_call_policy"))],
                                       capture_output=True, text=True, check=True).stdout)
    assert slot["key"] == [f"0x{b:02x}" for b in pod.endpoint_id.to_bytes(4, "little")]
    expected_id = int.from_bytes(bytes(int(b, 16) for b in slot["value"]), "little")
    r = tshoot("map", "dump", "cilium_call_policy", "--node", node, "--kubeconfig", str(kubeapi.kubeconfig),
               "-o", "json")
    assert r.code == 0, r
    rows = json.loads(r.out)
    assert [(row["slot"], row["program_id"], row["pod"]) for row in rows] == \
        [(2006, expected_id, "default/net-tshoot-4gmzr")]
    assert rows[0]["program"]  # the program's name, from the agent's bpftool prog show
    table = tshoot("map", "dump", "cilium_call_policy", "--node", node, "--kubeconfig", str(kubeapi.kubeconfig))
    assert "ENDPOINT" in table.out and "default/net-tshoot-4gmzr" in table.out and str(expected_id) in table.out
    # the same through this machine's bpffs: names from the kernel (bpf(2)), no pods without a cluster
    local = tshoot("map", "dump", "cilium_call_policy", "--backend", "local", "--bpffs", str(s.nodes[node].bpffs),
                   "-o", "json")
    assert [(row["slot"], row["program_id"], row["program"]) for row in json.loads(local.out)] == \
        [(2006, expected_id, rows[0]["program"])]


def test_list_counts_filled_slots_and_empty_arrays_say_so(sim, kubeapi, tshoot):
    s = sim(simdatapath.guide_scenario("1.16.15"))
    node = "k8s-guide-control-plane"
    s.add_host_endpoint(node, 3391, allow=True)
    for where in (["--node", node, "--kubeconfig", str(kubeapi.kubeconfig)],
                  ["--backend", "local", "--bpffs", str(s.nodes[node].bpffs)]):
        rows = {row["name"]: row for row in json.loads(tshoot("map", "list", *where, "-o", "json").out)}
        assert (rows["cilium_call_policy"]["entries"], rows["cilium_call_policy"]["max_entries"]) == (1, 65535)
        assert rows["cilium_call_policy"]["layout"]["value"] == "program"
        assert rows["cilium_calls_hostns_03391"]["entries"] == 0
        r = tshoot("map", "dump", "cilium_calls_hostns_03391", *where)
        assert r.code == 0 and "every slot of cilium_calls_hostns_03391 is empty" in r.err
