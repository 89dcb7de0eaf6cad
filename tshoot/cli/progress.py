"""How a command that asks many nodes shows it is working: one line on stderr, "12/500 nodes answered, 1 failed",
redrawn in place as nodes answer (tshoot.node.fanout's on_answer) and cleared when the command prints its
answer, so that nothing of it is left on the screen nor in what was printed. Only on a terminal: a pipe, a
file or a CI log gets no progress at all (the rows and the failures say everything there).

`lab cilium wait` (lab/progress.py) shows a table of pod states redrawn by rich: another thing (a state per
node that changes many times), not a count of answers.
"""

from __future__ import annotations

import sys

from tshoot.node.fanout import NodeFailure


class Progress:
    """on_answer for tshoot.node.fanout: counts answers and failures out of `total` nodes. Use as a context
    manager (the line is cleared on the way out, also on an error) and call clear() before printing rows to
    the same terminal."""

    def __init__(self, total: int = 0, stream=None):
        self.total, self.answered, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.shown = False
        self.terminal = _is_terminal(self.stream)

    def expect(self, total: int) -> None:
        """How many nodes will answer, when it is known only once they are listed."""
        self.total = total

    def __call__(self, result) -> None:
        self.answered += 1
        self.failed += isinstance(result, NodeFailure)
        self.draw()

    def draw(self) -> None:
        if self.total <= 1 or not self.terminal:
            return
        failed = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r\x1b[K{self.answered}/{self.total} nodes answered{failed}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.clear()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
