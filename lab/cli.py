"""The `lab` typer app: parsing and printing only; the work is in the modules of this package."""

from __future__ import annotations

from tshoot.cli.app import app as tshoot_app
from tshoot.cli.common import new_app

app = new_app("lab", help="The kind + Cilium networking lab: bring it up, inspect it, clean it up.")
app.add_typer(tshoot_app, name="tshoot", help="The tshoot commands (the same as the 'tshoot' program).")
