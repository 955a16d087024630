"""The function's environment, read and checked once per process into one frozen `Settings`."""

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from . import strictjson
from .errors import ConfigurationError, TargetNotAllowed
from .logs import LEVELS
from .transport import header_safe
from .validation import ID_PATTERN, Defaults

if TYPE_CHECKING:
    from .windows import Windows

__all__ = [
    "AUTH_MODES",
    "VARIABLES",
    "Allowlist",
    "Environment",
    "Secret",
    "Settings",
    "Variable",
    "endpoint_is_allowed",
    "loopback_host",
    "variable_names",
]

AUTH_MODES = ("", "token", "password", "aksk", "agency")  # "": the first complete source
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
    return parts.scheme == "http" and loopback_host(parts.hostname or "")


def loopback_host(hostname: str) -> bool:
    """localhost, 127.x.y.z or another loopback address form (::1)."""
    if hostname == "localhost" or _IPV4_LOOPBACK.fullmatch(hostname):
        return True
    import ipaddress  # other address forms only; https endpoints never come here

    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class Allowlist(NamedTuple):
    """SYNC_ALLOWED_TARGETS: the (project, cluster, node pool) a sync may reach; `*` matches a whole segment.

    A `cluster/pool` entry means the function's own project; `project/cluster/pool` names the project (or `*`).
    Unset, everything is allowed (`limited` is False). `refusal` is the one judgement and the one message.
    """

    limited: bool = False
    entries: tuple[tuple[str, str, str], ...] = ()

    def allows(self, own_project: str, project_id: str, cluster_id: str = "", nodepool_id: str = "") -> bool:
        """Whether the pool (or, without one, any pool of the cluster; without a cluster, of the project) may be
        synced."""
        return not self.limited or any(
            _matches(project, project_id, own_project)
            and (not cluster_id or cluster in ("*", cluster_id))
            and (not nodepool_id or pool in ("*", nodepool_id))
            for project, cluster, pool in self.entries
        )

    def refusal(
        self, own_project: str, project_id: str, cluster_id: str = "", nodepool_id: str = ""
    ) -> TargetNotAllowed | None:
        """None when allowed; otherwise the refusal, in one shape whatever asked."""
        if self.allows(own_project, project_id, cluster_id, nodepool_id):
            return None
        what = f"project {project_id}"
        what = f"cluster {cluster_id} of {what}" if cluster_id else what
        what = f"node pool {nodepool_id} of {what}" if nodepool_id else what
        return TargetNotAllowed(f"{what} is outside SYNC_ALLOWED_TARGETS")


def _matches(entry: str, project_id: str, own_project: str) -> bool:
    return entry == "*" or project_id == (entry or own_project)


# The endpoints that are not https://{service}.{region}.myhuaweicloud.com, from the SDK's region tables
# (huaweicloudsdkcce, huaweicloudsdkiam, huaweicloudsdksmn, huaweicloudsdkfunctiongraph 3.1.219,
# v*/region/*_region.py, e.g. https://github.com/huaweicloud/huaweicloud-sdk-python-v3/blob/master/huaweicloud-sdk-smn/huaweicloudsdksmn/v2/region/smn_region.py).
_DOMAINS = {
    ("cce", "eu-west-101"): "myhuaweicloud.eu",
    ("iam", "eu-west-101"): "myhuaweicloud.eu",
    ("smn", "eu-west-101"): "myhuaweicloud.eu",
    ("smn", "cn-north-2"): "myhuaweicloud.cn",
}


def service_endpoint(service: str, region: str) -> str:
    """A service's endpoint in a region, as the SDK's region tables give it."""
    return f"https://{service}.{region}.{_DOMAINS.get((service, region), 'myhuaweicloud.com')}"


MAX_SCOPES = 500  # one asynchronous invocation each per pass
REGION_PATTERN = r"[a-z]{2}(?:-[a-z0-9]+){1,3}"  # a region ID: HUAWEICLOUD_SDK_REGION and each of SYNC_SCOPES


class Scope(NamedTuple):
    """A region and a project a pass covers."""

    region: str
    project_id: str


class Settings(NamedTuple):
    """Everything the function reads from its environment; secrets are `Secret`s. Each field's default here is
    the one default of its variable (VARIABLES says which variable sets which field)."""

    region: str = ""
    cce_endpoint: str = ""  # as configured (may hold {region}); "" for the region's own: see endpoint()
    iam_endpoint: str = ""
    smn_endpoint: str = ""
    fgs_endpoint: str = ""
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
    reconcile_interval_seconds: float = 600.0
    scopes: tuple[Scope, ...] = ()  # SYNC_SCOPES; none: the function's own region and project
    function_urn: str = ""  # FUNCTION_URN, else made from the runtime's variables: see own_urn()
    package: str = "default"  # RUNTIME_PACKAGE: the function's app
    function_version: str = "latest"  # RUNTIME_FUNC_VERSION

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        """Read and check every variable of VARIABLES; a malformed one is a ConfigurationError naming it."""
        env, defaults = _Reader(environ), cls._field_defaults
        values = {v.field: getattr(env, v.read)(v.name, defaults[v.field], *v.args) for v in VARIABLES}
        return cls(**values)

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

    def endpoint(self, service: str, region: str = "") -> str:
        """A service's endpoint (cce, iam, smn, functiongraph) in a region (default: the function's): the
        configured one with {region} filled, else the SDK's region table's; "" when neither says."""
        region = region or self.region
        configured = {"cce": self.cce_endpoint, "iam": self.iam_endpoint, "smn": self.smn_endpoint}.get(
            service, self.fgs_endpoint
        )
        if configured:
            return configured.replace("{region}", region)
        return service_endpoint(service, region) if region else ""

    def own_scope(self, context_project_id: str = "") -> Scope:
        """The function's own region and project."""
        return Scope(self.region, self.defaults(context_project_id).project_id)

    def own_urn(self, context_project_id: str = "") -> str:
        """The function's own URN, for invoking itself: FUNCTION_URN, else made as FunctionGraph writes URNs
        (`urn:fss:<region>:<project_id>:function:<package>:<name>:<version>`: huaweicloudsdkfunctiongraph's
        model documentation) from what the runtime sets (RUNTIME_PACKAGE, RUNTIME_FUNC_NAME,
        RUNTIME_FUNC_VERSION: https://github.com/openyuanrong/runtime/blob/main/api/python/yr/functionsdk/context.py
        EnvStorage.__write_env)."""
        if self.function_urn:
            return self.function_urn
        project = self.defaults(context_project_id).project_id
        parts = (self.region, project, "function", self.package, self.function_name, self.function_version)
        return "urn:fss:" + ":".join(parts) if all(parts) else ""

    def secrets(self) -> tuple[str, ...]:
        """The revealed secret values, for last-line scrubbing of logs and answers."""
        values = (self.auth_token, self.iam_password, self.secret_key, self.security_token)
        return tuple(s.reveal() for s in (*values, self.node_login_password) if s)


class Variable(NamedTuple):
    """One environment variable: the Settings field it sets, the _Reader method that reads it, and its bounds."""

    name: str
    field: str
    read: str
    args: tuple[Any, ...] = ()


# Read in this order (the region before the endpoints made from it). The README's variables table is checked
# against this one.
VARIABLES: tuple[Variable, ...] = (
    Variable("HUAWEICLOUD_SDK_REGION", "region", "region"),
    Variable("CCE_ENDPOINT", "cce_endpoint", "endpoint", ("cce",)),
    Variable("IAM_ENDPOINT", "iam_endpoint", "endpoint", ("iam", "HUAWEICLOUD_SDK_IAM_ENDPOINT")),
    Variable("SMN_ENDPOINT", "smn_endpoint", "endpoint", ("smn",)),
    Variable("FGS_ENDPOINT", "fgs_endpoint", "endpoint", ("functiongraph",)),
    Variable("HUAWEICLOUD_SDK_PROJECT_ID", "project_id", "text"),
    Variable("RUNTIME_PROJECT_ID", "runtime_project_id", "text"),
    Variable("CCE_CLUSTER_ID", "cluster_id", "text"),
    Variable("CCE_NODEPOOL_ID", "nodepool_id", "text"),
    Variable("CCE_SYNC_SPEC", "sync_spec", "json_object", ("the spec of the sync request",)),
    Variable("SYNC_DRY_RUN", "dry_run", "boolean"),
    Variable("HUAWEICLOUD_AUTH_MODE", "auth_mode", "choice", (AUTH_MODES, str.lower)),
    Variable("HUAWEICLOUD_AUTH_TOKEN", "auth_token", "secret", (True,)),
    Variable("HUAWEICLOUD_IAM_USERNAME", "iam_username", "text"),
    Variable("HUAWEICLOUD_IAM_PASSWORD", "iam_password", "secret"),
    Variable("HUAWEICLOUD_IAM_DOMAIN_NAME", "iam_domain_name", "text"),
    Variable("HUAWEICLOUD_SDK_AK", "access_key", "header_text"),
    Variable("HUAWEICLOUD_SDK_SK", "secret_key", "secret"),
    Variable("HUAWEICLOUD_SDK_SECURITY_TOKEN", "security_token", "secret", (True,)),
    Variable("NODE_LOGIN_PASSWORD", "node_login_password", "secret"),
    Variable("TOKEN_REFRESH_MARGIN_SECONDS", "token_refresh_margin_seconds", "number", (0, 86400)),
    Variable("HTTP_CONNECT_TIMEOUT_SECONDS", "connect_timeout_seconds", "number", (0.01, 900)),
    Variable("HTTP_READ_TIMEOUT_SECONDS", "read_timeout_seconds", "number", (0.01, 900)),
    Variable("ANSWER_RESERVE_MS", "answer_reserve_ms", "number", (0, 60000)),
    Variable("APIG_MAX_BODY_BYTES", "max_body_bytes", "integer", (1, 6 * 1024 * 1024)),
    Variable("RETRY_MAX_ATTEMPTS", "retry_max_attempts", "integer", (1, 10)),
    Variable("RETRY_BASE_SECONDS", "retry_base_seconds", "number", (0, 60)),
    Variable("RETRY_CAP_SECONDS", "retry_cap_seconds", "number", (0, 300)),
    Variable("RETRY_AFTER_CAP_SECONDS", "retry_after_cap_seconds", "number", (0, 300)),
    Variable("EVENT_DEDUP_WINDOW_SECONDS", "dedup_window_seconds", "number", (0, 86400)),
    Variable("RUNTIME_FUNC_NAME", "function_name", "text"),
    Variable("SYNC_WAIT", "wait", "boolean"),
    Variable("SYNC_SKIP_IF_BUSY", "skip_if_busy", "boolean"),
    Variable("SYNC_ALLOWED_TARGETS", "allowed_targets", "targets"),
    Variable("JOB_POLL_INTERVAL_SECONDS", "job_poll_interval_seconds", "number", (0.01, 300)),
    Variable("JOB_POLL_MAX_INTERVAL_SECONDS", "job_poll_max_interval_seconds", "number", (0.01, 600)),
    Variable("TARGET_MIN_SECONDS", "target_min_seconds", "number", (0, 900)),
    Variable("LOG_LEVEL", "log_level", "choice", (LEVELS, str.upper)),
    Variable("SYNC_RECONCILE", "reconcile", "json_object", ("the reconcile object of a reconcile document",)),
    Variable("SYNC_FAILED_BACKOFF_SECONDS", "failed_backoff_seconds", "number", (0, 30 * 86400)),
    Variable("SYNC_STUCK_AFTER_SECONDS", "stuck_after_seconds", "number", (60, 30 * 86400)),
    Variable("SYNC_WINDOWS", "windows", "windows"),
    Variable("SMN_TOPIC_URN", "smn_topic_urn", "smn_topic"),
    Variable("SYNC_RECONCILE_INTERVAL_SECONDS", "reconcile_interval_seconds", "number", (60, 86400)),
    Variable("SYNC_SCOPES", "scopes", "scopes"),
    Variable("FUNCTION_URN", "function_urn", "function_urn"),
    Variable("RUNTIME_PACKAGE", "package", "text"),
    Variable("RUNTIME_FUNC_VERSION", "function_version", "text"),
)


def variable_names() -> tuple[str, ...]:
    """Every variable the settings read, aliases included."""
    return tuple(name for v in VARIABLES for name in (v.name, *(a for a in v.args[1:2] if v.read == "endpoint")))


class _Reader:
    """Reads one variable each, as VARIABLES says: `(name, default, *bounds)`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._region = ""

    def text(self, name: str, default: str = "") -> str:
        return self._environ.get(name, "").strip() or default

    def region(self, name: str, default: str) -> str:
        """A region ID (it becomes part of every endpoint's host name)."""
        self._region = self.text(name, default)
        if self._region and not re.fullmatch(REGION_PATTERN, self._region):
            raise ConfigurationError(f"{name} must be a region ID such as ap-southeast-1, not {self._region[:20]!r}")
        return self._region

    def secret(self, name: str, default: None, in_header: bool = False) -> Secret | None:
        """A secret, exactly as given; one that travels in a header must be able to (no line break, say)."""
        value = self._environ.get(name, "")
        if value and in_header and not header_safe(value):
            raise ConfigurationError(f"{name} must be printable ASCII without spaces or line breaks")
        return Secret(value) if value else default

    def header_text(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if value and not header_safe(value):
            raise ConfigurationError(f"{name} must be printable ASCII without spaces or line breaks")
        return value

    def windows(self, name: str, default: None) -> "Windows | None":
        value = self.text(name)
        if not value:
            return default
        from .windows import parse_windows  # only when windows are set

        try:
            return parse_windows(value)
        except ValueError as exc:
            raise ConfigurationError(f"{name}: {exc}") from None

    def smn_topic(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if value and not re.fullmatch(r"urn:smn:[a-z0-9-]+:[A-Za-z0-9]{1,64}:[A-Za-z0-9_-]{1,255}", value):
            raise ConfigurationError(f"{name} must be an SMN topic URN (urn:smn:REGION:PROJECT_ID:TOPIC)")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...], case: Callable[[str], str]) -> str:
        value = case(self.text(name)) or default
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of {', '.join(c for c in choices if c)}, not {value[:20]!r}")
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
            raise ConfigurationError(f"{name} must be a number from {low:g} to {high:g}, not {value[:20]!r}") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, not {value[:20]!r}")
        return number

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        number = self.number(name, default, low, high)
        if number != int(number):  # 1.5 attempts, or bytes: refused rather than silently truncated
            raise ConfigurationError(
                f"{name} must be a whole number from {low} to {high}, not {self.text(name)[:20]!r}"
            )
        return int(number)

    def endpoint(self, name: str, default: str, service: str, alias: str = "") -> str:
        """An endpoint as configured (the variable, or its alias), which may hold {region}; https only. Unset,
        it is "" and Settings.endpoint() takes the SDK's region table's."""
        if alias and not self.text(name):
            name = alias
        value = self.text(name, default).rstrip("/")
        if value and not endpoint_is_allowed(value.replace("{region}", "region")):
            raise ConfigurationError(
                f"{name} must be an https:// URL (http:// only for a loopback host), {{region}} allowed, "
                f"not {value[:80]!r}"
            )
        return value

    def _json(self, name: str) -> Any:
        """The variable's JSON value (strict and bounded), or None when it is unset."""
        value = self.text(name)
        if not value:
            return None
        try:
            return strictjson.loads(value)
        except ValueError as exc:
            raise ConfigurationError(f"{name} is not acceptable JSON: {str(exc)[:120]}") from None

    def scopes(self, name: str, default: tuple[Scope, ...]) -> tuple[Scope, ...]:
        """A JSON list of {"region", "project_id"} objects, each once."""
        parsed = self._json(name)
        if parsed is None:
            return default
        form = f'{name} must be a JSON list of {{"region": "...", "project_id": "..."}} objects'
        if not isinstance(parsed, list) or not parsed or len(parsed) > MAX_SCOPES:
            raise ConfigurationError(f"{form} (1 to {MAX_SCOPES})")
        scopes: list[Scope] = []
        for index, item in enumerate(parsed):
            if not (isinstance(item, dict) and set(item) == {"region", "project_id"}):
                raise ConfigurationError(f"{form}; entry {index} is not one")
            region, project = item["region"], item["project_id"]
            if not (isinstance(region, str) and re.fullmatch(REGION_PATTERN, region)):
                raise ConfigurationError(f"{name}: entry {index} has no valid region (like ap-southeast-1)")
            if not (isinstance(project, str) and ID_PATTERN.fullmatch(project)):
                raise ConfigurationError(f"{name}: entry {index} has no valid project_id")
            scopes.append(Scope(region, project))
        return tuple(dict.fromkeys(scopes))

    def function_urn(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if value and not re.fullmatch(r"urn:fss:[a-z0-9-]+:[A-Za-z0-9]{1,64}:function:[A-Za-z0-9_.:-]{1,200}", value):
            raise ConfigurationError(f"{name} must be a function URN (urn:fss:REGION:PROJECT_ID:function:APP:NAME)")
        return value

    def targets(self, name: str, default: Allowlist) -> Allowlist:
        """`cluster/nodepool` or `project/cluster/nodepool` entries, `*` a whole segment; unset means no limit."""
        value = self.text(name)
        if not value:
            return default
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

    def json_object(self, name: str, default: None, what: str) -> Mapping[str, Any] | None:
        parsed = self._json(name)
        if parsed is None:
            return default
        if not isinstance(parsed, dict):
            raise ConfigurationError(f"{name} must be a JSON object ({what})")
        return parsed
