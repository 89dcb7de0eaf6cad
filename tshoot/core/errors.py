"""The two ways a command fails, and the exit codes users and scripts rely on."""


class TshootError(Exception):
    """A runtime failure: the input was fine but the world was not (exit 1)."""

    exit_code = 1


class UsageError(TshootError):
    """The input itself is wrong: a malformed address, an unknown map (exit 2)."""

    exit_code = 2


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
