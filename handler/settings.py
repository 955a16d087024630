"""The function's environment, read and checked once per process into one frozen `Settings`."""

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from . import strictjson
from .errors import ConfigurationError
from .logs import LEVELS
from .transport import header_safe
from .validation import ID_PATTERN, Defaults

if TYPE_CHECKING:
    from .windows import Windows

__all__ = ["AUTH_MODES", "Allowlist", "Environment", "Secret", "Settings", "endpoint_is_allowed"]

AUTH_MODES = ("token", "password", "aksk", "agency")
_TRUE = {"1", "true", "yes", "on"}
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4_LOOPBACK = re.compile(rf"127(?:\.{_OCTET}){{3}}")
_FALSE = {"0", "false", "no", "off", ""}


class Secret:
    """A secret string whose repr and str are masked; `reveal()` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class Environment(Mapping[str, str]):
    """The function's variables where FunctionGraph puts them: `os.environ`, then the context's user data.

    Encrypted variables never reach `os.environ`: the Python runtime keeps them in the context's user data,
    read with `getUserData(key)`, and serialises that whole map as JSON into RUNTIME_USERDATA (the fallback).
    https://github.com/openyuanrong/runtime/blob/main/api/python/yr/functionsdk/context.py (load_user_data)
    """

    def __init__(self, environ: Mapping[str, str], user_data: Callable[[str], str | None] | None = None) -> None:
        self._environ, self._user_data = environ, user_data
        self._runtime_user_data: dict[str, str] | None = None

    def _serialised(self) -> dict[str, str]:
        if self._runtime_user_data is None:
            try:
                parsed = json.loads(self._environ.get("RUNTIME_USERDATA") or "{}")
            except ValueError:
                parsed = None
            items = parsed.items() if isinstance(parsed, dict) else ()
            self._runtime_user_data = {k: v for k, v in items if isinstance(k, str) and isinstance(v, str)}
        return self._runtime_user_data

    def __getitem__(self, name: str) -> str:
        if name in self._environ:
            return self._environ[name]
        value = self._user_data(name) if self._user_data is not None else None
        if value is not None:
            return value
        return self._serialised()[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._environ), **dict.fromkeys(self._serialised())})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def endpoint_is_allowed(url: str) -> bool:
    """Credentials travel only over https, except to a loopback host (the local emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost" or _IPV4_LOOPBACK.fullmatch(parts.hostname):
        return True
    import ipaddress  # other address forms only; https endpoints never come here

    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class Allowlist(NamedTuple):
    """SYNC_ALLOWED_TARGETS: the (project, cluster, node pool) a sync may reach; `*` matches a whole segment.

    A `cluster/pool` entry means the function's own project; `project/cluster/pool` names the project (or `*`).
    Unset, everything is allowed (`limited` is False).
    """

    limited: bool = False
    entries: tuple[tuple[str, str, str], ...] = ()

    def allows(self, own_project: str, project_id: str, cluster_id: str, nodepool_id: str) -> bool:
        return not self.limited or any(
            _matches(project, project_id, own_project) and cluster in ("*", cluster_id) and pool in ("*", nodepool_id)
            for project, cluster, pool in self.entries
        )

    def reaches_project(self, own_project: str, project_id: str) -> bool:
        """Whether any node pool of this project may be synced."""
        return not self.limited or any(_matches(project, project_id, own_project) for project, _, _ in self.entries)

    def reaches(self, own_project: str, project_id: str, cluster_id: str) -> bool:
        """Whether any node pool of this cluster may be synced: checked before any credential work."""
        return not self.limited or any(
            _matches(project, project_id, own_project) and cluster in ("*", cluster_id)
            for project, cluster, _ in self.entries
        )


def _matches(entry: str, project_id: str, own_project: str) -> bool:
    return entry == "*" or project_id == (entry or own_project)


def _region_domain(region: str) -> str:
    return "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"


class Settings(NamedTuple):
    """Everything the function reads from its environment; secrets are `Secret`s."""

    region: str = ""
    cce_endpoint: str = ""
    iam_endpoint: str = ""
    project_id: str = ""
    runtime_project_id: str = ""
    cluster_id: str = ""
    nodepool_id: str = ""
    sync_spec: Mapping[str, Any] | None = None
    dry_run: bool = False
    auth_mode: str = ""
    auth_token: Secret | None = None
    iam_username: str = ""
    iam_password: Secret | None = None
    iam_domain_name: str = ""
    access_key: str = ""
    secret_key: Secret | None = None
    security_token: Secret | None = None
    node_login_password: Secret | None = None
    token_refresh_margin_seconds: float = 600.0
    connect_timeout_seconds: float = 3.05
    read_timeout_seconds: float = 30.0
    answer_reserve_ms: float = 500.0
    max_body_bytes: int = 256 * 1024
    retry_max_attempts: int = 3
    retry_base_seconds: float = 0.2
    retry_cap_seconds: float = 5.0
    retry_after_cap_seconds: float = 10.0
    dedup_window_seconds: float = 600.0
    function_name: str = "nodepool-sync"
    wait: bool = False
    skip_if_busy: bool = True
    allowed_targets: Allowlist = Allowlist()
    job_poll_interval_seconds: float = 2.0
    job_poll_max_interval_seconds: float = 10.0
    target_min_seconds: float = 1.0
    log_level: str = "INFO"
    reconcile: Mapping[str, Any] | None = None  # SYNC_RECONCILE: what an empty timer event and a change event run
    failed_backoff_seconds: float = 6 * 3600.0
    stuck_after_seconds: float = 2 * 3600.0
    windows: "Windows | None" = None  # SYNC_WINDOWS; None: always open
    smn_topic_urn: str = ""
    smn_endpoint: str = ""
    reconcile_interval_seconds: float = 600.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        """Read and check every variable; a malformed one is a ConfigurationError naming it."""
        env = _Reader(environ)
        region = env.text("HUAWEICLOUD_SDK_REGION")
        domain = _region_domain(region)
        auth_mode = env.text("HUAWEICLOUD_AUTH_MODE").lower()
        if auth_mode and auth_mode not in AUTH_MODES:
            raise ConfigurationError(f"HUAWEICLOUD_AUTH_MODE must be one of {', '.join(AUTH_MODES)}")
        return cls(
            region=region,
            cce_endpoint=env.endpoint("CCE_ENDPOINT", f"https://cce.{region}.{domain}" if region else ""),
            iam_endpoint=env.endpoint(
                "IAM_ENDPOINT" if env.text("IAM_ENDPOINT") else "HUAWEICLOUD_SDK_IAM_ENDPOINT",
                f"https://iam.{region}.{domain}" if region else "",
            ),
            project_id=env.text("HUAWEICLOUD_SDK_PROJECT_ID"),
            runtime_project_id=env.text("RUNTIME_PROJECT_ID"),
            cluster_id=env.text("CCE_CLUSTER_ID"),
            nodepool_id=env.text("CCE_NODEPOOL_ID"),
            sync_spec=env.json_object("CCE_SYNC_SPEC"),
            dry_run=env.boolean("SYNC_DRY_RUN", False),
            auth_mode=auth_mode,
            auth_token=env.secret("HUAWEICLOUD_AUTH_TOKEN", in_header=True),
            iam_username=env.text("HUAWEICLOUD_IAM_USERNAME"),
            iam_password=env.secret("HUAWEICLOUD_IAM_PASSWORD"),
            iam_domain_name=env.text("HUAWEICLOUD_IAM_DOMAIN_NAME"),
            access_key=env.header_text("HUAWEICLOUD_SDK_AK"),
            secret_key=env.secret("HUAWEICLOUD_SDK_SK"),
            security_token=env.secret("HUAWEICLOUD_SDK_SECURITY_TOKEN", in_header=True),
            node_login_password=env.secret("NODE_LOGIN_PASSWORD"),
            token_refresh_margin_seconds=env.number("TOKEN_REFRESH_MARGIN_SECONDS", 600.0, 0, 86400),
            connect_timeout_seconds=env.number("HTTP_CONNECT_TIMEOUT_SECONDS", 3.05, 0.01, 900),
            read_timeout_seconds=env.number("HTTP_READ_TIMEOUT_SECONDS", 30.0, 0.01, 900),
            answer_reserve_ms=env.number("ANSWER_RESERVE_MS", 500.0, 0, 60000),
            max_body_bytes=int(env.number("APIG_MAX_BODY_BYTES", 256 * 1024, 1, 6 * 1024 * 1024)),
            retry_max_attempts=int(env.number("RETRY_MAX_ATTEMPTS", 3, 1, 10)),
            retry_base_seconds=env.number("RETRY_BASE_SECONDS", 0.2, 0, 60),
            retry_cap_seconds=env.number("RETRY_CAP_SECONDS", 5.0, 0, 300),
            retry_after_cap_seconds=env.number("RETRY_AFTER_CAP_SECONDS", 10.0, 0, 300),
            dedup_window_seconds=env.number("EVENT_DEDUP_WINDOW_SECONDS", 600.0, 0, 86400),
            function_name=env.text("RUNTIME_FUNC_NAME") or "nodepool-sync",
            wait=env.boolean("SYNC_WAIT", False),
            skip_if_busy=env.boolean("SYNC_SKIP_IF_BUSY", True),
            allowed_targets=env.targets("SYNC_ALLOWED_TARGETS"),
            job_poll_interval_seconds=env.number("JOB_POLL_INTERVAL_SECONDS", 2.0, 0.01, 300),
            job_poll_max_interval_seconds=env.number("JOB_POLL_MAX_INTERVAL_SECONDS", 10.0, 0.01, 600),
            target_min_seconds=env.number("TARGET_MIN_SECONDS", 1.0, 0, 900),
            log_level=env.choice("LOG_LEVEL", "INFO", LEVELS),
            reconcile=env.json_object("SYNC_RECONCILE", "the reconcile object of a reconcile document"),
            failed_backoff_seconds=env.number("SYNC_FAILED_BACKOFF_SECONDS", 6 * 3600.0, 0, 30 * 86400),
            stuck_after_seconds=env.number("SYNC_STUCK_AFTER_SECONDS", 2 * 3600.0, 60, 30 * 86400),
            windows=env.windows("SYNC_WINDOWS"),
            smn_topic_urn=env.smn_topic("SMN_TOPIC_URN"),
            smn_endpoint=env.endpoint("SMN_ENDPOINT", f"https://smn.{region}.{domain}" if region else ""),
            reconcile_interval_seconds=env.number("SYNC_RECONCILE_INTERVAL_SECONDS", 600.0, 60, 86400),
        )

    def defaults(self, context_project_id: str = "") -> Defaults:
        """What the settings supply when a document is silent; the project: the setting, the context's, or
        RUNTIME_PROJECT_ID."""
        return Defaults(
            project_id=self.project_id or context_project_id or self.runtime_project_id,
            cluster_id=self.cluster_id,
            nodepool_id=self.nodepool_id,
            spec=self.sync_spec,
            node_login_password=self.node_login_password.reveal() if self.node_login_password else "",
            dry_run=self.dry_run,
            wait=self.wait,
        )

    def secrets(self) -> tuple[str, ...]:
        """The revealed secret values, for last-line scrubbing of logs and answers."""
        values = (self.auth_token, self.iam_password, self.secret_key, self.security_token)
        return tuple(s.reveal() for s in (*values, self.node_login_password) if s)


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str:
        return self._environ.get(name, "").strip()

    def secret(self, name: str, in_header: bool = False) -> Secret | None:
        """A secret, exactly as given; one that travels in a header must be able to (no line break, say)."""
        value = self._environ.get(name, "")
        if value and in_header and not header_safe(value):
            raise ConfigurationError(f"{name} must be printable ASCII without spaces or line breaks")
        return Secret(value) if value else None

    def header_text(self, name: str) -> str:
        value = self.text(name)
        if value and not header_safe(value):
            raise ConfigurationError(f"{name} must be printable ASCII without spaces or line breaks")
        return value

    def windows(self, name: str) -> "Windows | None":
        value = self.text(name)
        if not value:
            return None
        from .windows import parse_windows  # only when windows are set

        try:
            return parse_windows(value)
        except ValueError as exc:
            raise ConfigurationError(f"{name}: {exc}") from None

    def smn_topic(self, name: str) -> str:
        value = self.text(name)
        if value and not re.fullmatch(r"urn:smn:[a-z0-9-]+:[A-Za-z0-9]{1,64}:[A-Za-z0-9_-]{1,255}", value):
            raise ConfigurationError(f"{name} must be an SMN topic URN (urn:smn:REGION:PROJECT_ID:TOPIC)")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name).upper() or default
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, not {value[:20]!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.text(name).lower()
        if not value:
            return default
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigurationError(f"{name} must be true or false, not {value[:20]!r}")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.text(name)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, not {value[:20]!r}") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, not {value[:20]!r}")
        return number

    def endpoint(self, name: str, default: str) -> str:
        value = (self.text(name) or default).rstrip("/")
        if value and not endpoint_is_allowed(value):
            raise ConfigurationError(
                f"{name} must be an https:// URL (http:// only for a loopback host), not {value[:80]!r}"
            )
        return value

    def targets(self, name: str) -> Allowlist:
        """`cluster/nodepool` or `project/cluster/nodepool` entries, `*` a whole segment; unset means no limit."""
        value = self.text(name)
        if not value:
            return Allowlist()
        entries = []
        for entry in (e.strip() for e in value.split(",") if e.strip()):
            parts = entry.split("/")
            if len(parts) not in (2, 3) or not all(part == "*" or ID_PATTERN.fullmatch(part) for part in parts):
                raise ConfigurationError(
                    f"{name} entries must be cluster_id/nodepool_id or project_id/cluster_id/nodepool_id "
                    f"(each an ID or *), not {entry[:80]!r}"
                )
            project, cluster, pool = parts if len(parts) == 3 else ("", *parts)
            entries.append((project, cluster, pool))
        return Allowlist(True, tuple(entries))

    def json_object(self, name: str, what: str = "the spec of the sync request") -> Mapping[str, Any] | None:
        value = self.text(name)
        if not value:
            return None
        try:
            parsed = strictjson.loads(value)
        except ValueError as exc:
            raise ConfigurationError(f"{name} is not acceptable JSON: {str(exc)[:120]}") from None
        if not isinstance(parsed, dict):
            raise ConfigurationError(f"{name} must be a JSON object ({what})")
        return parsed
