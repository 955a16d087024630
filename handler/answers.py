"""What the function answers, made from one immutable `Outcome` per invocation (per event of a batch): the API
Gateway response or the plain result, and the log line; and the one place that decides raise or answer."""

import json
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import (
    CCECredentialsRejected,
    DocumentInvalid,
    JobFailed,
    MethodNotAllowed,
    OutsideWindow,
    SyncError,
    SyncInProgress,
    TargetNotAllowed,
    UpstreamError,
)
from .logs import scrub
from .model import Accepted, JobPhase, PoolClass, Target, Trigger
from .results import Followed, Ignored, InSync, PoolStatus, Preview, Sent, Single

if TYPE_CHECKING:  # a fleet's, a pass's and a fan-out's reports are imported when one is rendered
    from .reports import DispatchReport, FleetReport, PassReport, PoolReport, TargetReport
    from .results import Result

__all__ = [
    "Outcome",
    "Rendered",
    "Status",
    "apig_response",
    "conclude",
    "deliver",
    "deliver_batch",
    "error_body",
    "lasting",
    "log_fields",
    "render",
    "status_of",
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
    HALTED = "halted"  # a reconcile pass that started nothing: too many recent failures (halt_after_failures)
    SYNCING = "syncing"  # a status question: a configuration sync runs on the pool
    IDLE = "idle"  # a status question: none runs
    IGNORED = "ignored"  # a change event that asks for nothing
    DISPATCHED = "dispatched"  # a fanned-out pass: one worker invoked per scope (see its scopes)
    BATCH = "batch"


_ACCEPTED = frozenset({Status.ACCEPTED, Status.SUCCEEDED, Status.RUNNING, Status.DRY_RUN, Status.IN_SYNC})


class Rendered(NamedTuple):
    """A result as answered: the document, its HTTP status, and the log lines it adds (a pass's actions)."""

    document: dict[str, Any]
    http_status: int = 200
    log_lines: tuple[dict[str, Any], ...] = ()


def _target(target: Target) -> dict[str, str]:
    return {"project_id": target.project_id, "cluster_id": target.cluster_id, "nodepool_id": target.nodepool_id}


def _accepted(target: Target, result: Accepted) -> dict[str, Any]:
    """The success document: CCE's job id, the target and CCE's request id."""
    document: dict[str, Any] = {"status": Status.ACCEPTED.value, "jobid": result.jobid or None, **_target(target)}
    document["request_id"] = result.request_id
    if result.confirmed_after_ambiguity:
        document["detail"] = CONFIRMED
    return document


def _followed(result: Followed) -> Rendered:
    """After following the job: succeeded (200), or still running when time ran out (202)."""
    document = _accepted(result.target, result.accepted)
    succeeded = result.phase is JobPhase.SUCCESS
    document["status"] = (Status.SUCCEEDED if succeeded else Status.RUNNING).value
    job = {"id": result.accepted.jobid or None, "phase": result.phase.value}
    document["job"] = {**job, **({"reason": result.reason} if result.reason else {})}
    return Rendered(document, 200 if succeeded else 202)


def _status(result: PoolStatus) -> dict[str, Any]:
    """How a node pool's sync is going: syncing or not, its class and progress, the latest job and its phase."""
    pool = result.pool
    progress = {"synced": pool.synced, "current": pool.current} if pool.nodes is not None else None
    job: dict[str, Any] | None = None
    if result.job is not None:
        job = {"id": result.job.id, "phase": result.job.phase.value}
        job.update({"reason": result.job.reason} if result.job.reason else {})
    elif pool.jobid:
        job = {"id": pool.jobid, "phase": "", "reason": result.job_error}
    document = {
        "status": (Status.SYNCING if pool.syncing else Status.IDLE).value,
        **_target(result.target),
        "class": pool.kind.value,
        "nodes": pool.nodes,
        "progress": progress,
        "job": job,
    }
    if result.wave is not None:
        document.update(wave=result.wave[0], wave_open=result.wave[1])
    return document


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


def _single(result: Single) -> Rendered:
    if isinstance(result, Sent):
        return Rendered(_accepted(result.target, result.accepted))
    if isinstance(result, Followed):
        return _followed(result)
    if isinstance(result, Preview):
        return Rendered({"status": Status.DRY_RUN.value, **_target(result.target), "request": dict(result.request)})
    return Rendered({"status": Status.IN_SYNC.value, **_target(result.target), "nodes": result.nodes})


def _target_result(report: "TargetReport") -> dict[str, Any]:
    """One target's line in a fleet answer: its IDs and its outcome."""
    if report.outcome is None:
        return {
            "cluster_id": report.cluster_id,
            "nodepool_name": report.name,
            "status": Status.REJECTED.value,
            "error_code": "FUNC.NO_POOL",
            "error_msg": f"the cluster has no node pool named {report.name[:64]!r}",
        }
    ids = {"cluster_id": report.cluster_id or None, "nodepool_id": report.nodepool_id or None}
    if isinstance(report.outcome, SyncError):
        return {**ids, **_failure(report.outcome)}
    body = _single(report.outcome).document
    return {**ids, **{k: v for k, v in body.items() if k not in ("project_id", "cluster_id", "nodepool_id")}}


def _fleet(report: "FleetReport") -> Rendered:
    """Every target's result, the targets not reached for lack of time, and an overall status."""
    results = [_target_result(target) for target in report.targets]
    not_reached = [{"cluster_id": c or None, "nodepool_id": p or None} for c, p in report.not_reached]
    accepted_count = sum(r["status"] in _ACCEPTED for r in results)
    total = len(results) + len(not_reached)
    if total and accepted_count == total:
        overall, http_status = Status.ALL_ACCEPTED, 200
    elif accepted_count:
        overall, http_status = Status.SOME_ACCEPTED, 207
    else:
        errors = [t.outcome for t in report.targets if isinstance(t.outcome, SyncError)]
        overall, http_status = Status.NONE_ACCEPTED, errors[0].status if errors else 400
    document = {
        "status": overall.value,
        "accepted": accepted_count,
        "total": total,
        "results": results,
        "not_reached": not_reached,
    }
    return Rendered(document, http_status)


def _pool_entry(report: "PoolReport") -> dict[str, Any]:
    """One pool of a pass: its class and counts and, for a pool that needs a sync, what was done and why."""
    from .decide import Action
    from .times import utc_text

    pool, decision = report.pool, report.decision
    entry: dict[str, Any] = {"nodepool_id": pool.pool_id, "name": pool.name, "class": decision.kind.value}
    if pool.nodes is not None:
        entry["nodes"] = pool.nodes
    if decision.kind in (PoolClass.SYNCING, PoolClass.STUCK) and pool.jobid:
        entry["jobid"] = pool.jobid
    if decision.since is not None:
        entry["since"] = utc_text(decision.since)
    if decision.action is None:
        return entry
    entry["action"] = decision.action.value
    if decision.action is Action.STARTED:
        entry["jobid"] = report.jobid or None
    elif decision.action is Action.BACKING_OFF:
        entry.update(jobid=decision.jobid, reason=decision.reason)
        entry.update({"until": utc_text(decision.until)} if decision.until is not None else {})
    elif decision.action is Action.DEFERRED:
        entry["reason"] = decision.reason
        entry.update({"next_window": utc_text(decision.next_window)} if decision.next_window is not None else {})
    if report.error is not None:
        entry.update(error_code=report.error.code, error_msg=report.error.message)
    if decision.note:
        entry["note"] = decision.note
    return entry


MAX_POOLS_LISTED = 500  # pool entries in a pass's answer: those acted on first; the rest counted
MAX_ACTION_LINES = 200  # reconcile-action log lines per pass; the summary counts the rest


def _pass(report: "PassReport") -> Rendered:
    """The pass in one document (per cluster, per pool, totals), 207 when something failed or was refused; and a
    log line per action with one summary line. Both stay bounded whatever CCE lists: the answer lists at most
    MAX_POOLS_LISTED pools (those acted on first) and counts the others, the log at most MAX_ACTION_LINES."""
    from .decide import Action

    totals = dict.fromkeys([*(c.value for c in PoolClass), *(a.value for a in Action)], 0)
    totals.update(clusters=len(report.clusters), clusters_unread=0)
    entries = [[_pool_entry(pool) for pool in cluster.pools] for cluster in report.clusters]
    acted = [(i, j) for i, pools in enumerate(entries) for j, entry in enumerate(pools) if "action" in entry]
    rest = [(i, j) for i, pools in enumerate(entries) for j, entry in enumerate(pools) if "action" not in entry]
    listed = set((acted + rest)[:MAX_POOLS_LISTED])
    clusters: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for i, cluster in enumerate(report.clusters):
        if cluster.error is not None:
            totals["clusters_unread"] += 1
            status = Action.REFUSED if isinstance(cluster.error, TargetNotAllowed) else Action.FAILED
            body = {"error_code": cluster.error.code, "error_msg": cluster.error.message}
            clusters.append({"cluster_id": cluster.cluster_id, "status": status.value, **body})
            continue
        for pool in entries[i]:
            totals[pool["class"]] += 1
            if "action" in pool:
                totals[pool["action"]] += 1
                if len(lines) < MAX_ACTION_LINES:
                    lines.append({"message": "reconcile-action", "cluster_id": cluster.cluster_id, **pool})
        shown = [entry for j, entry in enumerate(entries[i]) if (i, j) in listed]
        one = {"cluster_id": cluster.cluster_id, "status": "read", "pools": shown}
        clusters.append(
            {**one, **({"pools_omitted": len(entries[i]) - len(shown)} if len(shown) < len(entries[i]) else {})}
        )
    omitted = len(acted) + len(rest) - len(listed)
    plan_of = report.schedule
    halted = plan_of is not None and plan_of.halted
    document: dict[str, Any] = {
        "status": (Status.HALTED if halted else Status.RECONCILED).value,
        **({"region": report.region} if report.region else {}),
        "project_id": report.project_id,
        **({"dry_run": True} if report.dry_run else {}),
        "totals": totals,
        **({"pools_omitted": omitted} if omitted else {}),
        "clusters": clusters,
    }
    if plan_of is not None and plan_of.open_wave is not None:
        held_by = [_about(c.cluster_id, c.pool) | {"class": c.decision.kind.value} for c in plan_of.held_by]
        document["waves"] = {"open": plan_of.open_wave, "held_by": held_by}
    if plan_of is not None and plan_of.halted:
        failed = [_about(c.cluster_id, c.pool) | _job_of(c.decision) for c in plan_of.failed]
        document["halt"] = {"failed": failed}
    if report.notification is not None:
        note = report.notification
        document["notification"] = {"published": note.published, "items": note.items}
        document["notification"].update(
            {"message_id": note.message_id or None} if note.published else {"error": note.error}
        )
    unlogged = len(acted) - min(len(acted), MAX_ACTION_LINES)
    summary: dict[str, Any] = {"message": "reconcile-pass", **({"region": report.region} if report.region else {})}
    summary.update(project_id=report.project_id, **totals, duration_ms=report.duration_ms)
    summary.update(concurrency=report.concurrency, throttled=report.throttled)
    lines.append({**summary, **({"actions_not_logged": unlogged} if unlogged else {})})
    troubled = totals["clusters_unread"] or totals[Action.FAILED.value] or totals[Action.REFUSED.value]
    return Rendered(document, 207 if troubled else 200, tuple(lines))


def _about(cluster_id: str, pool: Any) -> dict[str, Any]:
    return {"cluster_id": cluster_id, "nodepool_id": pool.pool_id, "name": pool.name}


def _job_of(decision: Any) -> dict[str, Any]:
    return {"jobid": decision.jobid or None, "reason": decision.failure}


def lasting(result: Rendered | SyncError) -> bool:
    """Whether a result is worth giving to a redelivery: not a transient failure, which a redelivery retries."""
    return not (isinstance(result, SyncError) and result.transient)


def render(result: "Result") -> Rendered:
    """The answer of an executor's result."""
    if isinstance(result, (Sent, Followed, Preview, InSync)):
        return _single(result)
    if isinstance(result, PoolStatus):
        return Rendered(_status(result))
    if isinstance(result, Ignored):
        return Rendered({"status": Status.IGNORED.value, "reason": result.reason})
    from .reports import DispatchReport, FleetReport

    if isinstance(result, FleetReport):
        return _fleet(result)
    if isinstance(result, DispatchReport):
        return _dispatch(result)
    return _pass(result)


def _dispatch(report: "DispatchReport") -> Rendered:
    """Each scope's worker: FunctionGraph's request id, or why it was not dispatched (207 when any was not)."""
    scopes: list[dict[str, Any]] = []
    for scope, outcome in report.scopes:
        entry: dict[str, Any] = {"region": scope.region, "project_id": scope.project_id}
        if isinstance(outcome, SyncError):
            entry.update(error=outcome.message, error_code=outcome.code)
        else:
            entry["request_id"] = outcome
        scopes.append(entry)
    document = {"status": Status.DISPATCHED.value, "pass_id": report.pass_id, "scopes": scopes}
    failed = sum("error" in entry for entry in scopes)
    summary = {"message": "fan-out", "pass_id": report.pass_id, "scopes": len(scopes), "not_dispatched": failed}
    return Rendered(document, 207 if failed else 200, (summary,))


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
    result: Rendered | SyncError,
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
