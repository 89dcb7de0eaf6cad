"""The `lab` entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from tshoot.core.command import run

    from .cli import app

    return run(app, sys.argv[1:] if argv is None else argv, "lab")


if __name__ == "__main__":
    sys.exit(main())
