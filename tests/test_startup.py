"""The offline commands stay light: they must not import the cluster, container or netlink libraries.

(Speed itself is measured by bench/startup.py as a ratio; timing assertions do not belong in tests.)"""

import subprocess
import sys

import pytest

HEAVY = ("typer", "rich", "kubernetes", "docker", "pyroute2", "bcc", "yaml", "jinja2", "dataclasses")

PROBE = """
import sys
from tshoot.main import main
code = main({argv!r})
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [
    ["key", "ipcache", "10.0.1.110"],
    ["key", "lxc", "fd00::1", "--bpftool"],
    ["decode", "ipcache", "--value", "e3 d1 00 00 ac 12 00 05 00 00 00 00"],
    ["decode", "lxc", "--value", "00" * 48, "-o", "json", "--cilium-version", "1.19"],
    ["key", "policy", "--identity", "53731", "--proto", "tcp", "--port", "80", "--endpoint", "2006", "--bpftool"],
    ["key", "ct4", "10.0.0.1:40000", "10.0.0.2:80", "--direction", "service"],
    ["decode", "lb4-services", "--value", "00 00 00 00 03 00 00 07 00 00 00 00", "-v"],
])
def test_offline_commands_import_nothing_heavy(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY:"


HELP_PROBE = """
import sys
from {program}.main import main
code = main({argv!r})
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
sys.exit(code)
"""
# Help loads the typer app, but no cluster, container or netlink library, nor pydantic (typer coerces an unset
# flag through it; tshoot.core.command gives flags a plain coercion): bench/startup.py's 10 x python3 -c pass.
HELP_HEAVY = ("kubernetes", "docker", "pyroute2", "bcc", "pydantic")


@pytest.mark.parametrize("program, argv", [
    ("tshoot", ["--help"]), ("tshoot", ["walk", "--help"]), ("tshoot", ["identity", "list", "--help"]),
    ("tshoot", ["net", "show", "--help"]), ("tshoot", ["map", "dump", "ipcache", "--help"]),
    ("lab", ["--help"]), ("lab", ["nuke", "pods", "--help"]), ("lab", ["cilium", "install", "--help"]),
])
def test_help_imports_nothing_heavy(program, argv):
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE.format(program=program, argv=argv, heavy=HELP_HEAVY)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY:", (argv, proc.stdout.splitlines()[-1])
