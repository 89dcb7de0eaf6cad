"""The two ways a command fails, the exit codes users and scripts rely on, and the one handler that turns
whatever a command raised into one line and an exit code, decided by the exception's type.

Every entry point of both programs runs its command through `guarded` (tshoot.main, lab.main; the typer
runner in tshoot.core.command as well), so `tshoot key`, `tshoot map`, `tshoot walk` and `lab nuke` fail
the same way. This module stays import-light: the offline commands load it first thing.
"""

from __future__ import annotations

import errno
import os
import sys

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}  # writing to a full or failing device


class TshootError(Exception):
    """A runtime failure: the input was fine but the world was not (exit 1)."""

    exit_code = EXIT_FAILURE


class UsageError(TshootError):
    """The input itself is wrong: a malformed address, an unknown map, a broken kubeconfig (exit 2)."""

    exit_code = EXIT_USAGE


class OutputError(TshootError):
    """Standard output cannot take what the command printed (a full disk, /dev/full)."""


class Problems(TshootError):
    """Several independent problems, each said on a line of its own (every missing tool, say)."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def guarded(prog: str, command) -> int:
    """command() -> its exit code, with every way out turned into one line on stderr and an exit code by type:

    UsageError and typer's usage errors 2, TshootError 1, a closed pipe 0 (`| head` is not a failure),
    a full stdout 1, Ctrl-C 130, anything else 1 with "unexpected …" (its traceback with KINDLAB_DEBUG=1)."""
    try:
        try:
            code = command()
        except SystemExit as exc:  # argparse's help exits 0: what it printed must still reach stdout
            if not (exc.code is None or isinstance(exc.code, int)):
                raise
            code = exc.code
        if sys.stdout is not None:
            sys.stdout.flush()  # a write that fails must fail here, not in the interpreter's exit
        return EXIT_OK if code is None else code
    except BaseException as exc:  # noqa: BLE001 - the one place that decides what any failure prints
        return _report(prog, exc)


def _report(prog: str, exc: BaseException) -> int:
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return EXIT_OK
    if isinstance(exc, OSError) and exc.errno in _FULL and exc.filename is None:  # a write to stdout, not a file
        _silence_stdout()
        exc = OutputError(f"cannot write the output: {exc.strerror} (is the disk or device it goes to full?)")
    if isinstance(exc, Problems):
        _say(prog, exc.lines[0])
        for line in exc.lines[1:]:
            _say("", line)
        return exc.exit_code
    if isinstance(exc, TshootError):
        _say(prog, str(exc))
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        _say(prog, "interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, SystemExit):  # sys.exit("text"): a failure with a message
        _say(prog, str(exc.code))
        return EXIT_FAILURE
    typer = sys.modules.get("typer.exceptions")  # only the typer commands load it: no import for the others
    if typer is not None:
        if isinstance(exc, typer.Exit):
            return exc.exit_code
        if isinstance(exc, typer.Abort):
            _say(prog, "aborted")
            return EXIT_FAILURE
        clicks = sys.modules.get("typer._click.exceptions")
        if clicks is not None and isinstance(exc, clicks.NoArgsIsHelpError):  # a group without its command
            try:
                print(exc.format_message(), flush=True)  # its help, on stdout like any help; exit 2: nothing done
            except OSError:
                _silence_stdout()
            return exc.exit_code
        if isinstance(exc, typer.TyperException):  # its (vendored) click's usage errors: exit_code 2
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            if exc.format_message():  # empty when a group without its command printed its help
                _say(prog, exc.format_message() + hint)
            return exc.exit_code
    if os.environ.get("KINDLAB_DEBUG"):
        raise exc
    _say(prog, f"unexpected {type(exc).__name__}: {exc} (rerun with KINDLAB_DEBUG=1 for the traceback, "
               f"and please report it)")
    return EXIT_FAILURE


def _say(prog: str, message: str) -> None:
    """One line on stderr, whatever the message holds (a YAML error spans lines; input may hold escapes)."""
    line = " ".join(printable(message).split())
    try:
        print(f"{prog}: {line}" if prog else line, file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr is gone too: the exit code is all that is left to say it


def printable(text: str) -> str:
    """`text` with control characters (a terminal escape in a bad argument) shown as escapes, not sent raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what is still buffered cannot fail
    a second time with "Exception ignored … BrokenPipeError"."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (stdout captured in-process)
        pass


class FieldError(UsageError):
    """A value given for a field is wrong. `field` is the field's name as the domain code's keyword argument
    spells it (port, proto, cluster_id); `fix`, when there is one, the (field, value) that would make it
    right. A command line says it with its own flags (tshoot.cli.parsing.Parser.field_error)."""

    def __init__(self, field: str, value, problem: str, fix: tuple[str, str] | None = None):
        self.field, self.value, self.problem, self.fix = field, value, problem, fix
        super().__init__(self.say(lambda name: name))

    def say(self, name_of) -> str:
        shown = name_of(self.field) + ("" if self.value is None else f" {self.value}")
        return f"{shown}: {self.problem}" + (f" (give {name_of(self.fix[0])} {self.fix[1]})" if self.fix else "")
