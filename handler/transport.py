"""The one HTTP transport every call the function makes goes through: IAM, CCE syncs, node pool and job reads.

It owns what every exchange needs: one pooled session without proxies from the environment, no redirects,
connect and read timeouts that never outlast the deadline, a whole answer by the deadline (not one read at a
time), a cap on the answer's size, and one vocabulary for failures (`Failure`), which the retry policy reads.
"""

import contextlib
import json
import re
import socket
import threading
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, NamedTuple

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import ConfigurationError, SyncError, UpstreamError, UpstreamTimeout
from .runtime import Deadline

__all__ = [
    "Failure",
    "Reply",
    "Transport",
    "TransportError",
    "Unreadable",
    "as_sync_error",
    "failure_of",
    "header_safe",
    "new_session",
]

MIN_SECONDS = 0.05  # less time than this left: an exchange is not started at all
MAX_ANSWER_BYTES = 1024 * 1024  # CCE's and IAM's answers are a few KB; anything bigger is not one of them
_CHUNK = 64 * 1024
_HEADER_SAFE = re.compile(r"[!-~]+")


def header_safe(value: str) -> bool:
    """Whether a credential can travel in a header as it is: printable ASCII, no spaces or line breaks."""
    return _HEADER_SAFE.fullmatch(value) is not None


class Failure(str, Enum):
    """Why an exchange gave no answer, as far as the server's side is concerned."""

    NOT_SENT = "not-sent"  # before the request was written (DNS, connect, TLS handshake, our headers, no time left)
    NO_ANSWER = "no-answer"  # sent, then a timeout, a reset or the deadline before the whole answer: it may have acted
    TOO_LARGE = "too-large"  # an answer larger than MAX_ANSWER_BYTES: it answered, unreadably
    REDIRECT = "redirect"  # a 3xx, never followed: the endpoint is misconfigured


class TransportError(Exception):
    """An exchange that produced no usable answer; `reason` names the failure, never a secret or a body.

    `timed_out` says the cause was time (a timeout, or the deadline), as opposed to a refusal or a reset."""

    def __init__(
        self, failure: Failure, reason: str, *, timed_out: bool = False, status: int = 0, request_id: str = ""
    ) -> None:
        super().__init__(reason)
        self.failure, self.reason, self.timed_out = failure, reason, timed_out
        self.status, self.request_id = status, request_id


def as_sync_error(
    exc: TransportError, service: str, setting: str, detail: str = "", upstream: type[UpstreamError] = UpstreamError
) -> SyncError:
    """The one translation of an exchange that gave no usable answer into what the caller is told: a redirect
    is our configuration's fault (`setting` names the endpoint variable); time is a timeout; the rest upstream."""
    if exc.failure is Failure.REDIRECT:
        return ConfigurationError(
            f"{service} answered with a redirect ({exc.reason}), which is never followed: check {setting}",
            request_id=exc.request_id,
        )
    why = f"{exc.reason}, {detail}" if detail else exc.reason
    if exc.timed_out:
        return UpstreamTimeout(f"{service} did not answer in time ({why})", request_id=exc.request_id)
    return upstream(f"could not reach {service} ({why})", request_id=exc.request_id)


class Unreadable(ValueError):
    """An answer whose body cannot be read as JSON."""


class Reply(NamedTuple):
    """A whole answer: status, headers, body bytes and the server's X-Request-Id."""

    status: int
    content: bytes = b""
    request_id: str = ""
    headers: Mapping[str, str] = MappingProxyType({})

    def json(self) -> Any:
        """The body parsed as JSON, lone surrogates made encodable; None when empty. Raises Unreadable when it is
        not JSON, or nested deeper than the parser goes (an answer under the size cap can still be that)."""
        if not self.content.strip():
            return None
        try:
            parsed = json.loads(self.content)
        except (ValueError, RecursionError):
            raise Unreadable("an answer that is not readable JSON") from None
        if b"\\ud" in self.content or b"\\uD" in self.content:  # an escaped surrogate: maybe a lone one
            from .strictjson import encodable

            try:
                return encodable(parsed)
            except RecursionError:  # pragma: no cover - encodable is iterative
                raise Unreadable("an answer that is not readable JSON") from None
        return parsed

    def json_or_none(self) -> Any:
        """The body as json() reads it, or None when it cannot be read (an error answer's details are optional)."""
        try:
            return self.json()
        except Unreadable:
            return None


def new_session(user_agent: str) -> requests.Session:
    """One session per process: connection reuse, no proxies or netrc from the environment, our User-Agent."""
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = user_agent
    # Multi-concurrency instances run invocations in threads: one pooled connection each, not ten in all.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
    adapter.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_sending = threading.local()  # per thread: the exchange under way (its socket; did it begin to write?)


class _Under:
    """One exchange under way: its socket once connected, and whether the deadline cut it off."""

    __slots__ = ("cut", "sock")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.cut = False

    def cut_off(self) -> None:
        """The deadline came: close the exchange's socket, whatever it waits for (a status line, a header)."""
        self.cut = True
        if self.sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing waits on it
                self.sock.shutdown(socket.SHUT_RDWR)


class _Written:
    """A connection that notes the moment it begins to write the request: before it (our own headers, DNS, the
    connect, the TLS handshake) the server saw nothing; from it on, whatever fails may come after CCE acted."""

    sock: socket.socket | None

    def send(self, data: Any) -> None:
        if self.sock is None:  # http.client connects lazily on the first write: a failure there sent nothing
            self.connect()  # type: ignore[attr-defined]
        _sending.written = True
        under = getattr(_sending, "under", None)
        if under is not None:
            under.sock = self.sock
        super().send(data)  # type: ignore[misc]


class _WrittenHTTP(_Written, HTTPConnection):
    pass


class _WrittenHTTPS(_Written, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WrittenHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WrittenHTTPS


def failure_of(exc: requests.RequestException, written: bool) -> Failure:
    """Whether a request that raised may have reached the server (tested row by row): only what failed before
    the request began to be written is NOT_SENT; anything after (a read timeout, a reset, a TLS error, an answer
    with a malformed header) may come after the server acted."""
    if not written or isinstance(exc, requests.ConnectTimeout):
        return Failure.NOT_SENT
    return Failure.NO_ANSWER


def _socket(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


class Transport:
    """Exchanges over one session; every timeout is cut to the deadline, and so is the wait for the whole answer."""

    def __init__(
        self,
        session: requests.Session,
        connect_timeout: float,
        read_timeout: float,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.session = session
        self._connect, self._read, self._max = connect_timeout, read_timeout, max_answer_bytes

    def exchange(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, deadline: Deadline
    ) -> Reply:
        """Send one request and read its whole answer by the deadline; raises TransportError, never a requests
        exception. A read timeout bounds each wait for bytes; the deadline bounds the whole exchange (status line
        and headers included): when it comes, the socket is closed under whatever still waits."""
        left = deadline.remaining()
        if left < MIN_SECONDS:
            raise TransportError(Failure.NOT_SENT, "no time left in the invocation", timed_out=True)
        under = _sending.under = _Under()
        _sending.written = False
        watchdog = None
        if left != float("inf"):
            watchdog = threading.Timer(left, under.cut_off)
            watchdog.daemon = True
            watchdog.start()
        try:
            return self._exchange(method, url, headers, body, deadline, left)
        except TransportError as exc:
            if under.cut:
                late = "the whole answer did not arrive in time"
                raise TransportError(Failure.NO_ANSWER, late, timed_out=True, request_id=exc.request_id) from None
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
            _sending.under = None

    def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, deadline: Deadline, left: float
    ) -> Reply:
        try:
            response = self.session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=(min(self._connect, left), min(self._read, left)),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            timed_out = isinstance(exc, requests.Timeout)
            failure = failure_of(exc, getattr(_sending, "written", False))
            raise TransportError(failure, type(exc).__name__, timed_out=timed_out) from None
        except (UnicodeError, ValueError) as exc:  # a header value http.client cannot send
            raise TransportError(Failure.NOT_SENT, f"{type(exc).__name__} in the request") from None
        with response:
            request_id = response.headers.get("X-Request-Id", "")[:128]
            if 300 <= response.status_code < 400:
                raise TransportError(
                    Failure.REDIRECT, f"HTTP {response.status_code}", status=response.status_code, request_id=request_id
                )
            content = self._whole_answer(response, deadline, request_id)
        return Reply(response.status_code, content, request_id, response.headers)

    def _whole_answer(self, response: requests.Response, deadline: Deadline, request_id: str) -> bytes:
        """The body, read a recv at a time so neither a slow drip nor a huge body outlasts the deadline."""
        sock, size = _socket(response), 0
        chunks: list[bytes] = []
        try:
            while True:
                left = deadline.remaining()
                if left <= 0:
                    late = "the whole answer did not arrive in time"
                    raise TransportError(Failure.NO_ANSWER, late, timed_out=True, request_id=request_id)
                if sock is not None:
                    sock.settimeout(min(self._read, left))
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > self._max:
                    raise TransportError(
                        Failure.TOO_LARGE,
                        f"an answer larger than {self._max} bytes",
                        status=response.status_code,
                        request_id=request_id,
                    )
                chunks.append(chunk)
        except TransportError:
            raise
        except Exception as exc:  # socket timeouts and resets, urllib3's ProtocolError and ReadTimeoutError
            timed_out = isinstance(exc, (TimeoutError, socket.timeout)) or "Timeout" in type(exc).__name__
            raise TransportError(
                Failure.NO_ANSWER, f"{type(exc).__name__} while reading the answer", timed_out=timed_out
            ) from None
