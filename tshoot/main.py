"""The `tshoot` entry point: offline commands go straight to argparse, everything else to typer."""

from __future__ import annotations

import sys

from tshoot.core.errors import guarded

OFFLINE = ("key", "decode")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return guarded("tshoot", lambda: _dispatch(argv))


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in OFFLINE:
        from tshoot.cli.offline import run

        return run(argv)
    if argv and argv[0] == "map":  # argparse as well (its arguments depend on the map): typer is not loaded
        from tshoot.cli.maps import run as run_map

        return run_map(argv[1:])
    from tshoot.cli.app import main as run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
