"""The executors of one node pool: sync it (SyncOne), or say how its sync is going (AskStatus)."""

from __future__ import annotations

from .cloud import Cloud
from .errors import JobFailed, SyncError, SyncInProgress
from .model import JobPhase, PoolClass, PoolState, Target
from .results import Followed, InSync, PoolStatus, Preview, Sent
from .validation import ValidSync

__all__ = ["ask_status", "sync_one"]


def sync_one(sync: ValidSync, cloud: Cloud, skip_if_busy: bool) -> Sent | Followed | Preview | InSync:
    """The busy guard, the POST and, when asked, following the job; the intent was judged already."""
    target = sync.target
    if sync.dry_run:
        return Preview(target, cloud.preview(target, sync.body))
    before: PoolState | None = None
    if skip_if_busy:
        # One read serves the busy guard, the in-sync short cut and, after an ambiguous failure, the proof.
        before = cloud.pool(target)
        if before.syncing:
            raise SyncInProgress(before.jobid)
        # The counts say nothing of nodes picked by ID or of a template the request brings: those always go.
        needless = not (sync.force or sync.names_nodes or sync.carries_template)
        if before.kind is PoolClass.IN_SYNC and needless:
            return InSync(target, before.nodes)
    accepted = cloud.start(target, sync.body, before)
    if not sync.wait:
        return Sent(target, accepted)
    phase, reason = cloud.follow(target.project_id, accepted.jobid)
    if phase is JobPhase.FAILED:
        raise JobFailed(accepted.jobid, reason, request_id=accepted.request_id)
    return Followed(target, accepted, phase, reason)


def ask_status(cloud: Cloud, target: Target) -> PoolStatus:
    """One pool read and, when it names a job, one job read (whose failure is said, not raised)."""
    pool = cloud.pool(target)
    if not pool.jobid:
        return PoolStatus(target, pool, None)
    try:
        return PoolStatus(target, pool, cloud.job(target.project_id, pool.jobid))
    except SyncError as error:
        return PoolStatus(target, pool, None, f"the job could not be read ({error.message})")
