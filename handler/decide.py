"""Decide before acting: what a reconcile pass does about each node pool, as plain values, with no I/O.

    decide(pool, job, policy, now) -> Decision             one pool, on its own
    schedule(candidates, rules, ...) -> [Decision]          the pass-wide rules, in order, over every pool

A Decision says the pool's class and, for a pool that needs a sync, the action: start it (STARTED, or
WOULD_START in a dry run), or why not (DEFERRED, BACKING_OFF). The executor performs the starts and records
their outcome (FAILED, REFUSED); `answers` renders the decisions. Tested as tables (tests/test_decide.py), as
Karpenter computes its commands before executing them.
"""

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import NamedTuple

from .model import Job, JobPhase, PoolClass, PoolState

__all__ = [
    "Action",
    "Candidate",
    "Decision",
    "News",
    "Policy",
    "Rules",
    "Schedule",
    "decide",
    "failure_time",
    "schedule",
]


class Action(str, Enum):
    """What a pass did about a pool that needs a sync."""

    STARTED = "started"
    WOULD_START = "would_start"  # a dry run
    DEFERRED = "deferred"  # a limit reached, no time left, outside every window: a later pass
    BACKING_OFF = "backing_off"  # its last sync failed not long ago: not started again yet
    REFUSED = "refused"  # outside SYNC_ALLOWED_TARGETS
    FAILED = "failed"


class News(str, Enum):
    """What a person should hear about, once (SMN)."""

    JOB_FAILED = "sync job failed"
    STUCK = "sync stuck"
    HALTED = "pass halted"
    START_REFUSED = "start refused"
    START_FAILED = "start failed"


class Policy(NamedTuple):
    """How gently one pass acts: which pools it takes, and which guards hold."""

    force: bool = False  # also pools without counts (unknown)
    ignore_windows: bool = False
    ignore_backoff: bool = False
    closed_until: float | None = None  # SYNC_WINDOWS, judged once for the pass: None while a window is open
    failed_backoff_seconds: float = 6 * 3600.0
    stuck_after_seconds: float = 2 * 3600.0
    interval_seconds: float = 600.0  # the timer's: what happened within it is news


class Decision(NamedTuple):
    """What the pass makes of one pool: its class and, when it needs a sync, the action and why."""

    kind: PoolClass
    action: Action | None = None
    reason: str = ""
    jobid: str = ""  # the job the decision rests on (a failed or a running one)
    until: float | None = None  # backing off until
    since: float | None = None  # stuck since
    next_window: float | None = None
    note: str = ""
    news: News | None = None  # what happened within the last interval that a person should hear
    failed: bool = False  # its latest sync job failed within SYNC_FAILED_BACKOFF_SECONDS
    failure: str = ""  # that job's reason, as CCE gave it

    @property
    def starts(self) -> bool:
        return self.action in (Action.STARTED, Action.WOULD_START)

    @property
    def occupies(self) -> bool:
        """Whether the pool counts as syncing for the limits: running, stuck, or started by this pass."""
        return self.kind in (PoolClass.SYNCING, PoolClass.STUCK) or self.starts

    @property
    def holds_later_waves(self) -> bool:
        """Whether the pool keeps the next wave closed: drifted, syncing, stuck, or backing off from a failure
        (a pool without counts does not)."""
        return self.kind in (PoolClass.DRIFTED, PoolClass.SYNCING, PoolClass.STUCK) or self.failed


def failure_time(job: Job) -> float | None:
    """When a failed job ended: its update time, else its creation time; None when neither can be read."""
    return job.updated if job.updated is not None else job.created


def decide(pool: PoolState, job: Job | None, policy: Policy, now: float, unread: str = "") -> Decision:
    """The pool on its own: its class, whether it needs a sync, and the guards that hold it back (windows,
    backoff). `job` is the pool's latest job (`status.jobId`), None when it names none (or CCE no longer has
    it); `unread` says why it could not be read, and then a pool that needs a sync waits: when in doubt, do
    not start."""
    kind = pool.kind
    if kind is PoolClass.SYNCING:
        if job is None or job.created is None or now - job.created <= policy.stuck_after_seconds:
            return Decision(kind, jobid=pool.jobid)
        fresh = now - job.created - policy.stuck_after_seconds <= policy.interval_seconds
        return Decision(PoolClass.STUCK, jobid=pool.jobid, since=job.created, news=News.STUCK if fresh else None)
    if not (kind is PoolClass.DRIFTED or (kind is PoolClass.UNKNOWN and policy.force)):
        return Decision(kind)
    own_failure = job is not None and job.phase is JobPhase.FAILED and job.resource_id in ("", pool.pool_id)
    ended = failure_time(job) if job is not None and own_failure else None
    failed = own_failure and (ended is None or now - ended < policy.failed_backoff_seconds)
    news = News.JOB_FAILED if own_failure and ended is not None and now - ended <= policy.interval_seconds else None
    base = Decision(kind, news=news, failed=failed)
    if own_failure:
        assert job is not None
        base = base._replace(jobid=job.id, failure=job.reason)
    if policy.closed_until is not None and not policy.ignore_windows:
        return base._replace(action=Action.DEFERRED, reason="outside_window", next_window=policy.closed_until)
    if unread:
        return base._replace(action=Action.DEFERRED, reason="its latest job could not be read", note=unread)
    if failed and not policy.ignore_backoff:
        if ended is None:
            return base._replace(
                action=Action.BACKING_OFF,
                reason=base.failure,
                note="the failed job's time cannot be read: not started again until it can (ignore_backoff overrides)",
            )
        until = ended + policy.failed_backoff_seconds
        return base._replace(action=Action.BACKING_OFF, reason=base.failure, until=until)
    return base._replace(action=Action.STARTED)


class Candidate(NamedTuple):
    """One pool of the pass with its own decision, where it lives and its cluster's wave (1 without waves)."""

    cluster_id: str
    pool: PoolState
    decision: Decision
    wave: int = 1


class Rules(NamedTuple):
    """The pass-wide rules over the pools' own decisions."""

    max_syncing_per_cluster: int  # the plan's (its default is the reconcile schema's)
    dry_run: bool = False
    max_syncing: int | None = None  # the budget across every cluster of the pass
    halt_after_failures: int | None = None
    ignore_halt: bool = False
    waves: int = 0  # how many waves the pass names (0: none)


class Schedule(NamedTuple):
    """Every candidate's final decision, in the candidates' order, and why the pass held back what it did."""

    decisions: list[Decision]
    open_wave: int | None = None  # with waves: the last wave that may start
    held_by: tuple[Candidate, ...] = ()  # the pools that keep the next wave closed
    failed: tuple[Candidate, ...] = ()  # with halt_after_failures: the pools whose latest syncs failed
    halted: bool = False


def schedule(
    candidates: Sequence[Candidate],
    rules: Rules,
    others: Iterable[Candidate] = (),
    context: Iterable[Candidate] = (),
) -> Schedule:
    """The pass-wide rules, in this order: the halt (enough recent failures: nothing starts), the waves (a pool
    of wave k+1 starts only while no pool of the earlier waves holds it), then the budgets: a pool starts while
    its cluster has room (max_syncing_per_cluster) and the pass has room (max_syncing); pools already syncing
    count, and so do `others` (pools of the pass's clusters it does not take). `context`: pools of earlier waves'
    clusters a narrowed pass (a change event) reads only to judge its waves. A dry run says WOULD_START."""
    failed = tuple(c for c in candidates if c.decision.failed)
    threshold = rules.halt_after_failures
    halted = threshold is not None and len(failed) >= threshold and not rules.ignore_halt
    holding = [c for c in (*candidates, *context) if c.decision.holds_later_waves]
    open_wave = min((c.wave for c in holding), default=rules.waves + 1) if rules.waves else None
    held_by = tuple(c for c in holding if c.wave == open_wave) if rules.waves else ()
    syncing: dict[str, int] = {}
    for candidate in (*candidates, *others):
        if candidate.decision.occupies and not candidate.decision.starts:
            syncing[candidate.cluster_id] = syncing.get(candidate.cluster_id, 0) + 1
    in_pass = sum(syncing.values())
    final: dict[int, Decision] = {}
    for index in sorted(range(len(candidates)), key=lambda i: candidates[i].wave):  # earlier waves first
        candidate = candidates[index]
        decision = candidate.decision
        if decision.action is Action.STARTED:
            reason = ""
            if halted:
                reason = f"halted: {len(failed)} pools' latest syncs failed within SYNC_FAILED_BACKOFF_SECONDS"
            elif open_wave is not None and candidate.wave > open_wave:
                reason = f"wave {candidate.wave} waits for wave {open_wave}"
            elif syncing.get(candidate.cluster_id, 0) >= rules.max_syncing_per_cluster:
                reason = "max_syncing_per_cluster reached"
            elif rules.max_syncing is not None and in_pass >= rules.max_syncing:
                reason = "max_syncing reached"
            if reason:
                decision = decision._replace(action=Action.DEFERRED, reason=reason)
            else:
                syncing[candidate.cluster_id] = syncing.get(candidate.cluster_id, 0) + 1
                in_pass += 1
                if rules.dry_run:
                    decision = decision._replace(action=Action.WOULD_START)
        final[index] = decision
    decisions = [final[i] for i in range(len(candidates))]
    return Schedule(decisions, open_wave, held_by, failed if threshold is not None else (), halted)
