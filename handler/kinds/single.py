"""Kind: sync one node pool (API Gateway POST, EventGrid, a direct invocation): the busy guard, the POST and,
when asked, following the job. Fleets sync each of their targets with `sync_one` too."""

from typing import Any, NamedTuple

from .. import gate
from ..cloud import Cloud
from ..errors import ConfigurationError, DocumentInvalid, JobFailed, SyncInProgress
from ..judge import Judge
from ..model import Accepted, JobPhase, PoolClass, PoolState, Target, Unwrapped
from ..rendering import Answer, Description, Status, target_fields
from ..validation import ValidSync
from .base import applied

__all__ = ["Followed", "Gatekeeper", "InSync", "Preview", "Sent", "Single", "SyncOne", "render_single", "sync_one"]

CONFIRMED = "accepted (confirmed after an ambiguous failure)"


class Sent(NamedTuple):
    """CCE accepted the sync."""

    target: Target
    accepted: Accepted


class Followed(NamedTuple):
    """CCE accepted the sync and its job was followed: it succeeded, or still ran when time ran out."""

    target: Target
    accepted: Accepted
    phase: JobPhase
    reason: str


class Preview(NamedTuple):
    """A dry run: the request that would have been sent, secrets masked."""

    target: Target
    request: dict[str, object]


class InSync(NamedTuple):
    """Nothing sent: every node already carries the pool's configuration."""

    target: Target
    nodes: str | None


Single = Sent | Followed | Preview | InSync


class Gatekeeper:
    """An invocation's operator requests (a single sync, a fleet's targets) before the gate: each judged by the
    configured pass's halt, waves and budget, on a view of that pass read once per project and invocation, and
    only when one of those guards is configured and not lifted; what it admits counts toward the budget."""

    def __init__(self, cloud: Cloud, judge: Judge) -> None:
        self._cloud, self._judge = cloud, judge
        self._views: dict[str, gate.View] = {}
        self._admitted: list[Target] = []

    def admit(self, sync: ValidSync) -> gate.Admission:
        """Leave to start the sync; raises the guard's error (Held) when one holds it, and skips it
        (SyncInProgress) when the view read for the guards shows the pool syncing: whatever the invocation read
        last, it never sends a sync to a pool it has seen syncing."""
        rules = gate.explicit_rules(self._judge.settings.reconcile, sync.lifts)
        view = self.view(sync.target.project_id) if rules is not None else None
        seen = view.candidate(sync.target) if view is not None else None
        if seen is not None and seen.pool.syncing:
            raise SyncInProgress(seen.pool.jobid)
        outcome = gate.admit(sync.target, rules, view, self._admitted)
        if not isinstance(outcome, gate.Admission):
            raise gate.held(outcome)
        self._admitted.append(sync.target)
        return outcome

    def view(self, project_id: str) -> gate.View:
        """The configured pass in the project, as read for judging (once per invocation)."""
        if project_id not in self._views:
            from ..plans import plan_reconcile
            from ..reconcile import survey

            options = {"reconcile": dict(self._judge.settings.reconcile or {})}
            try:
                plan = plan_reconcile(options, {}, self._judge.defaults._replace(project_id=project_id), starts=False)
            except DocumentInvalid as error:
                raise ConfigurationError(f"SYNC_RECONCILE makes no valid reconcile pass: {error.message}") from None
            self._views[project_id] = survey(plan, self._cloud, self._judge.settings, self._judge.clock)
        return self._views[project_id]


def sync_one(sync: ValidSync, cloud: Cloud, skip_if_busy: bool, gatekeeper: Gatekeeper) -> Single:
    """The busy guard, the gate, the POST and, when asked, following the job; the sync was judged already."""
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
    accepted = cloud.start(gatekeeper.admit(sync), sync.body, before)
    if not sync.wait:
        return Sent(target, accepted)
    phase, reason = cloud.follow(target, accepted.jobid)
    if phase is JobPhase.FAILED:
        raise JobFailed(accepted.jobid, reason, request_id=accepted.request_id)
    return Followed(target, accepted, phase, reason)


def _accepted(status: Status, target: Target, accepted: Accepted, http_status: int = 200) -> Answer:
    """The success answer: CCE's job id, the target and CCE's request id."""
    body: dict[str, Any] = {"jobid": accepted.jobid or None, **target_fields(target), "request_id": accepted.request_id}
    if accepted.confirmed_after_ambiguity:
        body["detail"] = CONFIRMED
    return Answer(status, body, http_status, jobid=accepted.jobid or None, cce_request_id=accepted.request_id or None)


def render_single(report: Single) -> Answer:
    """Accepted; succeeded (200) or still running (202) after following the job; a dry run; in sync."""
    if isinstance(report, Sent):
        return _accepted(Status.ACCEPTED, report.target, report.accepted)
    if isinstance(report, Followed):
        succeeded = report.phase is JobPhase.SUCCESS
        status = Status.SUCCEEDED if succeeded else Status.RUNNING
        answer = _accepted(status, report.target, report.accepted, 200 if succeeded else 202)
        job = {"id": report.accepted.jobid or None, "phase": report.phase.value}
        job.update({"reason": report.reason} if report.reason else {})
        return answer._replace(body={**answer.body, "job": job})
    if isinstance(report, Preview):
        return Answer(Status.DRY_RUN, {**target_fields(report.target), "request": dict(report.request)})
    return Answer(Status.IN_SYNC, {**target_fields(report.target), "nodes": report.nodes})


class SyncOne(NamedTuple):
    """Sync one node pool: allowed, inside a window (or forced), valid."""

    sync: ValidSync

    @property
    def target(self) -> Target:
        return self.sync.target

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        return render_single(sync_one(self.sync, cloud, judge.settings.skip_if_busy, Gatekeeper(cloud, judge)))

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        return Description(True, "single sync", defaults=applied(unwrapped, judge, Target._fields))
