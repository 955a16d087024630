"""The composition root: `handler(event, context)` runs the pipeline, `initializer(context)` warms it.

event -> triggers (unwrap) -> validation (document) -> passwords (salt) -> credentials -> cce (send)
      -> answers (one Outcome: the answer, or the raise, and the log line)
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from . import __version__, answers, logs, passwords, triggers, validation
from .answers import Outcome, Synced
from .cce import DEFAULT_POOL, CCEClient, PoolClass, PoolState
from .credentials import Credential, IamPasswordToken, TokenCache, resolve
from .errors import (
    ConfigurationError,
    DocumentInvalid,
    JobFailed,
    OutsideWindow,
    SyncError,
    SyncInProgress,
    TargetNotAllowed,
    UpstreamError,
    UpstreamTimeout,
)
from .runtime import RuntimeContext, utc_text
from .settings import Environment, Settings
from .transport import Transport, new_session
from .triggers import Trigger, Unwrapped
from .validation import Target

if TYPE_CHECKING:  # change events, fleets and reconcile passes import their modules when one comes
    from .changes import Change
    from .plans import Fleet, Reconcile

__all__ = ["handler", "initializer", "reset"]

_Result = tuple[Synced | SyncError, Target | None]  # a sync's result and, once known, its target


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


class _Invocation:
    """One invocation's working set: the process, the context, the deadline, the defaults, and the credentials
    it resolved (one per project), whose secrets its outcome is scrubbed of."""

    __slots__ = ("_credentials", "context", "deadline", "defaults", "process")

    def __init__(self, process: _Process, context: RuntimeContext) -> None:
        self.process, self.context = process, context
        self.deadline = context.deadline(process.settings.answer_reserve_ms)
        self.defaults = process.settings.defaults(context.project_id)
        self._credentials: dict[str, Credential] = {}

    def credential(self, project_id: str) -> Credential:
        if project_id not in self._credentials:
            process = self.process
            self._credentials[project_id] = resolve(
                process.settings, self.context, project_id, process.transport, process.tokens, self.deadline
            )
        return self._credentials[project_id]

    def secrets(self) -> tuple[str, ...]:
        """The settings' secrets and those of every credential used so far (an IAM token once fetched)."""
        return (*self.process.secrets, *(s for c in self._credentials.values() for s in c.secrets()))

    def refuse_unless_allowed(self, target: Target) -> None:
        allowlist = self.process.settings.allowed_targets
        if not allowlist.allows(self.defaults.project_id, *target):
            raise TargetNotAllowed(
                f"{target.cluster_id}/{target.nodepool_id} of project {target.project_id} "
                "is not in SYNC_ALLOWED_TARGETS"
            )


def _sync_target(invocation: _Invocation, sync: validation.ValidSync) -> Synced:
    """Allowlist, credentials, busy guard, the POST and, when asked, following the job."""
    client, target, deadline = invocation.process.client, sync.target, invocation.deadline
    invocation.refuse_unless_allowed(target)
    credential = invocation.credential(target.project_id)
    if sync.dry_run:
        return Synced(answers.dry_run(target, client.preview(target, sync.body, credential)))
    windows = invocation.process.settings.windows
    if windows is not None and not sync.force:
        closed_until = windows.closed_until(datetime.now(timezone.utc))
        if closed_until is not None:
            raise OutsideWindow(utc_text(closed_until.timestamp()))
    before: PoolState | None = None
    if invocation.process.settings.skip_if_busy:
        # One read serves the busy guard, the in-sync short cut and, after an ambiguous failure, the proof.
        before = client.pool_state(target, credential, deadline)
        if before.syncing:
            raise SyncInProgress(before.jobid)
        if before.kind is PoolClass.IN_SYNC and not sync.force and not sync.names_nodes:
            return Synced(answers.in_sync(target, before.nodes))
    accepted = client.sync(target, passwords.salt_body(sync.body), credential, deadline, before)
    if not sync.wait:
        return Synced(answers.accepted(target, accepted))
    phase, reason = client.follow_job(target.project_id, accepted.jobid, credential, deadline)
    if phase == "Failed":
        raise JobFailed(accepted.jobid, reason, request_id=accepted.request_id)
    return Synced(answers.followed(target, accepted, phase, reason), 200 if phase == "Success" else 202)


def _sync(invocation: _Invocation, unwrapped: Unwrapped) -> _Result:
    """The document's sync (fleet, reconcile pass), as a result; a SyncError is a result too."""
    target = None
    settings = invocation.process.settings
    try:
        if unwrapped.change is not None:
            return _sync_change(invocation, unwrapped.change), None
        if unwrapped.asks_status:
            target = validation.target_of(unwrapped.overrides, invocation.defaults)
            return _status(invocation, target), target
        document = unwrapped.document
        if not document and unwrapped.trigger is Trigger.TIMER and settings.reconcile is not None:
            return _plan(invocation, {"reconcile": settings.reconcile}, {}, configured=True), None
        if validation.is_reconcile(document) or validation.is_fleet(document):
            return _plan(invocation, document, unwrapped.overrides), None
        sync = validation.prepare(document, unwrapped.overrides, invocation.defaults)
        target = sync.target
        return _sync_target(invocation, sync), target
    except SyncError as error:
        return error, target


def _plan(
    invocation: _Invocation, document: dict[str, Any], overrides: Mapping[str, str], configured: bool = False
) -> Synced:
    """A reconcile pass or a fleet; `configured`: the function's own SYNC_RECONCILE, whose faults are its own."""
    from . import plans  # fleets and passes only: a single sync never imports them

    if validation.is_reconcile(document):
        if configured:
            return _reconcile(invocation, _configured(lambda: plans.plan_reconcile(document, {}, invocation.defaults)))
        return _reconcile(invocation, plans.plan_reconcile(document, overrides, invocation.defaults))
    return _sync_fleet(invocation, plans.plan_fleet(document, overrides, invocation.defaults))


def _status(invocation: _Invocation, target: Target) -> Synced:
    """How the pool's sync is going: one pool read and, when it names a job, one job read."""
    client, deadline = invocation.process.client, invocation.deadline
    invocation.refuse_unless_allowed(target)
    credential = invocation.credential(target.project_id)
    pool = client.pool_state(target, credential, deadline)
    job = None
    if pool.jobid:
        try:
            read = client.read_job(target.project_id, pool.jobid, credential, deadline)
            job = {"id": pool.jobid, "phase": read.phase, **({"reason": read.reason} if read.reason else {})}
        except SyncError as error:
            job = {"id": pool.jobid, "phase": "", "reason": f"the job could not be read ({error.message})"}
    return Synced(answers.sync_status(target, pool, job))


def _configured(plan: Callable[[], "Reconcile"]) -> "Reconcile":
    """A pass the function's own settings describe: their mistakes are configuration errors."""
    try:
        return plan()
    except DocumentInvalid as error:
        raise ConfigurationError(
            f"SYNC_RECONCILE and CCE_SYNC_SPEC make no valid reconcile pass: {error.message}"
        ) from None


def _sync_change(invocation: _Invocation, change: "Change") -> Synced:
    """A CCE change event: reconcile the cluster (and pool) it names, else the configured clusters."""
    if not change.relevant:
        return Synced(answers.ignored(change.reason))
    options = dict(invocation.process.settings.reconcile or {})
    if change.cluster_id:
        options["clusters"] = [change.cluster_id]
    elif "clusters" not in options and not invocation.defaults.cluster_id:
        return Synced(answers.ignored(f"{change.reason}, and no cluster is configured to look at"))
    from . import plans

    plan = _configured(lambda: plans.plan_reconcile({"reconcile": options}, {}, invocation.defaults))
    if change.nodepool_id:  # the trace's pool, in its cluster or, failing that, in the configured ones
        plan = plan._replace(pool_ids=frozenset({change.nodepool_id}))
    return _reconcile(invocation, plan)


def _reconcile(invocation: _Invocation, plan: "Reconcile") -> Synced:
    """One reconcile pass: list each cluster's pools (a few at a time), start syncs where nodes lag."""
    from . import reconcile
    from .plans import Selection

    settings, client, deadline = invocation.process.settings, invocation.process.client, invocation.deadline
    allowlist, own, project = settings.allowed_targets, invocation.defaults.project_id, plan.project_id
    if not allowlist.reaches_project(own, project):
        raise TargetNotAllowed(f"no node pool of project {project} is in SYNC_ALLOWED_TARGETS")
    credential = invocation.credential(project)
    cluster_ids = list(plan.cluster_ids)
    if plan.every_cluster:
        cluster_ids = [
            c for c in client.list_clusters(project, credential, deadline) if allowlist.reaches(own, project, c)
        ]
    with_default = plan.include_default or (plan.pools is Selection.NAMES and DEFAULT_POOL in plan.names)

    def read(cluster_id: str) -> list[PoolState]:
        return client.list_nodepools(project, cluster_id, credential, deadline, with_default)

    def start(cluster_id: str, pool: PoolState) -> str:
        target = Target(project, cluster_id, pool.pool_id)
        invocation.refuse_unless_allowed(target)
        ids = {"project_id": project, "cluster_id": cluster_id, "nodepool_id": pool.pool_id}
        sync = validation.prepare({"spec": plan.spec, **ids}, {}, invocation.defaults)
        return client.sync(target, passwords.salt_body(sync.body), credential, deadline, before=pool).jobid

    started = time.perf_counter()
    reads = reconcile.read_clusters(cluster_ids, read, lambda c: not allowlist.reaches(own, project, c))
    now = time.time()
    closed_until = (
        settings.windows.closed_until(datetime.fromtimestamp(now, timezone.utc)) if settings.windows else None
    )
    gentle = reconcile.Gentleness(
        now,
        lambda jobid: client.read_job(project, jobid, credential, deadline),
        settings.failed_backoff_seconds,
        settings.stuck_after_seconds,
        closed_until.timestamp() if closed_until is not None else None,
        settings.reconcile_interval_seconds,
    )
    result = reconcile.run_pass(plan, reads, start, deadline, settings.target_min_seconds, gentle)
    if result.unreadable is not None:
        raise result.unreadable
    document = result.document
    if result.notable and settings.smn_topic_urn and not plan.dry_run:
        document = {**document, "notification": _notify(invocation, project, credential, result.notable)}
    _log_pass(invocation, document, (time.perf_counter() - started) * 1000)
    return Synced(document, result.http_status)


def _notify(
    invocation: _Invocation, project: str, credential: Credential, notable: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    """One SMN message for the pass; failing to notify never fails the pass: it is reported and logged."""
    from . import notify
    from .transport import TransportError

    settings = invocation.process.settings
    subject, message = notify.compose(project, notable)
    secrets = invocation.secrets()
    subject, message = logs.scrub(subject, secrets), logs.scrub(message, secrets)
    try:
        message_id = notify.publish(
            invocation.process.transport,
            settings.smn_endpoint,
            settings.smn_topic_urn,
            project,
            credential,
            subject,
            message,
            invocation.deadline,
        )
    except (TransportError, ValueError) as exc:
        logs.write(logging.WARNING, {"message": "notify-failed", "error": str(exc)[:200]}, secrets)
        return {"published": False, "items": len(notable), "error": str(exc)[:200]}
    return {"published": True, "items": len(notable), "message_id": message_id or None}


def _log_pass(invocation: _Invocation, document: dict[str, Any], duration_ms: float) -> None:
    """One line per action and one summary line per pass, for Log Tank Service to chart."""
    secrets = invocation.secrets()
    for cluster in document["clusters"]:
        for pool in cluster.get("pools", ()):
            if "action" in pool:
                fields = {"message": "reconcile-action", "cluster_id": cluster["cluster_id"], **pool}
                logs.write(logging.INFO, fields, secrets)
    summary = {"message": "reconcile-pass", **document["totals"], "duration_ms": round(duration_ms, 1)}
    logs.write(logging.INFO, summary, secrets)


def _fleet_documents(invocation: _Invocation, fleet: "Fleet") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The per-pool documents of a fleet, resolving a selection with CCE's node pool list (only for a cluster
    the allowlist reaches); and the results of names that matched no pool."""
    from .plans import Selection

    if fleet.selection is Selection.TARGETS:
        return list(fleet.documents), []
    allowlist = invocation.process.settings.allowed_targets
    if not allowlist.reaches(invocation.defaults.project_id, fleet.project_id, fleet.cluster_id):
        raise TargetNotAllowed(
            f"no node pool of cluster {fleet.cluster_id} of project {fleet.project_id} is in SYNC_ALLOWED_TARGETS"
        )
    credential = invocation.credential(fleet.project_id)
    with_default = fleet.include_default if fleet.selection is Selection.ALL else DEFAULT_POOL in fleet.names
    pools = invocation.process.client.list_nodepools(
        fleet.project_id, fleet.cluster_id, credential, invocation.deadline, with_default
    )
    if fleet.selection is Selection.ALL:
        chosen = [pool.pool_id for pool in pools if fleet.include_default or pool.pool_id != DEFAULT_POOL]
        unknown: list[str] = []
    else:
        by_name = {pool.name: pool.pool_id for pool in pools}
        chosen = [by_name[name] for name in fleet.names if name in by_name]
        unknown = [name for name in fleet.names if name not in by_name]
    base = {**fleet.shared, "project_id": fleet.project_id, "cluster_id": fleet.cluster_id}
    missing = [answers.no_such_pool(fleet.cluster_id, name) for name in unknown]
    return [{**base, "nodepool_id": pool_id} for pool_id in chosen], missing


def _sync_fleet(invocation: _Invocation, fleet: "Fleet") -> Synced:
    """Each target in turn while time allows; one result per target, the unreached named for a retry."""
    documents, results = _fleet_documents(invocation, fleet)
    not_reached: list[dict[str, Any]] = []
    first_error: SyncError | None = None
    for index, document in enumerate(documents):
        if invocation.deadline.remaining() < invocation.process.settings.target_min_seconds:
            not_reached = [{k: d.get(k) for k in ("cluster_id", "nodepool_id")} for d in documents[index:]]
            break
        try:
            one = _sync_target(invocation, validation.prepare(document, {}, invocation.defaults))
            results.append(answers.target_result(document, one.document, None))
        except SyncError as error:
            results.append(answers.target_result(document, None, error))
            first_error = first_error or error
    summary = answers.fleet(results, not_reached)
    if summary["status"] == answers.Status.SOME_ACCEPTED:
        return Synced(summary, 207)
    if summary["status"] == answers.Status.NONE_ACCEPTED:
        return Synced(summary, first_error.status if first_error else 400)
    return Synced(summary)


def _log(outcome: Outcome, secrets: tuple[str, ...]) -> None:
    level = logging.WARNING if outcome.error is not None else logging.INFO
    logs.write(level, answers.log_fields(outcome), secrets)


def _scrubbed(result: _Result, secrets: tuple[str, ...]) -> _Result:
    """A result safe to keep for duplicate deliveries (which have their own, other credentials)."""
    outcome, target = result
    if isinstance(outcome, SyncError):
        return outcome, target
    return Synced(logs.scrub(outcome.document, secrets), outcome.http_status), target


def _one(
    process: _Process, event: dict[str, Any], trigger: Trigger, context: RuntimeContext, started: float
) -> Outcome:
    """Unwrap and sync one (non-batch) event into its outcome."""
    invocation = _Invocation(process, context)
    try:
        unwrapped = triggers.unwrap(event, trigger, process.settings.max_body_bytes)
    except SyncError as error:
        correlation_id = triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
        return answers.conclude(trigger, error, None, process.secrets, correlation_id, context.request_id, started)
    result: _Result
    if unwrapped.event_id is not None:
        try:
            result = process.recent.once(
                unwrapped.event_id,
                lambda: _scrubbed(_sync(invocation, unwrapped), invocation.secrets()),
                invocation.deadline,
                keep=lambda r: not (isinstance(r[0], SyncError) and r[0].transient),
            )
        except UpstreamTimeout as error:
            result = error, None
    else:
        result = _sync(invocation, unwrapped)
    return answers.conclude(
        trigger, result[0], result[1], invocation.secrets(), unwrapped.correlation_id, context.request_id, started
    )


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
    trigger = Trigger.DIRECT
    try:
        trigger = triggers.recognize(event)
        process = _current(view)
        batch = triggers.unwrap_batch(event) if trigger is Trigger.EVENTGRID_BATCH else []
    except SyncError as error:
        correlation_id = triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
        outcome = answers.conclude(trigger, error, None, (), correlation_id, view.request_id, started)
        _log(outcome, ())
        return answers.deliver(outcome)
    if trigger is Trigger.EVENTGRID_BATCH:
        outcomes = []
        for item in batch:
            if isinstance(item, dict) and "specversion" in item:
                outcome = _one(process, item, Trigger.EVENTGRID, view, started)
            else:
                not_one = triggers.not_a_cloudevent(item)
                outcome = answers.conclude(Trigger.EVENTGRID, not_one, None, (), "", view.request_id, started)
            _log(outcome, process.secrets)
            outcomes.append(outcome)
        return answers.deliver_batch(outcomes)
    outcome = _one(process, event, trigger, view, started)
    _log(outcome, process.secrets)
    return answers.deliver(outcome)


def initializer(context: Any = None) -> None:
    """FunctionGraph initializer: read the settings, compile the schema and, for IAM passwords, fetch the token."""
    view = RuntimeContext(context)
    process = _current(view)
    validation.warm()
    project_id = process.settings.defaults(view.project_id).project_id
    if not project_id:
        return
    try:
        credential = resolve(process.settings, view, project_id, process.transport, process.tokens, view.deadline(500))
        if isinstance(credential, IamPasswordToken):
            credential.token()
    except (ConfigurationError, UpstreamError) as error:
        logs.write(logging.WARNING, {"message": "initializer", "warning": error.message}, process.secrets)
