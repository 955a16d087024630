"""The composition root: `handler(event, context)` runs the pipeline, `initializer(context)` warms it.

event -> triggers (unwrap) -> validation (document) -> passwords (salt) -> credentials -> cce (send) -> answers
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, NamedTuple

from . import __version__, answers, logs, passwords, triggers, validation
from .cce import CCEClient
from .credentials import IamPasswordToken, TokenCache, resolve
from .errors import (
    ConfigurationError,
    JobFailed,
    MethodNotAllowed,
    SyncError,
    SyncInProgress,
    TargetNotAllowed,
    UpstreamError,
    UpstreamTimeout,
)
from .runtime import Deadline, RuntimeContext
from .settings import Environment, Settings
from .transport import Transport, new_session
from .triggers import Trigger, Unwrapped

__all__ = ["handler", "initializer", "reset"]

DEFAULT_POOL = "DefaultPool"


class _Process(NamedTuple):
    """What one function instance builds once and reuses across invocations."""

    settings: Settings
    transport: Transport
    client: CCEClient
    tokens: TokenCache
    recent: triggers.RecentEvents[_Result]
    secrets: tuple[str, ...]


_lock = threading.Lock()
_process: _Process | None = None


def _current(context: RuntimeContext) -> _Process:
    """The instance's state, built on first use from the environment and the first context's user data."""
    global _process  # noqa: PLW0603 - the per-instance state of a serverless function
    if _process is None:
        with _lock:
            if _process is None:
                settings = Settings.from_environ(Environment(os.environ, context.user_data))
                logs.logger().setLevel(settings.log_level)
                user_agent = f"nodepool-sync/{__version__} ({settings.function_name})"
                transport = Transport(
                    new_session(user_agent), settings.connect_timeout_seconds, settings.read_timeout_seconds
                )
                _process = _Process(
                    settings,
                    transport,
                    CCEClient(settings, transport, user_agent),
                    TokenCache(),
                    triggers.RecentEvents(settings.dedup_window_seconds),
                    settings.secrets(),
                )
    return _process


def reset() -> None:
    """Forget the per-process state, so the next invocation reads the environment again (tests, local CLI)."""
    global _process  # noqa: PLW0603
    with _lock:
        if _process is not None:
            _process.transport.session.close()
        _process = None


def _defaults(settings: Settings, context: RuntimeContext) -> validation.Defaults:
    return validation.Defaults(
        project_id=settings.project_id or context.project_id or settings.runtime_project_id,
        cluster_id=settings.cluster_id,
        nodepool_id=settings.nodepool_id,
        spec=settings.sync_spec,
        node_login_password=settings.node_login_password.reveal() if settings.node_login_password else "",
        dry_run=settings.dry_run,
        wait=settings.wait,
    )


class _Result:
    """One sync's (or one fleet's) outcome, for the answer and the log line."""

    __slots__ = ("document", "error", "secrets", "status", "target")

    def __init__(self, error: SyncError | None = None) -> None:
        self.document: dict[str, Any] | None = None
        self.error = error
        self.target: validation.Target | None = None
        self.secrets: tuple[str, ...] = ()
        self.status = 200


def _sync_target(
    process: _Process, sync: validation.ValidSync, context: RuntimeContext, deadline: Deadline, result: _Result
) -> None:
    """Allowlist, credentials, busy guard, the POST and, when asked, following the job; fills `result`."""
    settings, client = process.settings, process.client
    result.target = target = sync.target
    if not validation.target_allowed(target, settings.allowed_targets):
        raise TargetNotAllowed(f"{target.cluster_id}/{target.nodepool_id} is not in SYNC_ALLOWED_TARGETS")
    credential = resolve(settings, context, target.project_id, process.transport, process.tokens, deadline)
    result.secrets = credential.secrets()
    if sync.dry_run:
        result.document = answers.dry_run(target, client.preview(target, sync.body, credential))
        return
    if settings.skip_if_busy:
        running = client.running_sync(target, credential, deadline)
        if running is not None:
            raise SyncInProgress(running)
    accepted = client.sync(target, passwords.salt_body(sync.body), credential, deadline)
    result.secrets = credential.secrets()
    result.document = answers.accepted(target, accepted)
    if sync.wait:
        phase, reason = client.follow_job(target.project_id, accepted.jobid, credential, deadline)
        if phase == "Failed":
            raise JobFailed(accepted.jobid, reason, request_id=accepted.request_id)
        result.document = answers.followed(target, accepted, phase, reason)
        result.status = 200 if phase == "Success" else 202


def _sync(process: _Process, unwrapped: Unwrapped, context: RuntimeContext, deadline: Deadline) -> _Result:
    result = _Result()
    try:
        defaults = _defaults(process.settings, context)
        if validation.is_fleet(unwrapped.document):
            fleet = validation.plan_fleet(unwrapped.document, unwrapped.overrides, defaults)
            return _sync_fleet(process, fleet, defaults, context, deadline)
        sync = validation.prepare(unwrapped.document, unwrapped.overrides, defaults)
        _sync_target(process, sync, context, deadline, result)
    except SyncError as error:
        result.error = error
    return result


def _fleet_documents(
    process: _Process, fleet: validation.Fleet, context: RuntimeContext, deadline: Deadline
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The per-pool documents of a fleet, resolving a name selection with CCE's node pool list; and the
    results of names that matched no pool."""
    if fleet.names is not None and not fleet.names:
        return fleet.documents, []
    credential = resolve(process.settings, context, fleet.project_id, process.transport, process.tokens, deadline)
    with_default = fleet.include_default if fleet.names is None else DEFAULT_POOL in fleet.names
    pools = process.client.list_nodepools(fleet.project_id, fleet.cluster_id, credential, deadline, with_default)
    if fleet.names is None:
        chosen = [pool_id for pool_id, name in pools if fleet.include_default or pool_id != DEFAULT_POOL]
        unknown: list[str] = []
    else:
        by_name = {name: pool_id for pool_id, name in pools}
        chosen = [by_name[name] for name in fleet.names if name in by_name]
        unknown = [name for name in fleet.names if name not in by_name]
    base = {**fleet.shared, "project_id": fleet.project_id, "cluster_id": fleet.cluster_id}
    missing = [answers.no_such_pool(fleet.cluster_id, name) for name in unknown]
    return [{**base, "nodepool_id": pool_id} for pool_id in chosen], missing


def _sync_fleet(
    process: _Process,
    fleet: validation.Fleet,
    defaults: validation.Defaults,
    context: RuntimeContext,
    deadline: Deadline,
) -> _Result:
    """Each target in turn while time allows; one result per target, the unreached named for a retry."""
    fleet_result = _Result()
    documents, results = _fleet_documents(process, fleet, context, deadline)
    not_reached: list[dict[str, Any]] = []
    first_error: SyncError | None = None
    for index, document in enumerate(documents):
        if deadline.remaining() < process.settings.target_min_seconds:
            not_reached = [{k: d.get(k) for k in ("cluster_id", "nodepool_id")} for d in documents[index:]]
            break
        one = _Result()
        try:
            _sync_target(process, validation.prepare(document, {}, defaults), context, deadline, one)
        except SyncError as error:
            one.error = error
            first_error = first_error or error
        fleet_result.secrets += one.secrets
        results.append(answers.target_result(document, one.document, one.error))
    fleet_result.document = answers.fleet(results, not_reached)
    status = fleet_result.document["status"]
    if status == "some_accepted":
        fleet_result.status = 207
    elif status == "none_accepted":
        fleet_result.status = first_error.status if first_error else 400
    return fleet_result


def _log(
    process: _Process | None,
    trigger: str,
    result: _Result,
    context: RuntimeContext,
    started: float,
    extra: dict[str, Any],
) -> None:
    error, target, document = result.error, result.target, result.document or {}
    fields: dict[str, Any] = {
        "message": "sync",
        "trigger": trigger,
        "outcome": document.get("status") or answers.outcome(error),
        "http_status": error.status if error else result.status,
        "project_id": target.project_id if target else None,
        "cluster_id": target.cluster_id if target else None,
        "nodepool_id": target.nodepool_id if target else None,
        "jobid": document.get("jobid"),
        "cce_request_id": document.get("request_id") or (error.request_id if error else None),
        "error_code": error.code if error else None,
        "error_msg": error.message if error else None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "request_id": context.request_id,
        "targets": [
            {"nodepool_id": r.get("nodepool_id") or r.get("nodepool_name"), "status": r["status"]}
            for r in document.get("results", ())
        ]
        or None,
        **extra,
    }
    logs.write(logging.WARNING if error else logging.INFO, fields, _secrets(process, result))


def _secrets(process: _Process | None, result: _Result) -> list[str]:
    """Every secret value this invocation may have touched: the settings' and the credential's."""
    return [*(process.secrets if process else ()), *result.secrets]


def _answer_apig(process: _Process | None, result: _Result, correlation_id: str) -> dict[str, Any]:
    secrets = _secrets(process, result)
    if result.error is None:
        return answers.apig_response(result.status, logs.scrub(result.document or {}, secrets), correlation_id)
    headers = {"Allow": "POST"} if isinstance(result.error, MethodNotAllowed) else None
    body = logs.scrub(answers.error_body(result.error), secrets)
    return answers.apig_response(result.error.status, body, correlation_id, headers)


def _answer_plain(process: _Process | None, result: _Result) -> dict[str, Any]:
    secrets = _secrets(process, result)
    if result.error is None:
        return logs.scrub(result.document or {}, secrets)  # type: ignore[no-any-return]
    if result.error.transient:
        raise result.error
    return logs.scrub(answers.rejected(result.error), secrets)  # type: ignore[no-any-return]


def _one(process: _Process, event: dict[str, Any], trigger: Trigger, context: RuntimeContext) -> tuple[_Result, str]:
    """Unwrap and sync one (non-batch) event; returns the result and the event's correlation id."""
    try:
        unwrapped = triggers.unwrap(event, trigger, process.settings.max_body_bytes)
    except SyncError as error:
        return _Result(error=error), triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
    deadline = context.deadline(process.settings.answer_reserve_ms)
    if unwrapped.event_id is not None:
        try:
            result = process.recent.once(
                unwrapped.event_id,
                lambda: _sync(process, unwrapped, context, deadline),
                deadline,
                keep=lambda r: r.error is None or not r.error.transient,
            )
        except UpstreamTimeout as error:
            result = _Result(error=error)
        return result, unwrapped.correlation_id
    return _sync(process, unwrapped, context, deadline), unwrapped.correlation_id


def handler(event: Any, context: Any = None) -> Any:
    """FunctionGraph entry point: sync the node pool the event asks for and answer as its trigger expects."""
    try:
        return _handle(event, context)
    except SyncError:
        raise
    except Exception as exc:
        # A bug must still give API Gateway a well-formed answer; other triggers see it raised and retry.
        logs.write(logging.ERROR, {"message": "internal error", "error": type(exc).__name__}, [])
        if isinstance(event, dict) and "httpMethod" in event:
            body = {"error_code": "FUNC.INTERNAL", "error_msg": "internal error", "request_id": ""}
            return answers.apig_response(500, body, triggers.apig_request_id(event))
        raise


def _handle(event: Any, context: Any) -> Any:
    started = time.perf_counter()
    view = RuntimeContext(context)
    process: _Process | None = None
    trigger = Trigger.DIRECT
    try:
        trigger = triggers.recognize(event)
        process = _current(view)
    except SyncError as error:
        result = _Result(error=error)
        _log(process, trigger.value, result, view, started, {})
        if trigger is Trigger.APIG:
            return _answer_apig(process, result, triggers.apig_request_id(event))
        return _answer_plain(process, result)

    if trigger is Trigger.EVENTGRID_BATCH:
        return _batch(process, event, view, started)
    result, correlation_id = _one(process, event, trigger, view)
    _log(process, trigger.value, result, view, started, {"correlation_id": correlation_id})
    if trigger is Trigger.APIG:
        return _answer_apig(process, result, correlation_id or view.request_id)
    return _answer_plain(process, result)


def _batch(process: _Process, event: dict[str, Any], context: RuntimeContext, started: float) -> dict[str, Any]:
    """An EventGrid `{"events": [...]}` delivery: one result per event; a transient failure raises at the end."""
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    for item in triggers.unwrap_batch(event):
        if isinstance(item, dict) and "specversion" in item:
            result, correlation_id = _one(process, item, Trigger.EVENTGRID, context)
        else:
            result = _Result(error=triggers.not_a_cloudevent(item))
            correlation_id = ""
        _log(process, Trigger.EVENTGRID.value, result, context, started, {"correlation_id": correlation_id})
        if result.error is not None and result.error.transient:
            failed.append(correlation_id or f"#{len(results)}")
            body = logs.scrub(answers.error_body(result.error), _secrets(process, result))
            results.append({"status": "failed", "event_id": correlation_id, **body})
        else:
            results.append({"event_id": correlation_id, **_answer_plain(process, result)})
    if failed:
        raise UpstreamError(f"{len(failed)} event(s) of the batch failed transiently: {', '.join(failed)[:300]}")
    return {"status": "batch", "results": results}


def initializer(context: Any = None) -> None:
    """FunctionGraph initializer: read the settings, compile the schema and, for IAM passwords, fetch the token."""
    view = RuntimeContext(context)
    process = _current(view)
    validation.warm()
    project_id = _defaults(process.settings, view).project_id
    if not project_id:
        return
    try:
        credential = resolve(process.settings, view, project_id, process.transport, process.tokens, view.deadline(500))
        if isinstance(credential, IamPasswordToken):
            credential.token()
    except (ConfigurationError, UpstreamError) as error:
        logs.write(logging.WARNING, {"message": "initializer", "warning": error.message}, process.secrets)
