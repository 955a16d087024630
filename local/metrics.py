"""What Cloud Eye received, as a person reads it: the latest value of each series as a table, and one series
over the passes as a small chart (`python -m local metrics`, and the end of `make run`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from typing import Any

from handler.metrics import Series

from .clouds import UsageError, alive, running

__all__ = ["SCOPE_COLUMNS", "chart", "command_metrics", "latest_table", "received", "scope_table"]

_BARS = "▁▂▃▄▅▆▇█"
_SHORT = {"region": ("", 20), "project_id": ("project ", 8), "cluster_id": ("cluster ", 13)}


def received(url: str) -> list[dict[str, Any]]:
    """Every point the emulator at url received, oldest first."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/_emulator/metrics", timeout=5) as answer:  # noqa: S310 - loopback only
        points = json.loads(answer.read()).get("points", [])
    return points if isinstance(points, list) else []


def _where(point: dict[str, Any]) -> str:
    dimensions = point["metric"]["dimensions"]
    shown = ((d["name"], str(d["value"])) for d in dimensions)
    return " ".join(f"{_SHORT.get(n, (n + ' ', 13))[0]}{v[: _SHORT.get(n, ('', 13))[1]]}" for n, v in shown)


def _series(points: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The points of each series (metric name and dimensions), in the order received."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for point in points:
        found.setdefault((point["metric"]["metric_name"], _where(point)), []).append(point)
    return found


def latest_table(points: Sequence[dict[str, Any]]) -> list[str]:
    """One line per series: its name, where, its latest value, and how many points it has."""
    if not points:
        return ["no metrics received yet (CES_NAMESPACE set, a timer pass or a worker reports them)"]
    order = {series.value: index for index, series in enumerate(Series)}
    rows = sorted(_series(points).items(), key=lambda item: (order.get(item[0][0], 99), item[0][1]))
    lines = [f"{'metric':<24} {'where':<48} {'latest':>8} {'points':>6}"]
    for (name, where), found in rows:
        value = found[-1]["value"]
        lines.append(f"{name:<24} {where:<48} {value:>8} {len(found):>6}")
    return lines


SCOPE_COLUMNS = (
    Series.POOLS_IN_SYNC,
    Series.POOLS_DRIFTED,
    Series.POOLS_SYNCING,
    Series.POOLS_STUCK,
    Series.SYNCS_STARTED,
    Series.SYNCS_DEFERRED,
    Series.SYNCS_FAILED,
    Series.HALTED,
    Series.PASS_DURATION,
)


def scope_table(points: Sequence[dict[str, Any]]) -> list[str]:
    """The latest pass-wide figures of each scope (region and project), one row each: the fleet at a glance."""
    latest: dict[str, dict[str, Any]] = {}
    for point in points:
        dimensions = {d["name"]: d["value"] for d in point["metric"]["dimensions"]}
        if "cluster_id" in dimensions or "project_id" not in dimensions:
            continue
        where = f"{dimensions.get('region', '')}/{dimensions['project_id'][:8]}"
        latest.setdefault(where, {})[point["metric"]["metric_name"]] = point["value"]
    heads = [series.value.split("_", 1)[-1] for series in SCOPE_COLUMNS]
    lines = [f"{'scope':<24}" + "".join(f"{head:>10}" for head in heads)]
    for where, values in sorted(latest.items()):
        if not any(series.value in values for series in SCOPE_COLUMNS):
            continue
        lines.append(f"{where:<24}" + "".join(f"{values.get(s.value, '-')!s:>10}" for s in SCOPE_COLUMNS))
    return lines


def chart(points: Sequence[dict[str, Any]], name: str, width: int = 40) -> list[str]:
    """A series over the passes as one line of bars per place (its last `width` points)."""
    lines = []
    for (metric, where), found in _series(points).items():
        if metric != name:
            continue
        values = [float(p["value"]) for p in found[-width:]]
        top = max(values) or 1.0
        bars = "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1)))] for v in values)
        lines.append(f"{where:<48} {bars} (max {max(values):g}, latest {values[-1]:g})")
    return lines or [f"no points of {name} yet"]


def command_metrics(args: argparse.Namespace) -> int:
    """Print what the running emulator's Cloud Eye received: the latest value of each series, and with
    --chart a series over the passes (make emulator runs one; a timer pass or a worker reports)."""
    url = args.emulator or running()
    if url is None or not alive(url):
        raise UsageError("no emulator is running: start one with make emulator (or name it with --emulator URL)")
    points = received(url)
    if args.namespace:
        points = [p for p in points if p["metric"]["namespace"] == args.namespace]
    for line in chart(points, args.chart) if args.chart else latest_table(points):
        print(line)
    return 0


def add_command(parser: argparse.ArgumentParser) -> None:
    """The metrics command's options."""
    names = [series.value for series in Series]
    parser.add_argument("--chart", choices=names, metavar="SERIES", help="one series over the passes, as bars")
    parser.add_argument("--namespace", help="only this namespace (default: every one received)")
    parser.add_argument("--emulator", metavar="URL", help="the emulator at URL (default: the one make emulator runs)")
