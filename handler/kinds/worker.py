"""Kind: a worker of a fanned-out pass (a direct, asynchronous invocation by the coordinator): the pass for its
scope's region and project, with credentials for that scope."""

from typing import NamedTuple

from ..cloud import Cloud
from ..judge import Judge
from ..model import Unwrapped
from ..plans import Reconcile
from ..rendering import Answer, Description
from .passes import render_pass, run

__all__ = ["Work"]


class Work(NamedTuple):
    """The pass of one scope of SYNC_SCOPES (the plan carries the scope's region and project)."""

    plan: Reconcile

    @property
    def target(self) -> None:
        return None

    @property
    def region(self) -> str:
        return self.plan.region

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        return render_pass(run(self.plan, cloud, judge))

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        plan = self.plan
        where = "every cluster" if plan.every_cluster else f"{len(plan.cluster_ids)} cluster(s)"
        return Description(True, f"worker pass of scope {plan.region}/{plan.project_id} over {where}")
