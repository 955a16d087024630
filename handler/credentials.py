"""Where the function's authority comes from: a token, an IAM password (token cached), AK/SK, or the agency.

The first complete source wins, in the order of SOURCES; HUAWEICLOUD_AUTH_MODE forces one. A source that is
partly configured is an error naming what is missing, never a silent fall-through to the next.
"""

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, unquote, urlsplit

from . import logs
from .environment import Secret
from .errors import ConfigurationError, IdentityUnavailable, UpstreamError, UpstreamTimeout
from .runtime import Deadline, RuntimeContext
from .settings import Settings
from .transport import Reply, Transport, TransportError, as_sync_error, header_safe
from .variables import AUTH_SOURCES, group

__all__ = [
    "SOURCES",
    "Credential",
    "IamPasswordToken",
    "Signer",
    "StaticToken",
    "TokenCache",
    "resolve",
    "sign_request",
    "warm_token",
]

SOURCES = (  # each source and what makes it complete: the variables' own groups (handler/variables.py)
    *((source, group(source)) for source in AUTH_SOURCES),
    ("agency", ("an agency on the function (context.getToken/getAuthToken or its temporary AK/SK)",)),
)
SIGNING_ALGORITHM = "SDK-HMAC-SHA256"
# Used when IAM omits expires_at: short enough that a revoked token is not used for long.
UNKNOWN_EXPIRY_SECONDS = 900.0


class Credential(Protocol):
    """Something that can authorize a CCE request."""

    @property
    def kind(self) -> str:
        """Which source this is: token, password, aksk, agency-token or agency-aksk."""

    def authorize(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """The headers to add to the request (token or signature)."""

    def refresh(self) -> bool:
        """Forget a cached token after CCE answered 401; True when a second try can use a new one."""

    def secrets(self) -> tuple[str, ...]:
        """The secret values this credential may put on the wire, for masking."""


class StaticToken(NamedTuple):
    """A ready IAM token: from HUAWEICLOUD_AUTH_TOKEN or from the agency's context.getToken()/getAuthToken()."""

    token: Secret
    kind: str = "token"

    def authorize(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        return {"X-Auth-Token": self.token.reveal()}

    def refresh(self) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self.token.reveal(),)


def _canonical_uri(path: str) -> str:
    uri = "/".join(quote(segment, safe="~") for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _canonical_query(query: str) -> str:
    pairs = sorted(tuple(p.split("=", 1)) if "=" in p else (p, "") for p in query.split("&") if p)
    return "&".join(f"{quote(unquote(k), safe='~')}={quote(unquote(v), safe='~')}" for k, v in pairs)


def sign_request(
    method: str, url: str, headers: Mapping[str, str], body: bytes, access_key: str, secret_key: str, now: datetime
) -> dict[str, str]:
    """SDK-HMAC-SHA256 as the official SDK signs: returns X-Sdk-Date, Host and Authorization to add."""
    parts = urlsplit(url)
    added = {"X-Sdk-Date": now.strftime("%Y%m%dT%H%M%SZ")}
    if not any(name.lower() == "host" for name in headers):
        added["Host"] = parts.netloc
    signed = {name.lower(): value.strip() for name, value in {**headers, **added}.items() if "_" not in name}
    names = sorted(signed)
    canonical = "\n".join(
        (
            method.upper(),
            _canonical_uri(parts.path or "/"),
            _canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        )
    )
    string_to_sign = f"{SIGNING_ALGORITHM}\n{added['X-Sdk-Date']}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{SIGNING_ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return added


class Signer(NamedTuple):
    """AK/SK request signing, permanent keys or the agency's temporary ones (with a security token)."""

    access_key: str
    secret_key: Secret
    security_token: Secret | None = None
    kind: str = "aksk"

    def authorize(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        extra = {"X-Security-Token": self.security_token.reveal()} if self.security_token else {}
        signed = sign_request(
            method,
            url,
            {**headers, **extra},
            body,
            self.access_key,
            self.secret_key.reveal(),
            datetime.now(timezone.utc),
        )
        return {**extra, **signed}

    def refresh(self) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return tuple(s.reveal() for s in (self.secret_key, self.security_token) if s)


TokenKey = tuple[str, str, str, str]


class TokenCache:
    """IAM tokens per (endpoint, user, domain, project), shared by the invocations of one process.

    Fetches are single flight: concurrent invocations wait for one IAM request, each no longer than its own
    deadline. At most MAX_TOKENS are kept (the oldest goes first), whatever projects callers name.
    """

    MAX_TOKENS = 8

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._tokens: dict[TokenKey, tuple[Secret, float]] = {}

    def _fresh(self, key: TokenKey, margin: float) -> Secret | None:
        cached = self._tokens.get(key)
        return cached[0] if cached and cached[1] - margin > self._clock() else None

    def get(
        self, key: TokenKey, margin: float, fetch: Callable[[], tuple[Secret, float]], deadline: Deadline
    ) -> Secret:
        """A token valid for more than `margin` seconds, fetching one when there is none."""
        token = self._fresh(key, margin)
        if token is not None:
            return token
        limit = deadline.limit()
        if not self._fetching.acquire(timeout=-1 if limit is None else limit):
            raise UpstreamTimeout("waited for another invocation's IAM token request until no time was left")
        try:
            token = self._fresh(key, margin)
            if token is not None:
                return token
            token, expires_at = fetch()
            with self._lock:
                self._tokens.pop(key, None)
                self._tokens[key] = (token, expires_at)
                while len(self._tokens) > self.MAX_TOKENS:
                    del self._tokens[next(iter(self._tokens))]
            return token
        finally:
            self._fetching.release()

    def drop(self, key: TokenKey, token: Secret) -> None:
        """Forget `token` (and only it: another thread may already have stored a newer one)."""
        with self._lock:
            if self._tokens.get(key, (None, 0.0))[0] == token:
                del self._tokens[key]


def _parse_expiry(value: Any, now: float) -> float:
    if not isinstance(value, str):
        return now + UNKNOWN_EXPIRY_SECONDS
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now + UNKNOWN_EXPIRY_SECONDS


class IamPasswordToken:
    """A project-scoped token that IAM gives for the user's password, cached in a TokenCache."""

    kind = "password"

    def __init__(
        self,
        settings: Settings,
        project_id: str,
        transport: Transport,
        cache: TokenCache,
        deadline: Deadline,
        region: str = "",
    ) -> None:
        assert settings.iam_password is not None
        self._settings, self._project_id, self._transport = settings, project_id, transport
        self._cache, self._deadline, self._password = cache, deadline, settings.iam_password
        self._iam = settings.endpoint("iam", region)  # the project's region's IAM gives its project's tokens
        self._key: TokenKey = (self._iam, settings.iam_username, settings.iam_domain_name, project_id)
        self._token: Secret | None = None

    def token(self) -> Secret:
        """The token for this invocation: taken from the cache once, then kept until `refresh()`."""
        if self._token is None:
            margin = self._settings.token_refresh_margin_seconds
            self._token = self._cache.get(self._key, margin, self._fetch, self._deadline)
        return self._token

    def authorize(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        return {"X-Auth-Token": self.token().reveal()}

    def refresh(self) -> bool:
        if self._token is not None:
            self._cache.drop(self._key, self._token)
            self._token = None
        return True

    def secrets(self) -> tuple[str, ...]:
        return tuple(s.reveal() for s in (self._password, self._token) if s)

    def _who(self) -> str:
        return f"IAM user {self._settings.iam_username!r} of account {self._settings.iam_domain_name!r}"

    def _fetch(self) -> tuple[Secret, float]:
        settings = self._settings
        if not self._iam:
            raise ConfigurationError("no IAM endpoint: set HUAWEICLOUD_SDK_REGION or IAM_ENDPOINT")
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "domain": {"name": settings.iam_domain_name},
                            "name": settings.iam_username,
                            "password": self._password.reveal(),
                        }
                    },
                },
                "scope": {"project": {"id": self._project_id}},
            }
        }
        url = f"{self._iam}/v3/auth/tokens?nocatalog=true"
        data = json.dumps(body).encode()
        try:
            reply = self._transport.exchange(
                "POST", url, {"Content-Type": "application/json;charset=utf8"}, data, self._deadline
            )
        except TransportError as exc:
            raise as_sync_error(exc, "IAM", "IAM_ENDPOINT", "asking for a token", IdentityUnavailable) from None
        return self._read_answer(reply)

    def _read_answer(self, reply: Reply) -> tuple[Secret, float]:
        status = reply.status
        if status in (400, 401, 403):
            raise ConfigurationError(
                f"IAM refused a token for {self._who()} (HTTP {status}): "
                "check HUAWEICLOUD_IAM_USERNAME, HUAWEICLOUD_IAM_PASSWORD, HUAWEICLOUD_IAM_DOMAIN_NAME "
                "and the project"
            )
        if status >= 500 or status == 429:
            raise IdentityUnavailable(f"IAM failed to issue a token (HTTP {status})")
        token = reply.headers.get("X-Subject-Token", "")
        if status != 201 or not token or not header_safe(token):
            raise IdentityUnavailable(f"IAM answered HTTP {status} without a usable token")
        parsed = reply.json_or_none()
        answer = parsed.get("token") if isinstance(parsed, dict) else None
        expires = answer.get("expires_at") if isinstance(answer, dict) else None
        return Secret(token), _parse_expiry(expires, time.time())


def _missing(names_values: Mapping[str, object]) -> list[str]:
    return [name for name, value in names_values.items() if not value]


def _partial(group: str, names_values: Mapping[str, object]) -> ConfigurationError:
    missing = ", ".join(_missing(names_values))
    return ConfigurationError(f"{group} credentials are incomplete: set {missing}")


def resolve(
    settings: Settings,
    context: RuntimeContext,
    project_id: str,
    transport: Transport,
    cache: TokenCache,
    deadline: Deadline,
    region: str = "",
    foreign: bool = False,
) -> Credential:
    """The credential to use now for a project (in a region), by the order of SOURCES or the forced
    HUAWEICLOUD_AUTH_MODE. `foreign`: not the function's own region and project, where the agency's token does
    not reach (it is scoped to the function's project): the agency's temporary AK/SK sign instead."""
    groups: dict[str, Mapping[str, object]] = {
        "token": {"HUAWEICLOUD_AUTH_TOKEN": settings.auth_token},
        "password": {
            "HUAWEICLOUD_IAM_USERNAME": settings.iam_username,
            "HUAWEICLOUD_IAM_PASSWORD": settings.iam_password,
            "HUAWEICLOUD_IAM_DOMAIN_NAME": settings.iam_domain_name,
        },
        "aksk": {"HUAWEICLOUD_SDK_AK": settings.access_key, "HUAWEICLOUD_SDK_SK": settings.secret_key},
    }
    if settings.security_token and not settings.access_key and not settings.secret_key:
        raise _partial("AK/SK", groups["aksk"])
    order = [settings.auth_mode] if settings.auth_mode else [name for name, _ in SOURCES]
    for mode in order:
        if mode == "agency":
            credential = _agency(context, foreign)
            if credential is not None:
                return credential
            if settings.auth_mode:
                raise ConfigurationError(
                    "HUAWEICLOUD_AUTH_MODE is agency but the context has no agency token or temporary AK/SK: "
                    "set an agency on the function"
                )
            continue
        values = groups[mode]
        missing = _missing(values)
        if len(missing) == len(values):
            if settings.auth_mode:
                raise _partial(mode, values)
            continue
        if missing:
            raise _partial(mode, values)
        if mode == "token":
            assert settings.auth_token is not None
            return StaticToken(settings.auth_token)
        if mode == "password":
            return IamPasswordToken(settings, project_id, transport, cache, deadline, region)
        assert settings.secret_key is not None
        return Signer(settings.access_key, settings.secret_key, settings.security_token)
    wanted = "; or ".join(", ".join(names) for _, names in SOURCES)
    raise ConfigurationError(f"no credentials: set {wanted}")


def warm_token(
    settings: Settings, context: RuntimeContext, project_id: str, transport: Transport, cache: TokenCache
) -> None:
    """Fetch the IAM token now (an initializer's work), so the first invocation finds it cached; a problem is
    logged as a warning here and met again, as an error, by the invocation."""
    try:
        credential = resolve(settings, context, project_id, transport, cache, context.deadline(500))
        if isinstance(credential, IamPasswordToken):
            credential.token()
    except (ConfigurationError, UpstreamError) as error:
        logs.write(logging.WARNING, {"message": "initializer", "warning": error.message}, settings.secrets())


def _agency(context: RuntimeContext, foreign: bool = False) -> Credential | None:
    """The agency's token (own project only), else its temporary AK/SK and security token
    (getSecurityAccessKey/getSecuritySecretKey/getSecurityToken, signed with X-Security-Token); a value that
    cannot travel in a header reads as none."""
    token = "" if foreign else context.agency_token()
    if token and header_safe(token):
        return StaticToken(Secret(token), kind="agency-token")
    access_key = context.text("getSecurityAccessKey")
    secret_key = context.text("getSecuritySecretKey")
    security_token = context.text("getSecurityToken")
    if security_token and not header_safe(security_token):
        return None
    if access_key and header_safe(access_key) and secret_key:
        return Signer(access_key, Secret(secret_key), Secret(security_token) if security_token else None, "agency-aksk")
    return None
