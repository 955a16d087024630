"""The retry policy: how one failed exchange with CCE is read, and how long to wait before the next.

At most one sync is accepted per request: a POST is resent only when CCE certainly did not act.

| failure                                              | did CCE act? | what the client does                        |
|------------------------------------------------------|--------------|---------------------------------------------|
| not sent: DNS, connect, TLS handshake, our headers   | no           | retry with backoff                          |
| 429 CCE.01429002 (locked by a running operation)     | no           | report "already syncing": no retry, no alarm|
| 429 FSS.0429 "Function Disabled" (FunctionGraph)     | no           | report: final, no retry                     |
| 429 CCE.02429001, APIG.0308 (throttled), other 429,  | no           | retry after Retry-After (capped) or backoff |
| 503                                                  |              |                                             |
| 401 with a cached IAM token                          | no           | drop the token, fetch a new one, retry once |
| anything once the request is being written (a read  | maybe        | GET the node pool: a sync running ->        |
| timeout, a reset, TLS, a malformed answer header),   |              |                                             |
| 500, 502, 504, an answer too large to read           |              | accepted; otherwise ambiguous: reported,    |
|                                                      |              | never resent (the next attempt's busy guard |
|                                                      |              | sees what CCE did by then)                  |
| other 4xx, a redirect                                | no           | report                                      |

Reads (node pool, node pool list, job) are safe to repeat: their ambiguous failures are simply retried.
Every wait fits in the deadline; RETRY_MAX_ATTEMPTS bounds the attempts. Retry-After is read as ASCII
digits (seconds) or an HTTP date, nothing else.
"""

from __future__ import annotations

import email.utils
import random
import re
from enum import Enum
from typing import NamedTuple

from .errors import LOCKED, THROTTLED, is_disabled, is_locked
from .runtime import Deadline
from .transport import Failure, Reply, TransportError

__all__ = ["Decision", "Kind", "RetryPolicy", "classify", "error_code", "parse_retry_after"]

_NOT_ACTED_STATUS = frozenset({429, 503})
_AMBIGUOUS_STATUS = frozenset({500, 502, 504})
_SECONDS = re.compile(r"[0-9]{1,9}")


class Kind(str, Enum):
    """What one failed attempt says about the server's side."""

    NOT_ACTED = "not-acted"  # safe to send again
    AMBIGUOUS = "ambiguous"  # the server may have acted
    FINAL = "final"  # trying again will not help


class Decision(NamedTuple):
    """How the policy reads one failed attempt."""

    kind: Kind
    reason: str
    retry_after: float | None = None
    throttled: bool = False  # CCE or its gateway asked for fewer requests


def error_code(reply: Reply) -> str:
    """The service's error code in an answer (CCE's `errorCode`, the gateway's `error_code`), or ""."""
    body = reply.json_or_none()
    code = body.get("errorCode") or body.get("error_code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else ""


def error_message(reply: Reply) -> str:
    """The service's error message in an answer (`errorMessage`, `error_msg`), or ""."""
    body = reply.json_or_none()
    message = body.get("errorMessage") or body.get("error_msg") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: ASCII digits or an HTTP date; anything else is None."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return max(0.0, parsed.timestamp() - now)


def classify(outcome: Reply | TransportError, now: float) -> Decision:
    """The table above, as one function (tested row by row)."""
    if isinstance(outcome, TransportError):
        if outcome.failure is Failure.NOT_SENT:
            return Decision(Kind.NOT_ACTED, f"{outcome.reason} before the request was sent")
        if outcome.failure is Failure.REDIRECT:
            return Decision(Kind.FINAL, f"a redirect ({outcome.reason}), never followed")
        return Decision(Kind.AMBIGUOUS, f"{outcome.reason} after the request was sent")
    if is_locked(outcome.status, error_code(outcome)):
        return Decision(Kind.FINAL, f"HTTP 429 {LOCKED}: locked by a running operation")
    if is_disabled(outcome.status, error_code(outcome), error_message(outcome)):
        return Decision(Kind.FINAL, "HTTP 429: the function is disabled")
    if outcome.status in _NOT_ACTED_STATUS:
        retry_after = parse_retry_after(outcome.headers.get("Retry-After"), now)
        return Decision(
            Kind.NOT_ACTED, f"HTTP {outcome.status}", retry_after, throttled=error_code(outcome) in THROTTLED
        )
    if outcome.status in _AMBIGUOUS_STATUS:
        return Decision(Kind.AMBIGUOUS, f"HTTP {outcome.status}")
    return Decision(Kind.FINAL, f"HTTP {outcome.status}")


class RetryPolicy(NamedTuple):
    """How many attempts, and how long between them: exponential backoff with full jitter, or Retry-After.
    Its values are the settings' (RETRY_*: their defaults are Settings')."""

    max_attempts: int
    base_seconds: float
    cap_seconds: float
    retry_after_cap_seconds: float

    def wait(self, attempt: int, decision: Decision) -> float:
        if decision.retry_after is not None:
            return min(decision.retry_after, self.retry_after_cap_seconds)
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))

    def allows(self, attempt: int, wait: float, deadline: Deadline, attempt_seconds: float) -> bool:
        """Another attempt after `attempt` ones, waiting `wait`, when it still fits before the deadline."""
        return attempt < self.max_attempts and deadline.remaining() - wait > attempt_seconds
