"""CCE change events: a CTS trace, from FunctionGraph's CTS trigger (`{"cts": {...}}`) or EventGrid's OFFICIAL
channel (source HC.CCE, the trace as `data`), read for where it points.

The trace only says where to look: the reconcile pass reads CCE's state before it acts, so a duplicate or a
misread event costs one read, never a needless sync. Which field names the cluster is not documented (CTS
"Trace Structure", https://support.huaweicloud.com/intl/en-us/usermanual-cts/cts_03_0010.html): the path
`clusters/<id>/nodepools/<id>` is looked for in `resource_url`, `message` and the request; failing that,
`resource_id` names the pool, by its ID or, as in a trace FunctionGraph captured from the console, by its name
(https://github.com/opentelekomcloud-community/otc-functiongraph-python-runtime/blob/main/fg-events/fg-cts-event/resources/cts_fg_create.json:
`"resource_id": "test4"`, the resource's name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from .strictjson import label
from .validation import ID_PATTERN

__all__ = ["TRACES", "Change", "read_trace"]
# CTS trace names of the node pool changes that can leave nodes behind their template (CCE doc cce_10_0025).
TRACES = frozenset({"updateNodePool", "updateConfiguration"})
_ID = ID_PATTERN.pattern
_POOL_PATH = re.compile(rf"clusters/({_ID})/nodepools/({_ID})")
_CLUSTER_PATH = re.compile(rf"clusters/({_ID})(?:[/?,\s]|$)")
_CODE = re.compile(r"[0-9]{1,3}")
# What a successful trace looks like: `code` absent (older samples, e.g. fg-events cts_ecs_creation.json), 0 (the
# captured console trace, cts_fg_create.json: `"code": 0`, trace_type ConsoleAction) or a 2xx (FunctionGraph's
# CTS trigger documentation, functiongraph_01_0209: `"code": 204`); and `trace_rating` absent or normal (CTS's
# ratings: normal, warning, incident).
_GOOD_RATINGS = (None, "normal")


class Change(NamedTuple):
    """What a trace asks for: a reconcile of a cluster (and maybe one pool), or nothing, and why."""

    relevant: bool
    reason: str
    cluster_id: str = ""
    nodepool_id: str = ""


def _texts(trace: Mapping[str, Any]) -> list[str]:
    texts = [trace.get("resource_url"), trace.get("message")]
    request = trace.get("request")
    if isinstance(request, Mapping):
        texts.extend(value for value in request.values() if isinstance(value, str))
    elif isinstance(request, str):
        texts.append(request)
    return [text[:2048] for text in texts if isinstance(text, str)]


def read_trace(trace: Any) -> Change:
    """Whether the trace is a successful node pool change, and which cluster and pool it names."""
    if not isinstance(trace, Mapping):
        return Change(False, "the event holds no CTS trace")
    name = trace.get("trace_name")
    if name not in TRACES:
        return Change(False, f"trace {label(name, 64)!r} is not a node pool change")
    code = trace.get("code")
    text = "" if code is None else str(code).strip()
    if text and not (_CODE.fullmatch(text) and (int(text) == 0 or 200 <= int(text) < 300)):
        return Change(False, f"the traced call did not succeed (code {label(text, 16)!r})")
    rating = trace.get("trace_rating")
    if rating not in _GOOD_RATINGS:
        return Change(False, f"the traced call did not succeed (trace_rating {label(rating, 16)!r})")
    for text in _texts(trace):
        if match := _POOL_PATH.search(text):
            return Change(True, f"{name} of a node pool", match.group(1), match.group(2))
    resource_id = trace.get("resource_id")
    pool_id = resource_id if isinstance(resource_id, str) and ID_PATTERN.fullmatch(resource_id) else ""
    for text in _texts(trace):
        if match := _CLUSTER_PATH.search(text):
            return Change(True, f"{name} in a cluster", match.group(1), pool_id)
    return Change(True, f"{name}; the trace names no cluster", "", pool_id)
