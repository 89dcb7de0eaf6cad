"""Stand-ins for the programs that cannot run here (kind needs images from a registry; helm needs its
chart repository), so `lab` is tested up to the process boundary: the exact argv and stdin it hands to
the program, the files it passes, and what it does with the program's answers and failures.

Each stand-in is a small Python script put first on PATH. It appends every call (argv, stdin, the
content of a --values file) to calls.jsonl and answers like the real program:
- kind: `get clusters` lists the clusters it created (or says "No kind clusters found." on stderr),
  `create cluster` and `export kubeconfig` write the kubeconfig given in FAKE_KUBECONFIG_SOURCE,
  `delete cluster` forgets the cluster;
- helm: succeeds silently.
FAKE_FAIL="<subcommand>:<exit code>:<stderr line>" makes that subcommand fail as the real one would.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

SCRIPT = r'''
import json, os, shutil, sys
from pathlib import Path

here = Path(__file__).resolve().parent
program, args = Path(sys.argv[0]).name, sys.argv[1:]
stdin = sys.stdin.read() if "-" in args and not sys.stdin.isatty() else None
values = None
if "--values" in args:
    values = Path(args[args.index("--values") + 1]).read_text()
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps({"program": program, "argv": [program, *args], "stdin": stdin, "values": values}) + "\n")

fail = os.environ.get("FAKE_FAIL", "")
if fail:
    command, code, message = fail.split(":", 2)
    if command in args[:2]:
        print(message, file=sys.stderr)
        sys.exit(int(code))

state = here / "clusters.json"
clusters = json.loads(state.read_text()) if state.exists() else []

def option(name):
    return args[args.index(name) + 1] if name in args else None

if program == "kind":
    if args[:2] == ["get", "clusters"]:
        if clusters:
            print("\n".join(clusters))
        else:
            print("No kind clusters found.", file=sys.stderr)
    elif args[:2] == ["create", "cluster"]:
        name = option("--name")
        if name in clusters:
            print(f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"',
                  file=sys.stderr)
            sys.exit(1)
        print(f'Creating cluster "{name}" ...', file=sys.stderr)
        clusters.append(name)
        shutil.copy(os.environ["FAKE_KUBECONFIG_SOURCE"], option("--kubeconfig"))
    elif args[:2] == ["export", "kubeconfig"]:
        shutil.copy(os.environ["FAKE_KUBECONFIG_SOURCE"], option("--kubeconfig"))
        print(f'Set kubectl context to "kind-{option("--name")}"', file=sys.stderr)
    elif args[:2] == ["delete", "cluster"]:
        name = option("--name")
        print(f'Deleting cluster "{name}" ...', file=sys.stderr)
        clusters = [c for c in clusters if c != name]
    state.write_text(json.dumps(clusters))
'''


class FakeBin:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def install(self, *programs: str) -> "FakeBin":
        for program in programs:
            path = self.dir / program
            path.write_text(f"#!{sys.executable}\n{SCRIPT}")
            path.chmod(0o755)
        return self

    def link(self, *tools: str) -> "FakeBin":
        """Real tools next to the stand-ins (docker, kubectl), so PATH holds exactly what the test decides."""
        for tool in tools:
            real = shutil.which(tool)
            if real is None:
                raise RuntimeError(f"{tool} is not installed on this machine")
            (self.dir / tool).symlink_to(real)
        return self

    def clusters(self, *names: str) -> "FakeBin":
        (self.dir / "clusters.json").write_text(json.dumps(list(names)))
        return self

    def calls(self, program: str | None = None) -> list[dict]:
        log = self.dir / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return [c for c in calls if program in (None, c["program"])]

    def env(self, kubeconfig_source: Path | None = None, fail: str | None = None) -> dict:
        env = {"PATH": str(self.dir)}
        if kubeconfig_source is not None:
            env["FAKE_KUBECONFIG_SOURCE"] = str(kubeconfig_source)
        if fail:
            env["FAKE_FAIL"] = fail
        return env


def fake_bin(tmp_path: Path) -> FakeBin:
    return FakeBin(tmp_path / "bin")

