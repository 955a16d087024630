"""The function's environment, read and checked once per process into one frozen `Settings`."""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .allowlist import Allowlist
from .endpoints import ACCESSIBLE, Scope, service_endpoint
from .environment import Secret
from .validation import Defaults
from .variables import read

if TYPE_CHECKING:
    from .windows import Windows

__all__ = ["Settings"]


class Settings(NamedTuple):
    """Everything the function reads from its environment; secrets are `Secret`s. Each field's default here is
    the one default of its variable (VARIABLES says which variable sets which field)."""

    region: str = ""
    cce_endpoint: str = ""  # as configured (may hold {region}); "" for the region's own: see endpoint()
    iam_endpoint: str = ""
    smn_endpoint: str = ""
    fgs_endpoint: str = ""
    ces_endpoint: str = ""
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
    overrides: str = "allow"  # SYNC_OVERRIDES: "deny" refuses every document that lifts a guard (ignore_*)
    smn_topic_urn: str = ""
    ces_namespace: str = ""  # CES_NAMESPACE: a full pass reports its figures to Cloud Eye under it ("": none)
    reconcile_interval_seconds: float = 600.0
    scopes: tuple[Scope, ...] = ()  # SYNC_SCOPES; none: the function's own region and project
    scope_regions: tuple[str, ...] = ()  # SYNC_SCOPE_REGIONS: with SYNC_SCOPES=accessible, only these regions
    function_urn: str = ""  # FUNCTION_URN, else made from the runtime's variables: see own_urn()
    package: str = "default"  # RUNTIME_PACKAGE: the function's app
    function_version: str = "latest"  # RUNTIME_FUNC_VERSION

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        """Read and check every variable of VARIABLES; a malformed one is a ConfigurationError naming it."""
        return cls(**read(environ, cls._field_defaults))

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
        """A service's endpoint (cce, iam, smn, ces, functiongraph) in a region (default: the function's): the
        configured one with {region} filled, else the SDK's region table's; "" when neither says."""
        region = region or self.region
        configured = {
            "cce": self.cce_endpoint,
            "iam": self.iam_endpoint,
            "smn": self.smn_endpoint,
            "ces": self.ces_endpoint,
        }.get(service, self.fgs_endpoint)
        if configured:
            return configured.replace("{region}", region)
        return service_endpoint(service, region) if region else ""

    @property
    def accessible(self) -> bool:
        """SYNC_SCOPES=accessible: the scopes are the projects the function's identity can reach, listed when a
        pass is coordinated."""
        return self.scopes == (Scope(ACCESSIBLE, ACCESSIBLE),)

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
