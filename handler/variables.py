"""The function's variables, one table (`VARIABLES`): which Settings field each sets, how it is read and checked,
its bounds. A malformed value is a ConfigurationError naming the variable; defaults are Settings' own."""

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from . import strictjson
from .allowlist import Allowlist
from .endpoints import ACCESSIBLE, MAX_SCOPES, REGION_PATTERN, Scope, endpoint_is_allowed
from .environment import Secret
from .errors import ConfigurationError, FieldError
from .logs import LEVELS
from .transport import header_safe
from .validation import ID_PATTERN, RECONCILE_SCHEMA, schema_errors, spec_errors

if TYPE_CHECKING:
    from .windows import Windows

__all__ = [
    "AUTH_MODES",
    "AUTH_SOURCES",
    "VARIABLES",
    "Variable",
    "credential_names",
    "endpoint_names",
    "group",
    "misspelt",
    "read",
    "secret_names",
    "variable_names",
]

AUTH_SOURCES = ("token", "password", "aksk")  # the credentials in variables, in the order they are tried
AUTH_MODES = ("", *AUTH_SOURCES, "agency")  # HUAWEICLOUD_AUTH_MODE; "": the first complete source
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Variable(NamedTuple):
    """One environment variable: the Settings field it sets, the _Reader method that reads it (a secret is read
    by `secret`, an endpoint by `endpoint`, whose second argument is its alias), its bounds, and for a
    credential the source it belongs to (AUTH_SOURCES, "mode" or "session")."""

    name: str
    field: str
    read: str
    args: tuple[Any, ...] = ()
    group: str = ""

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(self.args[1:2]) if self.read == "endpoint" else ()


# Read in this order (the region before the endpoints made from it). The README's variables table is checked
# against this one.
VARIABLES: tuple[Variable, ...] = (
    Variable("HUAWEICLOUD_SDK_REGION", "region", "region"),
    Variable("CCE_ENDPOINT", "cce_endpoint", "endpoint", ("cce",)),
    Variable("IAM_ENDPOINT", "iam_endpoint", "endpoint", ("iam", "HUAWEICLOUD_SDK_IAM_ENDPOINT")),
    Variable("SMN_ENDPOINT", "smn_endpoint", "endpoint", ("smn",)),
    Variable("FGS_ENDPOINT", "fgs_endpoint", "endpoint", ("functiongraph",)),
    Variable("CES_ENDPOINT", "ces_endpoint", "endpoint", ("ces",)),
    Variable("HUAWEICLOUD_SDK_PROJECT_ID", "project_id", "text"),
    Variable("RUNTIME_PROJECT_ID", "runtime_project_id", "text"),
    Variable("CCE_CLUSTER_ID", "cluster_id", "text"),
    Variable("CCE_NODEPOOL_ID", "nodepool_id", "text"),
    Variable("CCE_SYNC_SPEC", "sync_spec", "sync_spec"),
    Variable("SYNC_DRY_RUN", "dry_run", "boolean"),
    Variable("HUAWEICLOUD_AUTH_MODE", "auth_mode", "choice", (AUTH_MODES, str.lower), group="mode"),
    Variable("HUAWEICLOUD_AUTH_TOKEN", "auth_token", "secret", (True,), group="token"),
    Variable("HUAWEICLOUD_IAM_USERNAME", "iam_username", "text", group="password"),
    Variable("HUAWEICLOUD_IAM_PASSWORD", "iam_password", "secret", group="password"),
    Variable("HUAWEICLOUD_IAM_DOMAIN_NAME", "iam_domain_name", "text", group="password"),
    Variable("HUAWEICLOUD_SDK_AK", "access_key", "header_text", group="aksk"),
    Variable("HUAWEICLOUD_SDK_SK", "secret_key", "secret", group="aksk"),
    Variable("HUAWEICLOUD_SDK_SECURITY_TOKEN", "security_token", "secret", (True,), group="session"),
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
    Variable("SYNC_RECONCILE", "reconcile", "reconcile_options"),
    Variable("SYNC_FAILED_BACKOFF_SECONDS", "failed_backoff_seconds", "number", (0, 30 * 86400)),
    Variable("SYNC_STUCK_AFTER_SECONDS", "stuck_after_seconds", "number", (60, 30 * 86400)),
    Variable("SYNC_WINDOWS", "windows", "windows"),
    Variable("SYNC_OVERRIDES", "overrides", "choice", (("allow", "deny"), str.lower)),
    Variable("SMN_TOPIC_URN", "smn_topic_urn", "smn_topic"),
    Variable("CES_NAMESPACE", "ces_namespace", "ces_namespace"),
    Variable("SYNC_RECONCILE_INTERVAL_SECONDS", "reconcile_interval_seconds", "number", (60, 86400)),
    Variable("SYNC_SCOPES", "scopes", "scopes"),
    Variable("SYNC_SCOPE_REGIONS", "scope_regions", "regions"),
    Variable("FUNCTION_URN", "function_urn", "function_urn"),
    Variable("RUNTIME_PACKAGE", "package", "text"),
    Variable("RUNTIME_FUNC_VERSION", "function_version", "text"),
)


def variable_names() -> tuple[str, ...]:
    """Every variable the settings read, aliases included."""
    return tuple(name for v in VARIABLES for name in (v.name, *v.aliases))


def misspelt(names: Iterable[str]) -> list[tuple[str, str]]:
    """The names that look like a setting's but are not one, each with the setting it is closest to: a name with
    one of the settings' prefixes (SYNC_, CCE_, HUAWEICLOUD_, ...; never RUNTIME_, the platform's) whose
    difflib ratio to a setting's is 0.8 or more."""
    known = variable_names()
    prefixes = tuple({name.split("_", 1)[0] + "_" for name in known} - {"RUNTIME_"})
    candidates = [n for n in names if n not in known and n.startswith(prefixes) and not n.startswith("RUNTIME_")]
    if not candidates:
        return []
    import difflib  # only when a name looks like a setting

    found = ((name, difflib.get_close_matches(name, known, n=1, cutoff=0.8)) for name in candidates)
    return [(name, close[0]) for name, close in found if close]


def group(name: str) -> tuple[str, ...]:
    """The variables of one credential source ("token", "password", "aksk"), or "mode" or "session"."""
    return tuple(v.name for v in VARIABLES if v.group == name)


def credential_names() -> tuple[str, ...]:
    """Every variable that says how the function authenticates (the mode, each source, a session token)."""
    return tuple(v.name for v in VARIABLES if v.group)


def endpoint_names() -> tuple[str, ...]:
    """Every endpoint variable, aliases included."""
    return tuple(name for v in VARIABLES if v.read == "endpoint" for name in (v.name, *v.aliases))


def secret_names() -> tuple[str, ...]:
    """Every variable whose value is a secret (kept in a `Secret`, scrubbed from answers and logs)."""
    return tuple(v.name for v in VARIABLES if v.read == "secret")


class _Scalars:
    """Reads one plain variable each (text, a number in its bounds, a choice, a secret, an endpoint)."""

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


class _Reader(_Scalars):
    """Reads one variable each, as VARIABLES says: `(name, default, *bounds)`; JSON and structured values here."""

    def _json(self, name: str) -> Any:
        """The variable's JSON value (strict and bounded), or None when it is unset."""
        value = self.text(name)
        if not value:
            return None
        try:
            return strictjson.loads(value)
        except ValueError as exc:
            raise ConfigurationError(f"{name} is not acceptable JSON: {str(exc)[:120]}") from None

    def json_object(self, name: str, default: None, what: str) -> Mapping[str, Any] | None:
        parsed = self._json(name)
        if parsed is None:
            return default
        if not isinstance(parsed, dict):
            raise ConfigurationError(f"{name} must be a JSON object ({what})")
        return parsed

    def sync_spec(self, name: str, default: None) -> Mapping[str, Any] | None:
        """The spec of every sync that names none: checked now as every sync would check it (fast schema path)."""
        spec = self.json_object(name, default, "the spec of the sync request")
        if spec is not None:
            _refuse(name, "", spec_errors(dict(spec), ""), "/spec")
        return spec

    def reconcile_options(self, name: str, default: None) -> Mapping[str, Any] | None:
        """What the timer's pass (and every guard) is: checked now, so a typo fails every event, not every tick."""
        options = self.json_object(name, default, "the reconcile object of a reconcile document")
        if options is not None:
            _refuse(name, "", schema_errors(RECONCILE_SCHEMA, {"reconcile": options}), "/reconcile")
        return options

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

    def ces_namespace(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not value:
            return value
        from .metrics import namespace_error  # only when metrics are reported

        problem = namespace_error(value)
        if problem:
            raise ConfigurationError(f"{name} {problem}, not {value[:40]!r}")
        return value

    def regions(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A JSON list of region IDs."""
        parsed = self._json(name)
        if parsed is None:
            return default
        if not (
            isinstance(parsed, list) and all(isinstance(r, str) and re.fullmatch(REGION_PATTERN, r) for r in parsed)
        ):
            raise ConfigurationError(f'{name} must be a JSON list of region IDs, like ["ap-southeast-1"]')
        return tuple(dict.fromkeys(parsed))

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

    def scopes(self, name: str, default: tuple[Scope, ...]) -> tuple[Scope, ...]:
        """A JSON list of {"region", "project_id"} objects, each once; or `accessible` (listed at run time, kept
        as the one scope ("accessible", "accessible"): Settings.accessible)."""
        if self.text(name) == ACCESSIBLE:
            return (Scope(ACCESSIBLE, ACCESSIBLE),)
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


def _refuse(name: str, _: str, errors: list[FieldError], prefix: str) -> None:
    """A ConfigurationError naming the variable and its first wrong field, when there are errors."""
    if errors:
        first = errors[0]
        where = first.path.removeprefix(prefix) or "/"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigurationError(f"{name}: {where}: {first.message}{more}")


def read(environ: Mapping[str, str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every variable of VARIABLES read and checked, as Settings' fields (a field's default when unset)."""
    reader = _Reader(environ)
    return {v.field: getattr(reader, v.read)(v.name, defaults[v.field], *v.args) for v in VARIABLES}
