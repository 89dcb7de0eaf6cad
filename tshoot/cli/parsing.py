"""Command lines of the argparse-parsed commands (`tshoot key`, `decode`, `map`), fast for the plain case.

Each command and each map module declares its arguments once, with argparse's `add_argument`. `Parser`
records those declarations and parses a plain command line itself: positionals, `--option VALUE`,
`--option=VALUE`, flags, repeated (append) options. Anything else (help, an abbreviated option, an error, a value that looks like an
option, `--`) is handed to a real argparse parser built from the same declarations, so argparse stays the
one judge of what is valid and how help and errors read. The reason is start-up time: importing argparse
(with `re` and `enum`) costs more than everything else `tshoot key` does (bench/startup.py).
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from tshoot.core.errors import UsageError

_SIMPLE = {"metavar", "help", "type", "default", "required", "choices", "action", "nargs", "dest"}


class _Argparse(Exception):
    """This command line needs argparse itself."""


class Parser:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.declared: list[tuple[tuple, dict, tuple | None]] = []  # (flags, kwargs, help group)

    def add_argument(self, *flags: str, **kwargs) -> None:
        self.declared.append((flags, kwargs, None))

    def add_argument_group(self, title: str, description: str | None = None) -> "_Group":
        return _Group(self, (title, description))

    def parse_args(self, argv: list[str]) -> SimpleNamespace:
        try:
            return self._plain(argv)
        except _Argparse:
            self._check_options(argv)
            return SimpleNamespace(**vars(self.argparse().parse_args(argv)))

    def _check_options(self, argv: list[str]) -> None:
        """Name a mistyped option before argparse does (it would take `--vlaue 00`'s value for a positional
        and complain about that), with the option it most likely means."""
        flags = [flag for declared, _, _ in self.declared for flag in declared if flag.startswith("--")] + ["--help"]
        for token in argv:
            if token == "--":
                return
            name = token.partition("=")[0]
            if name.startswith("--") and len(name) > 2 and not any(f.startswith(name) for f in flags):
                import difflib

                close = difflib.get_close_matches(name, flags, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UsageError(f"unknown option {name}{hint} (see '{self.kwargs.get('prog', 'tshoot')} --help')")

    def error(self, message: str):
        self.argparse().error(message)

    def mark(self) -> int:
        """Where the declarations stand now: `values(args, since=mark)` gives what was declared after it."""
        return len(self.declared)

    def values(self, args, marks: tuple[int, int]) -> dict:
        """{dest: value} of the arguments declared between two `mark()`s (a map module's key fields)."""
        return {kwargs.get("dest") or _dest(flags): getattr(args, kwargs.get("dest") or _dest(flags))
                for flags, kwargs, _ in self.declared[marks[0]:marks[1]]}

    def field_error(self, error) -> UsageError:
        """A FieldError said with this command line's flags (--cluster-id for cluster_id, ADDRESS for address)."""
        def name_of(field: str) -> str:
            for flags, kwargs, _ in self.declared:
                if (kwargs.get("dest") or _dest(flags)) == field:
                    return max(flags, key=len) if flags[0].startswith("-") else kwargs.get("metavar", field.upper())
            return field

        return UsageError(error.say(name_of))

    def print_help(self) -> None:
        self.argparse().print_help()

    def argparse(self):
        parser = _argparse_parser(**{"usage": self._usage(), **self.kwargs})
        groups: dict[tuple, object] = {}
        for flags, kwargs, group in self.declared:
            target = parser if group is None else groups.setdefault(group, parser.add_argument_group(*group))
            target.add_argument(*flags, **kwargs)
        return parser

    def _usage(self) -> str:
        """`tshoot key ipcache ADDRESS[/PREFIX] [options]`: what a person types, not every option spelled out
        (they are listed below it)."""
        words = []
        for flags, kwargs, _ in self.declared:
            if not flags[0].startswith("-"):
                name = kwargs.get("metavar") or flags[0]
                words.append(f"[{name}]" if kwargs.get("nargs") == "?" else name)
        return " ".join(["%(prog)s", *words, "[options]"])

    # --- the plain case -------------------------------------------------------------------------------
    def _plain(self, argv: list[str]) -> SimpleNamespace:
        positionals, options, values = [], {}, {}
        for flags, kwargs, _ in self.declared:
            if set(kwargs) - _SIMPLE or kwargs.get("action", "store") not in ("store", "store_true", "append") \
                    or kwargs.get("nargs") not in (None, "?"):
                raise _Argparse
            spec = dict(kwargs, flags=flags, dest=kwargs.get("dest") or _dest(flags))
            values[spec["dest"]] = kwargs.get("default", False if kwargs.get("action") == "store_true" else None)
            if flags[0].startswith("-"):
                options.update((flag, spec) for flag in flags)
            else:
                positionals.append(spec)
        seen = set()
        tokens = iter(argv)
        for token in tokens:
            if token.startswith("-") and token != "-":
                name, equals, value = token.partition("=")
                spec = options.get(name)
                if spec is None or token == "--":
                    raise _Argparse  # help, an abbreviation, an unknown option: argparse decides
                if spec.get("action") == "store_true":
                    if equals:
                        raise _Argparse
                    values[spec["dest"]] = True
                    continue
                if not equals:
                    value = next(tokens, None)
                    if value is None or (value.startswith("-") and value != "-"):
                        raise _Argparse
            elif positionals:
                spec, value = positionals.pop(0), token
            else:
                raise _Argparse
            if spec.get("action") == "append":  # argparse starts a new list, whatever the default
                values[spec["dest"]] = [*(values[spec["dest"]] if spec["dest"] in seen else []), _convert(spec, value)]
            else:
                values[spec["dest"]] = _convert(spec, value)
            seen.add(spec["dest"])
        if any(p.get("nargs") != "?" for p in positionals):
            raise _Argparse  # a required positional is missing
        if any(s.get("required") and s["dest"] not in seen for s in options.values()):
            raise _Argparse
        return SimpleNamespace(**values)


class _Group:
    """argparse's argument group, for help layout only: its arguments parse like any other."""

    def __init__(self, parser: Parser, group: tuple):
        self.parser, self.group = parser, group

    def add_argument(self, *flags: str, **kwargs) -> None:
        self.parser.declared.append((flags, kwargs, self.group))


def _dest(flags: tuple) -> str:
    longest = max(flags, key=len)
    return longest.lstrip("-").replace("-", "_")


def _convert(spec: dict, value: str):
    try:
        converted = spec["type"](value) if "type" in spec else value
    except (TypeError, ValueError):
        raise _Argparse from None
    if "choices" in spec and converted not in spec["choices"]:
        raise _Argparse
    return converted


_parser_class = None


def _argparse_parser(**kwargs):
    """argparse's parser, failing with one line (problem and accepted form) and exit 2 via UsageError, and
    formatting help at a width read here (argparse would import shutil for it on every add_argument)."""
    global _parser_class
    if _parser_class is None:
        import argparse

        class Formatter(argparse.RawDescriptionHelpFormatter):
            def __init__(self, prog: str):
                try:
                    width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
                except (ValueError, OSError):
                    width = 80
                super().__init__(prog, width=max(width - 2, 40))

            def _fill_text(self, text, width, indent):
                """Prose paragraphs wrapped to the terminal; indented ones (examples, tables) as written, one
                per line, so that an example is never cut in the middle."""
                import textwrap

                paragraphs = text.split("\n\n")
                return "\n\n".join(
                    p if p[:1].isspace() or "\n " in p else textwrap.fill(" ".join(p.split()), width, initial_indent=indent,
                                                                          subsequent_indent=indent)
                    for p in paragraphs)

        class OneLineParser(argparse.ArgumentParser):
            def __init__(self, **kw):
                super().__init__(formatter_class=Formatter, **kw)

            def error(self, message: str):
                raise UsageError(f"{message} (see '{self.prog} --help')")

            def _print_message(self, message: str, file=None):
                if message:  # argparse's own would hide a failed write (stdout on /dev/full): let it raise
                    (file or sys.stderr).write(message)

        _parser_class = OneLineParser
    return _parser_class(**kwargs)
