"""Kind: how is a node pool's sync going (API Gateway GET): one pool read, one job read and, when the configured
pass has guards (a halt, waves, a budget), what the gate would say of a start now and why, judged on the same
view of the configured pass a sync would be."""

from typing import TYPE_CHECKING, Any, NamedTuple

from .. import gate
from ..cloud import Cloud
from ..errors import SyncError
from ..judge import Judge, utc
from ..model import Job, PoolState, Target, Unwrapped
from ..rendering import Answer, Description, Status, target_fields
from .single import Gatekeeper

if TYPE_CHECKING:
    from ..decide import Candidate

__all__ = ["AskStatus", "PoolStatus", "ask_status", "render_status"]


class Guards(NamedTuple):
    """What the configured pass's guards say of a start of the pool now (gate.assess on the view)."""

    rules: gate.Rules
    planned: gate.Schedule
    wave: int
    unread: tuple[tuple[str, int], ...]  # clusters (and their waves) whose pools could not be read: doubt
    backoff_until: float | None  # the pool's own backoff from a recent failure (passes wait for it)


class PoolStatus(NamedTuple):
    """How a node pool's sync is going: the pool, its latest job (or why that could not be read), its guards."""

    target: Target
    pool: PoolState
    job: Job | None
    job_error: str = ""
    guards: Guards | None = None


def ask_status(cloud: Cloud, target: Target) -> PoolStatus:
    """One pool read and, when it names a job, one job read (whose failure is said, not raised)."""
    pool = cloud.pool(target)
    if not pool.jobid:
        return PoolStatus(target, pool, None)
    try:
        return PoolStatus(target, pool, cloud.job(target.project_id, pool.jobid))
    except SyncError as error:
        return PoolStatus(target, pool, None, f"the job could not be read ({error.message})")


def _about(candidate: "Candidate") -> dict[str, Any]:
    return {"cluster_id": candidate.cluster_id, "nodepool_id": candidate.pool.pool_id, "name": candidate.pool.name}


def _guards(guards: Guards) -> dict[str, Any]:
    """The status's account of the guards: the wave and whether it is open (and what holds it), the halt and
    its failures, what holds a start now and why, the clusters that could not be read, the pool's backoff."""
    rules, planned = guards.rules, guards.planned
    body: dict[str, Any] = {}
    if rules.waves:
        open_now = planned.open_wave is None or guards.wave <= planned.open_wave
        unread_earlier = any(wave < guards.wave for _, wave in guards.unread)
        body.update(wave=guards.wave, wave_open=open_now and not unread_earlier)
        body["held_by"] = [_about(c) | {"class": c.decision.kind.value} for c in planned.held_by]
    if rules.halt_after_failures is not None:
        body["halted"] = planned.halted
        if planned.halted:
            body["failed"] = [_about(c) | {"jobid": c.decision.jobid or None} for c in planned.failed]
    decision = planned.decisions[0]
    held = decision.guard is not None
    body["held"] = {"guard": decision.guard.value, "reason": decision.reason} if held and decision.guard else None
    body.update({"unread": [cluster for cluster, _ in guards.unread]} if guards.unread else {})
    if guards.backoff_until is not None:
        body["backoff_until"] = utc(guards.backoff_until)
    return body


def render_status(report: PoolStatus) -> Answer:
    """Syncing or idle; the pool's class and progress, the latest job and its phase; its guards."""
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
    if report.guards is not None:
        body.update(_guards(report.guards))
    return Answer(Status.SYNCING if pool.syncing else Status.IDLE, body)


class AskStatus(NamedTuple):
    """How is the node pool's sync going; `guarded` when the configured pass has a halt, waves or a budget."""

    target: Target
    guarded: bool = False

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        status = ask_status(cloud, self.target)
        rules = gate.explicit_rules(judge.settings.reconcile, frozenset()) if self.guarded else None
        if rules is not None:
            from ..decide import Action

            view = Gatekeeper(cloud, judge).view(self.target.project_id)
            planned = gate.assess(self.target, rules, view)
            own = [c for c in view.candidates if c.pool.pool_id == self.target.nodepool_id]
            until = own[0].decision.until if own and own[0].decision.action is Action.BACKING_OFF else None
            wave = view.waves.get(self.target.cluster_id, view.last_wave)
            status = status._replace(guards=Guards(rules, planned, wave, view.unread, until))
        return render_status(status)

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        return Description(True, "status question")
