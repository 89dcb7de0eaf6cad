"""`lab check connectivity` on the simulated cluster: every row passes on a healthy cluster, and taking away
one thing at a time (a policy entry, an ipcache entry, a Service's backends, the masquerade rule, the tunnel
device) fails exactly the rows that need it, each explained by a walk that names what is missing."""

import json

import pytest

from lab import connectivity
from tests import simconnectivity

WORKER, CONTROL_PLANE, WORKER2 = "k8s-guide-worker", "k8s-guide-control-plane", "k8s-guide-worker2"


@pytest.fixture
def lab_sim(sim, kubeapi):
    """start(version) -> (sim, world): the guide's cluster with net-echo, its workloads running."""
    made = []

    def start(version="1.19.4"):
        scenario = simconnectivity.scenario(version)
        s = sim(scenario)
        workloads = simconnectivity.Workloads(s, scenario["objects"]).__enter__()
        made.append(workloads)
        return s, simconnectivity.NetnsWorld(s)

    yield start
    for workloads in made:
        workloads.__exit__()


def run(kubeapi, world):
    return connectivity.check(str(kubeapi.kubeconfig), None, world)


@pytest.mark.parametrize("version", ["1.19.4"])
def test_every_row_passes_on_a_healthy_cluster(lab_sim, kubeapi, version):
    s, world = lab_sim(version)
    report = run(kubeapi, world)
    for row in report.rows:
        print(row.to_dict())
    assert report.passed, [r.to_dict() for r in report.rows if not r.ok]
