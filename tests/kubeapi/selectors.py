"""Label and field selectors with the API server's grammar and semantics.

Label selectors (k8s.io/apimachinery/pkg/labels): `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
`a`, `!a`, `a>3`, `a<3`, comma-separated, all must hold. `!=` and `notin` match objects without the
label. Field selectors: `path=value`, `path==value`, `path!=value` over the fields each resource
supports; any other field is rejected as the real server rejects it.
"""

from __future__ import annotations

import re

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Field selectors every resource supports, and those a few built-ins add (pkg/registry/*/strategy.go).
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
EXTRA_FIELDS = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"),
    "secrets": ("type",),
    "replicasets": ("status.replicas",),
}


class SelectorError(ValueError):
    """The selector does not parse; the server answers 400 BadRequest with this message."""


class LabelSelector:
    def __init__(self, text: str | None):
        self.text = text or ""
        self.requirements = [_parse_requirement(part) for part in _split_top_level(self.text)]

    def matches(self, labels: dict | None) -> bool:
        labels = labels or {}
        return all(_holds(req, labels) for req in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside the parentheses of `in (…)`."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    parts = [p.strip() for p in parts]
    if len(parts) == 1 and not parts[0]:
        return []
    if any(not p for p in parts) or depth != 0:
        raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {text!r}")
    return parts


_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_CMP = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|<|>)\s*(?P<value>\S*)$")


def _parse_requirement(part: str) -> tuple[str, str, tuple[str, ...]]:
    if match := _SET.match(part):
        key, op = match["key"], match["op"]
        values = tuple(v.strip() for v in match["values"].split(","))
        if values == ("",):
            raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty: {part!r}")
    elif match := _CMP.match(part):
        key, op, values = match["key"], match["op"], (match["value"],)
        op = "=" if op == "==" else op
        if op in "<>" and not values[0].lstrip("-").isdigit():
            raise SelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {part!r}")
    elif part.startswith("!"):
        key, op, values = part[1:].strip(), "!", ()
    else:
        key, op, values = part, "exists", ()
    if not _KEY.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}: name part must consist of "
                            f"alphanumeric characters, '-', '_' or '.'")
    for value in values:
        if op not in "<>" and not _VALUE.match(value):
            raise SelectorError(f"unable to parse requirement: invalid label value: {value!r}")
    return key, op, values


def _holds(req, labels: dict) -> bool:
    key, op, values = req
    present = key in labels
    value = labels.get(key)
    if op == "exists":
        return present
    if op == "!":
        return not present
    if op in ("=", "in"):
        return present and value in values
    if op in ("!=", "notin"):
        return not present or value not in values
    if not present or not str(value).lstrip("-").isdigit():
        return False
    return int(value) > int(values[0]) if op == ">" else int(value) < int(values[0])


class FieldSelector:
    def __init__(self, text: str | None, resource: str, allowed: tuple[str, ...]):
        self.text = text or ""
        self.requirements = []
        for part in (p for p in _split_escaped(self.text) if p):
            match = re.match(r"^(?P<field>[^=!]+?)\s*(?P<op>==|=|!=)\s*(?P<value>.*)$", part)
            if not match:
                raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
            field = match["field"].strip()
            if field not in allowed:
                raise SelectorError(f'field label not supported: {field}')
            self.requirements.append((field, match["op"] != "!=", _unescape(match["value"])))

    def matches(self, obj: dict) -> bool:
        return all((_field_value(obj, field) == value) == equal for field, equal, value in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def _split_escaped(text: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _field_value(obj: dict, path: str) -> str:
    """Field values compare as the server's field sets hold them: strings, booleans as "true"/"false"."""
    value = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "false" if path in ("spec.unschedulable", "spec.hostNetwork") else ""
    if path == "source" and isinstance(value, dict):
        return value.get("component", "")
    return str(value)


def allowed_fields(resource: str) -> tuple[str, ...]:
    return COMMON_FIELDS + EXTRA_FIELDS.get(resource, ())
