"""How `lab cilium wait` shows progress: a live table (one row per node) on a terminal, and one line per
change when the output is a log (make, CI), so that nothing is redrawn into a file."""

from __future__ import annotations

from .wait import Row, Snapshot, rows

MARK = {True: "✓", False: "·"}


def _cells(row: Row) -> list[str]:
    state = row.state
    if state is None:
        return [row.node, "-", MARK[False], MARK[False], "-", MARK[False], "no agent pod yet"]
    problem = ""
    if state.problem:
        problem = f"{state.problem.reason}" + (f" ({state.problem.restarts} restarts)" if state.problem.restarts else "")
    init = f"{state.init_done}/{state.init_total}" if state.init_total else "-"
    return [row.node, state.name, MARK[state.scheduled], MARK[state.pulled], init, MARK[state.ready], problem]


def line(row: Row) -> str:
    state = row.state
    who = "operator" if row.role == "operator" else "agent"
    if state is None:
        return f"{row.node}: no {who} pod yet"
    text = f"{row.node}: {who} {state.name} {state.phase}"
    if state.init_done < state.init_total:
        text += f" (init {state.init_done}/{state.init_total})"
    if state.problem:
        text += f" — {state.problem.reason}"
    return text


class WaitDisplay:
    COLUMNS = ["node", "pod", "scheduled", "image pulled", "init", "ready", "problem"]

    def __init__(self, console):
        self.console = console
        self.live = None
        self.printed: dict[tuple[str, str], str] = {}

    def __enter__(self) -> "WaitDisplay":
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, transient=False, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, snapshot: Snapshot) -> None:
        table_rows = rows(snapshot)
        if self.live is not None:
            from rich.table import Table

            table = Table(box=None, header_style="bold", pad_edge=False)
            for column in self.COLUMNS:
                table.add_column(column)
            for row in table_rows:
                table.add_row(*_cells(row))
            self.live.update(table)
            return
        for row in table_rows:
            key = (row.role, row.node)
            text = line(row)
            if self.printed.get(key) != text:
                self.printed[key] = text
                self.console.print(text, highlight=False)
