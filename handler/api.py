"""The one request path of every service call: the transport, the retry policy of retry.py, the single retry
with a new token after a 401 on a cached one, and one translation of failures into errors (ApiClient)."""

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import logs
from .credentials import Credential
from .errors import (
    CCECredentialsRejected,
    CCERejected,
    ConfigurationError,
    SyncError,
    SyncInProgress,
    UpstreamError,
    UpstreamTimeout,
    is_locked,
)
from .runtime import Deadline
from .settings import Settings
from .transport import Reply, Transport, TransportError, Unreadable, as_sync_error

if TYPE_CHECKING:  # the retry policy is imported on the first failure: the valid path never needs it
    from .retry import Decision, RetryPolicy

__all__ = ["TOKEN_KINDS", "ApiClient"]

TOKEN_KINDS = frozenset({"token", "password", "agency-token"})  # credentials that send X-Auth-Token
_MAX_MESSAGE = 500  # characters of a service's error message kept, after secrets are masked


def _error_fields(body: Any, secrets: tuple[str, ...]) -> tuple[str, str]:
    """CCE's error code and message; secrets are masked before the message is cut, so none escapes half-cut."""
    if not isinstance(body, dict):
        return "", ""
    code = body.get("errorCode") or body.get("error_code") or ""
    message = body.get("errorMessage") or body.get("error_msg") or body.get("message") or ""
    nested = body.get("error")
    if not code and isinstance(nested, dict):
        code, message = str(nested.get("code", "")), str(nested.get("message", ""))
    return str(logs.scrub(str(code), secrets))[:64], str(logs.scrub(str(message), secrets))[:_MAX_MESSAGE]


def _rejection(reply: Reply, secrets: tuple[str, ...], service: str = "CCE") -> SyncError:
    code, message = _error_fields(reply.json_or_none(), secrets)
    code = code or f"{service}.{reply.status}"
    message = message or f"{service} answered HTTP {reply.status}"
    if is_locked(reply.status, code):  # a sync (or another operation) runs: nothing to retry
        return SyncInProgress("")
    if reply.status in (401, 403):
        return CCECredentialsRejected(reply.status, code, message, request_id=reply.request_id)
    if 400 <= reply.status < 500:
        return CCERejected(reply.status, code, message, request_id=reply.request_id)
    if reply.status == 504:
        return UpstreamTimeout(f"{service} answered HTTP 504: {message}", request_id=reply.request_id, code=code)
    return UpstreamError(f"{service} answered HTTP {reply.status}: {message}", request_id=reply.request_id, code=code)


class ApiClient:
    """Requests to one region's services, every exchange through the one transport and the one retry policy."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        user_agent: str,
        region: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cce = settings.endpoint("cce", region)
        if not self._cce:
            raise ConfigurationError("no CCE endpoint: set HUAWEICLOUD_SDK_REGION or CCE_ENDPOINT")
        self._settings, self._transport, self._sleep = settings, transport, sleep
        self._user_agent, self._secrets, self.region = user_agent, settings.secrets(), region or settings.region

    @functools.cached_property
    def _policy(self) -> "RetryPolicy":
        from .retry import RetryPolicy

        settings = self._settings
        return RetryPolicy(
            settings.retry_max_attempts,
            settings.retry_base_seconds,
            settings.retry_cap_seconds,
            settings.retry_after_cap_seconds,
        )

    def _headers(self, project_id: str) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-Project-Id": project_id, "User-Agent": self._user_agent}

    def _exchange(
        self, method: str, url: str, project_id: str, body: bytes | None, credential: Credential, deadline: Deadline
    ) -> Reply:
        """One exchange, plus the single retry with a new token after a 401 on a cached one."""
        headers = self._headers(project_id)
        reply = self._transport.exchange(
            method, url, {**headers, **credential.authorize(method, url, headers, body or b"")}, body, deadline
        )
        if reply.status == 401 and credential.refresh():
            logs.write(logging.INFO, {"message": "token-refresh", "reason": "CCE answered 401"}, credential.secrets())
            reply = self._transport.exchange(
                method, url, {**headers, **credential.authorize(method, url, headers, body or b"")}, body, deadline
            )
        return reply

    def _request(
        self,
        method: str,
        url: str,
        project_id: str,
        data: bytes | None,
        credential: Credential,
        deadline: Deadline,
        settle: Callable[["Decision"], bool] | None = None,
        service: tuple[str, str] = ("CCE", "CCE_ENDPOINT"),
    ) -> tuple[Reply | None, int]:
        """One request under the retry policy: the 2xx reply and the attempts it took.

        `settle` decides an ambiguous failure: True means the server acted (no reply), otherwise it raises.
        Without it, as for reads, an ambiguous failure is simply tried again. `service` names the server and
        its endpoint variable in errors.
        """
        attempt = 0
        while True:
            attempt += 1
            outcome: Reply | TransportError
            try:
                outcome = self._exchange(method, url, project_id, data, credential, deadline)
            except TransportError as exc:
                outcome = exc
            if isinstance(outcome, Reply) and 200 <= outcome.status < 300:
                return outcome, attempt
            from .retry import Kind, classify

            decision = classify(outcome, time.time())
            if decision.throttled:
                from .pacing import note_throttled

                note_throttled()
            if decision.kind is Kind.FINAL:
                raise self._final_error(outcome, decision, attempt, credential, service)
            if decision.kind is Kind.AMBIGUOUS and settle is not None and settle(decision):
                return None, attempt
            wait = self._policy.wait(attempt, decision)
            if not self._policy.allows(attempt, wait, deadline, self._settings.connect_timeout_seconds):
                raise self._final_error(outcome, decision, attempt, credential, service)
            fields = {"message": "retry", "method": method, "attempt": attempt, "reason": decision.reason}
            logs.write(logging.WARNING, {**fields, "wait_s": round(wait, 3)}, credential.secrets())
            from .pacing import wait as paced_wait

            paced_wait(self._sleep, wait)

    def get_json(self, url: str, project_id: str, credential: Credential, deadline: Deadline) -> Any:
        """GET a CCE resource; reading is safe to repeat, so every failure but a final 4xx is retried."""
        reply, _ = self._request("GET", url, project_id, None, credential, deadline)
        assert reply is not None
        try:
            return reply.json()
        except Unreadable as exc:
            raise UpstreamError(f"CCE answered HTTP {reply.status} with {exc}", request_id=reply.request_id) from None

    def _final_error(
        self,
        outcome: Reply | TransportError,
        decision: "Decision",
        attempts: int,
        credential: Credential,
        service: tuple[str, str],
    ) -> SyncError:
        tried = f"after {attempts} attempt{'s' * (attempts != 1)}"
        if isinstance(outcome, Reply):
            error = _rejection(outcome, (*self._secrets, *credential.secrets()), service[0])
            if attempts > 1:
                error.message = f"{error.message} ({tried})"
            return error
        return as_sync_error(outcome, service[0], service[1], tried)
