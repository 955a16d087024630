"""Kind: nothing to do (a change event that asks for nothing): answered and logged, never raised."""

from typing import NamedTuple

from ..cloud import Cloud
from ..judge import Judge
from ..model import Unwrapped
from ..rendering import Answer, Description, Status

__all__ = ["Ignore", "ignored"]


def ignored(reason: str) -> Answer:
    """The answer of a request that asks for nothing, and why."""
    return Answer(Status.IGNORED, {"reason": reason}, reason=reason)


class Ignore(NamedTuple):
    """Nothing to do, and why."""

    reason: str

    @property
    def target(self) -> None:
        return None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        return ignored(self.reason)

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        return Description(True, f"change event, ignored: {self.reason}")
