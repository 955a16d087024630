"""The compiled yes/no checker agrees with jsonschema on every generated schema and on hostile documents."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from handler.fastschema import compile_schema
from tests.test_validation import FULL, PAGE_EXAMPLE_NODES, PAGE_EXAMPLE_TEMPLATE

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
DOCUMENT = json.loads((SCHEMAS / "sync-request.schema.json").read_text())
FAST, SLOW = compile_schema(DOCUMENT), Draft202012Validator(DOCUMENT)


@pytest.mark.parametrize(
    "name", ["sync-request.schema.json", "cce-upgrade-request.schema.json", "path-parameters.schema.json"]
)
def test_every_runtime_schema_compiles(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    assert callable(compile_schema(schema))


def test_unknown_keywords_are_refused() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        compile_schema({"oneOf": [{"type": "string"}]})


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-25, 25)
    | st.sampled_from([1.0, 1.5, 20.0, 21.0, math.nan, math.inf, 10**400, "", "ZWNobyAx", "ZWNobyAx\n", "x" * 300])
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
BASES = [PAGE_EXAMPLE_NODES, PAGE_EXAMPLE_TEMPLATE, FULL]


@st.composite
def documents(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 3))):
        node, path = document, []
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            path.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if isinstance(node, dict):
            key = draw(st.sampled_from([*sorted(node), "extra"])) if node else "extra"
            if draw(st.booleans()) and key in node:
                del node[key]
            else:
                node[key] = draw(VALUES)
    return document


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(document=documents())
def test_fast_check_agrees_with_jsonschema(document: Any) -> None:
    assert FAST(document) is SLOW.is_valid(document)
