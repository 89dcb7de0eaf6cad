"""`tshoot map dump --filter EXPR`: keep the entries whose decoded fields match.

EXPR is one or more comparisons separated by commas (all must hold; repeating --filter adds more):

    FIELD=VALUE    the field reads VALUE (a list field: one of its items does)   identity=53731
    FIELD!=VALUE   it does not                                                   flags!=skiptunnel
    FIELD~TEXT     TEXT occurs in the field (a list field: in one of its items)  prefix~10.0.
    FIELD<N, FIELD>N, FIELD<=N, FIELD>=N    numeric comparison                   lxc_id>=1000

FIELD is a key or value field as `-o json` shows it (prefix, identity, tunnel_endpoint, …), written
key.FIELD or value.FIELD when both have one by that name, or `node`. A field that is null reads as
`none`. Values are compared as text, so identity=53731 and tunnel_endpoint=172.18.0.5 work as typed.
"""

from __future__ import annotations

from tshoot.core.errors import UsageError

_OPERATORS = ("!=", ">=", "<=", "=", "~", "<", ">")  # two-character operators first


class Term:
    def __init__(self, text: str):
        for op in _OPERATORS:
            field, found, value = text.partition(op)
            if found and field.strip():
                break
        else:
            raise UsageError(f"--filter {text!r}: expected FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT or FIELD<N "
                             f"(e.g. identity=53731, prefix~10.0.)")
        self.text, self.op, self.value = text, op, value.strip()
        self.field = field.strip()
        self.scope, _, name = self.field.rpartition(".")
        self.name = name
        if self.scope not in ("", "key", "value"):
            raise UsageError(f"--filter {text!r}: write key.FIELD or value.FIELD, not {self.field!r}")
        if op in ("<", ">", "<=", ">="):
            try:
                self.number = float(self.value)
            except ValueError:
                raise UsageError(f"--filter {text!r}: {op} compares numbers, {self.value!r} is not one") from None

    def bind(self, key_fields: dict, value_fields: dict):
        """A predicate (key fields, value fields, node) -> bool, knowing where the field lives."""
        if self.name == "node" and not self.scope:
            return self._compare(lambda k, v, node: node)
        in_key, in_value = self.name in key_fields, self.name in value_fields
        if self.scope == "key" or (not self.scope and in_key and not in_value):
            if not in_key:
                raise self._unknown(key_fields, value_fields)
            name = self.name
            return self._compare(lambda k, v, node: k.get(name))
        if self.scope == "value" or (not self.scope and in_value and not in_key):
            if not in_value:
                raise self._unknown(key_fields, value_fields)
            name = self.name
            return self._compare(lambda k, v, node: v.get(name))
        if in_key and in_value:
            raise UsageError(f"--filter {self.text!r}: both key and value have {self.name!r}: write "
                             f"key.{self.name} or value.{self.name}")
        raise self._unknown(key_fields, value_fields)

    def _unknown(self, key_fields: dict, value_fields: dict) -> UsageError:
        known = ", ".join([*key_fields, *value_fields, "node"])
        return UsageError(f"--filter {self.text!r}: no field {self.field!r} in this map (fields: {known})")

    def _compare(self, get):
        op, want = self.op, self.value
        if op in ("=", "!="):
            equal = op == "="
            return lambda k, v, node: _any(get(k, v, node), lambda t: t == want) == equal
        if op == "~":
            return lambda k, v, node: _any(get(k, v, node), lambda t: want in t)
        number = self.number
        compare = {"<": number.__gt__, ">": number.__lt__, "<=": number.__ge__, ">=": number.__le__}[op]
        return lambda k, v, node: _numeric(get(k, v, node), compare)


def _text(value) -> str:
    return "none" if value is None else str(value)


def _any(value, test) -> bool:
    if isinstance(value, list):
        return any(test(_text(item)) for item in value)
    return test(_text(value))


def _numeric(value, compare) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return compare(value)


class Filter:
    """All terms of every --filter; `bind` once on a decoded entry, then call per entry."""

    def __init__(self, expressions: list[str]):
        self.terms = [Term(part) for expr in expressions for part in expr.split(",") if part.strip()]

    def __bool__(self) -> bool:
        return bool(self.terms)

    def bind(self, key_fields: dict, value_fields: dict):
        tests = [term.bind(key_fields, value_fields) for term in self.terms]
        return lambda k, v, node: all(test(k, v, node) for test in tests)
