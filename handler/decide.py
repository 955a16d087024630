"""Decide before acting: what each node pool is, as plain values, with no I/O.

    decide(pool, job, policy, now) -> Decision             one pool, on its own, before any guard

A Decision says the pool's class and, for a pool that needs a sync, the action: start it (STARTED, or
WOULD_START in a dry run), or why not (DEFERRED, BACKING_OFF: the gate's guards, gate.py). The executor
performs the starts and records their outcome (FAILED, REFUSED); kinds/passes.py renders the decisions. Tested
as tables (tests/test_decide.py), as Karpenter computes its commands before executing them.
"""

from enum import Enum
from typing import NamedTuple

from .model import Job, JobPhase, PoolClass, PoolState

__all__ = ["Action", "Candidate", "Decision", "Guard", "News", "Policy", "decide", "failure_time"]


class Action(str, Enum):
    """What a pass did about a pool that needs a sync."""

    STARTED = "started"
    WOULD_START = "would_start"  # a dry run
    DEFERRED = "deferred"  # a limit reached, no time left, outside every window: a later pass
    BACKING_OFF = "backing_off"  # its last sync failed not long ago: not started again yet
    REFUSED = "refused"  # outside SYNC_ALLOWED_TARGETS
    FAILED = "failed"


class Guard(str, Enum):
    """What held a start back (gate.py decides; its answer code is errors.py's)."""

    WINDOW = "window"  # outside every maintenance window (SYNC_WINDOWS)
    HALT = "halt"  # halt_after_failures: failures have spread
    WAVE = "wave"  # an earlier wave still has work
    BUDGET = "budget"  # max_syncing: the fleet's budget of pools syncing at once
    CLUSTER = "cluster"  # max_syncing_per_cluster (passes only)
    BACKOFF = "backoff"  # the pool's last sync failed recently (passes only)
    DOUBT = "doubt"  # what the guard needs could not be read: doubt holds


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
    unread: str = ""  # why its latest job could not be read (then it may not start: doubt holds)
    guard: Guard | None = None  # what held it back, when the gate did

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


def decide(
    pool: PoolState, job: Job | None, policy: Policy, now: float, unread: str = "", news_at: float | None = None
) -> Decision:
    """The pool on its own, before any guard: its class, whether it needs a sync (action STARTED: it would
    start if the gate admits it), whether its latest sync failed recently (and until when it backs off), what is
    news. `job` is the pool's latest job (`status.jobId`), None when it names none (or CCE no longer has it);
    `unread` says why it could not be read. What is news is measured back from `news_at` (a scheduled pass's tick:
    ticks an interval apart then tile time exactly, however late each pass runs), else from `now`. The guards are
    the gate's (gate.hold, gate.schedule)."""
    kind = pool.kind
    # A tick is of this pass when it came at most an interval before (a replayed or hand-made timer event's is not).
    told = news_at if news_at is not None and 0 <= now - news_at <= policy.interval_seconds else now
    if kind is PoolClass.SYNCING:
        if job is None or job.created is None or now - job.created <= policy.stuck_after_seconds:
            return Decision(kind, jobid=pool.jobid)
        fresh = 0 <= told - job.created - policy.stuck_after_seconds < policy.interval_seconds
        return Decision(PoolClass.STUCK, jobid=pool.jobid, since=job.created, news=News.STUCK if fresh else None)
    if not (kind is PoolClass.DRIFTED or (kind is PoolClass.UNKNOWN and policy.force)):
        return Decision(kind)
    own_failure = job is not None and job.phase is JobPhase.FAILED and job.resource_id in ("", pool.pool_id)
    ended = failure_time(job) if job is not None and own_failure else None
    failed = own_failure and (ended is None or now - ended < policy.failed_backoff_seconds)
    # News within (now - interval, now]: successive scheduled passes an interval apart tile time, so a failure is
    # news to exactly one of them (a job that ended after `now` is the next pass's).
    fresh = ended is not None and 0 <= told - ended < policy.interval_seconds
    news = News.JOB_FAILED if own_failure and fresh else None
    base = Decision(kind, Action.STARTED, news=news, failed=failed, unread=unread)
    if own_failure:
        assert job is not None
        until = ended + policy.failed_backoff_seconds if ended is not None else None
        base = base._replace(jobid=job.id, failure=job.reason, until=until)
    return base


class Candidate(NamedTuple):
    """One pool of the pass with its own decision, where it lives and its cluster's wave (1 without waves)."""

    cluster_id: str
    pool: PoolState
    decision: Decision
    wave: int = 1
