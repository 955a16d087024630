"""Generate the JSON Schemas (draft 2020-12) in this folder from source/cce-sync-node-pools.yaml.

Run `make schemas` (or `python schemas/generate.py`); `--check` exits 1 when a committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source" / "cce-sync-node-pools.yaml"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://nodepool-sync.local/schemas/"
SCALARS = {"string", "integer", "boolean", "object"}

# Which table constraint becomes which JSON Schema keyword (same name unless listed).
PASSTHROUGH = {"minimum", "maximum", "minLength", "maxLength", "maxItems", "maxProperties", "enum"}


def _merge(*parts: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in (part or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def _apply(target: dict[str, Any], rules: dict[str, Any], patterns: dict[str, Any]) -> None:
    for key, value in rules.items():
        if key == "pattern":
            target["pattern"] = patterns[value]["regex"]
            target["x-messages"] = {"pattern": patterns[value]["says"]}
        elif key == "items":
            _apply(target["items"], value, patterns)
        elif key in PASSTHROUGH:
            target[key] = value
        else:
            raise SystemExit(f"unknown constraint {key!r} in {SOURCE.name}")


def field_schema(field: dict[str, Any], patterns: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any]
    if "one_of" in field:  # a field that takes one of several shapes (e.g. a list of IDs, or "all")
        schema = {"oneOf": [field_schema({"description": "", **alt}, patterns) for alt in field["one_of"]]}
        for alternative in schema["oneOf"]:
            del alternative["description"]
        schema["description"] = field["description"]
        return schema
    kind = field["type"]
    if kind == "const":
        schema = {"const": field["value"]}
    elif kind in SCALARS:
        schema = {"type": kind}
    else:
        schema = _type_schema(kind)
    schema["description"] = field["description"]
    if "default" in field:  # the one statement of a field's default: the function reads it from the schema
        schema["default"] = field["default"]
        schema["description"] += f" (default: {json.dumps(field['default'])})"
    _apply(schema, _merge(field.get("constraints"), field.get("bounds")), patterns)
    return schema


def _type_schema(kind: str) -> dict[str, Any]:
    """A scalar, an object of `$defs`, or `array<...>` of either (nested arrays too)."""
    if kind in SCALARS:
        return {"type": kind}
    if kind.startswith("array<") and kind.endswith(">"):
        return {"type": "array", "items": _type_schema(kind[6:-1])}
    return {"$ref": f"#/$defs/{kind}"}


def object_schema(spec: dict[str, Any], patterns: dict[str, Any], title: str) -> dict[str, Any]:
    fields = spec["fields"]
    schema: dict[str, Any] = {
        "title": title,
        "description": spec["description"],
        "type": "object",
        "properties": {f["name"]: field_schema(f, patterns) for f in fields},
    }
    required = [f["name"] for f in fields if f["mandatory"]]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _defs_reachable(fields: list[dict[str, Any]], objects: dict[str, Any]) -> list[str]:
    """The object names the fields refer to, directly or through other objects."""
    seen: list[str] = []
    stack = [_object_name(f.get("type", "")) for f in fields]
    while stack:
        name = stack.pop()
        if name not in objects or name in seen:
            continue
        seen.append(name)
        stack.extend(_object_name(f.get("type", "")) for f in objects[name]["fields"])
    return sorted(seen)


def _object_name(kind: str) -> str:
    while kind.startswith("array<"):
        kind = kind[6:-1]
    return kind


def document(name: str, body: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": ID_BASE + name, **body, **({"$defs": defs} if defs else {})}


def _schema(name: str, root: dict[str, Any], title: str, source: dict[str, Any]) -> dict[str, Any]:
    patterns, objects = source["patterns"], source["objects"]
    defs = {n: object_schema(objects[n], patterns, n) for n in _defs_reachable(root["fields"], objects)}
    return document(name, object_schema(root, patterns, title), defs)


def render(source: dict[str, Any]) -> dict[str, str]:
    """Return {file name: JSON text} for every generated schema."""
    objects = source["objects"]
    body = objects["UpgradeNodePoolRequestBody"]
    doc = source["document"]
    doc_root = {"description": doc["description"], "fields": objects[doc["extends"]]["fields"] + doc["fields"]}
    headers = {**source["headers"]}
    schemas = {
        "cce-upgrade-request.schema.json": ({**body}, "UpgradeNodePoolRequestBody"),
        "sync-request.schema.json": (doc_root, "SyncRequestDocument"),
        "sync-fleet.schema.json": (source["fleet"], "FleetSyncDocument"),
        "sync-reconcile.schema.json": (source["reconcile"], "ReconcileDocument"),
        "path-parameters.schema.json": (source["path_parameters"], "PathParameters"),
        "request-headers.schema.json": (headers, "RequestHeaders"),
    }
    rendered = {name: _schema(name, root, title, source) for name, (root, title) in schemas.items()}
    # Headers are open-ended (the client adds its own); the table lists only what CCE requires.
    rendered["request-headers.schema.json"]["additionalProperties"] = True
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for name, schema in rendered.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a generated file is out of date")
    args = parser.parse_args(argv)
    rendered = render(yaml.safe_load(SOURCE.read_text(encoding="utf-8")))
    stale = [n for n, text in rendered.items() if not (HERE / n).exists() or (HERE / n).read_text() != text]
    if args.check:
        for name in stale:
            print(f"stale: schemas/{name} (run `make schemas`)", file=sys.stderr)
        return 1 if stale else 0
    for name, text in rendered.items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"{'wrote' if name in stale else 'unchanged'} schemas/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
