"""Asking many nodes at once: one bounded fan-out and one per-node failure, for every command of `tshoot`
and `lab` that works node by node (agents reached through the Kubernetes API, or kind's node containers
through docker).

* At most `parallel` nodes are worked on at a time: each is one exec stream (or one docker exec) that
  mostly waits, so threads suffice; the bound keeps a 500-node cluster from opening 500 streams at once.
* A node's failure is a `NodeFailure` in its place among the results, never an exception that hides the
  others' answers; the command prints each on its own line and exits 1 when any node failed.
* Answers arrive as nodes give them (`answers`): one slow node holds back only its own line.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

from tshoot.core.duration import EXAMPLES, show_duration
from tshoot.core.errors import TshootError, UsageError

DEFAULT_PARALLEL = 32  # nodes asked at once; --parallel N changes it
DEFAULT_TIMEOUT = 60.0  # seconds a node may take to answer one command (a big conntrack dump in a busy agent)
TIMEOUT_HELP = (f"give up on a node that takes longer to answer one command (default {show_duration(DEFAULT_TIMEOUT)};"
                f" {EXAMPLES}); the other nodes' answers stand")
PARALLEL_HELP = f"nodes asked at once (default {DEFAULT_PARALLEL})"

T = TypeVar("T")


class NodeFailure(TshootError):
    """One node could not answer: which node, and why (one line)."""

    def __init__(self, node: str, message: str):
        super().__init__(message)
        self.node, self.message = node, message

    def line(self) -> str:
        """How a command reports it among other nodes' answers."""
        return f"{self.node}: {self.message}"


def _node_of(item) -> str:
    return item if isinstance(item, str) else getattr(item, "node", None) or getattr(item, "name", "?")


def answers(items: Iterable[T], work: Callable[[T], object], parallel: int = DEFAULT_PARALLEL,
            node_of: Callable[[T], str] = _node_of) -> Iterator[tuple[int, object]]:
    """(index of the item, work(item) or its NodeFailure), as the nodes answer. UsageError is not a node's
    failure: it stops the command (the same mistake would fail on every node)."""
    items = list(items)
    if parallel < 1:
        raise UsageError("--parallel must be 1 or more")

    def one(item):
        if isinstance(item, NodeFailure):  # a node known to be unreachable before any work (no agent there)
            return item
        try:
            return work(item)
        except UsageError:
            raise
        except NodeFailure as exc:
            return exc
        except TshootError as exc:
            return NodeFailure(node_of(item), str(exc))

    if len(items) <= 1 or parallel == 1:  # no thread to start (the common one-node case stays cheap)
        for index, item in enumerate(items):
            yield index, one(item)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    pool = ThreadPoolExecutor(max_workers=min(parallel, len(items)))
    try:
        futures = {pool.submit(one, item): index for index, item in enumerate(items)}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def fan_out(items: Iterable[T], work: Callable[[T], object], parallel: int = DEFAULT_PARALLEL,
            on_answer: Callable[[object], None] | None = None, node_of: Callable[[T], str] = _node_of) -> list:
    """work(item) for every node, results in the items' order (a NodeFailure where a node failed);
    on_answer(result) is called as each node answers (progress, streamed rows)."""
    items = list(items)
    results: list = [None] * len(items)
    for index, result in answers(items, work, parallel, node_of):
        results[index] = result
        if on_answer is not None:
            on_answer(result)
    return results


def failures(results: Iterable) -> list[NodeFailure]:
    return [r for r in results if isinstance(r, NodeFailure)]


def succeeded(results: Iterable) -> list:
    return [r for r in results if not isinstance(r, NodeFailure)]
