"""Kind: how is a node pool's sync going (API Gateway GET): one pool read, one job read, and the pool's wave
when the configured pass has waves."""

from typing import TYPE_CHECKING, Any, NamedTuple

from ..cloud import Cloud
from ..errors import SyncError
from ..judge import Judge
from ..model import Job, PoolState, Target, Unwrapped
from ..rendering import Answer, Description, Status, target_fields

if TYPE_CHECKING:  # plans are imported when a pass is configured: a plain status question never needs them
    from ..plans import Reconcile

__all__ = ["AskStatus", "PoolStatus", "ask_status", "render_status"]


class PoolStatus(NamedTuple):
    """How a node pool's sync is going: the pool, its latest job (or why that could not be read)."""

    target: Target
    pool: PoolState
    job: Job | None
    job_error: str = ""
    wave: tuple[int, bool] | None = None  # with waves: the pool's cluster's wave, and whether it is open


def ask_status(cloud: Cloud, target: Target) -> PoolStatus:
    """One pool read and, when it names a job, one job read (whose failure is said, not raised)."""
    pool = cloud.pool(target)
    if not pool.jobid:
        return PoolStatus(target, pool, None)
    try:
        return PoolStatus(target, pool, cloud.job(target.project_id, pool.jobid))
    except SyncError as error:
        return PoolStatus(target, pool, None, f"the job could not be read ({error.message})")


def render_status(report: PoolStatus) -> Answer:
    """Syncing or idle; the pool's class and progress, the latest job and its phase; its wave."""
    pool = report.pool
    progress = {"synced": pool.synced, "current": pool.current} if pool.nodes is not None else None
    job: dict[str, Any] | None = None
    if report.job is not None:
        job = {"id": report.job.id, "phase": report.job.phase.value}
        job.update({"reason": report.job.reason} if report.job.reason else {})
    elif pool.jobid:
        job = {"id": pool.jobid, "phase": "", "reason": report.job_error}
    body: dict[str, Any] = {
        **target_fields(report.target),
        "class": pool.kind.value,
        "nodes": pool.nodes,
        "progress": progress,
        "job": job,
    }
    if report.wave is not None:
        body.update(wave=report.wave[0], wave_open=report.wave[1])
    return Answer(Status.SYNCING if pool.syncing else Status.IDLE, body)


class AskStatus(NamedTuple):
    """How is the node pool's sync going; with the configured pass when it has waves."""

    target: Target
    waves: "Reconcile | None" = None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        status = ask_status(cloud, self.target)
        if self.waves is not None:
            from ..reconcile import wave_state

            status = status._replace(wave=wave_state(self.waves, cloud, judge.settings, self.target.cluster_id))
        return render_status(status)

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        return Description(True, "status question")
