"""What every typer-based command shares: kubectl-like options, the runner that turns failures into
one line and an exit code, and the console. Used by both `tshoot` and `lab`."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from tshoot.core.errors import TshootError

Kubeconfig = Annotated[Optional[str], typer.Option(
    "--kubeconfig", envvar="KUBECONFIG", metavar="PATH",
    help="kubeconfig file (default: ./kubeconfig of the lab if present, else ~/.kube/config)")]
Context = Annotated[Optional[str], typer.Option("--context", metavar="NAME", help="kubeconfig context to use")]
Output = Annotated[str, typer.Option("-o", "--output", metavar="table|json|yaml",
                                     help="output format", case_sensitive=False)]
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="explain choices (layouts, backends, nodes)")]

OUTPUTS = ("table", "json", "yaml")


def check_output(value: str, allowed=OUTPUTS) -> str:
    value = value.lower()
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint="'-o'")
    return value


def new_app(name: str, help: str, **kwargs) -> typer.Typer:
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=True,
                       context_settings={"help_option_names": ["-h", "--help"]}, **kwargs)


def console(stderr: bool = False):
    """A rich console: colour only on a terminal, never with NO_COLOR."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def run(app: typer.Typer, argv: list[str] | None, prog: str) -> int:
    """Run a typer app the way users expect: failures are one line on stderr, exit 2 for usage, 1 otherwise."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name=prog, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except TshootError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # click's usage errors are duck-typed: typer may vendor its own click
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            if exc.format_message():  # empty when a group without its command printed its help
                print(f"{prog}: {exc.format_message()}{hint}", file=sys.stderr)
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            print(f"{prog}: aborted", file=sys.stderr)
            return 1
        if os.environ.get("KINDLAB_DEBUG"):
            raise
        print(f"{prog}: unexpected {type(exc).__name__}: {exc} (rerun with KINDLAB_DEBUG=1 for the traceback, "
              f"and please report it)", file=sys.stderr)
        return 1
