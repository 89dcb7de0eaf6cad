"""The one fan-out over nodes (tshoot.node.fanout), the one --backend rule (tshoot.node.choice) and the one
duration notation (tshoot.core.duration) that every command of tshoot and lab uses."""

from __future__ import annotations

import threading
import time

import pytest

from tshoot.core.duration import parse_duration, show_duration
from tshoot.core.errors import TshootError, UsageError
from tshoot.node.choice import choose_backend
from tshoot.node.fanout import NodeFailure, answers, failures, fan_out, succeeded


def test_results_come_in_the_nodes_order_with_each_failure_in_its_place():
    def work(node: str):
        if node == "b":
            raise TshootError("no agent there")
        return node.upper()

    results = fan_out(["a", "b", "c"], work, parallel=2)
    assert [r if isinstance(r, str) else (r.node, r.message) for r in results] == ["A", ("b", "no agent there"), "C"]
    assert succeeded(results) == ["A", "C"] and [f.line() for f in failures(results)] == ["b: no agent there"]


def test_a_node_known_to_be_unreachable_is_its_own_answer():
    unreachable = NodeFailure("w9", "no Cilium agent pod on node w9")
    assert fan_out(["w1", unreachable], str.upper)[1] is unreachable


def test_a_usage_error_stops_the_command_instead_of_failing_every_node():
    def work(node):
        raise UsageError("--proto needs --port")

    with pytest.raises(UsageError):
        fan_out(["a", "b", "c"], work)
    with pytest.raises(UsageError):
        fan_out(["a"], work, parallel=0)


def test_concurrency_is_bounded():
    running, most, lock = 0, 0, threading.Lock()

    def work(node):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return node

    assert fan_out(range(12), work, parallel=3, node_of=str) == list(range(12))
    assert most == 3


def test_answers_arrive_as_nodes_give_them_and_a_slow_node_holds_back_only_itself():
    release = threading.Event()

    def work(node):
        if node == "slow":
            release.wait(10)
        return node

    seen = []
    started = time.monotonic()
    for index, result in answers(["slow", "a", "b", "c"], work, parallel=4):
        seen.append(result)
        if len(seen) == 3:  # the fast ones, before the slow node has answered
            assert sorted(seen) == ["a", "b", "c"] and time.monotonic() - started < 5
            release.set()
    assert seen[-1] == "slow"
    called = []
    assert fan_out(["x", "y"], str.upper, on_answer=called.append) == ["X", "Y"] and sorted(called) == ["X", "Y"]


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("1m30s", 90), ("500ms", 0.5), ("1h30m", 5400),
                                           ("2.5s", 2.5), ("0.25", 0.25), ("15m", 900)])
def test_one_duration_notation(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15x", "m", "1.2.3s", "-1", "0", "5 s", "ms"])
def test_durations_that_mean_nothing_are_usage_errors_naming_the_option(text):
    with pytest.raises(UsageError, match=r"--request-timeout .*90, 90s, 1m30s or 500ms"):
        parse_duration(text, "--request-timeout")


def test_durations_print_as_typed():
    assert [show_duration(s) for s in (60, 90, 0.5, 5400, 2.5)] == ["1m", "1m30s", "500ms", "1h30m", "2.5s"]


def test_one_backend_rule(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    nowhere = str(tmp_path / "none")
    assert choose_backend("auto", kubeconfig=str(kubeconfig)) == "pod"            # a cluster: ask its nodes
    assert choose_backend("auto", kubeconfig=nowhere) == "local"                  # none: this machine
    assert choose_backend("auto", node="w1", kubeconfig=nowhere) == "pod"
    assert choose_backend("auto", kubeconfig=str(kubeconfig), local_only="--netns") == "local"
    assert choose_backend("auto", kubeconfig=str(kubeconfig), one_node=True) == "local"   # prog show ID, no --node
    assert choose_backend("LOCAL", node="here", hostname="here") == "local"
    for kwargs, message in (
        ({"backend": "nowhere"}, "expected one of auto, local, pod"),
        ({"backend": "auto", "node": "a", "all_nodes": True}, "--node and --all-nodes: give one of them"),
        ({"backend": "local", "node": "w1", "hostname": "here"}, "drop --backend local"),
        ({"backend": "local", "all_nodes": True}, "reads this machine"),
        ({"backend": "pod", "local_only": "--netns"}, "--netns is for the local backend"),
        ({"backend": "pod", "one_node": True}, "the pod backend needs --node NAME"),
    ):
        with pytest.raises(UsageError, match=message):
            choose_backend(**kwargs)
