"""The typed answer every request kind renders to, and the pieces of rendering the kinds share.

A kind's renderer turns its report into one `Answer`: the status word, the HTTP status, the body and the facts
its log line carries. `answers` delivers an Answer (API Gateway envelope, batches, the log line) without reading
its body back. `Description` is what `python -m local validate` prints of an intent.
"""

from enum import Enum
from typing import Any, NamedTuple

from .errors import CCECredentialsRejected, DocumentInvalid, Held, JobFailed, OutsideWindow, SyncError, SyncInProgress
from .model import Target

__all__ = ["SUCCEEDED", "Answer", "Description", "Status", "error_body", "problems", "status_of", "target_fields"]


class Status(str, Enum):
    """The one word every answer and log line carries."""

    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"  # with wait: the job ended Success
    RUNNING = "running"  # with wait: the job still ran when time ran out
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"  # the busy guard: a sync was already running
    DEFERRED = "deferred"  # a rollout guard holds the start (a window, the halt, a wave, the budget)
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


# The statuses that mean "done as asked": a fleet counts its targets with them, the CLI's exit code follows them.
SUCCEEDED = frozenset(
    {
        Status.ACCEPTED,
        Status.SUCCEEDED,
        Status.RUNNING,
        Status.DRY_RUN,
        Status.IN_SYNC,
        Status.ALL_ACCEPTED,
        Status.RECONCILED,
        Status.IGNORED,
        Status.DISPATCHED,
    }
)


class Answer(NamedTuple):
    """One request's answer: its status, the rest of its document, its HTTP status, the log lines it adds (a
    pass's actions) and what the invocation's log line says of it."""

    status: Status
    body: dict[str, Any]
    http_status: int = 200
    log_lines: tuple[dict[str, Any], ...] = ()
    jobid: str | None = None
    cce_request_id: str | None = None
    targets: tuple[dict[str, Any], ...] = ()  # a fleet's: each target's pool and status
    reason: str | None = None
    totals: dict[str, int] | None = None  # a pass's

    @property
    def document(self) -> dict[str, Any]:
        """The plain answer (API Gateway's body is made from it)."""
        return {"status": self.status.value, **self.body}

    @classmethod
    def of_error(cls, error: SyncError) -> "Answer":
        """The answer of a request that failed: the error's status word, code and message."""
        body = {**error_body(error), "http_status": error.status}
        jobid = getattr(error, "jobid", "") or None
        return cls(status_of(error), body, error.status, jobid=jobid, cce_request_id=error.request_id)


def target_fields(target: Target) -> dict[str, str]:
    """The target's IDs, keyed as in a request."""
    return dict(zip(Target._fields, target, strict=True))


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
    if isinstance(error, Held):
        return Status.DEFERRED
    if isinstance(error, JobFailed):
        return Status.JOB_FAILED
    return Status.FAILED if error.transient else Status.REJECTED


class Description(NamedTuple):
    """What `validate` says of a request: valid or not, what it is, its problems (one line each, with the
    handler's error code) and the defaults the environment supplied."""

    valid: bool
    kind: str
    problems: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()


def problems(error: SyncError, where: str = "") -> tuple[str, ...]:
    """One line per problem, each ending with the error code the handler answers."""
    prefix = f"{where}: " if where else ""
    if isinstance(error, DocumentInvalid):
        lines = [f"{prefix}{e} [{error.code}]" for e in error.errors]
        return (*lines, *((f"{prefix}... and {error.omitted} more [{error.code}]",) if error.omitted else ()))
    return (f"{prefix}{error.message} [{error.code}]",)
