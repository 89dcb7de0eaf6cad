"""Help that teaches and runs: every command's --help in one style, and every offline example in the help and
the README runs as written (the README's shown output is the output).

Offline examples are the `tshoot key`, `tshoot decode` and `tshoot maps` lines: they need no cluster and no
root, so they run here, in-process (tests.inprocess). The others are checked for form (no elided value, no
placeholder) and run against real clusters by the tests of their commands.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lab.main import main as lab_main
from tests.inprocess import run_main
from tshoot.main import main as tshoot_main
from tshoot.maps import MAPS

README = Path(__file__).resolve().parent.parent / "README.md"
OFFLINE = ("key", "decode", "maps")
WIDTH = 100  # COLUMNS the help is formatted for here; nothing may run past WIDTH + 25 (an example kept whole)

TSHOOT_HELP = [[], ["key"], ["decode"], ["map"], ["map", "lookup"], ["map", "dump"], ["map", "list"], ["maps"],
               ["endpoints"], ["endpoint", "get"], ["nodes"], ["whois"], ["walk"], ["identity"], ["identity", "get"],
               ["identity", "list"], ["net", "show"], ["prog", "show"], ["cgroup", "show"],
               *(["key", m.short] for m in MAPS), *(["decode", m.short] for m in MAPS),
               *(["map", "lookup", m.short] for m in MAPS), *(["map", "dump", m.short] for m in MAPS)]
LAB_HELP = [[], ["up"], ["down"], ["status"], ["render"], ["shell"], ["doctor"], ["cilium"], ["cilium", "install"],
            ["cilium", "wait"], ["cilium", "check"], ["cilium", "restart"], ["cilium", "unhook"], ["nuke"],
            ["nuke", "pods"], ["nuke", "kube-proxy"], ["tshoot"]]


def _help(program: str, argv: list[str]) -> str:
    main = tshoot_main if program == "tshoot" else lab_main
    outcome = run_main(main, [*argv, "--help"], env={"COLUMNS": str(WIDTH)})
    assert outcome.code == 0 and outcome.err == "", (argv, outcome)
    return outcome.out


HELPS = {(p, " ".join(a)): None for p, commands in (("tshoot", TSHOOT_HELP), ("lab", LAB_HELP)) for a in commands}


@pytest.fixture(scope="module")
def helps():
    return {(program, command): _help(program, command.split()) for program, command in HELPS}


def _examples(text: str) -> list[str]:
    """Command lines of a help text's examples (its lines starting with the program), comments dropped."""
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"(sudo )?(tshoot|lab|kubectl|bpftool) ", stripped):
            found.append(stripped.split("  #")[0].strip())
    return found


def test_one_help_style(helps):
    for (program, command), text in helps.items():
        where = f"{program} {command} --help"
        assert not re.search(r"<(bool|str|int|float|path)[^>]*>", text), where  # typer's type placeholders
        assert all(len(line) <= WIDTH + 25 for line in text.splitlines()), (where, max(text.splitlines(), key=len))
        usage = next(line for line in text.splitlines() if line.lower().startswith("usage:"))
        assert len(usage) <= WIDTH, (where, usage)  # a usage line a person can read, options listed below it
        for example in _examples(text):
            assert "…" not in example.split("|")[-1], (where, example)  # no elided value in what tshoot is given


def test_map_dump_help_lists_its_options(helps):
    for command in ("map dump", "map dump ipcache"):
        text = helps["tshoot", command]
        assert "--filter EXPR" in text and "--limit N" in text, command
    assert "--exact" in helps["tshoot", "map lookup"]


def _offline(line: str) -> list[str] | None:
    argv = shlex.split(line)
    if argv[0] != "tshoot" or argv[1] not in OFFLINE or "|" in argv or ">" in argv:
        return None
    return argv[1:]


def test_every_offline_example_in_the_help_runs(helps):
    ran = 0
    for (program, command), text in helps.items():
        for example in _examples(text):
            argv = _offline(example)
            if argv is None:
                continue
            outcome = run_main(tshoot_main, argv)
            assert outcome.code == 0 and outcome.out.strip() and outcome.err == "", (command, example, outcome)
            ran += 1
    assert ran >= 10  # key, decode and maps each show several


def _readme_sessions() -> list[tuple[str, list[str]]]:
    """(command line, the output lines shown under it) of the README's console blocks."""
    sessions, current, block = [], None, False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            block = not block
            current = None
            continue
        if not block:
            continue
        if line.startswith("$ "):
            current = (line[2:], [])
            sessions.append(current)
        elif current is not None:
            current[1].append(line)
    return sessions


def test_every_offline_example_in_the_readme_runs_and_prints_what_is_shown():
    ran = 0
    for line, shown in _readme_sessions():
        argv = _offline(line.split("  #")[0])
        if argv is None:
            continue
        outcome = run_main(tshoot_main, argv, env={"COLUMNS": "200"})
        assert outcome.code == 0 and outcome.err == "", (line, outcome)
        if shown and not any("…" in s for s in shown):
            assert [s.rstrip() for s in outcome.out.rstrip("\n").splitlines()] == shown, line
        ran += 1
    assert ran >= 8


def test_a_mistyped_option_is_named_with_the_one_meant():
    for argv, meant in ((["decode", "ipcache", "--vlaue", "00"], "--value"),
                        (["key", "ipcache", "10.244.1.5", "--cluster-di", "3"], "--cluster-id"),
                        (["map", "dump", "ipcache", "--limt", "3"], "--limit"),
                        (["walk", "a", "b", "--kubeconfg", "x"], "--kubeconfig")):
        outcome = run_main(tshoot_main, argv)
        assert outcome.code == 2 and argv[-2] in outcome.err and meant in outcome.err, outcome
        assert len(outcome.err.splitlines()) == 1


def test_identity_list_without_a_cluster_lists_the_reserved_identities(tmp_path):
    outcome = run_main(tshoot_main, ["identity", "list", "--kubeconfig", str(tmp_path / "none")], cwd=str(tmp_path))
    assert outcome.code == 1
    assert "reserved:host" in outcome.out and "reserved:world" in outcome.out, outcome
    assert outcome.err.startswith("tshoot: only the reserved identities: ") and len(outcome.err.splitlines()) == 1
