"""What every request kind provides (the `Kind` protocol), the one dispatch (`kind_of`), and the helper their
descriptions share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..judge import Judge
from ..model import Unwrapped
from ..variables import VARIABLES

if TYPE_CHECKING:  # the protocol is for mypy: at run time an intent's methods are simply called
    from ..cloud import Cloud
    from ..model import Target
    from ..rendering import Answer, Description
    from .table import Intent

__all__ = ["Kind", "applied", "kind_of"]


class Kind(Protocol):
    """A request kind, as its intent: what it is about, where it reaches, how it is done and described."""

    @property
    def target(self) -> Target | None:
        """The node pool the request is about, when it is about one (for the log line)."""

    @property
    def region(self) -> str:
        """The region the request reaches into; "" for the function's own."""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        """Execute the intent through the cloud and render its report; raises SyncError when it cannot be done."""

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        """What `python -m local validate` says of it."""


def kind_of(intent: Intent) -> Kind:
    """The intent as a Kind: the one dispatch (what mypy checks for every member of the table)."""
    return intent


# A document's field the settings may supply, and the Settings field that supplies it.
_SUPPLIED = {"project_id": "project_id", "cluster_id": "cluster_id", "nodepool_id": "nodepool_id", "spec": "sync_spec"}


def applied(unwrapped: Unwrapped, judge: Judge, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The fields the environment supplied to this request, each with the variable it came from."""
    names = {variable.field: variable.name for variable in VARIABLES}
    document, overrides, defaults = unwrapped.document, unwrapped.overrides, judge.defaults
    return tuple(
        f"{field} from {names[_SUPPLIED[field]]}"
        for field in fields
        if field not in document and field not in overrides and getattr(defaults, field)
    )
