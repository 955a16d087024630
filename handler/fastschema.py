"""A JSON Schema compiled into nested closures that only answer "valid or not", for the hot path.

It handles the keywords the generated schemas use, with jsonschema's semantics, and refuses any other
keyword when compiling. It must never call a document valid that jsonschema rejects (a property test checks
that); when it says "not valid", the caller asks jsonschema for the full, explained errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "compile_schema"]

Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "x-messages"})


def _is_integer(value: Any) -> bool:
    return (type(value) is int) or (type(value) is float and value.is_integer())


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


_TYPES: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "integer": _is_integer,
    "number": _is_number,
    "null": lambda v: v is None,
}


def _all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def every(value: Any) -> bool:
        for check in checks:
            if not check(value):
                return False
        return True

    return every


def _properties(properties: Mapping[str, Check]) -> Check:
    items = tuple(properties.items())

    def check(value: Any) -> bool:
        if type(value) is dict:
            for name, sub in items:
                if name in value and not sub(value[name]):
                    return False
        return True

    return check


def _items(sub: Check) -> Check:
    def check(value: Any) -> bool:
        if type(value) is list:
            for item in value:
                if not sub(item):
                    return False
        return True

    return check


def _only(allowed: frozenset[str]) -> Check:
    return lambda v: type(v) is not dict or allowed.issuperset(v)


def _keyword(key: str, value: Any, build: Callable[[Any], Check], refs: dict[str, Check]) -> Check:
    if key == "type":
        return _TYPES[value]
    if key == "$ref":
        name = value.removeprefix("#/$defs/")
        return lambda v: refs[name](v)  # noqa: PLW0108 - late bound: compiled when first needed
    if key == "properties":
        return _properties({name: build(sub) for name, sub in value.items()})
    if key == "required":
        names = tuple(value)
        return lambda v: type(v) is not dict or all(n in v for n in names)
    if key == "items":
        return _items(build(value))
    if key == "minimum":
        return lambda v: not _is_number(v) or not v < value
    if key == "maximum":
        return lambda v: not _is_number(v) or not v > value
    if key == "minLength":
        return lambda v: type(v) is not str or len(v) >= value
    if key == "maxLength":
        return lambda v: type(v) is not str or len(v) <= value
    if key == "maxItems":
        return lambda v: type(v) is not list or len(v) <= value
    if key == "maxProperties":
        return lambda v: type(v) is not dict or len(v) <= value
    if key == "pattern":
        search = re.compile(value).search
        return lambda v: type(v) is not str or search(v) is not None
    if key == "enum" and all(type(e) is str for e in value):
        allowed = frozenset(value)
        return lambda v: type(v) is str and v in allowed
    if key == "const" and type(value) is str:
        return lambda v: type(v) is str and v == value
    if key == "oneOf":
        alternatives = [build(sub) for sub in value]
        return lambda v: sum(1 for alternative in alternatives if alternative(v)) == 1
    raise ValueError(f"fastschema cannot compile the keyword {key!r}")


def compile_schema(schema: Mapping[str, Any], eager: bool = False) -> Check:
    """A function that is True exactly for the instances jsonschema finds valid (for the keywords handled).

    Definitions compile on first use unless `eager` (the tests compile everything, so a keyword fastschema
    cannot handle is found there, not by a document)."""

    def build(node: Mapping[str, Any]) -> Check:
        checks: list[Check] = []
        for key, value in node.items():
            if key in _ANNOTATIONS:
                continue
            if key == "additionalProperties":
                if value is not False:
                    raise ValueError("fastschema compiles only additionalProperties: false")
                checks.append(_only(frozenset(node.get("properties", {}))))
                continue
            checks.append(_keyword(key, value, build, refs))
        return _all(checks) if checks else (lambda v: True)

    class _Definitions(dict[str, Check]):
        """Each $defs entry compiled on first use: a document that never reaches one never pays for it."""

        def __missing__(self, name: str) -> Check:
            check = self[name] = build(definitions[name])
            return check

    definitions = schema.get("$defs", {})
    refs = _Definitions()
    if eager:
        for name in definitions:
            refs[name] = build(definitions[name])
    return build(schema)
