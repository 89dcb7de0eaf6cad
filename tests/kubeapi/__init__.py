"""A local Kubernetes API server for tests (no real cluster can run on these machines).

server.py serves the API's wire protocol over HTTPS; store.py keeps objects with the API's semantics;
execution.py serves pod exec over the websocket channel protocol and runs commands on simulated nodes;
objects.py builds objects shaped as a real cluster returns them; fixture.py has the pytest fixtures.
"""

from .execution import ExecStartError, NodeExec, SharedBpffsExec, SimNode, batched_of, commands_of, script_mark
from .server import KubeApiServer

__all__ = ["KubeApiServer", "NodeExec", "SharedBpffsExec", "SimNode", "ExecStartError", "batched_of", "commands_of",
           "script_mark"]
