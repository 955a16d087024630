"""What the executors of one node pool return: plain values of what happened, rendered by `answers.render`.
(Fleets, passes and fan-outs report in `reports`, imported when one comes.)"""

from typing import TYPE_CHECKING, NamedTuple, Union

from .model import Accepted, Job, JobPhase, PoolState, Target

if TYPE_CHECKING:
    from .reports import DispatchReport, FleetReport, PassReport

__all__ = ["Followed", "Ignored", "InSync", "PoolStatus", "Preview", "Result", "Sent", "Single"]


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


class PoolStatus(NamedTuple):
    """How a node pool's sync is going: the pool, its latest job (or why that could not be read)."""

    target: Target
    pool: PoolState
    job: Job | None
    job_error: str = ""
    wave: tuple[int, bool] | None = None  # with waves: the pool's cluster's wave, and whether it is open


class Ignored(NamedTuple):
    """A request that asks for nothing (a change event outside the configured pass, say)."""

    reason: str


Single = Sent | Followed | Preview | InSync
Result = Union[Single, PoolStatus, Ignored, "FleetReport", "PassReport", "DispatchReport"]
