"""Recognise the trigger behind an event and unwrap it into sync request documents."""

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from . import strictjson
from .errors import EventError, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType, kind_of
from .model import TIMER_PASS, Target, Trigger, Unwrapped
from .passwords import mask_body
from .validation import document_keys

__all__ = [
    "CCE_SOURCE",
    "Trigger",
    "Unwrapped",
    "apig_request_id",
    "not_a_cloudevent",
    "parse_json",
    "recognize",
    "unwrap",
    "unwrap_batch",
]

CCE_SOURCE = "HC.CCE"  # EventGrid's source for CCE's cloud-service events (by analogy with HC.VPC; unverified)

EXPECTED = (
    "expected a timer event (trigger_type TIMER), an EventGrid CloudEvent (specversion), "
    "an API Gateway request (httpMethod), a CTS trace (cts) or a sync, fleet or reconcile document"
)


def parse_json(text: str | bytes, what: str) -> Any:
    """Strict, bounded JSON (see strictjson); errors say what was being read, never what it held."""
    try:
        return strictjson.loads(text)
    except UnicodeDecodeError:
        raise EventError(f"{what} is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise EventError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # strictjson's own messages say what is wrong, never echoing the input
        raise EventError(f"{what} is not acceptable JSON: {str(exc)[:120]}") from None


def recognize(event: object) -> Trigger:
    """Name the trigger kind of an event, or raise EventError saying what was expected."""
    if not isinstance(event, dict):
        raise EventError(f"the event is a {type(event).__name__}; {EXPECTED}")
    if "httpMethod" in event:
        return Trigger.APIG
    if event.get("trigger_type") == "TIMER":
        return Trigger.TIMER
    if "specversion" in event:
        return Trigger.EVENTGRID
    if isinstance(event.get("cts"), dict):
        return Trigger.CTS
    if isinstance(event.get("events"), list) and len(event) == 1:
        return Trigger.EVENTGRID_BATCH
    if not document_keys().isdisjoint(event):
        return Trigger.DIRECT
    raise EventError(f"the event has none of the expected shapes; {EXPECTED}")


def _object(value: Any, what: str, parsed_here: bool = False) -> dict[str, Any]:
    """The sync request document; one that arrived already parsed (direct calls, EventGrid objects) meets the
    bounds strict parsing applies (strictjson.problem)."""
    if not isinstance(value, dict):
        raise EventError(f"{what} must be a JSON object (a sync request document), not {kind_of(value)}")
    found = "" if parsed_here else strictjson.problem(value)
    if found:
        raise EventError(f"{what} is not acceptable: it {found}")
    return value


def _timer(event: dict[str, Any]) -> Unwrapped:
    user_event = event.get("user_event")
    if user_event is None or (isinstance(user_event, str) and not user_event.strip()):
        document: dict[str, Any] = {}
    elif isinstance(user_event, str):
        document = _object(parse_json(user_event, "the timer's user_event"), "the timer's user_event", True)
    else:
        document = _object(user_event, "the timer's user_event")
    name = strictjson.label(event.get("trigger_name"))
    return Unwrapped(Trigger.TIMER, document, correlation_id=name, pass_id=_tick(name, event.get("time")))


def _tick(name: str, when: object) -> str:
    """A timer tick's pass ID: the trigger's name and the event's time, so every delivery of one tick carries the
    same ID and the next tick another; it starts with the tick's time (epoch seconds) when the event's `time` is
    one, which is what a scheduled pass measures news back from (model.tick_of)."""
    import hashlib

    digest = hashlib.sha256(f"{name}|{strictjson.label(when)}".encode("utf-8", "replace")).hexdigest()
    epoch = _epoch(when)
    return f"{TIMER_PASS}{epoch}-{digest[:16]}" if epoch is not None else f"{TIMER_PASS}{digest[:20]}"


def _epoch(when: object) -> int | None:
    """A timer event's `time` (ISO 8601 with an offset, as the platform writes it) in epoch seconds; None when it
    is not one."""
    from datetime import datetime

    if not isinstance(when, str) or len(when) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or not 946684800 <= parsed.timestamp() < 10**10:  # 2000 on, ten digits at most
        return None
    return int(parsed.timestamp())


def _eventgrid(event: dict[str, Any]) -> Unwrapped:
    if event.get("source") == CCE_SOURCE:
        return _change(Trigger.EVENTGRID, event.get("data"), event)
    data = event.get("data")
    parsed_here = isinstance(data, str)
    if isinstance(data, str):
        data = parse_json(data, "the CloudEvent's data") if data.strip() else {}
    elif data is None:
        data = {}
    event_id, source = event.get("id"), event.get("source")
    return Unwrapped(
        Trigger.EVENTGRID,
        _object(data, "the CloudEvent's data", parsed_here),
        event_id=("eventgrid", source if isinstance(source, str) else "", event_id)
        if isinstance(event_id, str)
        else None,
        correlation_id=strictjson.label(event_id),
    )


def _header(event: dict[str, Any], name: str) -> str:
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return ""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return ""


def apig_request_id(event: Mapping[str, Any]) -> str:
    """The API Gateway request id, used as correlation id (empty when absent or not a string)."""
    context = event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return strictjson.label(request_id)


_PATH_TARGET = re.compile(r"/clusters/([^/]+)(?:/nodepools/([^/]+))?")


def _path_parameters(event: dict[str, Any]) -> dict[str, str]:
    """The target the request's route names: API Gateway's pathParameters, else the IDs in the path itself (the
    platform's published sample has `"pathParameters": {"": "..."}`: fg-events/fg-apig-event/resources/
    apig_event_with_params.json). A path that names a cluster or a pool never falls back to the defaults: when its
    IDs cannot be read, the request is refused."""
    parameters = event.get("pathParameters")
    found = {
        key: value
        for key, value in (parameters.items() if isinstance(parameters, dict) else ())
        if key in Target._fields and isinstance(value, str) and value
    }
    path = event.get("path")
    path = path if isinstance(path, str) else ""
    names = {"cluster_id": "/clusters/" in path, "nodepool_id": "/nodepools/" in path}
    match = _PATH_TARGET.search(path)
    if match is not None:
        found.setdefault("cluster_id", unquote(match[1]))
        if match[2]:
            found.setdefault("nodepool_id", unquote(match[2]))
    missing = [key for key, named in names.items() if named and key not in found]
    if missing:
        raise EventError(f"the API path names a {' and a '.join(missing)} it gives no value for")
    return found


def _apig(event: dict[str, Any], max_body_bytes: int) -> Unwrapped:
    method = event.get("httpMethod")
    if method == "GET":
        correlation_id = apig_request_id(event)
        return Unwrapped(
            Trigger.APIG, {}, correlation_id=correlation_id, overrides=_path_parameters(event), asks_status=True
        )
    if method != "POST":
        raise MethodNotAllowed(
            f"method {strictjson.label(method, 16)!r} is not allowed; send POST (sync) or GET (status)"
        )
    body = event.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise EventError("the API Gateway body must be a string")
    # Base64 inflates by 4/3: checking the encoded length first keeps a huge body from being decoded at all.
    encoded = event.get("isBase64Encoded") is True
    if len(body) > (max_body_bytes * 4 // 3 + 4 if encoded else max_body_bytes):
        raise PayloadTooLarge(f"the request body is larger than {max_body_bytes} bytes")
    raw: bytes
    if encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise EventError("the request body is marked Base64 but is not valid Base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_body_bytes:
        raise PayloadTooLarge(f"the request body is larger than {max_body_bytes} bytes")
    content_type = _header(event, "content-type").split(";")[0].strip().lower()
    if raw.strip() and content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"content type {content_type[:60]!r} is not supported; send application/json")
    document = _object(parse_json(raw, "the request body"), "the request body", True) if raw.strip() else {}
    return Unwrapped(Trigger.APIG, document, correlation_id=apig_request_id(event), overrides=_path_parameters(event))


def _change(trigger: Trigger, trace: Any, event: dict[str, Any]) -> Unwrapped:
    """A CCE change event: the trace, to be read for where it points (the event's id deduplicates EventGrid's)."""
    if isinstance(trace, str):
        trace = parse_json(trace, "the CloudEvent's data") if trace.strip() else None
    event_id, source = event.get("id"), event.get("source")
    cts = trace if isinstance(trace, dict) else {}
    trace_id = cts.get("trace_id")
    # One change may arrive by both paths (the CTS trigger and an EventGrid subscription): its trace id is the
    # one key both deliveries share, so the second gets the first's result.
    key: tuple[str, str, str] | None = ("cts", trace_id, "") if isinstance(trace_id, str) and trace_id else None
    if key is None and isinstance(source, str) and isinstance(event_id, str):
        key = ("eventgrid", source, event_id)
    correlation_id = strictjson.label(event_id) or strictjson.label(trace_id)
    return Unwrapped(trigger, {}, event_id=key, correlation_id=correlation_id, change=True, trace=trace)


def unwrap(event: Any, trigger: Trigger, max_body_bytes: int) -> Unwrapped:
    """Turn one event of a known (non-batch) trigger kind into its sync request document."""
    if trigger is Trigger.CTS:
        return _change(Trigger.CTS, event["cts"], event)
    if trigger is Trigger.TIMER:
        return _timer(event)
    if trigger is Trigger.EVENTGRID:  # an entry of a batch may be anything
        if not (isinstance(event, dict) and "specversion" in event):
            raise not_a_cloudevent(event)
        return _eventgrid(event)
    if trigger is Trigger.APIG:
        return _apig(event, max_body_bytes)
    document = _object(event, "the event")
    return Unwrapped(Trigger.DIRECT, document, event_id=_worker_key(document))


def _worker_key(document: dict[str, Any]) -> tuple[str, str, str] | None:
    """A fanned-out pass's worker, delivered twice, is one event: its pass ID, its scope and its document's digest
    (the node password masked, so two deliveries of one tick, each salted anew, share it) key the window."""
    scope, pass_id = document.get("scope"), document.get("pass_id")
    if not (isinstance(scope, dict) and isinstance(pass_id, str)):
        return None
    import hashlib

    canonical = json.dumps(mask_body(document), sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return ("worker", strictjson.label(f"{pass_id}|{scope.get('region')}|{scope.get('project_id')}", 300), digest)


MAX_BATCH_EVENTS = 10  # one answer (and one pass of work) per event: a delivery of more is refused whole


def unwrap_batch(event: dict[str, Any]) -> list[Any]:
    """The CloudEvents of an EventGrid `{"events": [...]}` delivery, in order (at most MAX_BATCH_EVENTS)."""
    events: list[Any] = event["events"]
    if len(events) > MAX_BATCH_EVENTS:
        raise EventError(f"the batch holds {len(events)} events; at most {MAX_BATCH_EVENTS} are taken at once")
    return events


def not_a_cloudevent(item: object) -> EventError:
    """The error for a batch entry that is not a CloudEvent."""
    return EventError(f"a batch entry is {kind_of(item)}, not a CloudEvent (an object with specversion)")
