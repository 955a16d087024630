"""Kind: sync several node pools of a fleet document, one after another while time allows; each target judged
and synced as a single sync is (listed targets when the request is interpreted, a selection once CCE lists it)."""

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..cloud import Cloud
from ..errors import NoPoolNamed, SyncError
from ..judge import Judge
from ..model import DEFAULT_POOL, Target, Unwrapped
from ..plans import Fleet, Selection
from ..rendering import SUCCEEDED, Answer, Description, Status, error_body, problems, status_of
from ..validation import ValidSync
from .base import applied
from .single import Gatekeeper, Single, render_single, sync_one

__all__ = ["FleetReport", "SyncFleet", "TargetReport", "sync_fleet"]


class TargetReport(NamedTuple):
    """One target of a fleet: its IDs (or the name that matched no pool) and what happened."""

    cluster_id: str
    nodepool_id: str
    outcome: Single | SyncError
    name: str = ""


class FleetReport(NamedTuple):
    """Every target's outcome, and the targets not reached for lack of time."""

    targets: tuple[TargetReport, ...]
    not_reached: tuple[tuple[str, str], ...]


Judged = list[tuple[tuple[str, str], ValidSync | SyncError]]  # each target's (cluster, pool) and its sync


def _selected(intent: "SyncFleet", cloud: Cloud, judge: Judge) -> tuple[list[TargetReport], Judged]:
    """A selection resolved with CCE's node pool list: the names that matched no pool, and each chosen pool's
    sync, judged now that its ID is known."""
    fleet = intent.fleet
    with_default = fleet.include_default if fleet.selection is Selection.ALL else DEFAULT_POOL in fleet.names
    pools = cloud.pools(fleet.project_id, fleet.cluster_id, with_default)
    unknown: list[TargetReport] = []
    if fleet.selection is Selection.ALL:
        chosen = [pool.pool_id for pool in pools if fleet.include_default or pool.pool_id != DEFAULT_POOL]
    else:
        by_name = {pool.name: pool.pool_id for pool in pools}
        chosen = [by_name[name] for name in fleet.names if name in by_name]
        unknown = [
            TargetReport(fleet.cluster_id, "", NoPoolNamed(name), name) for name in fleet.names if name not in by_name
        ]
    base = {**fleet.shared, "project_id": fleet.project_id, "cluster_id": fleet.cluster_id}
    ids = [(fleet.cluster_id, pool_id) for pool_id in chosen]
    return unknown, [(i, judge.target({**base, "nodepool_id": i[1]})) for i in ids]


def sync_fleet(intent: "SyncFleet", cloud: Cloud, judge: Judge) -> FleetReport:
    """One outcome per target; the targets left when less than TARGET_MIN_SECONDS remain are named for a retry."""
    settings, gatekeeper = judge.settings, Gatekeeper(cloud, judge)
    reports: list[TargetReport] = []
    if intent.fleet.selection is Selection.TARGETS:
        documents = intent.fleet.documents
        judged: Judged = [
            ((_id(d, "cluster_id"), _id(d, "nodepool_id")), one)
            for d, one in zip(documents, intent.judged, strict=True)
        ]
    else:
        reports, judged = _selected(intent, cloud, judge)
    for index, ((cluster_id, nodepool_id), one) in enumerate(judged):
        if cloud.deadline.remaining() < settings.target_min_seconds:
            return FleetReport(tuple(reports), tuple(ids for ids, _ in judged[index:]))
        try:
            outcome = one if isinstance(one, SyncError) else sync_one(one, cloud, settings.skip_if_busy, gatekeeper)
        except SyncError as error:
            outcome = error
        reports.append(TargetReport(cluster_id, nodepool_id, outcome))
    return FleetReport(tuple(reports), ())


def _id(document: Mapping[str, Any], name: str) -> str:
    """A target document's ID as given (it may be what made the target invalid), or "" when it has none."""
    value = document.get(name)
    return value if isinstance(value, str) else ""


def _entry(report: TargetReport) -> tuple[Status, dict[str, Any]]:
    """One target's line in a fleet answer: its IDs, its status and its outcome."""
    outcome = report.outcome
    rest: dict[str, Any]
    if isinstance(outcome, NoPoolNamed):
        ids: dict[str, Any] = {"cluster_id": report.cluster_id, "nodepool_name": report.name}
        status, rest = Status.REJECTED, {"error_code": outcome.code, "error_msg": outcome.message}
    else:
        ids = {"cluster_id": report.cluster_id or None, "nodepool_id": report.nodepool_id or None}
        if isinstance(outcome, SyncError):
            status, rest = status_of(outcome), {**error_body(outcome), "http_status": outcome.status}
        else:
            answer = render_single(outcome)
            status, rest = answer.status, {k: v for k, v in answer.body.items() if k not in Target._fields}
    return status, {**ids, "status": status.value, **rest}


def render_fleet(report: FleetReport) -> Answer:
    """Every target's result, the targets not reached for lack of time, and an overall status."""
    entries = [_entry(target) for target in report.targets]
    results = [entry for _, entry in entries]
    not_reached = [{"cluster_id": c or None, "nodepool_id": p or None} for c, p in report.not_reached]
    accepted_count = sum(status in SUCCEEDED for status, _ in entries)
    total = len(results) + len(not_reached)
    if total and accepted_count == total:
        overall, http_status = Status.ALL_ACCEPTED, 200
    elif accepted_count:
        overall, http_status = Status.SOME_ACCEPTED, 207
    else:
        errors = [t.outcome for t in report.targets if isinstance(t.outcome, SyncError)]
        overall, http_status = Status.NONE_ACCEPTED, errors[0].status if errors else 400
    body = {"accepted": accepted_count, "total": total, "results": results, "not_reached": not_reached}
    targets = tuple(
        {"nodepool_id": r.get("nodepool_id") or r.get("nodepool_name"), "status": r["status"]} for r in results
    )
    return Answer(overall, body, http_status, targets=targets)


class SyncFleet(NamedTuple):
    """A fleet document: its targets judged here when it lists them, its selection resolved when CCE lists it."""

    fleet: Fleet
    judged: tuple[ValidSync | SyncError, ...] = ()  # listed targets, in the document's order

    @property
    def target(self) -> None:
        return None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        return render_fleet(sync_fleet(self, cloud, judge))

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        found = tuple(
            line
            for index, one in enumerate(self.judged)
            if isinstance(one, SyncError)
            for line in problems(one, f"/targets/{index}")
        )
        applied_ = applied(unwrapped, judge, ("project_id", "cluster_id"))
        return Description(not found, f"fleet ({self.fleet.selection.value})", found, applied_)
