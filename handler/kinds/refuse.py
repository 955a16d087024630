"""Kind: a request that cannot be done as it is; performing it raises the error it carries."""

from typing import NamedTuple

from ..cloud import Cloud
from ..errors import SyncError
from ..judge import Judge
from ..model import Target, Unwrapped
from ..rendering import Answer, Description, problems

__all__ = ["Refuse"]


class Refuse(NamedTuple):
    """Why the request cannot be done; `target` when it was known before the refusal."""

    error: SyncError
    target: Target | None = None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        raise self.error

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        return Description(False, "document", problems(self.error))
