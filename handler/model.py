"""The domain's values, stated once: where a sync goes, what a node pool's status says, what a job says.

Every enum here is a closed set the rest of the code compares against; no module compares the strings.
"""

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_POOL",
    "TIMER_PASS",
    "Accepted",
    "Job",
    "JobPhase",
    "PoolClass",
    "PoolState",
    "Target",
    "Trigger",
    "Unwrapped",
    "tick_of",
]

DEFAULT_POOL = "DefaultPool"  # the pool CCE makes with a cluster; ListNodePools hides it unless asked
TIMER_PASS = "timer-"  # noqa: S105 - not a secret: the prefix of a pass ID made from a timer event


def tick_of(pass_id: str) -> float | None:
    """The tick a scheduled pass's ID names (`timer-<epoch seconds>-<digest>`, triggers._tick); None otherwise."""
    head, _, rest = pass_id.removeprefix(TIMER_PASS).partition("-")
    if pass_id.startswith(TIMER_PASS) and rest and head.isdigit() and 9 <= len(head) <= 10:
        return float(head)
    return None


class Target(NamedTuple):
    """The node pool a sync is for; every ID matched validation.ID_PATTERN before it got here."""

    project_id: str
    cluster_id: str
    nodepool_id: str


class JobPhase(str, Enum):
    """`status.phase` of a CCE job (SDK model Job); anything else CCE says reads as UNKNOWN."""

    INITIALIZING = "Initializing"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    UNKNOWN = ""

    @classmethod
    def of(cls, value: object) -> "JobPhase":
        try:
            return cls(value) if isinstance(value, str) and value else cls.UNKNOWN
        except ValueError:
            return cls.UNKNOWN

    @property
    def ended(self) -> bool:
        return self in (JobPhase.SUCCESS, JobPhase.FAILED)


class PoolClass(str, Enum):
    """What a node pool's status says about its nodes and its template, in this order of precedence."""

    SYNCING = "syncing"  # the ConfigurationSynchronizing condition is "True", whatever the counts say
    IN_SYNC = "in_sync"  # configurationSyncedNodeCount >= currentNode (an empty pool is in sync)
    DRIFTED = "drifted"  # fewer nodes carry the current configuration than the pool has
    UNKNOWN = "unknown"  # the counts are missing: never synced unless forced
    STUCK = "stuck"  # syncing under a job older than SYNC_STUCK_AFTER_SECONDS (a reconcile pass tells)


class PoolState(NamedTuple):
    """A node pool as CCE's status (read with advanceStatus=true) describes it (SDK model NodePoolStatus)."""

    pool_id: str
    name: str
    syncing: bool
    jobid: str  # the job of the pool's latest operation, any operation ("" when CCE names none)
    current: int | None  # currentNode
    synced: int | None  # configurationSyncedNodeCount

    @property
    def kind(self) -> PoolClass:
        if self.syncing:
            return PoolClass.SYNCING
        if self.current is None or self.synced is None:
            return PoolClass.UNKNOWN
        return PoolClass.IN_SYNC if self.synced >= self.current else PoolClass.DRIFTED

    @property
    def nodes(self) -> str | None:
        """`synced/current`, as answers show it; None when CCE gave no counts."""
        return None if self.current is None or self.synced is None else f"{self.synced}/{self.current}"


class Job(NamedTuple):
    """A CCE job as the function reads it (SDK model Job): phase, reason, when, and the resource it acts on."""

    id: str
    phase: JobPhase
    reason: str
    created: float | None
    updated: float | None
    resource_id: str


class Accepted(NamedTuple):
    """CCE accepted the sync; `jobid` is empty when CCE answered with an empty body."""

    jobid: str
    request_id: str
    attempts: int = 1
    confirmed_after_ambiguity: bool = False


class Trigger(str, Enum):
    TIMER = "timer"
    EVENTGRID = "eventgrid"
    EVENTGRID_BATCH = "eventgrid-batch"
    APIG = "apig"
    CTS = "cts"
    DIRECT = "direct"


class Unwrapped(NamedTuple):
    """One request document, or a change event's trace, and what its trigger said about it."""

    trigger: Trigger
    document: dict[str, Any]
    # The duplicate window's key, tagged by what made it, so no event of one kind can take another's place:
    # ("eventgrid", source, id), ("cts", trace id, ""), ("worker", pass, document digest).
    event_id: tuple[str, str, str] | None = None
    correlation_id: str = ""
    overrides: Mapping[str, str] = MappingProxyType({})
    change: bool = False  # a CCE change event: `trace` is a hint where to look, not a document
    trace: Any = None
    asks_status: bool = False  # API Gateway GET: how is the path's node pool's sync going
    pass_id: str = ""  # a timer tick's ID (trigger name and time): every delivery of one tick has the same
