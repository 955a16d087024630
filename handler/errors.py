"""Every error the function reports, in one hierarchy; each class knows its HTTP status and whether it is transient.

SyncError
├── InternalError             500  a bug: API Gateway still gets a well-formed answer
├── ConfigurationError        500  the function's own settings or credentials are wrong
├── InputError                400  the event or document cannot be synced as it is
│   ├── EventError            400  unrecognisable event, body that is not JSON
│   ├── DocumentInvalid       400  schema or rule violations, with one FieldError each
│   ├── MethodNotAllowed      405  API Gateway method other than POST (sync) or GET (status)
│   ├── PayloadTooLarge       413  API Gateway body over the limit
│   ├── NoPoolNamed           404  a fleet names a node pool its cluster does not have
│   └── UnsupportedMediaType  415  API Gateway content type that is not JSON
├── TargetNotAllowed          403  the pool, cluster or project is outside SYNC_ALLOWED_TARGETS
├── OverridesDenied           403  the document lifts a guard where SYNC_OVERRIDES=deny
├── SyncInProgress            409  skipped: the node pool is still synchronizing (the busy guard, or CCE's 429 LOCKED)
├── Held                      409  deferred: a rollout guard holds the start (nothing was sent)
│   ├── OutsideWindow         409  no maintenance window (SYNC_WINDOWS) is open now
│   ├── Halted                409  the configured pass is halted (halt_after_failures)
│   ├── WaveClosed            409  an earlier wave of the configured pass still has work (waves)
│   └── BudgetReached         409  the fleet's budget of pools syncing at once is spent (max_syncing)
├── JobFailed                 502  CCE accepted the sync, and its job ended Failed
├── CCERejected               4xx  CCE refused the request (404, 409, 429 ... passed through)
│   └── CCECredentialsRejected 502 CCE answered 401/403: the function's credentials or permissions
├── UpstreamError             502  transient: CCE or IAM 5xx, malformed answer, connection failure
│   ├── IdentityUnavailable   502  transient: IAM did not issue a token
│   └── UpstreamTimeout       504  transient: no answer in time
└── AmbiguousFailure          502  transient: CCE may have acted; not resent (see the retry table)

Messages never carry secrets: callers build them from names and IDs only. Every `FUNC.*` code is stated here
and nowhere else (`codes()` lists them; docs/answers.md's table is checked against it).
"""

from typing import Any, NamedTuple

__all__ = [
    "LOCKED",
    "MAX_ERRORS_FOUND",
    "MAX_ERRORS_SHOWN",
    "THROTTLED",
    "AmbiguousFailure",
    "BudgetReached",
    "CCECredentialsRejected",
    "CCERejected",
    "ConfigurationError",
    "DocumentInvalid",
    "EventError",
    "FieldError",
    "Halted",
    "Held",
    "IdentityUnavailable",
    "InputError",
    "InternalError",
    "JobFailed",
    "MethodNotAllowed",
    "NoPoolNamed",
    "OutsideWindow",
    "OverridesDenied",
    "PayloadTooLarge",
    "SyncError",
    "SyncInProgress",
    "TargetNotAllowed",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamTimeout",
    "WaveClosed",
    "codes",
    "is_disabled",
    "is_locked",
    "kind_of",
]


# CCE's 429s (the CCE API reference's error codes, as transcribed in schemas/source/reference.md, "Errors").
LOCKED = "CCE.01429002"  # the resource is locked by another request: a sync (or another operation) runs
THROTTLED = frozenset({"CCE.02429001", "APIG.0308"})  # too many requests: wait (Retry-After) and try again


# FunctionGraph answers 429 FSS.0429 both for "Too many requests" (throttling: wait and retry) and for "Function
# Disabled" (final: retrying cannot help); the message tells them apart (FunctionGraph API reference, error codes).
FUNCTION_DISABLED = "FSS.0429"


def is_disabled(status: int, code: str, message: str) -> bool:
    """FunctionGraph's 429 for a disabled function: final, unlike its throttling 429 of the same code."""
    return status == 429 and code == FUNCTION_DISABLED and "disabled" in message.lower()


def is_locked(status: int, code: str) -> bool:
    """CCE's 429 LOCKED: a sync (or another operation) runs on the resource; the one place that recognises it."""
    return status == 429 and code == LOCKED


def kind_of(value: Any) -> str:
    """How messages name a JSON value: by its type, never its content (which may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")


class FieldError(NamedTuple):
    """One problem in a document: a JSON Pointer to the field and a sentence about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


class SyncError(Exception):
    """Base class: `status` is the API Gateway status, `transient` says whether trying later may succeed."""

    status: int = 500
    transient: bool = False
    code: str = "FUNC.0500"

    def __init__(self, message: str, *, request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def with_message(self, message: str) -> "SyncError":
        """The same error (class, status, code, every field) with another message: how a scrubbed copy is made."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        Exception.__init__(clone, message)
        clone.message = message
        return clone


class InternalError(SyncError):
    """A bug: what API Gateway is told instead of a traceback (other triggers see the exception raised)."""

    status, code = 500, "FUNC.INTERNAL"

    def __init__(self) -> None:
        super().__init__("internal error")


class ConfigurationError(SyncError):
    status, code = 500, "FUNC.CONFIG"


class InputError(SyncError):
    status, code = 400, "FUNC.0400"


class EventError(InputError):
    code = "FUNC.EVENT"


MAX_ERRORS_SHOWN = 20  # an answer lists this many field errors, and says how many more there are
MAX_ERRORS_FOUND = 1000  # validation stops looking after this many: the work per request stays bounded


class DocumentInvalid(InputError):
    """The document's field errors: the first MAX_ERRORS_SHOWN, and a count of the rest."""

    code = "FUNC.INVALID"

    def __init__(self, errors: list[FieldError]) -> None:
        count = len(errors)
        total = f"at least {count} errors" if count >= MAX_ERRORS_FOUND else f"{count} error{'s' * (count != 1)}"
        summary = "; ".join(str(e) for e in errors[:3]) + ("; ..." if count > 3 else "")
        super().__init__(f"the sync request is invalid ({total}): {summary}")
        self.errors = errors[:MAX_ERRORS_SHOWN]
        self.omitted = count - len(self.errors)


class MethodNotAllowed(InputError):
    status, code = 405, "FUNC.METHOD"


class PayloadTooLarge(InputError):
    status, code = 413, "FUNC.TOO_LARGE"


class UnsupportedMediaType(InputError):
    status, code = 415, "FUNC.MEDIA_TYPE"


class NoPoolNamed(InputError):
    """A fleet selects a node pool by a name its cluster does not list."""

    status, code = 404, "FUNC.NO_POOL"

    def __init__(self, name: str) -> None:
        super().__init__(f"the cluster has no node pool named {name[:64]!r}")


class OverridesDenied(SyncError):
    """The document lifts a guard (ignore_*) where SYNC_OVERRIDES=deny makes the guards absolute."""

    status, code = 403, "FUNC.OVERRIDES"


class TargetNotAllowed(SyncError):
    status, code = 403, "FUNC.FORBIDDEN"


class SyncInProgress(SyncError):
    """Not an error of CCE's: the guard skipped a sync that would stack on a running one."""

    status, code = 409, "FUNC.BUSY"

    def __init__(self, jobid: str) -> None:
        running = f" (job {jobid})" if jobid else ""
        super().__init__(f"skipped: sync in progress{running}")
        self.jobid = jobid


class Held(SyncError):
    """Not a failure: a rollout guard holds the start, and nothing was sent; the message names the guard."""

    status, code = 409, "FUNC.HELD"


class OutsideWindow(Held):
    """A sync may start only inside a maintenance window; `next_window` says when (UTC)."""

    code = "FUNC.WINDOW"

    def __init__(self, next_window: str, configured: str = "") -> None:
        also = f" ({configured} as configured)" if configured else ""
        super().__init__(f"deferred: outside every maintenance window (SYNC_WINDOWS); next opens {next_window}{also}")
        self.next_window = next_window


class Halted(Held):
    """The configured pass is halted: too many of its pools' latest syncs failed (halt_after_failures)."""

    code = "FUNC.HALTED"


class WaveClosed(Held):
    """The pool's wave is not open: an earlier wave of the configured pass still has work (waves)."""

    code = "FUNC.WAVE_CLOSED"


class BudgetReached(Held):
    """The fleet's budget of pools syncing at once (max_syncing) is spent."""

    code = "FUNC.BUDGET"


class JobFailed(SyncError):
    status, code = 502, "FUNC.JOB_FAILED"

    def __init__(self, jobid: str, reason: str, *, request_id: str = "") -> None:
        super().__init__(f"the sync job {jobid} failed: {reason or 'no reason given'}", request_id=request_id)
        self.jobid = jobid


class CCERejected(SyncError):
    """CCE (or another service) answered 4xx; the status and its own error code are passed through. A 429 is
    transient, except FunctionGraph's for a disabled function."""

    def __init__(self, status: int, code: str, message: str, *, request_id: str = "") -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.code = code
        self.transient = status == 429 and not is_disabled(status, code, message)


class CCECredentialsRejected(CCERejected):
    """CCE answered 401/403: a fault of the function's own credentials, so the caller sees 502."""

    def __init__(self, status: int, code: str, message: str, *, request_id: str = "") -> None:
        super().__init__(status, code, message, request_id=request_id)
        self.upstream_status = status
        self.status = 502


class UpstreamError(SyncError):
    status, transient, code = 502, True, "FUNC.UPSTREAM"

    def __init__(self, message: str, *, request_id: str = "", code: str = "") -> None:
        super().__init__(message, request_id=request_id)
        if code:  # the upstream service's own code (CCE.*, SMN.*), passed through
            self.code = code


class IdentityUnavailable(UpstreamError):
    code = "FUNC.IAM"


class UpstreamTimeout(UpstreamError):
    status, code = 504, "FUNC.TIMEOUT"


class AmbiguousFailure(UpstreamError):
    code = "FUNC.AMBIGUOUS"


def codes() -> dict[str, type[SyncError]]:
    """Every code of the function's own (`FUNC.*`) and the class that carries it: the one table of codes."""
    found: dict[str, type[SyncError]] = {}
    pending: list[type[SyncError]] = [SyncError]
    while pending:
        cls = pending.pop()
        if cls.code.startswith("FUNC.") and "code" in vars(cls):
            found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return dict(sorted(found.items()))
