"""Reconcile: read the node pools' state, compare, and start syncs for exactly the pools whose nodes lag.

CCE's state is the only state: one list call per cluster (reads across clusters a few at a time), each pool
classified by its status (cce.PoolClass), and syncs started for drifted pools in a stable order while fewer
than `max_syncing_per_cluster` pools of that cluster sync (those already syncing count). The rest are
deferred to the next pass. A pool is never read again before its start: the list said what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, NamedTuple

from .answers import Status, error_body
from .cce import DEFAULT_POOL, Job, PoolClass, PoolState
from .errors import SyncError, TargetNotAllowed
from .plans import Reconcile, Selection
from .runtime import Deadline, utc_text

__all__ = ["Action", "ClusterRead", "Gentleness", "PassResult", "read_clusters", "run_pass"]

MAX_READERS = 4  # list calls in flight at once: a few, so 200 clusters take seconds without a burst on CCE


class Action(str, Enum):
    """What a pass did about a pool that needs a sync."""

    STARTED = "started"
    WOULD_START = "would_start"  # a dry run
    DEFERRED = "deferred"  # max_syncing_per_cluster reached, no time left, outside every window: a later pass
    BACKING_OFF = "backing_off"  # its last sync failed not long ago: not started again yet
    REFUSED = "refused"  # outside SYNC_ALLOWED_TARGETS
    FAILED = "failed"


class ClusterRead(NamedTuple):
    """One cluster's node pools as listed, or why they could not be."""

    cluster_id: str
    pools: tuple[PoolState, ...] = ()
    error: SyncError | None = None


class PassResult(NamedTuple):
    """The pass's answer document, its HTTP status, the error to raise when nothing could be read, and what
    happened since the previous pass that needs a person (failed or stuck syncs, refused or failed starts)."""

    document: dict[str, Any]
    http_status: int
    unreadable: SyncError | None
    notable: tuple[dict[str, Any], ...] = ()


def read_clusters(
    cluster_ids: Sequence[str], read: Callable[[str], list[PoolState]], refused: Callable[[str], bool]
) -> list[ClusterRead]:
    """Each cluster's pools, read a few at a time; a cluster the allowlist does not reach is never read."""

    def one(cluster_id: str) -> ClusterRead:
        if refused(cluster_id):
            return ClusterRead(cluster_id, error=TargetNotAllowed("no node pool of this cluster is allowed"))
        try:
            return ClusterRead(cluster_id, tuple(read(cluster_id)))
        except SyncError as error:
            return ClusterRead(cluster_id, error=error)

    if len(cluster_ids) <= 1:
        return [one(cluster_id) for cluster_id in cluster_ids]
    from concurrent.futures import ThreadPoolExecutor  # only a pass over several clusters needs threads

    with ThreadPoolExecutor(max_workers=min(MAX_READERS, len(cluster_ids))) as readers:
        return list(readers.map(one, cluster_ids))


def _chosen(plan: Reconcile, pools: Sequence[PoolState]) -> list[PoolState]:
    """The pools the plan looks at, in a stable order (name, then ID)."""
    if plan.pools is Selection.NAMES:
        picked = [p for p in pools if p.name in plan.names]
    else:
        picked = [p for p in pools if plan.include_default or p.pool_id != DEFAULT_POOL]
    if plan.pool_ids:
        picked = [p for p in picked if p.pool_id in plan.pool_ids]
    return sorted((p for p in picked if p.name not in plan.exclude), key=lambda p: (p.name, p.pool_id))


class Gentleness(NamedTuple):
    """What keeps a controller safe to leave running: back off from failing pools, tell stuck syncs, start only
    inside maintenance windows, and what the previous pass (one interval ago) already saw."""

    now: float  # epoch seconds, judged once per pass
    read_job: Callable[[str], Job]
    failed_backoff_seconds: float = 6 * 3600.0
    stuck_after_seconds: float = 2 * 3600.0
    closed_until: float | None = None  # SYNC_WINDOWS judged once for the pass: None while a window is open
    interval_seconds: float = 600.0


def _job(gentle: Gentleness, jobid: str) -> Job | None:
    """The pool's latest job, or None when it names none or the read fails (then: no backoff information)."""
    if not jobid:
        return None
    try:
        return gentle.read_job(jobid)
    except SyncError:
        return None


def _act(
    plan: Reconcile,
    read: ClusterRead,
    start: Callable[[str, PoolState], str],
    deadline: Deadline,
    min_seconds: float,
    gentle: Gentleness,
    notable: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One entry per chosen pool: its class, its counts and, for a pool that needs a sync, what was done.

    Job reads stay bounded: one per pool already syncing (is it stuck?) and one per pool about to start (did
    its last sync just fail?)."""
    syncing = sum(p.syncing for p in read.pools)
    entries = []
    for pool in _chosen(plan, read.pools):
        kind = pool.kind
        entry: dict[str, Any] = {"nodepool_id": pool.pool_id, "name": pool.name, "class": kind.value}
        if pool.nodes is not None:
            entry["nodes"] = pool.nodes
        if kind is PoolClass.SYNCING and pool.jobid:
            entry["jobid"] = pool.jobid
            job = _job(gentle, pool.jobid)
            if job is not None and job.created is not None and gentle.now - job.created > gentle.stuck_after_seconds:
                entry.update({"class": PoolClass.STUCK.value, "since": utc_text(job.created)})
                if gentle.now - job.created - gentle.stuck_after_seconds <= gentle.interval_seconds:
                    notable.append({**_about(read, pool), "what": "sync stuck", "jobid": pool.jobid})
        entries.append(entry)
        if not (kind is PoolClass.DRIFTED or (kind is PoolClass.UNKNOWN and plan.force)):
            continue
        if syncing >= plan.max_syncing:
            entry.update(action=Action.DEFERRED.value, reason="max_syncing_per_cluster reached")
            continue
        if deadline.remaining() < min_seconds:
            entry.update(action=Action.DEFERRED.value, reason="no time left in this pass")
            continue
        if gentle.closed_until is not None and not plan.force:
            next_window = utc_text(gentle.closed_until)
            entry.update(action=Action.DEFERRED.value, reason="outside_window", next_window=next_window)
            continue
        job = _job(gentle, pool.jobid)
        if job is not None and job.phase == "Failed" and job.updated is None:
            entry["note"] = "no backoff information: the failed job's time cannot be read"  # logged with the action
        if not plan.force and _backing_off(job, pool, gentle):
            assert job is not None and job.updated is not None
            until = job.updated + gentle.failed_backoff_seconds
            entry.update(action=Action.BACKING_OFF.value, jobid=job.id, reason=job.reason, until=utc_text(until))
            if gentle.now - job.updated <= gentle.interval_seconds:
                notable.append({**_about(read, pool), "what": "sync job failed", "jobid": job.id, "reason": job.reason})
            continue
        if plan.dry_run:
            entry["action"] = Action.WOULD_START.value
            syncing += 1
            continue
        try:
            entry.update(action=Action.STARTED.value, jobid=start(read.cluster_id, pool) or None)
            syncing += 1
        except TargetNotAllowed as error:
            entry.update(action=Action.REFUSED.value, **_error(error))
            notable.append({**_about(read, pool), "what": "start refused", "reason": error.message})
        except SyncError as error:
            entry.update(action=Action.FAILED.value, **_error(error))
            notable.append({**_about(read, pool), "what": "start failed", "reason": error.message})
    return entries


def _about(read: ClusterRead, pool: PoolState) -> dict[str, str]:
    return {"cluster_id": read.cluster_id, "nodepool_id": pool.pool_id, "name": pool.name}


def _backing_off(job: Job | None, pool: PoolState, gentle: Gentleness) -> bool:
    """The pool's last sync failed less than SYNC_FAILED_BACKOFF_SECONDS ago (a job of another resource, or one
    without a readable time, is no reason to wait)."""
    if job is None or job.phase != "Failed" or job.updated is None:
        return False
    if job.resource_id and job.resource_id != pool.pool_id:
        return False
    return gentle.now - job.updated < gentle.failed_backoff_seconds


def _error(error: SyncError) -> dict[str, Any]:
    body = error_body(error)
    return {"error_code": body["error_code"], "error_msg": body["error_msg"]}


def run_pass(
    plan: Reconcile,
    reads: Sequence[ClusterRead],
    start: Callable[[str, PoolState], str],
    deadline: Deadline,
    min_seconds: float,
    gentle: Gentleness,
) -> PassResult:
    """Act on what was read, and say it all in one document: per cluster, per pool, and totals."""
    clusters: list[dict[str, Any]] = []
    notable: list[dict[str, Any]] = []
    totals = dict.fromkeys([*(c.value for c in PoolClass), *(a.value for a in Action)], 0)
    totals.update(clusters=len(reads), clusters_unread=0)
    for read in reads:
        if read.error is not None:
            totals["clusters_unread"] += 1
            status = Action.REFUSED if isinstance(read.error, TargetNotAllowed) else Action.FAILED
            clusters.append({"cluster_id": read.cluster_id, "status": status.value, **_error(read.error)})
            continue
        pools = _act(plan, read, start, deadline, min_seconds, gentle, notable)
        for pool in pools:
            totals[pool["class"]] += 1
            if "action" in pool:
                totals[pool["action"]] += 1
        clusters.append({"cluster_id": read.cluster_id, "status": "read", "pools": pools})
    document = {
        "status": Status.RECONCILED.value,
        "project_id": plan.project_id,
        **({"dry_run": True} if plan.dry_run else {}),
        "totals": totals,
        "clusters": clusters,
    }
    troubled = totals["clusters_unread"] or totals[Action.FAILED.value] or totals[Action.REFUSED.value]
    failures = [r.error for r in reads if r.error is not None]
    unreadable = None
    if reads and len(failures) == len(reads):
        unreadable = next((e for e in failures if e.transient), None)
    return PassResult(document, 207 if troubled else 200, unreadable, tuple(notable))
