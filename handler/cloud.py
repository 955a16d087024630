"""The trust boundary: one invocation's reach into Huawei Cloud, bound to SYNC_ALLOWED_TARGETS.

Every executor talks to CCE and SMN only through a `Cloud`, and each of those methods first asks the allowlist
about what it touches (a project, a cluster, a node pool), so every refusal has one shape
(allowlist.Allowlist.refusal). The one call that is not judged by the allowlist is `invoke`: it reaches no node
pool, only this function's own URN with its own project's credential, and the worker it starts is judged by its
own Cloud. Credentials are resolved per project on first use, and their secrets are remembered for scrubbing the
invocation's answer and log lines. Salting happens here too: no path can send a plain node password.
"""

from __future__ import annotations

from typing import Any

from . import passwords
from .cce import Clients
from .credentials import Credential, TokenCache, resolve
from .gate import Admission
from .model import Accepted, Job, JobPhase, PoolState, Target
from .runtime import Deadline, RuntimeContext
from .settings import Settings
from .transport import Transport

__all__ = ["Cloud"]


class Cloud:
    """CCE and SMN as one invocation may use them: only what the allowlist reaches, before the deadline."""

    __slots__ = (
        "_client",
        "_clients",
        "_context",
        "_credentials",
        "_settings",
        "_tokens",
        "_transport",
        "deadline",
        "own",
    )

    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        region: str,
        transport: Transport,
        tokens: TokenCache,
        context: RuntimeContext,
        deadline: Deadline,
        own_project: str,
    ) -> None:
        self._settings, self._clients, self._transport, self._tokens = settings, clients, transport, tokens
        self._client = clients.get(region or settings.region)
        self._context, self.deadline, self.own = context, deadline, own_project
        self._credentials: dict[tuple[str, str], Credential] = {}

    # --- the allowlist ---------------------------------------------------------------------------------------

    def reaches(self, project_id: str, cluster_id: str = "", nodepool_id: str = "") -> bool:
        return self._settings.allowed_targets.allows(self.own, project_id, cluster_id, nodepool_id)

    def _check(self, project_id: str, cluster_id: str = "", nodepool_id: str = "") -> Credential:
        """The project's credential, once the allowlist says yes (no credential work for what it refuses)."""
        refusal = self._settings.allowed_targets.refusal(self.own, project_id, cluster_id, nodepool_id)
        if refusal is not None:
            raise refusal
        return self._credential(project_id)

    def _credential(self, project_id: str, region: str = "") -> Credential:
        """The credential for a project of a region (this Cloud's by default): a foreign region or project (a
        worker's scope, the SMN topic's) is signed with the agency's temporary AK/SK rather than its token (scoped
        to the function's own)."""
        region = region or self._client.region
        if (region, project_id) not in self._credentials:
            foreign = region != self._settings.region or project_id != self.own
            self._credentials[(region, project_id)] = resolve(
                self._settings, self._context, project_id, self._transport, self._tokens, self.deadline, region, foreign
            )
        return self._credentials[(region, project_id)]

    def secrets(self) -> tuple[str, ...]:
        """The settings' secrets and those of every credential used so far (an IAM token once fetched)."""
        return (*self._settings.secrets(), *(s for c in self._credentials.values() for s in c.secrets()))

    # --- reads -----------------------------------------------------------------------------------------------

    def pool(self, target: Target) -> PoolState:
        return self._client.pool_state(target, self._check(*target), self.deadline)

    def pools(self, project_id: str, cluster_id: str, with_default: bool) -> list[PoolState]:
        credential = self._check(project_id, cluster_id)
        return self._client.list_nodepools(project_id, cluster_id, credential, self.deadline, with_default)

    def clusters(self, project_id: str) -> list[tuple[str, str]]:
        """The project's clusters as (ID, name), whether or not the allowlist reaches each (callers ask)."""
        return self._client.list_clusters(project_id, self._check(project_id), self.deadline)

    def projects(self) -> list[tuple[str, str, bool]]:
        """The projects the function's own identity can reach, as (ID, name, enabled): IAM lists them for its own
        project's credential (no policy needed)."""
        return self._client.list_projects(self._credential(self.own), self.deadline)

    def job(self, project_id: str, jobid: str) -> Job:
        return self._client.read_job(project_id, jobid, self._check(project_id), self.deadline)

    def follow(self, target: Target, jobid: str) -> tuple[JobPhase, str]:
        return self._client.follow_job(target, jobid, self._check(*target), self.deadline)

    # --- acts ------------------------------------------------------------------------------------------------

    def preview(self, target: Target, body: dict[str, Any]) -> dict[str, Any]:
        """The request a sync would send, secrets masked; nothing is sent."""
        return self._client.preview(target, body, self._check(*target))

    def start(self, admission: Admission, body: dict[str, Any], before: PoolState | None = None) -> Accepted:
        """POST the sync the gate admitted, its node password salted (the one send path of every sync)."""
        target = admission.target
        credential = self._check(*target)
        return self._client.sync(target, passwords.salt_body(body), credential, self.deadline, before)

    def invoke(self, urn: str, body: bytes) -> str:
        """Invoke this function asynchronously with the function's own project's credential (no node pool is
        touched: the worker it starts goes through its own Cloud): FunctionGraph's request id."""
        credential = self._credential(self.own)
        return self._client.invoke_async(urn, body, self.own, credential, self.deadline)

    def put_metrics(self, data: bytes) -> None:
        """Send CreateMetricData bodies to Cloud Eye of the function's home region and project, with that
        project's own credential, whichever scope this Cloud covers (a worker's figures go home, labelled)."""
        region = self._settings.region
        credential = self._credential(self.own, region)
        self._clients.get(region).put_metric_data(self.own, data, credential, self.deadline)

    def publish(self, subject: str, message: str) -> str:
        """Publish to SMN_TOPIC_URN where the topic lives (`urn:smn:<region>:<project_id>:<name>`), with a
        credential for that region and project, whichever scope the pass covers: the message id."""
        topic = self._settings.smn_topic_urn
        _, _, region, project_id, _ = topic.split(":", 4)
        credential = self._credential(project_id, region)
        return self._clients.get(region).publish(project_id, topic, subject, message, credential, self.deadline)
