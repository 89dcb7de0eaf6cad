"""The two ways a command fails, and the exit codes users and scripts rely on."""


class TshootError(Exception):
    """A runtime failure: the input was fine but the world was not (exit 1)."""

    exit_code = 1


class UsageError(TshootError):
    """The input itself is wrong: a malformed address, an unknown map (exit 2)."""

    exit_code = 2
