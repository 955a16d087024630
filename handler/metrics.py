"""Cloud Eye (CES) custom metrics: a pass's figures as points (pure), the CreateMetricData bodies they make, and
sending them to Cloud Eye of the function's home region and project, which never fails the pass.

CreateMetricData: `POST /V1.0/{project_id}/metric-data`, a JSON list of items, 201 without a body
(huaweicloudsdkces v1 CreateMetricDataRequest / CreateMetricDataRequestBody / MetricInfo / MetricsDimension,
https://github.com/huaweicloud/huaweicloud-sdk-python-v3/tree/master/huaweicloud-sdk-ces/huaweicloudsdkces/v1/model).
The limits below are the API reference's ("Adding Monitoring Data", ces_03_0034) and the provider's
(docs/resources/ces_alarmrule.md): each is checked by tests/test_metrics.py against the SDK's models.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from . import logs
from .errors import SyncError
from .model import PoolClass

if TYPE_CHECKING:
    from .cloud import Cloud
    from .reports import PassReport

__all__ = [
    "MAX_REQUEST_BYTES",
    "NAMESPACE_PATTERN",
    "TTL_SECONDS",
    "Point",
    "Publication",
    "Series",
    "bodies",
    "dispatch_points",
    "namespace_error",
    "pass_points",
    "publish",
]

# A namespace is service.item, each starting with a letter, then letters, digits and _, 3 to 32 characters in
# all; SYS, AGT and SRE are Cloud Eye's own (MetricInfo.namespace; the API reference's namespace rules).
NAMESPACE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*")
RESERVED_PREFIXES = ("SYS", "AGT", "SRE")
METRIC_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # the alarm rule's metric_name (provider docs)
DIMENSION_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
DIMENSION_VALUE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_DIMENSIONS = 3
TTL_SECONDS = 604800  # the longest a point is kept (CreateMetricDataRequestBody.ttl: 1 to 604800)
MAX_REQUEST_BYTES = 512 * 1024  # one CreateMetricData request's body at most


class Series(str, Enum):
    """Every metric the function reports (docs/observability.md's table is checked against this one)."""

    POOLS_IN_SYNC = "pools_in_sync"
    POOLS_DRIFTED = "pools_drifted"
    POOLS_SYNCING = "pools_syncing"
    POOLS_STUCK = "pools_stuck"
    POOLS_UNKNOWN = "pools_unknown"
    SYNCS_STARTED = "syncs_started"
    SYNCS_DEFERRED = "syncs_deferred"
    SYNCS_BACKING_OFF = "syncs_backing_off"
    SYNCS_REFUSED = "syncs_refused"
    SYNCS_FAILED = "syncs_failed"
    CLUSTERS_TOTAL = "clusters_total"
    CLUSTERS_UNREAD = "clusters_unread"
    WAVE_OPEN = "wave_open"
    HALTED = "halted"
    PASS_DURATION = "pass_duration"  # noqa: S105 - a metric name, not a secret
    API_THROTTLED = "api_throttled"
    NOTIFY_FAILED = "notify_failed"
    CLUSTER_POOLS_LAGGING = "cluster_pools_lagging"
    CLUSTER_NODES_LAGGING = "cluster_nodes_lagging"
    SCOPES_DISPATCHED = "scopes_dispatched"
    SCOPES_NOT_DISPATCHED = "scopes_not_dispatched"

    @property
    def unit(self) -> str:
        return "ms" if self is Series.PASS_DURATION else "count"


# A pass's totals by pool class (`pools_*`) and by action (`syncs_*`, decide.Action's values: not imported here,
# so that reading CES_NAMESPACE at a cold start costs no module of the pass; a dry run's would_start never reports).
_TOTALS = {s: s.value.split("_", 1)[1] for s in Series if s.value.startswith(("pools_", "syncs_"))}
LAGGING = (PoolClass.DRIFTED, PoolClass.SYNCING, PoolClass.STUCK)  # pools whose nodes lag their template


class Point(NamedTuple):
    """One value of one series, with its dimensions (name, value) in order."""

    series: Series
    value: float
    dimensions: tuple[tuple[str, str], ...]


class Publication(NamedTuple):
    """How reporting went: the points sent and in how many requests, or why not (never fails the pass)."""

    published: bool
    points: int
    requests: int = 0
    error: str = ""
    error_code: str = ""
    left_out: int = 0  # points whose dimensions break Cloud Eye's rules

    def answer(self) -> dict[str, Any]:
        """What a pass's answer says of it."""
        left_out = {"left_out": self.left_out} if self.left_out else {}
        if self.published:
            return {"published": True, "points": self.points, "requests": self.requests, **left_out}
        failed = {"error_code": self.error_code, "error": self.error}
        return {"published": False, "points": self.points, **failed, **left_out}


def namespace_error(namespace: str) -> str:
    """Why a namespace is not one Cloud Eye takes ("" when it is)."""
    if not (3 <= len(namespace) <= 32 and NAMESPACE_PATTERN.fullmatch(namespace)):
        return "must be service.item (letters, digits and _, each starting with a letter), 3 to 32 characters"
    if namespace.upper().startswith(RESERVED_PREFIXES):
        return f"must not start with {', '.join(RESERVED_PREFIXES)} (Cloud Eye's own namespaces)"
    return ""


def _scope(region: str, project_id: str) -> tuple[tuple[str, str], ...]:
    """The dimensions of a scope's figures (no region when the function was given none)."""
    return (*((("region", region),) if region else ()), ("project_id", project_id))


def pass_points(report: PassReport, region: str, totals: dict[str, int]) -> list[Point]:
    """A full pass's figures as points in its scope (`region`, `project_id`), and two per cluster read."""
    scope = _scope(region, report.project_id)
    values: dict[Series, float] = {series: totals[key] for series, key in _TOTALS.items() if key in totals}
    schedule = report.schedule
    values[Series.CLUSTERS_TOTAL] = totals["clusters"]
    values[Series.CLUSTERS_UNREAD] = totals["clusters_unread"]
    values[Series.WAVE_OPEN] = (schedule.open_wave or 0) if schedule is not None else 0
    values[Series.HALTED] = int(schedule is not None and schedule.halted)
    values[Series.PASS_DURATION] = report.duration_ms
    values[Series.API_THROTTLED] = report.throttled
    note = report.notification
    values[Series.NOTIFY_FAILED] = int(note is not None and not note.published)
    points = [Point(series, value, scope) for series, value in values.items()]
    for cluster in report.clusters:
        if cluster.error is not None:
            continue
        lagging = [p.pool for p in cluster.pools if p.decision.kind in LAGGING]
        nodes = sum(max(0, p.current - p.synced) for p in lagging if p.current is not None and p.synced is not None)
        where = (*scope, ("cluster_id", cluster.cluster_id))
        points += [Point(Series.CLUSTER_POOLS_LAGGING, len(lagging), where)]
        points += [Point(Series.CLUSTER_NODES_LAGGING, nodes, where)]
    return points


def dispatch_points(region: str, project_id: str, dispatched: int, not_dispatched: int) -> list[Point]:
    """A coordinator's figures, in its own scope."""
    scope = _scope(region, project_id)
    return [
        Point(Series.SCOPES_DISPATCHED, dispatched, scope),
        Point(Series.SCOPES_NOT_DISPATCHED, not_dispatched, scope),
    ]


def _fits(point: Point) -> bool:
    dimensions = point.dimensions
    return 1 <= len(dimensions) <= MAX_DIMENSIONS and all(
        DIMENSION_NAME_PATTERN.fullmatch(name) and DIMENSION_VALUE_PATTERN.fullmatch(value)
        for name, value in dimensions
    )


def _item(namespace: str, point: Point, collect_ms: int) -> dict[str, Any]:
    whole = float(point.value).is_integer()
    return {
        "metric": {
            "namespace": namespace,
            "metric_name": point.series.value,
            "dimensions": [{"name": name, "value": value} for name, value in point.dimensions],
        },
        "ttl": TTL_SECONDS,
        "collect_time": collect_ms,
        "value": int(point.value) if whole else round(float(point.value), 3),
        "unit": point.series.unit,
        "type": "int" if whole else "float",
    }


def bodies(namespace: str, points: Iterable[Point], collect_ms: int) -> tuple[list[bytes], int]:
    """The CreateMetricData bodies of these points, each at most MAX_REQUEST_BYTES, and how many points were left
    out because their dimensions break Cloud Eye's rules (IDs are checked before they are read: none expected)."""
    found: list[bytes] = []
    batch: list[bytes] = []
    size, left_out = 2, 0  # the list's brackets
    for point in points:
        if not _fits(point):
            left_out += 1
            continue
        item = json.dumps(_item(namespace, point, collect_ms), separators=(",", ":")).encode()
        if batch and size + len(item) + 1 > MAX_REQUEST_BYTES:
            found.append(b"[" + b",".join(batch) + b"]")
            batch, size = [], 2
        batch.append(item)
        size += len(item) + (1 if len(batch) > 1 else 0)
    if batch:
        found.append(b"[" + b",".join(batch) + b"]")
    return found, left_out


def publish(
    cloud: Cloud, namespace: str, points: Sequence[Point], clock: Callable[[], float] = time.time
) -> Publication:
    """Send the points to Cloud Eye of the function's home region and project, collected now, as they go (Cloud
    Eye's roll-ups miss points more than 10 minutes late); a failure is logged and reported, never raised."""
    sent = 0
    found, left_out = bodies(namespace, points, int(clock() * 1000))
    kept = len(points) - left_out
    try:
        for data in found:
            cloud.put_metrics(data)
            sent += 1
    except SyncError as error:
        reason = logs.failed(
            "metrics-failed", error.message, cloud.secrets(), error_code=error.code, requests_sent=sent
        )
        return Publication(False, kept, sent, reason, error.code, left_out)
    return Publication(True, kept, sent, left_out=left_out)
