"""The fleet executor: each target in turn while time allows, every one judged and synced as a single sync is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cloud import Cloud
from .errors import SyncError
from .intents import Judge, SyncFleet
from .model import DEFAULT_POOL
from .plans import Selection
from .reports import FleetReport, TargetReport
from .syncing import sync_one
from .validation import ValidSync

__all__ = ["sync_fleet"]


Judged = list[tuple[tuple[str, str], ValidSync | SyncError]]  # each target's (cluster, pool) and its sync


def _selected(intent: SyncFleet, cloud: Cloud, judge: Judge) -> tuple[list[TargetReport], Judged]:
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
        unknown = [TargetReport(fleet.cluster_id, "", None, name) for name in fleet.names if name not in by_name]
    base = {**fleet.shared, "project_id": fleet.project_id, "cluster_id": fleet.cluster_id}
    ids = [(fleet.cluster_id, pool_id) for pool_id in chosen]
    return unknown, [(i, judge.target({**base, "nodepool_id": i[1]})) for i in ids]


def sync_fleet(intent: SyncFleet, cloud: Cloud, judge: Judge) -> FleetReport:
    """One outcome per target; the targets left when less than TARGET_MIN_SECONDS remain are named for a retry."""
    settings = judge.settings
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
            outcome = one if isinstance(one, SyncError) else sync_one(one, cloud, settings.skip_if_busy)
        except SyncError as error:
            outcome = error
        reports.append(TargetReport(cluster_id, nodepool_id, outcome))
    return FleetReport(tuple(reports), ())


def _id(document: Mapping[str, Any], name: str) -> str:
    """A target document's ID as given (it may be what made the target invalid), or "" when it has none."""
    value = document.get(name)
    return value if isinstance(value, str) else ""
