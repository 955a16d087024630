"""The CCE HTTP client and its retry policy: one sync is sent once, and resent only when CCE certainly did not act.

| failure                                      | did CCE act? | what the client does                               |
|----------------------------------------------|--------------|----------------------------------------------------|
| connection refused, DNS, TLS, connect timeout| no           | retry with backoff                                 |
| 429, 503                                     | no           | retry after Retry-After (capped) or backoff        |
| 401 with a cached IAM token                  | no           | drop the token, fetch a new one, retry once        |
| read timeout, reset after sending, 500/502/504| maybe       | GET the node pool: sync running -> accepted;       |
|                                              |              | idle -> retry; check failed -> transient, no resend|
| other 4xx                                    | no           | report (passed through)                            |
Every wait and request fits in the deadline; RETRY_MAX_ATTEMPTS bounds the POSTs.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from . import logs
from .credentials import Credential
from .errors import (
    AmbiguousFailure,
    CCECredentialsRejected,
    CCERejected,
    ConfigurationError,
    EventError,
    SyncError,
    UpstreamError,
    UpstreamTimeout,
)
from .passwords import mask_body
from .runtime import Deadline
from .settings import Settings
from .validation import ID_PATTERN, Target

__all__ = ["Accepted", "CCEClient", "RetryDecision", "classify", "new_session"]

SYNC_CONDITION = "ConfigurationSynchronizing"
_AMBIGUOUS_STATUS = frozenset({500, 502, 504})
_NOT_ACTED_STATUS = frozenset({429, 503})
_TOKEN_KINDS = frozenset({"token", "password", "agency-token"})  # credentials that send X-Auth-Token
_POLL_RESERVE_SECONDS = 0.25  # one job read on loopback or in-region takes far less
# Node pool reads ask for the whole pool's state: without advanceStatus=true `status.conditions` reflect only
# the default scaling group (huaweicloudsdkcce ShowNodePoolRequest / ListNodePoolsRequest, `advance_status`).
# https://github.com/huaweicloud/huaweicloud-sdk-python-v3/blob/master/huaweicloud-sdk-cce/huaweicloudsdkcce/v3/model/show_node_pool_request.py
_WHOLE_POOL = "advanceStatus=true"
# ListNodePools hides DefaultPool unless asked (`show_default_node_pool`, list_node_pools_request.py, same SDK).
_WITH_DEFAULT_POOL = "showDefaultNodePool=true"


def new_session(user_agent: str) -> requests.Session:
    """One session per process: connection reuse, no proxies or netrc from the environment, our User-Agent."""
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = user_agent
    # Multi-concurrency instances run invocations in threads: one pooled connection each, not ten in all.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class Accepted(NamedTuple):
    """CCE accepted the sync; `jobid` is empty when CCE answered with an empty body."""

    jobid: str
    request_id: str
    attempts: int = 1
    confirmed_after_ambiguity: bool = False


class Answer(NamedTuple):
    """One HTTP answer from CCE, read."""

    status: int
    body: Any
    request_id: str
    headers: Mapping[str, str] = MappingProxyType({})


class RetryDecision(NamedTuple):
    """How the policy reads one failed attempt."""

    kind: str  # "not-acted" | "ambiguous" | "final"
    reason: str
    retry_after: float | None = None


def _parse_retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - now)


def classify(outcome: Answer | requests.RequestException) -> RetryDecision:
    """The retry table above, as one function (tested row by row)."""
    if isinstance(outcome, requests.RequestException):
        name = type(outcome).__name__
        if isinstance(outcome, (requests.ConnectTimeout, requests.exceptions.SSLError)):
            return RetryDecision("not-acted", f"{name} before the request was sent")
        reason = outcome.args[0] if outcome.args else None
        if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
            return RetryDecision("not-acted", "connection failed before the request was sent")
        if isinstance(outcome, (requests.ReadTimeout, requests.ConnectionError)):
            return RetryDecision("ambiguous", f"{name} after the request was sent")
        return RetryDecision("final", name)
    if outcome.status in _NOT_ACTED_STATUS:
        retry_after = _parse_retry_after(outcome.headers.get("Retry-After"), time.time())
        return RetryDecision("not-acted", f"HTTP {outcome.status}", retry_after)
    if outcome.status in _AMBIGUOUS_STATUS:
        return RetryDecision("ambiguous", f"HTTP {outcome.status}")
    return RetryDecision("final", f"HTTP {outcome.status}")


def _error_fields(body: Any) -> tuple[str, str]:
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error_code") or ""
        message = body.get("errorMessage") or body.get("error_msg") or body.get("message") or ""
        nested = body.get("error")
        if not code and isinstance(nested, dict):
            code, message = str(nested.get("code", "")), str(nested.get("message", ""))
        return str(code)[:64], str(message)[:500]
    return "", ""


def _rejection(answer: Answer) -> SyncError:
    code, message = _error_fields(answer.body)
    code = code or f"CCE.{answer.status}"
    message = message or f"CCE answered HTTP {answer.status}"
    if answer.status in (401, 403):
        return CCECredentialsRejected(answer.status, code, message, request_id=answer.request_id)
    if 400 <= answer.status < 500:
        return CCERejected(answer.status, code, message, request_id=answer.request_id)
    if answer.status == 504:
        return UpstreamTimeout(f"CCE answered HTTP 504: {message}", request_id=answer.request_id, code=code)
    return UpstreamError(f"CCE answered HTTP {answer.status}: {message}", request_id=answer.request_id, code=code)


def _segment(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise EventError("an ID is not valid for a URL")
    return quote(value, safe="")


class CCEClient:
    """Talks to CCE for one process: a shared session, no redirects, timeouts within the deadline."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        user_agent: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.cce_endpoint:
            raise ConfigurationError("no CCE endpoint: set HUAWEICLOUD_SDK_REGION or CCE_ENDPOINT")
        self._settings, self._session, self._sleep = settings, session, sleep
        self._user_agent = user_agent

    def _project_url(self, project_id: str) -> str:
        return f"{self._settings.cce_endpoint}/api/v3/projects/{_segment(project_id)}"

    def nodepool_url(self, target: Target) -> str:
        return (
            f"{self._project_url(target.project_id)}/clusters/{_segment(target.cluster_id)}"
            f"/nodepools/{_segment(target.nodepool_id)}"
        )

    def sync_url(self, target: Target) -> str:
        return self.nodepool_url(target) + "/operation/upgrade"

    def _headers(self, project_id: str) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-Project-Id": project_id, "User-Agent": self._user_agent}

    def preview(self, target: Target, body: dict[str, Any], credential: Credential) -> dict[str, Any]:
        """The request a sync would send, with every secret masked; nothing is sent."""
        url, headers = self.sync_url(target), self._headers(target.project_id)
        if credential.kind in _TOKEN_KINDS:
            headers["X-Auth-Token"] = logs.MASK
        else:
            data = json.dumps(body, separators=(",", ":")).encode()
            for name, value in credential.authorize("POST", url, headers, data).items():
                headers[name] = logs.MASK if name in ("Authorization", "X-Security-Token") else value
        return {"method": "POST", "url": url, "headers": headers, "body": mask_body(body)}

    def _send(
        self, method: str, url: str, project_id: str, body: bytes | None, credential: Credential, deadline: Deadline
    ) -> Answer:
        """One HTTP exchange; raises requests exceptions for the policy to read, maps nothing else."""
        settings = self._settings
        if deadline.remaining() < 0.05:
            raise UpstreamTimeout("no time left in the invocation to call CCE")
        headers = self._headers(project_id)
        headers.update(credential.authorize(method, url, headers, body or b""))
        response = self._session.request(
            method,
            url,
            data=body,
            headers=headers,
            timeout=(deadline.cap(settings.connect_timeout_seconds), deadline.cap(settings.read_timeout_seconds)),
            allow_redirects=False,
        )
        request_id = response.headers.get("X-Request-Id", "")[:128]
        if 300 <= response.status_code < 400:
            raise ConfigurationError(
                f"CCE answered with a redirect (HTTP {response.status_code}), which is never followed: "
                "check CCE_ENDPOINT",
                request_id=request_id,
            )
        try:
            parsed: Any = response.json() if response.content.strip() else None
        except ValueError:
            parsed = response.text[:200]
        return Answer(response.status_code, parsed, request_id, response.headers)

    def _exchange(
        self, method: str, url: str, project_id: str, body: bytes | None, credential: Credential, deadline: Deadline
    ) -> Answer:
        """One exchange, plus the single retry with a new token after a 401 on a cached one."""
        answer = self._send(method, url, project_id, body, credential, deadline)
        if answer.status == 401 and credential.refresh():
            logs.write(logging.INFO, {"message": "token-refresh", "reason": "CCE answered 401"}, credential.secrets())
            answer = self._send(method, url, project_id, body, credential, deadline)
        return answer

    def _request(
        self,
        method: str,
        url: str,
        project_id: str,
        data: bytes | None,
        credential: Credential,
        deadline: Deadline,
        acted: Callable[[RetryDecision], bool] | None = None,
    ) -> tuple[Answer | None, int]:
        """One request under the retry policy: the 2xx answer and the attempts it took.

        `acted` settles an ambiguous failure (True: CCE acted, answer None); without it, as for reads, an
        ambiguous failure is simply retried.
        """
        attempt = 0
        while True:
            attempt += 1
            outcome: Answer | requests.RequestException
            try:
                outcome = self._exchange(method, url, project_id, data, credential, deadline)
            except requests.RequestException as exc:
                outcome = exc
            if isinstance(outcome, Answer) and 200 <= outcome.status < 300:
                return outcome, attempt
            decision = classify(outcome)
            if decision.kind == "final":
                raise self._final_error(outcome, decision, attempt)
            if decision.kind == "ambiguous" and acted is not None and acted(decision):
                return None, attempt
            wait = self._backoff(attempt, decision)
            fits = deadline.remaining() - wait > self._settings.connect_timeout_seconds
            if attempt >= self._settings.retry_max_attempts or not fits:
                raise self._final_error(outcome, decision, attempt)
            fields = {"message": "retry", "method": method, "attempt": attempt, "reason": decision.reason}
            logs.write(logging.WARNING, {**fields, "wait_s": round(wait, 3)}, credential.secrets())
            self._sleep(wait)

    def get_json(self, url: str, project_id: str, credential: Credential, deadline: Deadline) -> Any:
        """GET a CCE resource; reading is safe to repeat, so every failure but a final 4xx is retried."""
        answer, _ = self._request("GET", url, project_id, None, credential, deadline)
        assert answer is not None
        return answer.body

    def running_sync(self, target: Target, credential: Credential, deadline: Deadline) -> str | None:
        """None when the node pool is idle; when a configuration sync runs, its job id ("" if CCE names none).

        Raises when it cannot tell."""
        pool = self.get_json(f"{self.nodepool_url(target)}?{_WHOLE_POOL}", target.project_id, credential, deadline)
        status = pool.get("status") if isinstance(pool, dict) else None
        conditions = status.get("conditions") if isinstance(status, dict) else None
        if not isinstance(conditions, list) or not any(
            isinstance(c, dict) and c.get("type") == SYNC_CONDITION and c.get("status") == "True" for c in conditions
        ):
            return None
        assert isinstance(status, dict)
        jobid = status.get("jobId")
        return jobid if isinstance(jobid, str) else ""

    def list_nodepools(
        self, project_id: str, cluster_id: str, credential: Credential, deadline: Deadline, with_default: bool
    ) -> list[tuple[str, str]]:
        """(id, name) of the cluster's node pools as CCE lists them; DefaultPool only `with_default`."""
        query = f"{_WHOLE_POOL}&{_WITH_DEFAULT_POOL}" if with_default else _WHOLE_POOL
        url = f"{self._project_url(project_id)}/clusters/{_segment(cluster_id)}/nodepools?{query}"
        listing = self.get_json(url, project_id, credential, deadline)
        items = listing.get("items") if isinstance(listing, dict) else None
        pools = []
        for item in items if isinstance(items, list) else ():
            metadata = item.get("metadata") if isinstance(item, dict) else None
            if isinstance(metadata, dict) and isinstance(metadata.get("uid"), str):
                pools.append((metadata["uid"], str(metadata.get("name", metadata["uid"]))))
        return pools

    def follow_job(self, project_id: str, jobid: str, credential: Credential, deadline: Deadline) -> tuple[str, str]:
        """Poll the job until it ends or time runs out: (phase, reason); "Running" when out of time."""
        if not ID_PATTERN.fullmatch(jobid):
            return "Running", "CCE gave no job id that can be followed"
        url = f"{self._project_url(project_id)}/jobs/{_segment(jobid)}"
        interval = self._settings.job_poll_interval_seconds
        while True:
            try:
                job = self.get_json(url, project_id, credential, deadline)
            except SyncError as exc:
                return "Running", f"the job could not be read ({exc.message})"
            status = job.get("status") if isinstance(job, dict) else None
            phase = str(status.get("phase", "")) if isinstance(status, dict) else ""
            if phase in ("Success", "Failed"):
                reason = status.get("reason", "") if isinstance(status, dict) else ""
                return phase, str(reason)[:300]
            if deadline.remaining() < interval + _POLL_RESERVE_SECONDS:
                return "Running", "still running when the invocation's time ran out"
            self._sleep(interval)
            interval = min(interval * 2, self._settings.job_poll_max_interval_seconds)

    def _backoff(self, attempt: int, decision: RetryDecision) -> float:
        settings = self._settings
        if decision.retry_after is not None:
            return min(decision.retry_after, settings.retry_after_cap_seconds)
        return random.uniform(0, min(settings.retry_cap_seconds, settings.retry_base_seconds * 2**attempt))

    def sync(self, target: Target, body: Mapping[str, Any], credential: Credential, deadline: Deadline) -> Accepted:
        """POST the sync under the retry policy of this module's table."""
        data = json.dumps(body, separators=(",", ":")).encode()

        def acted(decision: RetryDecision) -> bool:
            try:
                return self.running_sync(target, credential, deadline) is not None
            except SyncError as exc:
                raise AmbiguousFailure(
                    f"CCE may have accepted the sync ({decision.reason}) and the node pool could not be "
                    f"checked ({exc.message}); not resent"
                ) from None

        answer, attempts = self._request(
            "POST", self.sync_url(target), target.project_id, data, credential, deadline, acted
        )
        if answer is None:
            return Accepted("", "", attempts, confirmed_after_ambiguity=True)
        jobid = answer.body.get("jobid") if isinstance(answer.body, dict) else None
        return Accepted(str(jobid) if jobid else "", answer.request_id, attempts)

    @staticmethod
    def _final_error(outcome: Answer | requests.RequestException, decision: RetryDecision, attempts: int) -> SyncError:
        tried = f"after {attempts} attempt{'s' * (attempts != 1)}"
        if isinstance(outcome, Answer):
            error = _rejection(outcome)
            if attempts > 1:
                error.message = f"{error.message} ({tried})"
            return error
        if isinstance(outcome, requests.Timeout):
            return UpstreamTimeout(f"CCE did not answer in time ({decision.reason}, {tried})")
        return UpstreamError(f"could not reach CCE ({decision.reason}, {tried})")
