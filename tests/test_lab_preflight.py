"""`lab up` (make lab, make up) without the tools it drives: it stops before doing anything, one line
per missing tool saying how to get it. PATH is the only thing changed: the tools are really absent."""

from __future__ import annotations

import os
import shutil

import pytest


def path_with(tmp_path, *tools: str) -> str:
    """A PATH holding only these tools (links to the real ones)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        real = shutil.which(tool)
        if real is None:
            pytest.fail(f"{tool} is not installed on this machine")
        os.symlink(real, bin_dir / tool)
    return str(bin_dir)


def test_every_missing_tool_is_one_line_with_how_to_get_it(lab, tmp_path):
    r = lab("up", env={"PATH": path_with(tmp_path)}, timeout=30)
    assert r.code == 1 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 3, r.err
    assert lines[0].startswith("lab: docker is not installed") and "docs.docker.com" in lines[0]
    assert lines[1].startswith("kind is not installed") and "sigs.k8s.io/kind@v0.32.0" in lines[1]
    assert lines[2].startswith("kubectl is not installed") and "dl.k8s.io/release/v1.34.8" in lines[2]
    assert not (tmp_path / "kubeconfig").exists()


def test_only_the_missing_tool_is_named(lab, tmp_path):
    r = lab("up", env={"PATH": path_with(tmp_path, "docker", "kubectl")}, timeout=30)
    assert r.code == 1
    assert r.err.strip().splitlines() == [r.err.strip()] and r.err.startswith("lab: kind is not installed")


def test_down_needs_only_docker_and_kind(lab, tmp_path):
    r = lab("down", env={"PATH": path_with(tmp_path, "docker")}, timeout=30)
    assert r.code == 1 and r.err.startswith("lab: kind is not installed") and "kubectl" not in r.err


def test_make_lab_stops_at_the_first_step_naming_the_missing_tool(tmp_path):
    """The guide's one command, without kind: make runs `lab up`, which stops before creating anything."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    venv = Path(sys.executable).parent.parent
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed")
    env = {"PATH": path_with(tmp_path, "docker", "kubectl"), "HOME": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.run([make, "-s", "-o", f"{venv}/.installed", "lab", f"VENV={venv}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.splitlines()[0].startswith("lab: kind is not installed (not on PATH): go install "
                                                  "sigs.k8s.io/kind@v0.32.0")
    assert proc.stdout == ""
