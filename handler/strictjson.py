"""JSON as the function accepts it from anyone: strict parsing, and a bounded shape for any value it will touch.

Strict: no duplicate keys, no NaN/Infinity, no number too large for a float (`1e400`), valid UTF-8, no lone
surrogates (they make a document that cannot be answered or logged). Bounded: at most MAX_DEPTH levels,
MAX_VALUES values and MAX_TEXT characters, checked without recursion, so the work per request (and what a dry
run or an error can echo) stays small whatever arrives.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_TEXT", "MAX_VALUES", "encodable", "label", "loads", "problem"]

MAX_DEPTH = 32  # the deepest legitimate document (fleet > target > spec > nodeTemplate > login ...) has 7
MAX_VALUES = 20_000  # room for nodeIDs and skippedNodes at their 2,000-item maximum, and far less than 6 MB
MAX_TEXT = 512 * 1024  # characters in all strings and keys: 2 x 2,000 node IDs of 128, two 10 KB scripts, ...
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("a key appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("a number is too large")
    return number


def loads(text: str | bytes) -> Any:
    """Parse strict JSON and check its shape; ValueError (or UnicodeDecodeError) says what is wrong."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels") from None
    found = problem(value)
    if found:
        raise ValueError(f"it {found}")
    return value


def problem(value: Any) -> str:
    """What makes a parsed value unacceptable, as a predicate ("is nested deeper than 32 levels"), or ""."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    count = text = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return f"has more than {MAX_VALUES} values"
        if isinstance(item, str):
            text += len(item)
            if text > MAX_TEXT:
                return f"holds more than {MAX_TEXT} characters of text"
            if _SURROGATE.search(item):
                return "holds a lone surrogate, which is not valid Unicode"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "holds a number that is not finite"
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"is nested deeper than {MAX_DEPTH} levels"
            if count + len(stack) + len(item) > MAX_VALUES:
                return f"has more than {MAX_VALUES} values"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str) or _SURROGATE.search(key):
                        return "has a key that is not a valid string"
                    text += len(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return ""


def encodable(value: Any) -> Any:
    """A copy of a parsed value with every lone surrogate (in strings and keys) replaced by "?", so that whatever
    came from a server can be answered and logged; iterative, whatever the depth."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, key, item = stack.pop()
        if isinstance(item, str):
            parent[key] = _SURROGATE.sub("?", item)
        elif isinstance(item, dict):
            copy: dict[str, Any] = {}
            for name, child in item.items():
                fixed = _SURROGATE.sub("?", name) if isinstance(name, str) else name
                copy[fixed] = child
                stack.append((copy, fixed, child))
            parent[key] = copy
        elif isinstance(item, list):
            items = list(item)
            parent[key] = items
            stack.extend((items, index, child) for index, child in enumerate(items))
    return root[0]


def label(value: object, length: int = 128) -> str:
    """An identifier from outside (an event id, a request id) fit to echo in answers and log lines: a string of
    at most `length` characters, lone surrogates replaced; anything that is not a string is ""."""
    if not isinstance(value, str):
        return ""
    return _SURROGATE.sub("?", value[:length])
