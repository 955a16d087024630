"""What a reconcile pass reports (reconcile.run_pass): plain values, rendered by kinds/passes.py. Imported only
when a pass runs: a single sync never pays for it."""

from typing import TYPE_CHECKING, NamedTuple

from .decide import Action, Decision, News
from .errors import SyncError
from .gate import Schedule
from .model import PoolClass, PoolState

if TYPE_CHECKING:
    from .metrics import Publication

__all__ = [
    "ClusterReport",
    "Notable",
    "Notification",
    "PassReport",
    "PoolReport",
    "totals",
]


class PoolReport(NamedTuple):
    """One pool of a pass: as read, what was decided, and how a start went (its job, or its error)."""

    pool: PoolState
    decision: Decision
    jobid: str = ""
    error: SyncError | None = None


class ClusterReport(NamedTuple):
    """One cluster of a pass: its pools, or why they could not be read (or were not allowed)."""

    cluster_id: str
    pools: tuple[PoolReport, ...] = ()
    error: SyncError | None = None


class Notable(NamedTuple):
    """One thing a person should hear about (about a pool, or about the whole pass: `pool` None)."""

    cluster_id: str
    pool: PoolState | None
    what: News
    jobid: str = ""
    reason: str = ""


class Notification(NamedTuple):
    """How telling a person went: published (with SMN's message id) or not (and why)."""

    published: bool
    items: int
    message_id: str = ""
    error: str = ""


class PassReport(NamedTuple):
    """A whole reconcile pass: per cluster, per pool; what needs a person; how notifying went."""

    project_id: str
    dry_run: bool
    clusters: tuple[ClusterReport, ...]
    notable: tuple[Notable, ...] = ()
    notification: Notification | None = None
    duration_ms: float = 0.0
    region: str = ""  # a worker's scope's region ("": the function's own)
    schedule: Schedule | None = None  # the pass-wide rules' verdict: the open wave, the halt
    concurrency: int = 0  # CCE calls in flight at most, at the end of the pass (halved after throttling)
    not_found: tuple[str, ...] = ()  # nodepools.names entries that name no pool of the clusters read
    throttled: int = 0  # throttling answers CCE gave the pass
    metrics: "Publication | None" = None  # how reporting to Cloud Eye went (None: not reported)


def totals(report: PassReport) -> dict[str, int]:
    """The pass counted: pools per class and per action, clusters and those that could not be read."""
    counts = dict.fromkeys([*(c.value for c in PoolClass), *(a.value for a in Action)], 0)
    counts.update(clusters=len(report.clusters), clusters_unread=0)
    for cluster in report.clusters:
        if cluster.error is not None:
            counts["clusters_unread"] += 1
            continue
        for pool in cluster.pools:
            counts[pool.decision.kind.value] += 1
            if pool.decision.action is not None:
                counts[pool.decision.action.value] += 1
    return counts
