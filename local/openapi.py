"""`make openapi`: the API Gateway routes as an OpenAPI 3.0 document, made from the same generated JSON Schemas
the function validates with, so the gateway, the docs and the function never disagree.

OpenAPI 3.0 (what API Gateway imports) takes a subset of JSON Schema: `$defs` become `components.schemas` (and
their `$ref`s follow), `const` becomes a one-value `enum`, `$schema`/`$id` go. `to_openapi` and `from_openapi`
are each other's inverse on the generated schemas, which a test checks.
"""

from __future__ import annotations

import json
from typing import Any

from handler import __version__
from handler.validation import SCHEMA_DIR

__all__ = ["describe", "from_openapi", "to_openapi"]

_COMPONENTS = "#/components/schemas/"
_DEFS = "#/$defs/"


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return schema


def _convert(node: Any, ref_from: str, ref_to: str, const_to_enum: bool) -> Any:
    if isinstance(node, list):
        return [_convert(item, ref_from, ref_to, const_to_enum) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(ref_from):
            converted[key] = ref_to + value[len(ref_from) :]
        elif key == "const" and const_to_enum:
            converted["enum"] = [value]
        elif (
            key == "enum" and not const_to_enum and isinstance(value, list) and len(value) == 1 and node.get("x-const")
        ):
            converted["const"] = value[0]
        elif key == "x-const" and not const_to_enum:
            continue
        else:
            converted[key] = _convert(value, ref_from, ref_to, const_to_enum)
    if const_to_enum and "const" in node:
        converted["x-const"] = True  # remembers it was a const, for the way back
    return converted


def to_openapi(schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A generated JSON Schema as OpenAPI 3.0 wants it: (the root schema, the components it refers to)."""
    body = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
    components = {name: _convert(d, _DEFS, _COMPONENTS, True) for name, d in schema.get("$defs", {}).items()}
    return _convert(body, _DEFS, _COMPONENTS, True), components


def from_openapi(root: dict[str, Any], components: dict[str, Any], name: str) -> dict[str, Any]:
    """The JSON Schema a description's root and components stand for (the inverse of to_openapi)."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://nodepool-sync.local/schemas/{name}",
        **_convert(root, _COMPONENTS, _DEFS, False),
    }
    if components:
        schema["$defs"] = {key: _convert(value, _COMPONENTS, _DEFS, False) for key, value in components.items()}
    return schema


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _COMPONENTS + "Error"}}}}


def describe(template: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the template's API Gateway routes (POST sync, GET status)."""
    apig = template["triggers"]["apig"]
    request, components = to_openapi(_schema("sync-request.schema.json"))
    path_schema = _schema("path-parameters.schema.json")["properties"]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": to_openapi(path_schema[name])[0]}
        for name in ("cluster_id", "nodepool_id")
    ]
    object_schema = {"type": "object", "additionalProperties": True}
    components = {
        **components,
        "SyncRequestDocument": request,
        "Answer": {**object_schema, "description": "the function's answer (README: Answers)"},
        "Error": {
            "type": "object",
            "properties": {
                "error_code": {"type": "string"},
                "error_msg": {"type": "string"},
                "request_id": {"type": "string", "description": "API Gateway's request id (X-Correlation-Id)"},
                "errors": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["error_code", "error_msg"],
        },
    }
    answer = {"content": {"application/json": {"schema": {"$ref": _COMPONENTS + "Answer"}}}}
    operations: dict[str, Any] = {
        "parameters": parameters,
        "post": {
            "operationId": "syncNodePool",
            "summary": "Sync the node pool's nodes with its template (CCE UpgradeNodePool)",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"$ref": _COMPONENTS + "SyncRequestDocument"}}},
            },
            "responses": {
                "200": {"description": "accepted, in sync, succeeded or a dry run", **answer},
                "202": {"description": "with wait: the job still runs", **answer},
                "400": _error_response("invalid request"),
                "403": _error_response("outside SYNC_ALLOWED_TARGETS"),
                "409": _error_response("skipped: a sync is in progress"),
                "502": _error_response("CCE or IAM failed, or the outcome is ambiguous"),
            },
        },
    }
    if "status_name" in apig:
        operations["get"] = {
            "operationId": "getNodePoolSyncStatus",
            "summary": "How the node pool's sync is going: syncing or idle, the latest job, progress",
            "responses": {
                "200": {"description": "the pool's sync status", **answer},
                "403": _error_response("outside SYNC_ALLOWED_TARGETS"),
            },
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": template["function"]["name"],
            "version": __version__,
            "description": template["function"].get("description", ""),
        },
        "paths": {apig["path"]: operations},
        "components": {
            "schemas": components,
            "securitySchemes": {"IAM": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
        },
        "security": [{"IAM": []}] if apig["auth"] == "IAM" else [],
    }
