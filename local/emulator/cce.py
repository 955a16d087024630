"""The emulated CCE: clusters, node pools (their names, node counts, whether busy) and jobs; a node pool as CCE
shows it and a sync as CCE takes it (its body checked against the generated schema, its password salted, a
pool whose operation still runs locked: 429 CCE.01429002)."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from jsonschema import Draft202012Validator

from ..events import cts_trace
from .records import Job, Nodes

__all__ = ["CceState"]


class CceState:
    """CCE's side of the emulator."""

    lock: threading.RLock
    pools: dict[tuple[str, str], dict[str, str]]  # (project, cluster) -> {pool id: name}
    clusters: dict[str, dict[str, str]]  # project -> {cluster id: name}, besides those with pools
    nodes: dict[tuple[str, str, str], Nodes]  # pools whose node counts are modelled
    jobs: dict[str, Job]
    latest_job: dict[tuple[str, str, str], Job]
    busy: dict[tuple[str, str, str], str]  # pools shown as synchronizing -> job id
    job_seconds: float
    job_outcome: str
    multi_group: bool
    lock_running: bool
    strict: bool
    job_seconds_range: tuple[float, float] | None
    job_plan: Callable[[str, str, str], tuple[str, float]] | None
    clock: Callable[[], float]
    _validator: Draft202012Validator

    def add_pool(
        self,
        project_id: str,
        cluster_id: str,
        pool_id: str,
        name: str,
        nodes: int | None = None,
        synced: int | None = None,
    ) -> None:
        """A node pool; with `nodes`, its status reports node counts (`synced` of them on the template)."""
        self.pools.setdefault((project_id, cluster_id), {})[pool_id] = name
        if nodes is not None:
            self.nodes[(project_id, cluster_id, pool_id)] = Nodes(nodes, nodes if synced is None else synced)

    def add_cluster(self, project_id: str, cluster_id: str, name: str) -> None:
        self.clusters.setdefault(project_id, {})[cluster_id] = name

    def knows(self, project_id: str, cluster_id: str, pool_id: str = "") -> bool:
        """Whether the cluster (and the pool) exist here; anything does when not strict."""
        if not self.strict:
            return True
        if cluster_id not in self.cluster_ids(project_id):
            return False
        return not pool_id or pool_id in self.pools.get((project_id, cluster_id), {})

    def cluster_ids(self, project_id: str) -> dict[str, str]:
        """The project's clusters: those added, and those with node pools."""
        found = dict(self.clusters.get(project_id, {}))
        for project, cluster in self.pools:
            if project == project_id:
                found.setdefault(cluster, cluster)
        return found

    def update_template(self, project_id: str, cluster_id: str, pool_id: str) -> dict[str, Any]:
        """Change the pool's template, as a user would: every node drifts. Returns the CTS trace CCE would record."""
        with self.lock:
            nodes = self.nodes[(project_id, cluster_id, pool_id)]
            nodes.synced, nodes.drifted_at = 0, self.clock()
        return cts_trace(project_id, cluster_id, pool_id, self.pools[(project_id, cluster_id)][pool_id])

    def add_job(
        self,
        project_id: str,
        cluster_id: str,
        pool_id: str,
        outcome: str,
        ended_ago: float,
        seconds: float = 600.0,
        resource_id: str = "",
        reason: str = "Node reset failed",
    ) -> Job:
        """The pool's latest job, ended (`outcome`) `ended_ago` seconds ago after running `seconds`; a negative
        `ended_ago` is a job still running that has run `seconds` + `ended_ago` so far."""
        created = self.clock() - ended_ago - seconds
        job = Job(str(uuid.uuid4()), project_id, cluster_id, pool_id, created, seconds, outcome, resource_id, reason)
        with self.lock:
            self.jobs[job.id] = job
            self.latest_job[(project_id, cluster_id, pool_id)] = job
        return job

    def set_busy(self, project_id: str, cluster_id: str, pool_id: str, job_id: str = "running-job") -> None:
        self.busy[(project_id, cluster_id, pool_id)] = job_id

    def job_for(self, project_id: str, cluster_id: str, pool_id: str) -> Job | None:
        """The pool's latest job while it runs (one lookup: benchmarks post thousands of jobs)."""
        job = self.latest_job.get((project_id, cluster_id, pool_id))
        if job is not None and job.phase(self.clock()) not in ("Success", "Failed"):
            return job
        return None

    def pool_view(self, project_id: str, cluster_id: str, pool_id: str, advance: bool = True) -> dict[str, Any]:
        """The node pool as CCE shows it; `advance` is the query's advanceStatus=true (the whole pool)."""
        running = self.job_for(project_id, cluster_id, pool_id)
        busy_job = self.busy.get((project_id, cluster_id, pool_id)) or (running.id if running else None)
        name = self.pools.get((project_id, cluster_id), {}).get(pool_id, pool_id)
        syncing = busy_job is not None and (advance or not self.multi_group)
        # NodePoolCondition (huaweicloudsdkcce): type, status, reason, message, lastProbeTime, lastTransitTime.
        # No `phase`: deprecated, and its "Synchronizing" means scaling, not a configuration sync.
        probed = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "ConfigurationSynchronizing",
            "status": "True" if syncing else "False",
            "reason": "Synchronizing" if syncing else "",
            "message": "",
            "lastProbeTime": probed,
            "lastTransitTime": probed,
        }
        status: dict[str, Any] = {"conditions": [condition]}
        latest = self.latest_job.get((project_id, cluster_id, pool_id))
        if busy_job or latest is not None:  # jobId: the job of the pool's latest operation, running or not
            status["jobId"] = busy_job or latest.id  # type: ignore[union-attr]
        nodes = self.nodes.get((project_id, cluster_id, pool_id))
        if nodes is not None:
            if latest is not None and latest.created >= nodes.drifted_at and latest.phase(self.clock()) == "Success":
                nodes.synced = nodes.current  # a finished sync brings every node to the template
            status.update(currentNode=nodes.current, configurationSyncedNodeCount=nodes.synced)
        return {
            "kind": "NodePool",
            "apiVersion": "v3",
            "metadata": {"name": name, "uid": pool_id},
            "spec": {"type": "vm"},
            "status": status,
        }

    def accept_sync(self, project_id: str, cluster_id: str, pool_id: str, body: Any) -> tuple[int, Any]:
        errors = sorted(self._validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            return 400, {"errorCode": "CCE.01400001", "errorMessage": f"Invalid request: {errors[0].message[:200]}"}
        if body["spec"]["nodePoolID"] != pool_id:
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "spec.nodePoolID does not match the path"}
        password = body["spec"].get("nodeTemplate", {}).get("login", {}).get("userPassword", {}).get("password")
        if password is not None and not _is_salted(password):
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "userPassword.password must be salted"}
        with self.lock:  # as CCE's lock: two syncs of one pool at once never both start
            if self.lock_running and (
                self.job_for(project_id, cluster_id, pool_id) or (project_id, cluster_id, pool_id) in self.busy
            ):
                # CCE's 429 CCE.01429002: "resource locked by another request" (the API reference's error codes)
                locked = {"errorCode": "CCE.01429002", "errorMessage": "The resource is locked by a running operation"}
                return 429, locked
            seconds = random.uniform(*self.job_seconds_range) if self.job_seconds_range else self.job_seconds
            outcome = self.job_outcome
            if self.job_plan is not None:
                outcome, seconds = self.job_plan(project_id, cluster_id, pool_id)
            job = Job(str(uuid.uuid4()), project_id, cluster_id, pool_id, self.clock(), seconds, outcome)
            self.jobs[job.id] = job
            self.latest_job[(project_id, cluster_id, pool_id)] = job
        return 200, {"jobid": job.id}


def _is_salted(value: str) -> bool:
    from handler.validation import is_salted_password  # the one statement of the salted form

    return is_salted_password(value)
