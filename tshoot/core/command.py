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
HELP_OPTIONS = ["-h", "--help"]


def check_output(value: str, allowed=OUTPUTS) -> str:
    value = value.lower()
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint="'-o'")
    return value


def new_app(name: str, help: str, **kwargs) -> typer.Typer:
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=True, rich_markup_mode=None,
                       context_settings={"help_option_names": HELP_OPTIONS}, **kwargs)


def console(stderr: bool = False):
    """A rich console: colour only on a terminal, never with NO_COLOR."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def run(app: typer.Typer, argv: list[str] | None, prog: str) -> int:
    """Run a typer app; failures become one line and an exit code in tshoot.core.errors.guarded, the handler
    every entry point of both programs shares."""
    command = typer.main.get_command(app)
    _help_style(command)
    return guarded(prog, lambda: command.main(args=argv, prog_name=prog, standalone_mode=False))


def _help_style(command) -> None:
    """The help style of every command of both programs, as `tshoot key|decode|map` (argparse) has it: values
    named by what they are (NAME, not typer's <str> placeholder), examples as written, one per line (the
    formatter rewraps paragraphs, and an example cut at its 70th column cannot be pasted)."""
    for attribute in ("help", "epilog"):
        text = getattr(command, attribute, None)
        if text:
            setattr(command, attribute, examples_verbatim(text))
    help_option = command.get_help_option(command.context_class(command, help_option_names=HELP_OPTIONS))
    for param in [*getattr(command, "params", []), *([help_option] if help_option else [])]:
        if param.metavar is None and not getattr(param, "is_flag", False) and param.name:
            param.metavar = param.name.upper().replace("_", "-")
        if param.param_type_name == "argument":  # its name says what it is: no "<str>" after it
            param.display_type_rich = lambda ctx: None
        if getattr(param, "is_flag", False) and getattr(param, "_runtime_param", "") is None:
            # typer coerces an unset flag (None) through pydantic, whose import is most of `--help`'s time
            # (0.4 s, bench/startup.py); a flag is a bool without it.
            param._runtime_param = _FlagValue()
    for sub in getattr(command, "commands", {}).values():
        _help_style(sub)


def examples_verbatim(text: str) -> str:
    """The paragraphs after an "Examples:" line as one block that is never rewrapped (click's \\b mark)."""
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if line.strip().lower() == "examples:"), len(lines))
    prose = "\n".join(line.strip() for line in lines[:at])  # a docstring's indentation is not the text's
    examples = [line for line in lines[at + 1:] if line.strip() and line.strip() != "\b"]
    if not examples:
        return prose
    return "\n".join([prose, "Examples:", "", "\b", *examples])


class _FlagValue:
    """The coercion of a boolean flag's value: given, it is a bool; not given (None), False."""

    @staticmethod
    def coerce(value, param=None, ctx=None):
        return bool(value)
