"""What the function answers, made from one immutable `Outcome` per invocation (per event of a batch): the API
Gateway response or the plain result, and the log line; and the one place that decides raise or answer."""

import json
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, NamedTuple

from .cce import Accepted
from .errors import (
    CCECredentialsRejected,
    DocumentInvalid,
    JobFailed,
    MethodNotAllowed,
    OutsideWindow,
    SyncError,
    SyncInProgress,
    UpstreamError,
)
from .logs import scrub
from .triggers import Trigger
from .validation import Target

__all__ = [
    "Outcome",
    "Status",
    "Synced",
    "accepted",
    "apig_response",
    "conclude",
    "deliver",
    "deliver_batch",
    "dry_run",
    "error_body",
    "fleet",
    "followed",
    "ignored",
    "in_sync",
    "log_fields",
    "no_such_pool",
    "status_of",
    "sync_status",
    "target_result",
]

CONFIRMED = "accepted (confirmed after an ambiguous failure)"


class Status(str, Enum):
    """The one word every answer and log line carries."""

    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"  # with wait: the job ended Success
    RUNNING = "running"  # with wait: the job still ran when time ran out
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"  # the busy guard: a sync was already running
    DEFERRED = "deferred"  # outside every maintenance window
    JOB_FAILED = "job_failed"
    REJECTED = "rejected"  # permanent: trying again will not help
    FAILED = "failed"  # transient: trying again may
    IN_SYNC = "in_sync"  # every node already carries the pool's configuration: nothing sent
    ALL_ACCEPTED = "all_accepted"
    SOME_ACCEPTED = "some_accepted"
    NONE_ACCEPTED = "none_accepted"
    RECONCILED = "reconciled"  # a reconcile pass (see its totals)
    SYNCING = "syncing"  # a status question: a configuration sync runs on the pool
    IDLE = "idle"  # a status question: none runs
    IGNORED = "ignored"  # a change event that asks for nothing
    BATCH = "batch"


_ACCEPTED = frozenset({Status.ACCEPTED, Status.SUCCEEDED, Status.RUNNING, Status.DRY_RUN, Status.IN_SYNC})


class Synced(NamedTuple):
    """What a sync (or a fleet) produced before it is an outcome: the answer document and its HTTP status."""

    document: dict[str, Any]
    http_status: int = 200


def _target(target: Target) -> dict[str, str]:
    return {"project_id": target.project_id, "cluster_id": target.cluster_id, "nodepool_id": target.nodepool_id}


def accepted(target: Target, result: Accepted) -> dict[str, Any]:
    """The success document: CCE's job id, the target and CCE's request id."""
    document: dict[str, Any] = {"status": Status.ACCEPTED.value, "jobid": result.jobid or None, **_target(target)}
    document["request_id"] = result.request_id
    if result.confirmed_after_ambiguity:
        document["detail"] = CONFIRMED
    return document


def followed(target: Target, result: Accepted, phase: str, reason: str) -> dict[str, Any]:
    """The success document after following the job: succeeded, or still running when time ran out."""
    document = accepted(target, result)
    document["status"] = (Status.SUCCEEDED if phase == "Success" else Status.RUNNING).value
    document["job"] = {"id": result.jobid or None, "phase": phase, **({"reason": reason} if reason else {})}
    return document


def in_sync(target: Target, nodes: str | None) -> dict[str, Any]:
    """Nothing to sync: the pool's nodes all carry its configuration (`synced/current`)."""
    return {"status": Status.IN_SYNC.value, **_target(target), "nodes": nodes}


def sync_status(target: Target, pool: Any, job: Mapping[str, Any] | None) -> dict[str, Any]:
    """How a node pool's sync is going: syncing or not, its class and progress, the latest job and its phase."""
    progress = {"synced": pool.synced, "current": pool.current} if pool.nodes is not None else None
    return {
        "status": (Status.SYNCING if pool.syncing else Status.IDLE).value,
        **_target(target),
        "class": pool.kind.value,
        "nodes": pool.nodes,
        "progress": progress,
        "job": dict(job) if job is not None else None,
    }


def ignored(reason: str) -> dict[str, Any]:
    """A change event that asks for nothing: answered and logged, never raised."""
    return {"status": Status.IGNORED.value, "reason": reason}


def dry_run(target: Target, request: Mapping[str, Any]) -> dict[str, Any]:
    """The dry-run document: the request that would have been sent, secrets masked."""
    return {"status": Status.DRY_RUN.value, **_target(target), "request": dict(request)}


def error_body(error: SyncError) -> dict[str, Any]:
    """`{error_code, error_msg, request_id}`, plus `errors` for validation and `upstream_status` for CCE 401/403."""
    body: dict[str, Any] = {"error_code": error.code, "error_msg": error.message, "request_id": error.request_id}
    if isinstance(error, DocumentInvalid):
        body["errors"] = [{"path": e.path, "message": e.message} for e in error.errors]
        if error.omitted:
            body["errors_omitted"] = error.omitted
    if isinstance(error, CCECredentialsRejected):
        body["upstream_status"] = error.upstream_status
    if isinstance(error, (SyncInProgress, JobFailed)):
        body["jobid"] = error.jobid or None
    if isinstance(error, OutsideWindow):
        body["next_window"] = error.next_window
    return body


def status_of(error: SyncError) -> Status:
    """The one-word status of a failed sync."""
    if isinstance(error, SyncInProgress):
        return Status.SKIPPED
    if isinstance(error, OutsideWindow):
        return Status.DEFERRED
    if isinstance(error, JobFailed):
        return Status.JOB_FAILED
    return Status.FAILED if error.transient else Status.REJECTED


def _failure(error: SyncError) -> dict[str, Any]:
    return {"status": status_of(error).value, **error_body(error), "http_status": error.status}


def target_result(
    document: Mapping[str, Any], result: Mapping[str, Any] | None, error: SyncError | None
) -> dict[str, Any]:
    """One target's line in a fleet answer: its IDs and its outcome."""
    ids = {key: document.get(key) for key in ("cluster_id", "nodepool_id")}
    if error is not None:
        return {**ids, **_failure(error)}
    body = {k: v for k, v in (result or {}).items() if k not in ("project_id", "cluster_id", "nodepool_id")}
    return {**ids, **body}


def no_such_pool(cluster_id: str, name: str) -> dict[str, Any]:
    """A fleet result for a selected name that matches no node pool of the cluster."""
    return {
        "cluster_id": cluster_id,
        "nodepool_name": name,
        "status": Status.REJECTED.value,
        "error_code": "FUNC.NO_POOL",
        "error_msg": f"the cluster has no node pool named {name[:64]!r}",
    }


def fleet(results: list[dict[str, Any]], not_reached: list[dict[str, Any]]) -> dict[str, Any]:
    """The fleet answer: every target's result, the targets not reached for lack of time, an overall status."""
    accepted_count = sum(r["status"] in _ACCEPTED for r in results)
    total = len(results) + len(not_reached)
    overall = (
        Status.ALL_ACCEPTED
        if total and accepted_count == total
        else Status.SOME_ACCEPTED
        if accepted_count
        else Status.NONE_ACCEPTED
    )
    return {
        "status": overall.value,
        "accepted": accepted_count,
        "total": total,
        "results": results,
        "not_reached": not_reached,
    }


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
    """One invocation's result, built once and never changed: the answer and the log line are made from it.

    Its document and error are already scrubbed of every secret the invocation touched."""

    trigger: Trigger
    status: Status
    http_status: int
    document: Mapping[str, Any]  # the plain answer (an error's too); API Gateway's body comes from it
    error: SyncError | None
    target: Target | None
    correlation_id: str
    request_id: str  # FunctionGraph's
    latency_ms: float


def _scrubbed_error(error: SyncError, secrets: Sequence[str]) -> SyncError:
    return error.with_message(scrub(error.message, secrets))


def conclude(
    trigger: Trigger,
    result: Synced | SyncError,
    target: Target | None,
    secrets: Sequence[str],
    correlation_id: str,
    request_id: str,
    started: float,
) -> Outcome:
    """The invocation's outcome, with secrets scrubbed from everything in it (raised errors included)."""
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    if isinstance(result, SyncError):
        error = _scrubbed_error(result, secrets)
        document = _failure(error)
        return Outcome(
            trigger, status_of(error), error.status, document, error, target, correlation_id, request_id, latency_ms
        )
    document = scrub(result.document, secrets)
    status = Status(document["status"])
    return Outcome(trigger, status, result.http_status, document, None, target, correlation_id, request_id, latency_ms)


def deliver(outcome: Outcome) -> Any:
    """The one place that decides: API Gateway always gets a response; other triggers get the document, or the
    error raised when it is transient, so the platform retries."""
    if outcome.trigger is Trigger.APIG:
        correlation_id = outcome.correlation_id or outcome.request_id
        if outcome.error is None:
            return apig_response(outcome.http_status, outcome.document, correlation_id)
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
    return dict(outcome.document)


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
    error, target, document = outcome.error, outcome.target, outcome.document
    return {
        "message": "sync",
        "trigger": outcome.trigger.value if outcome.trigger is not Trigger.EVENTGRID_BATCH else "eventgrid",
        "outcome": outcome.status.value,
        "http_status": outcome.http_status,
        "project_id": target.project_id if target else None,
        "cluster_id": target.cluster_id if target else None,
        "nodepool_id": target.nodepool_id if target else None,
        "jobid": document.get("jobid"),
        "cce_request_id": document.get("request_id") or (error.request_id if error else None),
        "error_code": error.code if error else None,
        "error_msg": error.message if error else None,
        "latency_ms": outcome.latency_ms,
        "request_id": outcome.request_id,
        "correlation_id": outcome.correlation_id,
        "targets": [
            {"nodepool_id": r.get("nodepool_id") or r.get("nodepool_name"), "status": r["status"]}
            for r in document.get("results", ())
        ]
        or None,
        "reason": document.get("reason"),
        "totals": document.get("totals"),
    }
