"""Reading agents: `cilium-dbg status` lines (lab cilium check) and pod objects (lab cilium wait)."""

from __future__ import annotations

import pytest

from lab.check import parse_status, status_command
from lab.podstate import pod_state
from lab.wait import Snapshot, done, failure, rollout_done, rows
from tshoot.core.duration import parse_duration
from tests import cilium_status, podfixtures


def test_a_healthy_agent():
    s = parse_status(cilium_status.healthy(), "k8s-guide-worker2", "cilium-x1")
    assert (s.cilium, s.health_daemon, s.controllers, s.cluster_health, s.kube_proxy_replacement) == (
        "Ok", "Ok", (40, 40), (3, 3), "True")
    assert s.healthy and s.problems() == []


def test_the_guides_own_output():
    s = parse_status(cilium_status.GUIDE_1_10, "k8s-guide-worker2", "cilium-x1")
    assert (s.health_daemon, s.controllers, s.cluster_health, s.kube_proxy_replacement) == (
        "Ok", (40, 40), (3, 3), "Strict")
    assert s.healthy


@pytest.mark.parametrize("text, problem", [
    (cilium_status.failing_controllers(), "1 controllers failing"),
    (cilium_status.unreachable_nodes(), "2 nodes unreachable"),
    (cilium_status.health_daemon_unreachable(), "cluster health: Warning cilium-health daemon unreachable"),
    (cilium_status.kube_proxy_replacement_off(), "kube-proxy replacement is False"),
    ("", "Cilium is not reported"),
])
def test_unhealthy_agents_say_why(text, problem):
    s = parse_status(text, "k8s-guide-worker", "cilium-x2")
    assert not s.healthy and problem in s.problems()


def test_status_command_by_release():
    assert status_command(True) == ["cilium-dbg", "status"] and status_command(False) == ["cilium", "status"]


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("90s", 90), ("1h30m", 5400), ("45", 45), ("2.5s", 2.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15x", "m"])
def test_bad_durations(text):
    from tshoot.core.errors import UsageError

    with pytest.raises(UsageError):
        parse_duration(text)


# --- pods on their way to Ready -------------------------------------------------------------------------

def test_pod_steps_in_order():
    phases = [pod_state(pod).phase for pod in podfixtures.agent_lifecycle("cilium-abcde", "k8s-guide-worker")]
    assert phases == ["pending", "scheduled", "image pulled", "image pulled", "init done", "ready"]


def test_crash_loop_is_reported_with_its_last_words_and_the_logs_command():
    pod = podfixtures.crash_looping("cilium-abcde", "k8s-guide-worker", restarts=4)
    state = pod_state(pod)
    assert state.problem.reason == "CrashLoopBackOff" and state.problem.exit_code == 1
    text = state.problem.describe(state.name, state.node, "cilium")
    assert text.startswith("cilium-abcde on k8s-guide-worker: container cilium-agent is in CrashLoopBackOff "
                           "(4 restarts), exited with code 1: ")
    assert "Unable to contact k8s api-server" in text
    assert text.endswith("read its logs: kubectl -n cilium logs cilium-abcde -c cilium-agent --previous")


def test_wait_decisions():
    nodes = ["k8s-guide-control-plane", "k8s-guide-worker"]
    ready = [podfixtures.ready_agent(f"cilium-{i}", n) for i, n in enumerate(nodes)]
    operator = [podfixtures.ready_operator("cilium-operator-1", nodes[0])]
    daemonset = podfixtures.daemonset(desired=2, ready=2, updated=2)
    assert done(Snapshot(nodes, ready, daemonset, operator))
    assert not done(Snapshot(nodes, ready[:1], daemonset, operator))  # a node without its agent
    assert not done(Snapshot(nodes, ready, daemonset, []))  # no operator
    assert not rollout_done(podfixtures.daemonset(desired=2, ready=2, updated=1))  # a restart still rolling
    # a terminating pod is not the node's agent any more
    old = podfixtures.ready_agent("cilium-old", nodes[1], terminating=True)
    table = rows(Snapshot(nodes, [ready[0], old], daemonset, operator))
    assert table[1].state is None
    crashing = [ready[0], podfixtures.crash_looping("cilium-9", nodes[1], restarts=1)]
    assert failure(Snapshot(nodes, crashing, daemonset, operator), "cilium") is None  # it may still recover
    crashing[1] = podfixtures.crash_looping("cilium-9", nodes[1], restarts=3)
    assert "CrashLoopBackOff" in failure(Snapshot(nodes, crashing, daemonset, operator), "cilium")


def test_the_live_table_on_a_terminal():
    """On a terminal the progress is one table redrawn in place, a row per node."""
    import io

    from rich.console import Console

    from lab.progress import WaitDisplay

    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=160, color_system=None)
    nodes = ["k8s-guide-control-plane", "k8s-guide-worker"]
    agents = [podfixtures.ready_agent("cilium-aaaaa", nodes[0]),
              podfixtures.crash_looping("cilium-bbbbb", nodes[1], restarts=2)]
    with WaitDisplay(terminal) as display:
        display.update(Snapshot(nodes, agents, podfixtures.daemonset(2, 1, 2), []))
    text = out.getvalue()
    assert "image pulled" in text and "init" in text
    rows_shown = [line.split() for line in text.splitlines() if line.startswith("k8s-guide-")]
    assert rows_shown[0][:2] == ["k8s-guide-control-plane", "cilium-aaaaa"] and rows_shown[0][-1] == "✓"
    assert rows_shown[1][:2] == ["k8s-guide-worker", "cilium-bbbbb"]
    assert "CrashLoopBackOff (2 restarts)" in " ".join(rows_shown[1])
