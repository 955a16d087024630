"""Kind: a CCE change event (a CTS trace, an EventGrid event), judged against the configured pass: that pass,
narrowed to the cluster and node pool the trace names."""

from typing import NamedTuple

from ..cloud import Cloud
from ..judge import Judge
from ..model import Unwrapped
from ..plans import Reconcile
from ..rendering import Answer, Description
from .ignore import ignored
from .passes import render_pass, run

__all__ = ["ReactToChange"]


class ReactToChange(NamedTuple):
    """The configured pass, narrowed to what the trace names; `reason` says what changed."""

    plan: Reconcile
    reason: str

    @property
    def target(self) -> None:
        return None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        report = run(self.plan, cloud, judge)
        if not any(cluster.pools or cluster.error for cluster in report.clusters):
            return ignored(f"{self.reason}, and the configured pass takes no such node pool")
        return render_pass(report)

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        return Description(True, f"change event: {self.reason}")
