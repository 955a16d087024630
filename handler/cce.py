"""CCE's operations (the sync, node pool reads, job reads), one client per region (Clients), each call through
the one request path (api.ApiClient); the other services' calls are services.ServiceClient's, which it extends.

A sync is sent once and resent only when CCE certainly did not act; after an ambiguous failure the node pool
is read: a sync running means CCE accepted it, anything else is reported as ambiguous (see retry.py's table).
"""

import json
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import logs
from .api import TOKEN_KINDS
from .credentials import Credential
from .errors import (
    AmbiguousFailure,
    EventError,
    SyncError,
    UpstreamError,
)
from .model import Accepted, Job, JobPhase, PoolClass, PoolState, Target
from .passwords import mask_body
from .runtime import Deadline
from .services import ServiceClient
from .settings import Settings
from .transport import Transport
from .validation import ID_PATTERN

if TYPE_CHECKING:  # the retry policy is imported on the first failure: the valid path never needs it
    from .retry import Decision

__all__ = ["CCEClient", "Clients", "pool_state"]

SYNC_CONDITION = "ConfigurationSynchronizing"
_POLL_RESERVE_SECONDS = 0.25  # one job read on loopback or in-region takes far less
_MAX_REASON = 300  # characters of a job's reason kept, after secrets are masked
_MAX_REASON_READ = 64 * 1024  # a reason longer than this is not one; what is read of it is masked, then cut
# Node pool reads ask for the whole pool's state: without advanceStatus=true `status.conditions` reflect only
# the default scaling group (huaweicloudsdkcce ShowNodePoolRequest / ListNodePoolsRequest, `advance_status`).
# https://github.com/huaweicloud/huaweicloud-sdk-python-v3/blob/master/huaweicloud-sdk-cce/huaweicloudsdkcce/v3/model/show_node_pool_request.py
_WHOLE_POOL = "advanceStatus=true"
# ListNodePools hides DefaultPool unless asked (`show_default_node_pool`, list_node_pools_request.py, same SDK).
_WITH_DEFAULT_POOL = "showDefaultNodePool=true"


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def pool_state(pool: Any, pool_id: str = "") -> PoolState:
    """Read one node pool object (ShowNodePool, or an item of ListNodePools) into a PoolState."""
    pool = pool if isinstance(pool, dict) else {}
    metadata = pool.get("metadata") if isinstance(pool.get("metadata"), dict) else {}
    status = pool.get("status") if isinstance(pool.get("status"), dict) else {}
    conditions = status.get("conditions")
    syncing = isinstance(conditions, list) and any(
        isinstance(c, dict) and c.get("type") == SYNC_CONDITION and c.get("status") == "True" for c in conditions
    )
    uid, name, jobid = metadata.get("uid"), metadata.get("name"), status.get("jobId")
    uid = uid if isinstance(uid, str) else pool_id
    name = name if isinstance(name, str) else uid
    jobid = jobid if isinstance(jobid, str) else ""
    current, synced = _count(status.get("currentNode")), _count(status.get("configurationSyncedNodeCount"))
    return PoolState(uid, name, syncing, jobid, current, synced)


def _items(listing: Any) -> list[dict[str, Any]]:
    """A CCE list's items that are objects with a metadata object; an answer that is no list at all (not an
    object, or `items` not an array) is an upstream error, never an empty list."""
    items = listing.get("items", []) if isinstance(listing, dict) else None
    if items is None and isinstance(listing, dict):
        items = []  # Go marshals an empty slice it never made as null
    if not isinstance(items, list):
        raise UpstreamError("CCE answered a list request with something that is not a list")
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("metadata"), dict)]


def _segment(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise EventError("an ID is not valid for a URL")
    return quote(value, safe="")


class CCEClient(ServiceClient):
    """CCE's operations: node pool and job reads, the sync, and what a sync would send."""

    def _project_url(self, project_id: str) -> str:
        return f"{self._cce}/api/v3/projects/{_segment(project_id)}"

    def nodepool_url(self, target: Target) -> str:
        return (
            f"{self._project_url(target.project_id)}/clusters/{_segment(target.cluster_id)}"
            f"/nodepools/{_segment(target.nodepool_id)}"
        )

    def sync_url(self, target: Target) -> str:
        return self.nodepool_url(target) + "/operation/upgrade"

    def preview(self, target: Target, body: dict[str, Any], credential: Credential) -> dict[str, Any]:
        """The request a sync would send, with every secret masked; nothing is sent."""
        url, headers = self.sync_url(target), self._headers(target.project_id)
        if credential.kind in TOKEN_KINDS:
            headers["X-Auth-Token"] = logs.MASK
        else:
            data = json.dumps(body, separators=(",", ":")).encode()
            for name, value in credential.authorize("POST", url, headers, data).items():
                headers[name] = logs.MASK if name in ("Authorization", "X-Security-Token") else value
        return {"method": "POST", "url": url, "headers": headers, "body": mask_body(body)}

    def pool_state(self, target: Target, credential: Credential, deadline: Deadline) -> PoolState:
        """The node pool's state, the whole pool's (advanceStatus=true); raises when it cannot tell."""
        pool = self.get_json(f"{self.nodepool_url(target)}?{_WHOLE_POOL}", target.project_id, credential, deadline)
        return pool_state(pool, target.nodepool_id)

    def list_nodepools(
        self, project_id: str, cluster_id: str, credential: Credential, deadline: Deadline, with_default: bool
    ) -> list[PoolState]:
        """The cluster's node pools as CCE lists them, each with its state; DefaultPool only `with_default`."""
        query = f"{_WHOLE_POOL}&{_WITH_DEFAULT_POOL}" if with_default else _WHOLE_POOL
        url = f"{self._project_url(project_id)}/clusters/{_segment(cluster_id)}/nodepools?{query}"
        return [pool_state(item) for item in _items(self.get_json(url, project_id, credential, deadline))]

    def list_clusters(self, project_id: str, credential: Credential, deadline: Deadline) -> list[tuple[str, str]]:
        """The project's clusters as (ID, name) (ListClusters, `items[].metadata.uid` and `.name`)."""
        listing = self.get_json(f"{self._project_url(project_id)}/clusters", project_id, credential, deadline)
        found = []
        for item in _items(listing):
            uid, name = item["metadata"].get("uid"), item["metadata"].get("name")
            if isinstance(uid, str):
                found.append((uid, name if isinstance(name, str) else uid))
        return found

    def read_job(self, project_id: str, jobid: str, credential: Credential, deadline: Deadline) -> Job:
        """One read of a job; raises when it cannot be read."""
        if not ID_PATTERN.fullmatch(jobid):
            raise EventError("CCE gave no job id that can be read")
        read = self.get_json(
            f"{self._project_url(project_id)}/jobs/{_segment(jobid)}", project_id, credential, deadline
        )
        job: dict[str, Any] = read if isinstance(read, dict) else {}

        def part(name: str) -> dict[str, Any]:
            value = job.get(name)
            return value if isinstance(value, dict) else {}

        from .times import parse_time  # a job's times: only passes and status questions read a job

        metadata, spec, status = part("metadata"), part("spec"), part("status")
        resource = spec.get("resourceID")
        return Job(
            jobid,
            JobPhase.of(status.get("phase")),
            # Masked before it is cut, so no part of a secret CCE may echo survives into an answer or a message.
            str(logs.scrub(str(status.get("reason", ""))[:_MAX_REASON_READ], (*self._secrets, *credential.secrets())))[
                :_MAX_REASON
            ],
            parse_time(metadata.get("creationTimestamp")),
            parse_time(metadata.get("updateTimestamp")),
            resource if isinstance(resource, str) else "",
        )

    def follow_job(
        self, target: Target, jobid: str, credential: Credential, deadline: Deadline
    ) -> tuple[JobPhase, str]:
        """Poll the target's job until it ends or time runs out: (phase, reason); RUNNING when out of time."""
        if not ID_PATTERN.fullmatch(jobid):
            return JobPhase.RUNNING, "CCE gave no job id that can be followed"
        interval, seen = self._settings.job_poll_interval_seconds, None
        while True:
            try:
                job = self.read_job(target.project_id, jobid, credential, deadline)
            except SyncError as exc:
                return JobPhase.RUNNING, f"the job could not be read ({exc.message})"
            if job.phase is not seen:  # a line per change of the job's state: progress someone waiting can see
                seen, nodes = job.phase, self._nodes(target, credential, deadline)  # one read more per change
                line = {"message": "job", "jobid": jobid, "phase": job.phase.value, "nodes": nodes}
                logs.write(logging.INFO, {key: value for key, value in line.items() if value is not None}, ())
            if job.phase.ended:
                return job.phase, job.reason
            if deadline.remaining() < interval + _POLL_RESERVE_SECONDS:
                return JobPhase.RUNNING, "still running when the invocation's time ran out"
            self._sleep(interval)
            interval = min(interval * 2, self._settings.job_poll_max_interval_seconds)

    def _nodes(self, target: Target, credential: Credential, deadline: Deadline) -> str | None:
        """The pool's `synced/current` nodes for a progress line; None when unread (progress is no reason to fail)."""
        try:
            return self.pool_state(target, credential, deadline).nodes
        except SyncError:
            return None

    def sync(
        self,
        target: Target,
        body: Mapping[str, Any],
        credential: Credential,
        deadline: Deadline,
        before: PoolState | None = None,
    ) -> Accepted:
        """POST the sync under the retry policy: resent only when CCE certainly did not act.

        `before` is the pool as read just before: a drifted pool found in sync after an ambiguous failure means
        CCE took the sync (and finished it)."""
        data = json.dumps(body, separators=(",", ":")).encode()

        def settle(decision: "Decision") -> bool:
            try:
                now = self.pool_state(target, credential, deadline)
            except SyncError as exc:
                raise AmbiguousFailure(
                    f"CCE may have accepted the sync ({decision.reason}) and the node pool could not be "
                    f"checked ({exc.message}); not resent"
                ) from None
            finished = before is not None and before.kind is PoolClass.DRIFTED and now.kind is PoolClass.IN_SYNC
            if not now.syncing and not finished:
                raise AmbiguousFailure(
                    f"CCE may have accepted the sync ({decision.reason}) though the node pool shows none running "
                    "yet; not resent, so a later attempt (with the busy guard) decides"
                )
            return True

        reply, attempts = self._request(
            "POST", self.sync_url(target), target.project_id, data, credential, deadline, settle
        )
        if reply is None:
            return Accepted("", "", attempts, confirmed_after_ambiguity=True)
        parsed = reply.json_or_none()  # CCE took the sync: an unreadable body only hides the job id
        jobid = parsed.get("jobid") if isinstance(parsed, dict) else None
        return Accepted(str(jobid) if jobid else "", reply.request_id, attempts)


class Clients:
    """One CCEClient per region, made on first use: a worker's scope may be in any region."""

    def __init__(self, settings: Settings, transport: Transport, user_agent: str) -> None:
        self._settings, self._transport, self._user_agent = settings, transport, user_agent
        self._lock = threading.Lock()
        self._made: dict[str, CCEClient] = {}

    def get(self, region: str) -> CCEClient:
        with self._lock:
            if region not in self._made:
                self._made[region] = CCEClient(self._settings, self._transport, self._user_agent, region)
            return self._made[region]
