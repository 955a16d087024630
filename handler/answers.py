"""What the function answers: an API Gateway response, or a plain result for timer, EventGrid and direct calls."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .cce import Accepted
from .errors import CCECredentialsRejected, DocumentInvalid, JobFailed, SyncError, SyncInProgress
from .validation import Target

__all__ = [
    "accepted",
    "apig_response",
    "dry_run",
    "error_body",
    "fleet",
    "followed",
    "no_such_pool",
    "outcome",
    "rejected",
    "target_result",
]

CONFIRMED = "accepted (confirmed after an ambiguous failure)"


def _target(target: Target) -> dict[str, str]:
    return {"project_id": target.project_id, "cluster_id": target.cluster_id, "nodepool_id": target.nodepool_id}


def accepted(target: Target, result: Accepted) -> dict[str, Any]:
    """The success document: CCE's job id, the target and CCE's request id."""
    document: dict[str, Any] = {"status": "accepted", "jobid": result.jobid or None, **_target(target)}
    document["request_id"] = result.request_id
    if result.confirmed_after_ambiguity:
        document["detail"] = CONFIRMED
    return document


def followed(target: Target, result: Accepted, phase: str, reason: str) -> dict[str, Any]:
    """The success document after following the job: succeeded, or still running when time ran out."""
    document = accepted(target, result)
    document["status"] = "succeeded" if phase == "Success" else "running"
    document["job"] = {"id": result.jobid or None, "phase": phase, **({"reason": reason} if reason else {})}
    return document


def dry_run(target: Target, request: Mapping[str, Any]) -> dict[str, Any]:
    """The dry-run document: the request that would have been sent, secrets masked."""
    return {"status": "dry_run", **_target(target), "request": dict(request)}


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
    return body


def outcome(error: SyncError | None) -> str:
    """The one-word status of a failed sync, as answers and log lines give it."""
    if isinstance(error, SyncInProgress):
        return "skipped"
    if isinstance(error, JobFailed):
        return "job_failed"
    return "failed" if error is not None and error.transient else "rejected"


def rejected(error: SyncError) -> dict[str, Any]:
    """A permanent failure for non-HTTP triggers: answered (not raised) so the platform does not retry it."""
    return {"status": outcome(error), **error_body(error), "http_status": error.status}


_ACCEPTED = frozenset({"accepted", "succeeded", "running", "dry_run"})


def target_result(
    document: Mapping[str, Any], result: Mapping[str, Any] | None, error: SyncError | None
) -> dict[str, Any]:
    """One target's line in a fleet answer: its IDs and its outcome."""
    ids = {key: document.get(key) for key in ("cluster_id", "nodepool_id")}
    if error is not None:
        return {**ids, "status": outcome(error), **error_body(error), "http_status": error.status}
    body = {k: v for k, v in (result or {}).items() if k not in ("project_id", "cluster_id", "nodepool_id")}
    return {**ids, **body}


def no_such_pool(cluster_id: str, name: str) -> dict[str, Any]:
    """A fleet result for a selected name that matches no node pool of the cluster."""
    return {
        "cluster_id": cluster_id,
        "nodepool_name": name,
        "status": "rejected",
        "error_code": "FUNC.NO_POOL",
        "error_msg": f"the cluster has no node pool named {name[:64]!r}",
    }


def fleet(results: list[dict[str, Any]], not_reached: list[dict[str, Any]]) -> dict[str, Any]:
    """The fleet answer: every target's result, the targets not reached for lack of time, an overall status."""
    accepted_count = sum(r["status"] in _ACCEPTED for r in results)
    total = len(results) + len(not_reached)
    overall = (
        "all_accepted" if total and accepted_count == total else "some_accepted" if accepted_count else "none_accepted"
    )
    return {
        "status": overall,
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
