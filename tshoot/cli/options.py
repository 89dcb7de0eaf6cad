"""The options of every tshoot command that reads BPF state on nodes (net, prog, cgroup show, walk; `tshoot
map` declares the same with argparse from the same texts): how to reach nodes (tshoot.node.choice) and how
many to ask at once, for how long (tshoot.node.fanout). Same flags, defaults and help everywhere."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tshoot.core.duration import show_duration
from tshoot.node.choice import BACKEND_HELP
from tshoot.node.fanout import DEFAULT_PARALLEL, DEFAULT_TIMEOUT, PARALLEL_HELP, TIMEOUT_HELP

Backend = Annotated[str, typer.Option("--backend", metavar="auto|local|pod", case_sensitive=False, help=BACKEND_HELP)]
Node = Annotated[Optional[str], typer.Option("--node", metavar="NAME",
                                             help="a cluster node: ask its Cilium agent (pod backend)")]
AllNodes = Annotated[bool, typer.Option("--all-nodes", help="every node of the cluster (pod backend)")]
NodeTimeout = Annotated[str, typer.Option("--timeout", metavar="DURATION", help=TIMEOUT_HELP, show_default=False)]
Parallel = Annotated[int, typer.Option("--parallel", metavar="N", min=1, help=PARALLEL_HELP, show_default=False)]
NODE_TIMEOUT_DEFAULT = show_duration(DEFAULT_TIMEOUT)
PARALLEL_DEFAULT = DEFAULT_PARALLEL
