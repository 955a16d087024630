"""The compiled yes/no checker agrees with jsonschema on every generated schema and on hostile documents."""

from __future__ import annotations

import copy
import json
import math
import os
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
# Seeded examples per property: enough for `make test`; PROPERTY_EXAMPLES=20000 (make fuzz) for a long run.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "300"))


@pytest.mark.parametrize(
    "name",
    [
        "sync-request.schema.json",
        "sync-fleet.schema.json",
        "sync-reconcile.schema.json",
        "cce-upgrade-request.schema.json",
        "path-parameters.schema.json",
    ],
)
def test_every_runtime_schema_compiles(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    assert callable(compile_schema(schema, eager=True))


def test_unknown_keywords_are_refused() -> None:
    with pytest.raises(ValueError, match="anyOf"):
        compile_schema({"anyOf": [{"type": "string"}]})
    with pytest.raises(ValueError, match="anyOf"):
        compile_schema({"$defs": {"A": {"anyOf": []}}}, eager=True)


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


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(document=documents())
def test_fast_check_agrees_with_jsonschema(document: Any) -> None:
    assert FAST(document) is SLOW.is_valid(document)


FLEET = json.loads((SCHEMAS / "sync-fleet.schema.json").read_text())
RECONCILE = json.loads((SCHEMAS / "sync-reconcile.schema.json").read_text())
CONTROL_BASES = [
    {"reconcile": {"clusters": ["c-1", "c-2"], "nodepools": {"all": True}, "max_syncing_per_cluster": 2}},
    {"reconcile": {"clusters": "all", "exclude": ["gpu"], "force": True}, "spec": {"maxUnavailable": 1}},
    {"cluster_id": "c-1", "nodepools": {"names": ["web"]}, "spec": {"maxUnavailable": 1}},
    {"targets": [{"nodepool_id": "np-a", "spec": {"maxUnavailable": 2}}], "dry_run": True},
]
CLUSTERS = st.sampled_from(["all", "All", "", ["c-1"], [], ["../x"], "c-1", 7, None, [["c-1"]], ["c"] * 501])


@st.composite
def control_documents(draw: st.DrawFn) -> Any:
    """Fleet and reconcile documents with a few mutations, the clusters union (oneOf, const) among them."""
    document = copy.deepcopy(draw(st.sampled_from(CONTROL_BASES)))
    if "reconcile" in document and draw(st.booleans()):
        document["reconcile"]["clusters"] = draw(CLUSTERS)
    for _ in range(draw(st.integers(0, 2))):
        inner = document.get("reconcile")
        node = inner if isinstance(inner, dict) and draw(st.booleans()) else document
        key = draw(st.sampled_from([*sorted(node), "extra"]))
        node[key] = draw(VALUES)
    return document


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(document=control_documents())
def test_fast_check_agrees_with_jsonschema_on_fleets_and_reconcile_passes(document: Any) -> None:
    for schema in (FLEET, RECONCILE):
        assert compile_schema(schema)(document) is Draft202012Validator(schema).is_valid(document)
