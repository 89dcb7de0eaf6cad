"""What every typer-based command shares: kubectl-like options, the runner that turns failures into
one line and an exit code, and the console. Used by both `tshoot` and `lab`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tshoot.core.errors import guarded

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
    """Run a typer app; failures become one line and an exit code in tshoot.core.errors.guarded, the handler
    every entry point of both programs shares."""
    command = typer.main.get_command(app)
    return guarded(prog, lambda: command.main(args=argv, prog_name=prog, standalone_mode=False))
