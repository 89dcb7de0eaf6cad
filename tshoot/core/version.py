"""Cilium versions: parsing image tags and user input, and the version ranges layouts are valid for.

Layouts changed inside minor lines (1.11.14, 1.12.8, 1.16.4 ...), so a range is a list of half-open
intervals, written the way the layout reference writes them: "1.11.14-1.12 1.12.8-1.18".
"""

from __future__ import annotations

from tshoot.core.errors import UsageError

Version = tuple[int, int, int]

OLDEST: Version = (1, 9, 0)
NEWEST_KNOWN: Version = (1, 19, 4)
# A minor given without a patch ("1.12") means its newest patch: users run the latest patch of a line.
LATEST_PATCH = 999


def parse(text: str) -> Version:
    """'1.19.4', 'v1.12', 'quay.io/cilium/cilium:v1.16.3@sha256:…', '1.17.0-rc.1' -> (1, 19, 4)."""
    tag = text.strip()
    if "@" in tag:
        tag = tag.split("@", 1)[0]
    if ":" in tag:
        tag = tag.rsplit(":", 1)[1]
    tag = tag.lstrip("vV").split("-", 1)[0].split("+", 1)[0]
    parts = tag.split(".")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3):
        raise UsageError(f"cannot read Cilium version {text!r}: expected X.Y or X.Y.Z, e.g. 1.19.4")
    if len(numbers) == 2:
        numbers.append(LATEST_PATCH)
    version = (numbers[0], numbers[1], numbers[2])
    if not OLDEST <= version < (1, 20, 0):
        raise UsageError(
            f"Cilium {text} is not supported: kindlab knows the map layouts of 1.9 to 1.19 "
            f"(pass --cilium-version with one of those)"
        )
    return version


def show(version: Version) -> str:
    major, minor, patch = version
    return f"{major}.{minor}" if patch == LATEST_PATCH else f"{major}.{minor}.{patch}"


def _point(text: str) -> Version:
    parts = [int(p) for p in text.split(".")]
    return (parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


class Range:
    """A set of versions as half-open intervals: Range("1.11.14-1.12 1.12.8-1.18")."""

    def __init__(self, spec: str):
        self.spec = spec
        self.intervals: list[tuple[Version, Version]] = []
        for part in spec.split():
            low, _, high = part.partition("-")
            self.intervals.append((_point(low), _point(high) if high else (99, 0, 0)))

    def __contains__(self, version: Version) -> bool:
        return any(low <= version < high for low, high in self.intervals)

    def __repr__(self) -> str:
        return f"Range({self.spec!r})"

    def intersect(self, other: "Range") -> "Range | None":
        """The versions in both, None when there are none."""
        parts = []
        for a_low, a_high in self.intervals:
            for b_low, b_high in other.intervals:
                low, high = max(a_low, b_low), min(a_high, b_high)
                if low < high:
                    parts.append(_show_point(low) + ("" if high[0] == 99 else f"-{_show_point(high)}"))
        return Range(" ".join(parts)) if parts else None

    def label(self) -> str:
        """Human form: '1.11.14–1.11.x, 1.12.8–1.17.x'."""
        out = []
        for low, high in self.intervals:
            end = f"{NEWEST_KNOWN[0]}.{NEWEST_KNOWN[1]}.x" if high[0] == 99 else _before(high)
            out.append(f"{_show_point(low)}–{end}" if end != _show_point(low) else _show_point(low))
        return ", ".join(out)


def newest(versions: Range) -> Version:
    """The newest version in a range, a minor without a patch meaning its newest patch (1.18-… -> 1.17)."""
    low, high = max(versions.intervals, key=lambda interval: interval[1])
    if high[0] == 99:
        return NEWEST_KNOWN
    return (high[0], high[1], high[2] - 1) if high[2] else (high[0], high[1] - 1, LATEST_PATCH)


def _show_point(v: Version) -> str:
    return f"{v[0]}.{v[1]}.{v[2]}"


def _before(v: Version) -> str:
    """The last version before v, as people say it: 1.12.8 -> 1.12.7, 1.18.0 -> 1.17.x."""
    if v[2] > 0:
        return f"{v[0]}.{v[1]}.{v[2] - 1}"
    return f"{v[0]}.{v[1] - 1}.x"
