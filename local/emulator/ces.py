"""Cloud Eye's CreateMetricData as the emulator serves it: every rule the API reference states is checked (as
Cloud Eye would refuse the request) and each point is kept, with the region and project it was sent to.

`POST /V1.0/{project_id}/metric-data`, a JSON list of CreateMetricDataRequestBody; 201 without a body
(huaweicloudsdkces v1, model/create_metric_data_request_body.py, metric_info.py, metrics_dimension.py)."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from .records import Recorded

if TYPE_CHECKING:
    from .core import Emulator

__all__ = ["metric_data", "problem"]

MAX_BODY = 512 * 1024
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*")
_METRIC = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,95}")  # MetricInfo.metric_name: [1,96]
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _item_problem(item: Any, now_ms: float) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
        return "each item needs a metric"
    metric = item["metric"]
    namespace = metric.get("namespace")
    if not (isinstance(namespace, str) and 3 <= len(namespace) <= 32 and _NAMESPACE.fullmatch(namespace)):
        return "metric.namespace must be service.item, 3 to 32 characters"
    if namespace.upper().startswith(("SYS", "AGT", "SRE")):
        return "metric.namespace must not start with SYS, AGT or SRE"
    if not (isinstance(metric.get("metric_name"), str) and _METRIC.fullmatch(metric["metric_name"])):
        return "metric.metric_name is not valid"
    dimensions = metric.get("dimensions")
    if not (isinstance(dimensions, list) and 1 <= len(dimensions) <= 4):  # MetricInfo.dimensions: [1,4]
        return "metric.dimensions must hold 1 to 4 dimensions"
    for dimension in dimensions:
        if not (isinstance(dimension, dict) and set(dimension) == {"name", "value"}):
            return "each dimension is a name and a value"
        if not (isinstance(dimension["name"], str) and _NAME.fullmatch(dimension["name"])):
            return "a dimension's name is not valid"
        if not (isinstance(dimension["value"], str) and _VALUE.fullmatch(dimension["value"])):
            return "a dimension's value is not valid"
    ttl = item.get("ttl")
    if not (isinstance(ttl, int) and not isinstance(ttl, bool) and 1 <= ttl <= 604800):
        return "ttl must be 1 to 604800"
    collect = item.get("collect_time")
    # CreateMetricDataRequestBody.collect_time: within [now - 3 days + 10 s, now + 10 min - 10 s], milliseconds.
    if not (isinstance(collect, int) and now_ms - 3 * 86400_000 + 10_000 <= collect <= now_ms + 590_000):
        return "collect_time must be milliseconds within the last 3 days (and at most 10 minutes ahead)"
    if not isinstance(item.get("value"), (int, float)) or isinstance(item.get("value"), bool):
        return "value must be a number"
    if not isinstance(item.get("unit", ""), str) or len(item.get("unit", "")) > 32:
        return "unit is at most 32 characters"
    if item.get("type", "int") not in ("int", "float"):
        return "type is int or float"
    return ""


def problem(body: Any, size: int, now_ms: float) -> str:
    """Why Cloud Eye would refuse this body ("" when it takes it)."""
    if size > MAX_BODY:
        return "the request is larger than 512 KB"
    if not isinstance(body, list) or not body:
        return "the body must be a non-empty JSON list"
    for item in body:
        found = _item_problem(item, now_ms)
        if found:
            return found
    return ""


def metric_data(emulator: Emulator, request: Recorded, project_id: str) -> tuple[int, Any]:
    """Keep every point of a valid request (201, no body); a 400 naming the first broken rule otherwise."""
    try:
        body = request.json if request.body else None
    except ValueError:
        body = None
    found = problem(body, len(request.body), time.time() * 1000)
    if found:
        return 400, {"error_code": "ces.0014", "error_msg": found}
    received = time.time()
    assert isinstance(body, list)  # problem() found none
    with emulator.lock:
        for item in body:
            emulator.metric_data.append(
                {"region": request.region, "project_id": project_id, "received": received, **item}
            )
    return 201, None
