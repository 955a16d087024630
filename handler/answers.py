"""Delivery: one immutable `Outcome` per invocation (per event of a batch), made from a kind's `Answer` or an
error, becomes the API Gateway response or the plain result, and the log line; the one place that decides raise
or answer. What an answer says is each kind's renderer's (handler/kinds/)."""

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .errors import MethodNotAllowed, SyncError, UpstreamError
from .logs import scrub
from .model import Target, Trigger
from .rendering import Answer, Status, error_body

__all__ = ["Outcome", "apig_response", "conclude", "deliver", "deliver_batch", "lasting", "log_fields"]


def lasting(result: Answer | SyncError) -> bool:
    """Whether a result is worth giving to a redelivery: not a transient failure, which a redelivery retries."""
    return not (isinstance(result, SyncError) and result.transient)


def apig_response(
    status: int, body: Mapping[str, Any], correlation_id: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A well-formed API Gateway answer with a JSON body and the correlation id."""
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "application/json",
            "X-Correlation-Id": correlation_id,
            **(headers or {}),
        },
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


class Outcome(NamedTuple):
    """One invocation's result, built once by `conclude`: the answer and the log line are both made from it.

    Its answer and error are already scrubbed of every secret the invocation touched."""

    trigger: Trigger
    answer: Answer
    error: SyncError | None
    target: Target | None
    correlation_id: str
    request_id: str  # FunctionGraph's
    latency_ms: float
    lifted: tuple[str, ...] = ()  # the guards the request asked to lift (logged with who sent it)
    source: str = ""  # an EventGrid event's source

    @property
    def document(self) -> dict[str, Any]:
        return self.answer.document


def conclude(
    trigger: Trigger,
    result: Answer | SyncError,
    target: Target | None,
    secrets: Sequence[str],
    correlation_id: str,
    request_id: str,
    started: float,
) -> Outcome:
    """The invocation's outcome, with secrets scrubbed from everything in it (raised errors included)."""
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    if isinstance(result, SyncError):
        error = result.with_message(scrub(result.message, secrets))
        return Outcome(trigger, Answer.of_error(error), error, target, correlation_id, request_id, latency_ms)
    answer = result._replace(body=scrub(result.body, secrets), reason=scrub(result.reason, secrets))
    return Outcome(trigger, answer, None, target, correlation_id, request_id, latency_ms)


def deliver(outcome: Outcome) -> Any:
    """The one place that decides: API Gateway always gets a response; other triggers get the document, or the
    error raised when it is transient, so the platform retries."""
    if outcome.trigger is Trigger.APIG:
        correlation_id = outcome.correlation_id or outcome.request_id
        if outcome.error is None:
            return apig_response(outcome.answer.http_status, outcome.document, correlation_id)
        headers = {"Allow": "GET, POST"} if isinstance(outcome.error, MethodNotAllowed) else None
        body = error_body(outcome.error)
        # The APIG request id (X-Correlation-Id) ties the answer to the log line; CCE's, when any, stays beside it.
        body = {
            **body,
            "request_id": correlation_id,
            **({"cce_request_id": body["request_id"]} if body["request_id"] else {}),
        }
        return apig_response(outcome.error.status, body, correlation_id, headers)
    if outcome.error is not None and outcome.error.transient:
        raise outcome.error
    return outcome.document


def deliver_batch(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """An EventGrid batch: one result per event; raised at the end when any event failed transiently."""
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    for index, outcome in enumerate(outcomes):
        if outcome.error is not None and outcome.error.transient:
            failed.append(outcome.correlation_id or f"#{index}")
        results.append({"event_id": outcome.correlation_id, **outcome.document})
    if failed:
        raise UpstreamError(f"{len(failed)} event(s) of the batch failed transiently: {', '.join(failed)[:300]}")
    return {"status": Status.BATCH.value, "results": results}


def log_fields(outcome: Outcome) -> dict[str, Any]:
    """The invocation's log line, from the same outcome as its answer."""
    error, target, answer = outcome.error, outcome.target, outcome.answer
    return {
        "message": "sync",
        "trigger": outcome.trigger.value if outcome.trigger is not Trigger.EVENTGRID_BATCH else "eventgrid",
        "outcome": answer.status.value,
        "http_status": answer.http_status,
        "project_id": target.project_id if target else None,
        "cluster_id": target.cluster_id if target else None,
        "nodepool_id": target.nodepool_id if target else None,
        "jobid": answer.jobid,
        "cce_request_id": answer.cce_request_id,
        "error_code": error.code if error else None,
        "error_msg": error.message if error else None,
        "latency_ms": outcome.latency_ms,
        "request_id": outcome.request_id,
        "correlation_id": outcome.correlation_id,
        "targets": list(answer.targets) or None,
        "reason": answer.reason,
        "totals": answer.totals,
        **({"overrides": list(outcome.lifted), "source": outcome.source or None} if outcome.lifted else {}),
    }
