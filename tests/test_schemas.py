"""The generated JSON Schemas: up to date, valid, and covering every row of the reference's tables."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
SOURCE = yaml.safe_load((SCHEMAS / "source" / "cce-sync-node-pools.yaml").read_text())
REFERENCE = (SCHEMAS / "source" / "reference.md").read_text()


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate", SCHEMAS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDERED = _generator().render(SOURCE)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_committed_schema_matches_the_generator(name: str) -> None:
    """A schema edited by hand, or a source changed without `make schemas`, fails here."""
    assert (SCHEMAS / name).read_text() == RENDERED[name]


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_generated_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads(RENDERED[name])
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _reference_rows() -> list[tuple[str, str]]:
    """(table heading, first cell) for every row of every table in the reference."""
    rows, heading = [], ""
    for line in REFERENCE.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
        elif line.startswith("| ") and not line.startswith("|---"):
            cell = line.split("|")[1].strip()
            if cell not in ("Parameter", "Path parameter", "Header"):
                rows.append((heading, cell))
    return rows


def _sdk_additions() -> list[str]:
    """Every field named in a [current SDK] note of the reference."""
    names: list[str] = []
    for line in REFERENCE.splitlines():
        if "[current SDK]** also" in line or "the body may also carry" in line:
            names += re.findall(r"`([A-Za-z]+)`", line)
    return [n for n in names if n not in ("NodePool", "v3")]


def _all_properties() -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for text in RENDERED.values():
        walk(json.loads(text))
    return found


def test_reference_table_rows_are_found() -> None:
    """Guards the coverage test below: it must see the tables it claims to check."""
    assert len(_reference_rows()) >= 17


@pytest.mark.parametrize(("table", "row"), _reference_rows())
def test_every_reference_table_row_is_in_a_generated_schema(table: str, row: str) -> None:
    # The table spells the template's lifecycle field `lifecycle`; the wire name (and the schema's) is lifeCycle.
    assert ("lifeCycle" if row == "lifecycle" else row) in _all_properties(), f"{table}: {row}"


@pytest.mark.parametrize("name", _sdk_additions())
def test_every_current_sdk_field_is_in_the_schema(name: str) -> None:
    assert name in _all_properties()


def _field(obj: str, name: str) -> dict[str, Any]:
    body = json.loads(RENDERED["cce-upgrade-request.schema.json"])
    schema: dict[str, Any] = body["$defs"][obj]["properties"][name]
    return schema


@pytest.mark.parametrize(
    ("obj", "name", "expected"),
    [
        ("UpgradeNodePoolSpec", "maxUnavailable", {"type": "integer", "minimum": 1, "maximum": 20}),
        ("UpgradeNodePoolSpec", "nodeIDs", {"type": "array"}),
        ("NodeLifecycleConfig", "preInstall", {"maxLength": 10240}),
        ("NodeLifecycleConfig", "postInstall", {"maxLength": 10240}),
    ],
)
def test_reference_constraints_are_in_the_schema(obj: str, name: str, expected: dict[str, Any]) -> None:
    assert expected.items() <= _field(obj, name).items()


@pytest.mark.parametrize(
    ("obj", "required"),
    [
        ("UpgradeNodePoolSpec", ["maxUnavailable", "nodePoolID"]),
        ("UpgradeNodePoolSpecNodeTemplate", ["lifeCycle", "login"]),
        ("UserPassword", ["password"]),
    ],
)
def test_mandatory_fields_are_required(obj: str, required: list[str]) -> None:
    body = json.loads(RENDERED["cce-upgrade-request.schema.json"])
    assert body["$defs"][obj]["required"] == required


def test_descriptions_come_from_the_tables() -> None:
    assert _field("UpgradeNodePoolSpec", "maxUnavailable")["description"].startswith("Max nodes synchronized")
    assert "items" in _field("UpgradeNodePoolSpec", "nodeIDs") and _field("UpgradeNodePoolSpec", "nodeIDs")[
        "items"
    ] == {"type": "string", "minLength": 1, "maxLength": 128}


def test_document_schema_adds_target_and_control_fields() -> None:
    document = json.loads(RENDERED["sync-request.schema.json"])
    assert {"project_id", "cluster_id", "nodepool_id", "dry_run"} <= document["properties"].keys()
    assert document["properties"]["dry_run"]["type"] == "boolean"
    assert document["additionalProperties"] is False
