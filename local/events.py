"""Events as the platform delivers them, made locally: CCE's CTS traces (a CTS trigger's event, or the same trace
as an EventGrid cloud event), and the function's trigger events made from template.yaml (timer, EventGrid, API
Gateway). Shapes from the platform's captured events (tests/events/README.md)."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

__all__ = ["apig_event", "cloud_event", "cts_trace", "document", "eventgrid_event", "timer_event"]


def cts_trace(
    project_id: str,
    cluster_id: str,
    pool_id: str,
    name: str,
    trace_name: str = "updateNodePool",
    code: int = 200,
    console: bool = False,
) -> dict[str, Any]:
    """The CTS trace CCE records for an operation on a node pool, as FunctionGraph's CTS trigger delivers it.

    Field names and kinds from CTS's documented and captured traces (CTS "Trace Structure", cts_03_0010;
    tests/events/README.md): `code` is a number. An API call's trace carries the path in `resource_url` and
    `message`; a console action's (`console=True`) has `code` 0, no `resource_url`, a message without a path
    and, as captured, the resource's name as `resource_id`."""
    now = int(time.time() * 1000)
    path = f"/api/v3/projects/{project_id}/clusters/{cluster_id}/nodepools/{pool_id}"
    trace: dict[str, Any] = {
        "trace_id": str(uuid.uuid4()),
        "trace_name": trace_name,
        "trace_type": "ConsoleAction" if console else "ApiCall",
        "trace_rating": "normal",
        "trace_status": "normal",
        "service_type": "CCE",
        "resource_type": "nodepool",
        "resource_id": name if console else pool_id,
        "resource_name": name,
        "message": f"update node pool[{name}]" if console else f"PUT {path}, code {code}",
        "code": 0 if console else code,
        "request": {},
        "response": {},
        "user": {"name": "ops-admin", "id": "c0ffee", "domain": {"name": "acme", "id": "d0main"}},
        "source_ip": "203.0.113.9",
        "time": now,
        "record_time": now,
        "project_id": project_id,
        "api_version": "v3",
        "request_id": uuid.uuid4().hex,
    }
    if not console:
        trace["resource_url"] = path
    return {"cts": trace}


def cloud_event(trace: dict[str, Any]) -> dict[str, Any]:
    """The same trace as EventGrid delivers a cloud-service event from its OFFICIAL channel."""
    return {
        "id": str(uuid.uuid4()),
        "specversion": "1.0",
        "source": "HC.CCE",
        "type": "CCE:CloudTrace:ApiCall",
        "datacontenttype": "application/json",
        "subject": trace["cts"]["resource_name"],
        "time": _now(),
        "data": trace["cts"],
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def document(cluster: str | None, nodepool: str | None, spec: dict[str, Any] | None) -> dict[str, Any]:
    """A sync document with what is given."""
    doc: dict[str, Any] = {}
    if cluster:
        doc["cluster_id"] = cluster
    if nodepool:
        doc["nodepool_id"] = nodepool
    if spec is not None:
        doc["spec"] = spec
    return doc


def timer_event(template: dict[str, Any], doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template's timer firing (its own user_event, unless a document is given)."""
    timer = template["triggers"]["timer"]
    return {
        "version": "v1.0",
        "time": _now(),
        "trigger_type": "TIMER",
        "trigger_name": timer["name"],
        "user_event": json.dumps(doc) if doc else timer.get("user_event", ""),
    }


def eventgrid_event(template: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A document as the template's EventGrid subscription delivers it (a CloudEvent from its custom source)."""
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
