"""template.yaml: load and validate it, make sample events from it, render it into Terraform JSON."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SCHEMA = ROOT / "schemas" / "template.schema.json"
RESOURCE = "nodepool_sync"
SECRET_VARIABLES = {
    "HUAWEICLOUD_AUTH_TOKEN": "huaweicloud_auth_token",
    "HUAWEICLOUD_IAM_PASSWORD": "huaweicloud_iam_password",
    "HUAWEICLOUD_SDK_SK": "huaweicloud_sdk_sk",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN": "huaweicloud_sdk_security_token",
    "NODE_LOGIN_PASSWORD": "node_login_password",
}


class TemplateError(Exception):
    """template.yaml is missing, not YAML, or does not match its schema."""


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template, validated against schemas/template.schema.json."""
    try:
        template = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: {exc}") from None
    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = sorted(validator.iter_errors(template), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
        raise TemplateError(f"{path} is not valid:\n" + "\n".join(lines))
    result: dict[str, Any] = template
    return result


def python_version(template: dict[str, Any]) -> str:
    """'3.12' for runtime Python3.12."""
    return str(template["function"]["runtime"]).removeprefix("Python")


def route_pattern(template: dict[str, Any]) -> re.Pattern[str]:
    """The API Gateway route as a regex with one named group per {parameter}."""
    path = template["triggers"]["apig"]["path"]
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def document(cluster: str | None, nodepool: str | None, spec: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if cluster:
        doc["cluster_id"] = cluster
    if nodepool:
        doc["nodepool_id"] = nodepool
    if spec is not None:
        doc["spec"] = spec
    return doc


def timer_event(template: dict[str, Any], doc: dict[str, Any] | None = None) -> dict[str, Any]:
    timer = template["triggers"]["timer"]
    return {
        "version": "v1.0",
        "time": _now(),
        "trigger_type": "TIMER",
        "trigger_name": timer["name"],
        "user_event": json.dumps(doc) if doc else timer.get("user_event", ""),
    }


def eventgrid_event(template: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    eventgrid = template["triggers"]["eventgrid"]
    return {
        "id": str(uuid.uuid4()),
        "specversion": "1.0",
        "source": eventgrid["source_name"],
        "type": eventgrid["event_types"][0],
        "datacontenttype": "application/json",
        "subject": doc.get("nodepool_id", "nodepool"),
        "time": _now(),
        "data": doc,
    }


def apig_event(
    template: dict[str, Any],
    body: bytes,
    path_parameters: dict[str, str],
    method: str = "POST",
    headers: dict[str, str] | None = None,
    path: str | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway event as FunctionGraph delivers it: Base64 body, lower-case header names."""
    route = template["triggers"]["apig"]["path"]
    if path is None:
        path = route.format(**{k: path_parameters.get(k, k) for k in re.findall(r"\{(\w+)\}", route)})
    return {
        "body": base64.b64encode(body).decode("ascii"),
        "requestContext": {"apiId": "local", "requestId": uuid.uuid4().hex, "stage": "RELEASE"},
        "queryStringParameters": query or {},
        "httpMethod": method,
        "pathParameters": path_parameters,
        "headers": {
            k.lower(): v
            for k, v in (headers or {"content-type": "application/json", "user-agent": "nodepool-sync-local"}).items()
        },
        "path": path,
        "isBase64Encoded": True,
    }


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "nodepool-sync/" + "/".join(parts)))


def render_terraform(template: dict[str, Any], zip_path: str = "../dist/nodepool-sync.zip") -> dict[str, Any]:
    """The Terraform JSON configuration (huaweicloud provider) for the function and its three triggers."""
    function, triggers = template["function"], template["triggers"]
    urn = f"${{huaweicloud_fgs_function.{RESOURCE}.urn}}"
    secrets = function.get("secret_environment", [])
    variables: dict[str, Any] = {
        "function_zip": {"type": "string", "default": zip_path, "description": "the zip from make package"},
        "apig_group_id": {"type": "string", "description": "API Gateway group of the sync API"},
        "eg_channel_id": {"type": "string", "description": "EventGrid channel the sync events arrive on"},
    }
    for name in secrets:
        variables[SECRET_VARIABLES[name]] = {"type": "string", "sensitive": True, "description": f"value of {name}"}
    fgs: dict[str, Any] = {
        "name": function["name"],
        "app": function["app"],
        "description": function.get("description", ""),
        "runtime": function["runtime"],
        "handler": function["handler"],
        "memory_size": function["memory_size"],
        "timeout": function["timeout"],
        "agency": function["agency"],
        "app_agency": function["agency"],
        "code_type": "zip",
        "code_filename": "nodepool-sync.zip",
        "func_code": "${filebase64(var.function_zip)}",
        "user_data": json.dumps(function.get("environment", {}), sort_keys=True),
    }
    if secrets:
        pairs = ", ".join(f'"{name}" = var.{SECRET_VARIABLES[name]}' for name in secrets)
        fgs["encrypted_user_data"] = f"${{jsonencode({{{pairs}}})}}"
    if "initializer" in function:
        fgs["initializer_handler"] = function["initializer"]
        fgs["initializer_timeout"] = function.get("initializer_timeout", 30)
    if "max_instance_num" in function:
        fgs["max_instance_num"] = function["max_instance_num"]

    timer, apig, eventgrid = triggers["timer"], triggers["apig"], triggers["eventgrid"]
    timer_data = {k: timer[k] for k in ("name", "schedule_type", "schedule")}
    timer_data["user_event"] = timer.get("user_event", "")
    apig_data = {
        "name": apig["name"],
        "group_id": apig["group_id"],
        "env_name": apig["env_name"],
        "env_id": apig["env_id"],
        "auth": apig["auth"].upper(),
        "protocol": apig.get("protocol", "HTTPS"),
        "path": apig["path"],
        "req_method": apig["method"],
        "match_mode": "NORMAL",
        "backend_type": "FUNCTION",
        "type": 1,
        "func_info": {"timeout": apig.get("timeout_ms", 5000)},
    }
    filter_rule = {
        "source": [{"op": "StringIn", "values": [eventgrid["source_name"]]}],
        "type": [{"op": "StringIn", "values": eventgrid["event_types"]}],
    }
    subscription = {
        "channel_id": eventgrid["channel_id"],
        "name": eventgrid["name"],
        "sources": [
            {
                "id": _stable_id("source", eventgrid["name"]),
                "provider_type": eventgrid["source_provider_type"],
                "name": eventgrid["source_name"],
                "filter_rule": json.dumps(filter_rule),
            }
        ],
        "targets": [
            {
                "id": _stable_id("target", eventgrid["name"]),
                "provider_type": "OFFICIAL",
                "name": "HC.FunctionGraph",
                "detail_name": "detail",
                "detail": json.dumps(
                    {"urn": urn, "agency_name": function["agency"], "invoke_type": eventgrid.get("invoke_type", "SYNC")}
                ),
                "transform": json.dumps({"type": "ORIGINAL"}),
            }
        ],
    }
    return {
        "terraform": {
            "required_providers": {"huaweicloud": {"source": "huaweicloud/huaweicloud", "version": ">= 1.60.0"}}
        },
        "variable": variables,
        "resource": {
            "huaweicloud_fgs_function": {RESOURCE: fgs},
            "huaweicloud_fgs_function_trigger": {
                "timer": {
                    "function_urn": urn,
                    "type": "TIMER",
                    "status": "ACTIVE",
                    "event_data": json.dumps(timer_data),
                },
                "apig": {"function_urn": urn, "type": "APIG", "status": "ACTIVE", "event_data": json.dumps(apig_data)},
            },
            "huaweicloud_eg_event_subscription": {"sync_requests": subscription},
        },
        "output": {"function_urn": {"value": urn}},
    }
