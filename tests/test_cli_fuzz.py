"""Whatever comes in, both programs answer like tools: no traceback, exit 0, 1 or 2, one line per usage error,
and nothing a terminal would execute (control characters) echoed back.

Hypothesis draws command lines over every command and every map name (short, alias, pinned), mixing their
real options and plausible values with arbitrary text, draws standard input (bpftool-like text and JSON of any
shape, random bytes, non-UTF-8), and points the commands at broken kubeconfigs (empty, not a mapping, not UTF-8,
not YAML, without a current context) or at an API server that refuses connections. Commands run in-process
(tests.inprocess) to keep the whole file within a minute; a few cases cross the process boundary for real.
The `lab` commands drawn are those that cannot touch a machine: help, render, and the destructive ones, whose
guard refuses before any action without a proven lab (lab/guard.py).
"""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.main import main as lab_main
from tests.inprocess import run_main
from tshoot.main import main as tshoot_main
from tshoot.maps import MAPS

MAP_NAMES = sorted({n for m in MAPS for n in (m.short, *m.aliases, *(p.name.split("{")[0] + "02006" if "{" in p.name
                                                                       else p.name for p in m.pins))})
TSHOOT_COMMANDS = [["key", "MAP"], ["decode", "MAP"], ["decode", "MAP", "-"], ["decode", "MAP", "-"],
                   ["decode", "MAP", "--value"], ["decode", "MAP", "--key"], ["key", "MAP", "VALUE"],
                   ["map", "lookup", "MAP", "VALUE"], ["map", "lookup", "MAP"], ["map", "dump", "MAP"],
                   ["map", "list"], ["map"], ["maps"], ["endpoints"], ["endpoint"], ["nodes"], ["whois"], ["walk"],
                   ["identity", "get"], ["identity", "list"], ["net", "show"], ["prog", "show"], ["cgroup", "show"],
                   ["key"], ["decode"], []]
LAB_COMMANDS = [["render"], ["render", "--helm"], ["nuke", "pods"], ["nuke", "kube-proxy"], ["cilium", "unhook"],
                ["tshoot", "identity", "list"], ["tshoot", "key"], []]
OPTIONS = ["--cilium-version", "--key", "--value", "-o", "--output", "--bpftool", "--node", "--all-nodes", "--backend",
           "--kubeconfig", "--context", "-n", "--namespace", "--parallel", "--filter", "--limit", "--exact",
           "--show-commands", "-v", "--slot", "--scope", "--cluster-id", "--endpoint", "--identity", "--proto",
           "--port", "--direction", "--related", "--help", "-h", "--vlaue", "--dry-run", "--yes", "--timeout", "--all",
           "-", "--", "--name", "--bpffs"]
VALUES = ["1.9", "1.9.1", "1.12", "1.15", "1.16.3", "1.17", "1.19", "2.0", "0.9", "x.y", "10.0.1.110", "10.244.1.5",
          "10.96.0.10:53/udp", "10.96.0.0/16", "[fd00::a]:53/udp", "fd00::1", "0.0.0.0/0", "300", "511", "-1",
          "4294967296", "0", "json", "yaml", "table", "local", "pod", "auto", "tcp", "any", "egress", "ingress",
          "internal", "identity=2", "prefix~10.", "a<b", "40 00 00 00", "0x4g", "k8s-guide-worker", "kind-k8s-guide",
          "e3 d1 00 00 ac 12 00 05 00 00 00 00", "/nonexistent", ""]

KUBECONFIGS = {
    "empty": b"",
    "list": b"- a\n- b\n",
    "scalar": b"just text\n",
    "binary": b"\xff\xfe\x00kube",
    "yaml-error": b"clusters: [a\n",
    "no-current-context": (b"apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
                           b"clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {}\n"),
    "refused": (b"apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
                b"clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {}\n"),
    "garbage-entries": b"current-context: a\ncontexts: [1, {name: a, context: 5}]\nclusters: 3\n",
}

json_values = st.recursive(st.none() | st.booleans() | st.integers(-300, 300) | st.text(max_size=6)
                           | st.sampled_from(["0x40", "0x4g", "0x1ff", "ff"]),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["key", "value", "values", "error", "formatted", "x"]), inner,
                               max_size=3), max_leaves=12)
stdins = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.sampled_from(["key:", "value:", "40", "00", "0a", "zz", "Found 1 element", "Error: boom", "Not found",
                              "\n", "<no entry>"]), max_size=16).map(lambda ws: " ".join(ws).encode()),
    st.integers(1, 5000).map(lambda depth: b"[" * depth),
)
free_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)
token = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), st.sampled_from(MAP_NAMES), free_text,
                  st.sampled_from(OPTIONS).flatmap(lambda o: st.sampled_from(VALUES).map(lambda v: f"{o}={v}")))


def command_line(commands):
    def fill(command):
        return {"MAP": st.sampled_from(MAP_NAMES), "VALUE": st.sampled_from(VALUES)}.get(command, st.just(command))

    return st.sampled_from(commands).flatmap(
        lambda cmd: st.tuples(*(fill(c) for c in cmd)).map(list) if cmd else st.just([])).flatmap(
        lambda head: st.lists(token, max_size=6).map(lambda rest: head + rest))


@pytest.fixture(scope="module")
def kubeconfigs(tmp_path_factory):
    base = tmp_path_factory.mktemp("kubeconfigs")
    paths = {}
    for name, data in KUBECONFIGS.items():
        (base / name).write_bytes(data)
        paths[name] = str(base / name)
    return base, paths


def _control_characters(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"]


def check(outcome, argv) -> None:
    assert "Traceback" not in outcome.err, (argv, outcome)
    assert "please report it" not in outcome.err, (argv, outcome)  # the handler's words for a bug
    assert outcome.code in (0, 1, 2), (argv, outcome)
    if outcome.code == 2:
        assert len(outcome.err.strip().splitlines()) <= 1, (argv, outcome)
    assert not _control_characters(outcome.err), (argv, outcome)
    assert not _control_characters(outcome.out), (argv, outcome)


def _with_kubeconfig(argv: list[str], paths: dict, choice: str | None) -> list[str]:
    """`--kubeconfig X` values point at the broken files (any other path would be a missing file)."""
    fixed = [paths.get(a, a) for a in argv]
    return fixed + (["--kubeconfig", paths[choice]] if choice else [])


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(argv=command_line(TSHOOT_COMMANDS), stdin=stdins, kubeconfig=st.sampled_from([None, *KUBECONFIGS]),
       env_kubeconfig=st.sampled_from(list(KUBECONFIGS)))
def test_tshoot_any_input(kubeconfigs, argv, stdin, kubeconfig, env_kubeconfig):
    base, paths = kubeconfigs
    argv = _with_kubeconfig(argv, paths, kubeconfig)
    outcome = run_main(tshoot_main, argv, stdin, env={"KUBECONFIG": paths[env_kubeconfig]}, cwd=str(base))
    check(outcome, argv)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(argv=command_line(LAB_COMMANDS), kubeconfig=st.sampled_from(list(KUBECONFIGS)))
def test_lab_any_input(kubeconfigs, argv, kubeconfig):
    base, paths = kubeconfigs
    argv = _with_kubeconfig(argv, paths, kubeconfig)
    if "--dry-run" not in argv and argv[:1] in (["nuke"], ["cilium"]):
        argv.append("--dry-run")  # belt and braces: the guard refuses first anyway
    outcome = run_main(lab_main, argv, env={"KUBECONFIG": paths[kubeconfig]}, cwd=str(base))
    check(outcome, argv)


@pytest.mark.parametrize("name", list(KUBECONFIGS))
def test_broken_kubeconfigs_are_named_by_tshoot_and_lab_alike(kubeconfigs, name):
    base, paths = kubeconfigs
    said = []
    for main, argv in ((tshoot_main, ["nodes"]), (lab_main, ["nuke", "pods", "--dry-run"])):
        outcome = run_main(main, [*argv, "--kubeconfig", paths[name]], cwd=str(base))
        check(outcome, argv)
        said.append(outcome.err.split(": ", 1)[1].strip())
        if name == "refused":
            continue
        assert outcome.code == 2 and paths[name] in outcome.err, outcome
        assert "--kubeconfig" in outcome.err or "--context" in outcome.err, outcome  # the fix is named
    if name not in ("refused", "no-current-context"):
        assert said[0] == said[1].removeprefix("refusing: ")  # one wording, from tshoot.cluster.kube


@pytest.mark.parametrize("stdin, words", [
    (b"{}", "neither"), (b"[1]", "not a bpftool entry"), (b"[[]]", "not a bpftool entry"),
    (b'{"key": 5}', "not a list of hex bytes"), (b'[{"key":["0x4g"]}]', "not hex bytes"),
    (b'{"value":["0x1ff"]}', "odd count"), (b"\xff\xfe", "not text"), (b"[" * 100000, "nested too deeply")])
def test_decode_stdin_of_the_wrong_shape_is_one_usage_line(stdin, words):
    outcome = run_main(tshoot_main, ["decode", "ipcache", "-"], stdin)
    check(outcome, stdin)
    assert outcome.code == 2 and words in outcome.err and outcome.out == "", outcome


def test_the_process_boundary(tshoot, lab, tmp_path):
    """A full stdout, a closed pipe, and the launchers: what in-process runs cannot show."""
    import subprocess

    from tests.conftest import BIN

    for argv in (["key", "ipcache", "10.244.1.5"], ["decode", "--help"], ["maps"], ["map", "--help"]):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([str(BIN / "tshoot"), *argv], stdout=full, stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 1 and proc.stderr.startswith("tshoot: cannot write the output"), (argv, proc)
        assert len(proc.stderr.splitlines()) == 1
    with open("/dev/full", "w") as full:
        proc = subprocess.run([str(BIN / "lab"), "--help"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("lab: cannot write the output"), proc
    head = subprocess.run(f"{BIN / 'tshoot'} maps --cilium-version 1.9 | head -c 10", shell=True,
                          capture_output=True, text=True)
    assert head.returncode == 0 and head.stderr == "", head
    r = tshoot("decode", "ipcache", "-", input="{}")
    assert r.code == 2 and len(r.err.splitlines()) == 1 and "Traceback" not in r.err, r
