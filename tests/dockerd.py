"""Start the Docker engine for the tests when none answers (nothing starts it on these machines).

`python -m tests.dockerd` from the Makefile, and the `docker_engine` fixture, both call ensure().
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

SOCKET = "/var/run/docker.sock"
LOG = "/tmp/kindlab-dockerd.log"


def answering() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                          capture_output=True, timeout=20).returncode == 0


def ensure(timeout: float = 60) -> None:
    if answering():
        return
    if shutil.which("dockerd") is None:
        raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise RuntimeError("the Docker engine is not running and only root can start it here")
    with open(LOG, "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(SOCKET) and answering():
            return
        time.sleep(0.5)
    raise RuntimeError(f"dockerd did not answer within {timeout:.0f}s (see {LOG})")


if __name__ == "__main__":
    try:
        ensure()
    except RuntimeError as exc:
        print(f"dockerd: {exc}", file=sys.stderr)
        sys.exit(1)
    print("docker engine: up")
