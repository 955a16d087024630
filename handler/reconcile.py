"""The reconcile executor: read the node pools' state, decide per pool, start exactly what the rules allow.

CCE's state is the only state. A pass is three steps:
- read: one list call per cluster (a few clusters at a time), then the latest job of every pool that needs a
  sync or is syncing (is it backing off from a failure? stuck?);
- decide: decide.decide per pool, then decide.schedule over the pass (limits, dry run); plain values;
- act: start what was decided, each through the one send path (cloud.Cloud.start), and tell a person what is
  new (SMN). The executor returns a PassReport; `answers` renders it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from . import logs
from .cloud import Cloud
from .decide import Action, Candidate, Decision, News, Policy, decide
from .errors import (
    LOCKED,
    THROTTLED,
    AmbiguousFailure,
    CCERejected,
    ConfigurationError,
    SyncError,
    SyncInProgress,
    TargetNotAllowed,
)
from .gate import Admission, Rules, Schedule, View, hold, schedule
from .model import DEFAULT_POOL, Job, PoolClass, PoolState
from .pacing import Pacer
from .plans import Reconcile, Selection
from .reports import ClusterReport, Notable, Notification, PassReport, PoolReport, totals

if TYPE_CHECKING:
    from .metrics import Publication
from .settings import Settings

__all__ = ["run_pass", "survey"]


def _chosen(plan: Reconcile, pools: Iterable[PoolState]) -> list[PoolState]:
    """The pools the plan looks at, once each (by ID), in a stable order (name, then ID)."""
    unique = list({p.pool_id: p for p in pools}.values())
    if plan.pools is Selection.NAMES:
        picked = [p for p in unique if p.name in plan.names]
    else:
        picked = [p for p in unique if plan.include_default or p.pool_id != DEFAULT_POOL]
    if plan.focus:
        picked = [p for p in picked if plan.focus in (p.pool_id, p.name)]
    return sorted((p for p in picked if p.name not in plan.exclude), key=lambda p: (p.name, p.pool_id))


class _Read:
    """One cluster as read: every pool listed (the limits count them all) and those the plan takes; a cluster
    read only to judge the waves (`context`) is never acted on nor reported."""

    __slots__ = ("around", "chosen", "cluster_id", "context", "error", "listed", "read_at", "wave")

    def __init__(self, cluster_id: str, listed: Sequence[PoolState] = (), error: SyncError | None = None) -> None:
        self.cluster_id, self.listed, self.error = cluster_id, list(listed), error
        self.read_at = 0.0  # when its list was asked for: what its pools' news and backoff are measured from
        self.chosen: list[PoolState] = []
        self.around: list[PoolState] = []  # a focused pass's: the pools the configured pass takes besides its focus
        self.wave, self.context = 1, False


def _clusters(plan: Reconcile, cloud: Cloud) -> list[tuple[str, str]]:
    """The clusters to read, once each, as (ID, name): the plan's, or every cluster of the project the allowlist
    reaches. Names are listed only when needed: `clusters: "all"`, or waves that name clusters by name."""
    if plan.every_cluster:
        listed = dict(cloud.clusters(plan.project_id))
        return [(uid, name) for uid, name in listed.items() if cloud.reaches(plan.project_id, uid)]
    ids = list(dict.fromkeys(plan.cluster_ids))
    named = {entry for wave in plan.waves for entry in wave} - set(ids)
    names = dict(cloud.clusters(plan.project_id)) if named else {}
    return [(uid, names.get(uid, uid)) for uid in ids]


def _wave(plan: Reconcile, cluster_id: str, name: str) -> int:
    """A cluster's wave: the first that names it (by ID or name), else the one after the last."""
    return next((n for n, wave in enumerate(plan.waves, 1) if cluster_id in wave or name in wave), len(plan.waves) + 1)


def _context(plan: Reconcile, cloud: Cloud, taken: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The clusters a narrowed pass (a change event, the status route) does not take but reads to judge its
    guards: under a halt or a budget, the rest of the configured pass (its failures and its syncing pools
    count); with waves only, the clusters of earlier waves."""
    known = {uid for uid, _ in taken}
    counted = plan.halt_after_failures is not None or plan.max_syncing is not None
    if counted and (plan.context_clusters or plan.context_every):
        if plan.context_every:
            listed = [
                (uid, name) for uid, name in cloud.clusters(plan.project_id) if cloud.reaches(plan.project_id, uid)
            ]
        else:
            names = dict(cloud.clusters(plan.project_id)) if plan.waves else {}
            listed = [(uid, names.get(uid, uid)) for uid in plan.context_clusters]
        return [(uid, name) for uid, name in listed if uid not in known]
    if not plan.waves or plan.every_cluster:
        return []
    latest = max((_wave(plan, uid, name) for uid, name in taken), default=1)
    listed_all = dict(cloud.clusters(plan.project_id))
    return [
        (uid, name)
        for uid, name in listed_all.items()
        if uid not in known and _wave(plan, uid, name) < latest and cloud.reaches(plan.project_id, uid)
    ]


def _check_entries(plan: Reconcile, cloud: Cloud, reads: Sequence[_Read]) -> None:
    """Every wave entry names a cluster of the scope and every exclude entry a pool the pass read: a typo would
    reorder or widen the rollout, so the pass stops before any start (fails closed: an exclude entry for a
    deleted pool holds the rollout until it is removed)."""
    entries = {entry for wave in plan.waves for entry in wave}
    if entries:
        listed = dict(cloud.clusters(plan.project_id))
        _refuse_unmatched("waves", entries, {*listed, *listed.values()}, f"cluster of project {plan.project_id}")
    if plan.exclude and all(one.error is None for one in reads):
        pools = {pool.name for one in reads for pool in one.listed}
        _refuse_unmatched("exclude", plan.exclude, pools, "node pool of the clusters the pass read")


def _not_found(plan: Reconcile, reads: Sequence[_Read]) -> tuple[str, ...]:
    """The nodepools.names entries no cluster the pass read lists (the other pools proceed)."""
    if plan.pools is not Selection.NAMES or any(one.error is not None for one in reads if not one.context):
        return ()
    listed = {pool.name for one in reads if not one.context for pool in one.listed}
    return tuple(name for name in plan.names if name not in listed)


def _refuse_unmatched(field: str, entries: Iterable[str], known: set[str], what: str) -> None:
    for entry in sorted(entries):
        if entry not in known:
            import difflib  # only for a typo

            close = difflib.get_close_matches(entry, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"reconcile {field}: {entry[:64]!r} matches no {what}{hint}")


def _policy(plan: Reconcile, settings: Settings) -> Policy:
    return Policy(
        force=plan.force,
        ignore_windows=plan.ignore_windows,
        ignore_backoff=plan.ignore_backoff,
        closed_until=plan.closed_until,
        failed_backoff_seconds=settings.failed_backoff_seconds,
        stuck_after_seconds=settings.stuck_after_seconds,
        interval_seconds=settings.reconcile_interval_seconds,
    )


def _rules(plan: Reconcile) -> Rules:
    return Rules(
        plan.max_syncing_per_cluster,
        plan.dry_run,
        plan.max_syncing,
        plan.halt_after_failures,
        plan.ignore_halt,
        len(plan.waves),
        plan.ignore_waves,
        plan.ignore_budget,
    )


class _Names:
    """The project's clusters by name, listed once per pass and only when an entry of `clusters` is no ID CCE
    knows (a 404): `reconcile.clusters` takes names, as `waves` does."""

    def __init__(self, plan: Reconcile, cloud: Cloud) -> None:
        self._plan, self._cloud, self._lock = plan, cloud, threading.Lock()
        self._by_name: dict[str, str] | None = None

    def uid(self, name: str) -> str | None:
        with self._lock:
            if self._by_name is None:
                try:
                    listed = self._cloud.clusters(self._plan.project_id)
                except SyncError:
                    listed = []
                self._by_name = {cluster_name: uid for uid, cluster_name in listed}
        return self._by_name.get(name)


def _read(plan: Reconcile, cloud: Cloud, pacer: Pacer, clock: Callable[[], float]) -> list[_Read]:
    """Every cluster's pools (a few clusters at a time), the plan's choice of them, and each cluster's wave."""
    project = plan.project_id
    with_default = plan.include_default or (plan.pools is Selection.NAMES and DEFAULT_POOL in plan.names)
    taken = _clusters(plan, cloud)
    context = _context(plan, cloud, taken)

    names = _Names(plan, cloud)

    def read(cluster: tuple[str, str]) -> _Read:
        in_context, asked = cluster in context, clock()
        try:
            one = _Read(cluster[0], cloud.pools(project, cluster[0], with_default))
        except CCERejected as error:
            uid = names.uid(cluster[0]) if error.status == 404 else None  # a cluster given by its name
            uid = uid if uid != cluster[0] else None  # an ID CCE does not know is not a name
            cluster = (uid, cluster[0]) if uid else cluster
            one = _Read(uid, cloud.pools(project, uid, with_default)) if uid else _Read(cluster[0], error=error)
        except SyncError as error:
            one = _Read(cluster[0], error=error)
        one.wave, one.context, one.read_at = _wave(plan, *cluster), in_context, asked
        one.chosen = _chosen(plan._replace(focus="") if one.context else plan, one.listed)
        if plan.focus and not one.context:  # the rest of what the pass takes: context for its guards
            one.around = [p for p in _chosen(plan._replace(focus=""), one.listed) if p not in one.chosen]
        return one

    return pacer.map(read, [*taken, *context])


def run_pass(plan: Reconcile, cloud: Cloud, settings: Settings, clock: Callable[[], float] = time.time) -> PassReport:
    """Read, decide, act; raises only when no cluster at all could be read and the cause may pass."""
    started, project, pacer = time.perf_counter(), plan.project_id, Pacer(plan.concurrency)
    reads = _read(plan, cloud, pacer, clock)
    _check_entries(plan, cloud, reads)
    failures = [r.error for r in reads if r.error is not None]
    if reads and len(failures) == len(reads):
        transient = next((e for e in failures if e.transient), None)
        if transient is not None:
            raise transient
    judged = _judge(plan, cloud, settings, pacer, reads)
    candidates = [c for one, c in judged if not one.context and c.pool in one.chosen]
    others = [
        Candidate(one.cluster_id, pool, Decision(pool.kind), one.wave)
        for one in reads
        for pool in {p.pool_id: p for p in one.listed}.values()
        if pool not in one.chosen and pool not in one.around
    ]
    unread = [(one.cluster_id, one.wave) for one in reads if one.error is not None]
    context = [c for one, c in judged if one.context or c.pool in one.around]
    plan_of = schedule(candidates, _rules(plan), others, context, project, unread)
    decided = [c._replace(decision=d) for c, d in zip(candidates, plan_of.decisions, strict=True)]
    acted = _act(plan, cloud, settings, pacer, list(zip(decided, plan_of.admissions, strict=True)))
    clusters = []
    for one in reads:
        if not one.context:
            pools = tuple(report for cluster_id, report in acted if cluster_id == one.cluster_id)
            clusters.append(ClusterReport(one.cluster_id, pools, one.error))
    notable = tuple(_notable(acted, plan_of))
    report = PassReport(project, plan.dry_run, tuple(clusters), notable, region=plan.region, schedule=plan_of)
    report = report._replace(concurrency=pacer.limit, throttled=pacer.throttled, not_found=_not_found(plan, reads))
    # Only the scheduled pass tells a person: a failure is news to the pass whose interval it ended in, and a
    # change event or an API call in between would announce it again.
    if notable and settings.smn_topic_urn and plan.scheduled and not plan.dry_run:
        report = report._replace(notification=_notify(cloud, project, notable, plan.pass_id))
    report = report._replace(duration_ms=round((time.perf_counter() - started) * 1000, 1))
    # Only a full scheduled pass reports its figures (a change's narrowed pass would report a part as the whole).
    if settings.ces_namespace and plan.scheduled and not plan.dry_run and not plan.focus:
        report = report._replace(metrics=_report(cloud, settings, report))
    return report


def _judge(
    plan: Reconcile, cloud: Cloud, settings: Settings, pacer: Pacer, reads: Sequence[_Read]
) -> list[tuple[_Read, Candidate]]:
    """Every chosen pool's own decision, after reading the latest job of each pool it rests on. Each is judged at
    the time its cluster's list was asked for, not when the pass gets to it: a job that ends while the pass
    reads is news to the next scheduled pass, whose list comes an interval later, rather than to neither."""
    policy = _policy(plan, settings)
    wanted = [p for one in reads for p in (*one.chosen, *one.around) if _needs_job(p, policy)]
    read_jobs = pacer.map(lambda p: _job(cloud, plan.project_id, p.jobid), wanted)
    jobs = {p.jobid: job for p, job in zip(wanted, read_jobs, strict=True)}
    return [
        (one, Candidate(one.cluster_id, p, _decide(p, jobs, policy, one.read_at, plan.tick), one.wave))
        for one in reads
        for p in (*one.chosen, *one.around)
    ]


def survey(plan: Reconcile, cloud: Cloud, settings: Settings, clock: Callable[[], float] = time.time) -> View:
    """The configured pass as the gate judges an operator's request on it: every cluster's pools read and judged
    as the pass would (their latest jobs too), nothing started; the clusters that could not be read named."""
    pacer = Pacer(plan.concurrency)
    reads = _read(plan._replace(dry_run=True, focus=""), cloud, pacer, clock)
    _check_entries(plan, cloud, reads)
    judged = [candidate for _, candidate in _judge(plan, cloud, settings, pacer, reads)]
    chosen = {(c.cluster_id, c.pool.pool_id) for c in judged}
    untaken = [
        Candidate(one.cluster_id, pool, Decision(pool.kind), one.wave)
        for one in reads
        for pool in {p.pool_id: p for p in one.listed}.values()
        if (one.cluster_id, pool.pool_id) not in chosen
    ]
    waves = {one.cluster_id: one.wave for one in reads}
    unread = tuple((one.cluster_id, one.wave) for one in reads if one.error is not None)
    return View((*judged, *untaken), waves, len(plan.waves) + 1, unread)


def _needs_job(pool: PoolState, policy: Policy) -> bool:
    """Whether the pool's latest job matters: it is syncing (stuck?), or it may need a sync (backing off?)."""
    needs = pool.kind in (PoolClass.SYNCING, PoolClass.DRIFTED) or (pool.kind is PoolClass.UNKNOWN and policy.force)
    return needs and bool(pool.jobid)


def _job(cloud: Cloud, project: str, jobid: str) -> Job | SyncError | None:
    """The pool's latest job; None when CCE no longer has it (nothing to go by); the error when it cannot be read."""
    try:
        return cloud.job(project, jobid)
    except CCERejected as error:
        return None if error.status == 404 else error
    except SyncError as error:
        return error


def _decide(
    pool: PoolState, jobs: dict[str, Job | SyncError | None], policy: Policy, now: float, tick: float | None
) -> Decision:
    """The pool's own decision, held by its own guards (the gate's windows, doubt and backoff)."""
    job = jobs.get(pool.jobid)
    if isinstance(job, SyncError):
        unread = f"its latest job ({pool.jobid}) could not be read: {job.message}"
        return hold(decide(pool, None, policy, now, unread, tick), policy)
    return hold(decide(pool, job if isinstance(job, Job) else None, policy, now, news_at=tick), policy)


def _act(
    plan: Reconcile,
    cloud: Cloud,
    settings: Settings,
    pacer: Pacer,
    candidates: Sequence[tuple[Candidate, Admission | None]],
) -> list[tuple[str, PoolReport]]:
    """Start what the gate admitted, several at once (the limits held when deciding, so concurrency cannot break
    them), each while time allows; every candidate's report, in order."""

    def one(admitted: tuple[Candidate, Admission | None]) -> tuple[str, PoolReport]:
        candidate, admission = admitted
        decision = candidate.decision
        if admission is None:
            return candidate.cluster_id, PoolReport(candidate.pool, decision)
        if pacer.stopped:
            return candidate.cluster_id, PoolReport(
                candidate.pool, decision._replace(action=Action.DEFERRED, reason=pacer.stopped)
            )
        if cloud.deadline.remaining() < settings.target_min_seconds:
            late = decision._replace(action=Action.DEFERRED, reason="no time left in this pass")
            return candidate.cluster_id, PoolReport(candidate.pool, late)
        return candidate.cluster_id, _start(plan, cloud, candidate, admission, pacer)

    starts = [pair for pair in candidates if pair[1] is not None]
    started = dict(zip((id(pair) for pair in starts), pacer.map(one, starts), strict=True))
    return [started[id(pair)] if id(pair) in started else one(pair) for pair in candidates]


def _start(plan: Reconcile, cloud: Cloud, candidate: Candidate, admission: Admission, pacer: Pacer) -> PoolReport:
    pool, decision = candidate.pool, candidate.decision
    body = {"spec": {**plan.spec, "nodePoolID": pool.pool_id}}
    try:
        return PoolReport(pool, decision, cloud.start(admission, body, before=pool).jobid)
    except SyncInProgress:  # CCE's 429 LOCKED: a sync (or another operation) started since the list: no alarm
        locked = f"already syncing: CCE answered {LOCKED} (locked by a running operation)"
        return PoolReport(pool, decision._replace(action=Action.DEFERRED, reason=locked))
    except CCERejected as error:
        if error.code not in THROTTLED:
            return _failed(pool, decision, error)
        # Throttled, and Retry-After did not fit in the time left (the retry policy waited what it could): a
        # start that was never taken waits for the next pass, it did not fail.
        throttled = f"throttled: CCE answered {error.code} and asked to wait longer than this pass has"
        pacer.stop(throttled)  # every later start would be throttled too: the pass starts nothing more
        return PoolReport(pool, decision._replace(action=Action.DEFERRED, reason=throttled))
    except TargetNotAllowed as error:
        return PoolReport(pool, decision._replace(action=Action.REFUSED), error=error)
    except SyncError as error:
        return _failed(pool, decision, error)


def _failed(pool: PoolState, decision: Decision, error: SyncError) -> PoolReport:
    # An ambiguous start may have been taken: it was counted as syncing when decided, and stays counted.
    note = "CCE may have taken it: counted as syncing" if isinstance(error, AmbiguousFailure) else ""
    return PoolReport(pool, decision._replace(action=Action.FAILED, note=note or decision.note), error=error)


def _notable(acted: Iterable[tuple[str, PoolReport]], plan_of: Schedule) -> Iterable[Notable]:
    # A halt is news once: to the pass in which one of its failures is news (then, while it lasts, no more).
    if plan_of.halted and any(c.decision.news is News.JOB_FAILED for c in plan_of.failed):
        yield Notable("", None, News.HALTED, reason=f"{len(plan_of.failed)} pools' latest syncs failed")
    for cluster_id, report in acted:
        decision, pool = report.decision, report.pool
        if decision.news is not None:
            reason = decision.failure if decision.news is News.JOB_FAILED else ""
            yield Notable(cluster_id, pool, decision.news, decision.jobid or pool.jobid, reason)
        if report.error is not None:
            what = News.START_REFUSED if decision.action is Action.REFUSED else News.START_FAILED
            yield Notable(cluster_id, pool, what, reason=report.error.message)


def _report(cloud: Cloud, settings: Settings, report: PassReport) -> Publication:
    """The pass's figures to Cloud Eye of the function's home (labelled with the pass's own scope)."""
    from . import metrics

    points = metrics.pass_points(report, report.region or settings.region, totals(report))
    return metrics.publish(cloud, settings.ces_namespace, points)


def _notify(cloud: Cloud, project: str, notable: Sequence[Notable], pass_id: str) -> Notification:
    """One SMN message for the pass; failing to notify never fails the pass: it is reported and logged."""
    from . import notify

    secrets = cloud.secrets()
    subject, message = (logs.scrub(text, secrets) for text in notify.compose(project, notable, pass_id))
    try:
        return Notification(True, len(notable), cloud.publish(subject, message))
    except SyncError as error:
        return Notification(False, len(notable), error=logs.failed("notify-failed", error.message, secrets))
