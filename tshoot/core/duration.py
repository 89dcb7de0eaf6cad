"""Durations on the command line, read one way by every `--timeout`, `--request-timeout`, `--since` and
`--interval` of `tshoot` and `lab`: Go's (and kubectl's) notation without the sign — `500ms`, `90s`,
`1m30s`, `1h30m`, `2.5s` — and a bare number meaning seconds (`90`, `0.25`)."""

from __future__ import annotations

from tshoot.core.errors import UsageError

_UNITS = (("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0))  # "ms" before "m": longest unit first
EXAMPLES = "90, 90s, 1m30s or 500ms"


def parse_duration(text: str, option: str = "--timeout", allow_zero: bool = False) -> float:
    """Seconds; UsageError naming the option and the accepted forms otherwise (0 only when allow_zero)."""
    rest, seconds, seen = text.strip(), 0.0, False
    try:
        if rest and rest[-1].isdigit():  # a bare number: seconds
            seconds, rest, seen = float(rest), "", True
        while rest:
            number = ""
            while rest and (rest[0].isdigit() or rest[0] == "."):
                number, rest = number + rest[0], rest[1:]
            unit = next(((u, factor) for u, factor in _UNITS if rest.startswith(u)), None)
            if not number or unit is None:
                raise ValueError
            seconds += float(number) * unit[1]
            rest, seen = rest[len(unit[0]):], True
    except ValueError:
        seen = False
    if not seen or seconds < 0 or (seconds == 0 and not allow_zero) or seconds != seconds:
        raise UsageError(f"{option} {text!r}: expected a duration such as {EXAMPLES}")
    return seconds


def show_duration(seconds: float) -> str:
    """The short form users type back: 90 -> '1m30s', 0.5 -> '500ms'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    secs_text = f"{secs:g}s" if secs else ""
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + secs_text or "0s"
