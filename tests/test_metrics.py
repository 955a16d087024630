"""Operators see the fleet: each full pass reports its figures to Cloud Eye (CreateMetricData) of the function's
home region and project, checked against the official SDK's models (huaweicloudsdkces 3.1.219); reporting never
fails a pass."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handler.decide import Action, Decision
from handler.errors import UpstreamError
from handler.function import Instance
from handler.gate import Schedule
from handler.metrics import (
    DIMENSION_NAME_PATTERN,
    MAX_REQUEST_BYTES,
    METRIC_NAME_PATTERN,
    TTL_SECONDS,
    Point,
    Series,
    bodies,
    namespace_error,
    pass_points,
)
from handler.model import PoolClass, PoolState
from handler.reports import ClusterReport, Notification, PassReport, PoolReport, totals
from local.emulator import Emulator, cts_trace
from local.emulator.ces import problem
from tests.conftest import CLUSTER, PROJECT, FakeContext, load_event, run_cli

Invoke = Callable[..., Any]
NAMESPACE = "NODEPOOL.SYNC"
SPEC = {"maxUnavailable": 1}
OWN_REGION = "ap-southeast-1"


def _pool(pool_id: str, current: int | None, synced: int | None, syncing: bool = False) -> PoolState:
    return PoolState(pool_id, pool_id, syncing, "", current, synced)


def _report(**fields: Any) -> PassReport:
    drifted = PoolReport(_pool("np-d", 3, 1), Decision(PoolClass.DRIFTED, Action.STARTED))
    held = PoolReport(_pool("np-h", 2, 0), Decision(PoolClass.DRIFTED, Action.DEFERRED))
    in_sync = PoolReport(_pool("np-s", 2, 2), Decision(PoolClass.IN_SYNC))
    syncing = PoolReport(_pool("np-y", 4, 1, syncing=True), Decision(PoolClass.SYNCING))
    clusters = (
        ClusterReport("c-one", (drifted, held, in_sync)),
        ClusterReport("c-two", (syncing,)),
        ClusterReport("c-gone", error=UpstreamError("CCE answered HTTP 500")),
    )
    return PassReport(PROJECT, False, clusters, duration_ms=812.5, throttled=2, **fields)


def _values(points: list[Point]) -> dict[tuple[str, str], float]:
    return {(p.series.value, dict(p.dimensions).get("cluster_id", "")): p.value for p in points}


# --- the figures, without HTTP -----------------------------------------------------------------------------


def test_a_pass_reports_its_totals_and_two_figures_per_cluster_read() -> None:
    report = _report()
    values = _values(pass_points(report, OWN_REGION, totals(report)))
    assert values[("pools_drifted", "")] == 2 and values[("pools_in_sync", "")] == 1
    assert values[("pools_syncing", "")] == 1 and values[("syncs_started", "")] == 1
    assert values[("syncs_deferred", "")] == 1 and values[("clusters_total", "")] == 3
    assert values[("clusters_unread", "")] == 1 and values[("pass_duration", "")] == 812.5
    assert values[("api_throttled", "")] == 2 and values[("halted", "")] == 0 and values[("wave_open", "")] == 0
    assert values[("cluster_pools_lagging", "c-one")] == 2 and values[("cluster_nodes_lagging", "c-one")] == 4
    assert values[("cluster_pools_lagging", "c-two")] == 1 and values[("cluster_nodes_lagging", "c-two")] == 3
    assert ("cluster_pools_lagging", "c-gone") not in values  # an unread cluster says nothing of its pools


@pytest.mark.parametrize(
    ("schedule", "notification", "halted", "wave", "notify_failed"),
    [
        (None, None, 0, 0, 0),
        (Schedule([], halted=True), Notification(False, 1, error="SMN answered 500"), 1, 0, 1),
        (Schedule([], open_wave=2), Notification(True, 1, "m-1"), 0, 2, 0),
    ],
    ids=["no guards", "halted, notifying failed", "wave 2 open, notified"],
)
def test_the_guards_and_notifying_are_reported_as_numbers(
    schedule: Schedule | None, notification: Notification | None, halted: int, wave: int, notify_failed: int
) -> None:
    report = _report(schedule=schedule, notification=notification)
    values = _values(pass_points(report, OWN_REGION, totals(report)))
    assert (values[("halted", "")], values[("wave_open", "")], values[("notify_failed", "")]) == (
        halted,
        wave,
        notify_failed,
    )


def test_every_series_name_and_dimension_fits_cloud_eyes_rules() -> None:
    report = _report()
    points = pass_points(report, OWN_REGION, totals(report))
    assert all(METRIC_NAME_PATTERN.fullmatch(series.value) for series in Series)
    assert all(1 <= len(p.dimensions) <= 3 for p in points)
    assert all(DIMENSION_NAME_PATTERN.fullmatch(name) for p in points for name, _ in p.dimensions)
    assert {p.series for p in points} == set(Series) - {Series.SCOPES_DISPATCHED, Series.SCOPES_NOT_DISPATCHED}


@pytest.mark.parametrize(
    ("namespace", "valid"),
    [
        ("NODEPOOL.SYNC", True),
        ("abc.d", True),
        ("a.b", True),
        ("ab", False),
        ("NODEPOOL", False),
        ("SYS.NODEPOOL", False),
        ("agt.sync", False),
        ("SRE_x.y", False),
        ("1abc.sync", False),
        ("nodepool.sync-x", False),
        ("n." + "x" * 31, False),
    ],
)
def test_a_namespace_is_service_item_of_3_to_32_characters_and_not_cloud_eyes_own(namespace: str, valid: bool) -> None:
    assert (namespace_error(namespace) == "") is valid


def test_a_report_larger_than_512_kb_is_split_and_every_point_sent_once() -> None:
    scope = (("region", OWN_REGION), ("project_id", PROJECT))
    points = [Point(Series.CLUSTER_POOLS_LAGGING, i, (*scope, ("cluster_id", f"c-{i:05d}"))) for i in range(4000)]
    sent, left_out = bodies(NAMESPACE, points, int(time.time() * 1000))
    assert left_out == 0 and len(sent) > 1 and all(len(body) <= MAX_REQUEST_BYTES for body in sent)
    items = [item for body in sent for item in json.loads(body)]
    assert [item["value"] for item in items] == list(range(4000))


def test_without_a_region_the_figures_carry_the_project_alone() -> None:
    report = _report()
    points = pass_points(report, "", totals(report))
    assert {p.dimensions[0][0] for p in points} == {"project_id"}


def test_a_point_whose_dimension_breaks_the_rules_is_left_out() -> None:
    bad = Point(Series.HALTED, 1, (("region", OWN_REGION), ("project_id", "p/../x")))
    good = Point(Series.HALTED, 0, (("region", OWN_REGION), ("project_id", PROJECT)))
    [body], left_out = bodies(NAMESPACE, [bad, good], 1)
    assert [item["value"] for item in json.loads(body)] == [0] and left_out == 1


# --- the report, end to end against the emulator ------------------------------------------------------------


@pytest.fixture
def ces(emulator: Emulator, env: Any) -> Emulator:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_pool(PROJECT, CLUSTER, "np-b", "b", nodes=2, synced=2)
    emulator.job_seconds = 60.0
    env(CES_NAMESPACE=NAMESPACE, CES_ENDPOINT=emulator.url, CCE_SYNC_SPEC=json.dumps(SPEC))
    env(SYNC_RECONCILE=json.dumps({"clusters": [CLUSTER]}), HUAWEICLOUD_SDK_REGION=OWN_REGION)
    return emulator


def _tick() -> Any:
    return load_event("timer-defaults.json")


def _sdk_item(item: dict[str, Any]) -> dict[str, Any]:
    """The item as huaweicloudsdkces' own models hold it: built from its fields, then serialised by the SDK."""
    from huaweicloudsdkces.v1 import CreateMetricDataRequestBody, MetricInfo, MetricsDimension
    from huaweicloudsdkcore.utils.http_utils import sanitize_for_serialization

    metric = item["metric"]
    model = CreateMetricDataRequestBody(
        metric=MetricInfo(
            namespace=metric["namespace"],
            metric_name=metric["metric_name"],
            dimensions=[MetricsDimension(name=d["name"], value=d["value"]) for d in metric["dimensions"]],
        ),
        ttl=item["ttl"],
        collect_time=item["collect_time"],
        value=item["value"],
        unit=item["unit"],
        type=item["type"],
    )
    serialised: dict[str, Any] = sanitize_for_serialization(model)
    return serialised


def test_a_timer_pass_reports_home_in_the_sdks_own_shape(invoke: Invoke, ces: Emulator) -> None:
    before = time.time() * 1000
    answer = invoke(_tick())
    assert answer["metrics"] == {"published": True, "points": 19, "requests": 1}
    [request] = [r for r in ces.requests if r.path.endswith("/metric-data")]
    assert request.path == f"/V1.0/{PROJECT}/metric-data" and request.method == "POST"
    items = json.loads(request.body)
    for item in items:
        assert item == _sdk_item(item)  # every field named and typed as the SDK's CreateMetricDataRequestBody
        assert item["metric"]["namespace"] == NAMESPACE and item["ttl"] == TTL_SECONDS
        assert before <= item["collect_time"] <= time.time() * 1000
        assert [d["name"] for d in item["metric"]["dimensions"]][:2] == ["region", "project_id"]
        assert item["metric"]["dimensions"][0]["value"] == OWN_REGION
    values = {(i["metric"]["metric_name"], len(i["metric"]["dimensions"])): i["value"] for i in items}
    assert values[("pools_drifted", 2)] == 1 and values[("pools_in_sync", 2)] == 1
    assert values[("syncs_started", 2)] == 1 and values[("cluster_pools_lagging", 3)] == 1
    assert values[("cluster_nodes_lagging", 3)] == 3 and isinstance(values[("pass_duration", 2)], float | int)


def test_the_sdks_own_create_metric_data_is_taken_by_the_emulator(emulator: Emulator) -> None:
    from huaweicloudsdkces.v1 import (
        CesClient,
        CreateMetricDataRequest,
        CreateMetricDataRequestBody,
        MetricInfo,
        MetricsDimension,
    )
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    emulator.add_keys("AKSDKCES00001", "sdk-ces-secret-key-01")
    credentials = BasicCredentials("AKSDKCES00001", "sdk-ces-secret-key-01", PROJECT)
    client = CesClient.new_builder().with_credentials(credentials).with_endpoint(emulator.url).build()
    dimension = MetricsDimension(name="project_id", value=PROJECT)
    item = CreateMetricDataRequestBody(
        metric=MetricInfo(namespace=NAMESPACE, metric_name="halted", dimensions=[dimension]),
        ttl=60,
        collect_time=int(time.time() * 1000),
        value=1,
        unit="count",
        type="int",
    )
    response = client.create_metric_data(CreateMetricDataRequest(body=[item]))
    assert response.status_code == 201 and emulator.metric_data[-1]["metric"]["metric_name"] == "halted"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ttl": 604801}, "ttl"),
        ({"collect_time": 0}, "collect_time"),
        ({"metric": {"namespace": "SYS.ECS", "metric_name": "x", "dimensions": [{"name": "a", "value": "b"}]}}, "SYS"),
        ({"metric": {"namespace": "A.B", "metric_name": "x", "dimensions": []}}, "dimensions"),
        ({"metric": {"namespace": "A.B", "metric_name": "x", "dimensions": [{"name": "a", "value": "b/c"}]}}, "value"),
        ({"type": "double"}, "type"),
    ],
)
def test_the_emulator_refuses_what_cloud_eye_refuses(change: dict[str, Any], why: str) -> None:
    now = time.time() * 1000
    good = {
        "metric": {"namespace": NAMESPACE, "metric_name": "halted", "dimensions": [{"name": "a", "value": "b"}]},
        "ttl": 60,
        "collect_time": int(now),
        "value": 1,
    }
    assert problem([good], 100, now) == ""
    assert why in problem([{**good, **change}], 100, now)
    assert "512 KB" in problem([good], 512 * 1024 + 1, now)


@pytest.mark.parametrize(
    ("event", "reported"),
    [
        ("timer", True),
        ("document", False),  # an API call's pass between two ticks
        ("dry run", False),
        ("change", False),  # a change event's narrowed pass
    ],
)
def test_only_a_full_scheduled_pass_reports(
    invoke: Invoke, ces: Emulator, env: Any, event: str, reported: bool
) -> None:
    if event == "timer":
        answer = invoke(_tick())
    elif event == "document":
        answer = invoke({"reconcile": {"clusters": [CLUSTER]}, "spec": SPEC})
    elif event == "dry run":
        env(SYNC_DRY_RUN="true")
        answer = invoke(_tick())
    else:
        answer = invoke(cts_trace(PROJECT, CLUSTER, "np-a", "a"))
    assert ("metrics" in answer) is reported and bool(ces.metric_data) is reported


def test_without_ces_namespace_nothing_is_reported(invoke: Invoke, ces: Emulator, env: Any) -> None:
    env(CES_NAMESPACE=None)
    answer = invoke(_tick())
    assert "metrics" not in answer and ces.metric_data == [] and answer["status"] == "reconciled"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"status": 403, "body": {"error_code": "ces.0015", "error_msg": "no permission"}, "times": 9}, "ces.0015"),
        ({"status": 500, "body": {"error_code": "ces.0500", "error_msg": "internal"}, "times": 9}, "ces.0500"),
        ({"drop": True, "times": 9}, "FUNC.UPSTREAM"),
    ],
    ids=["refused", "failing", "no answer"],
)
def test_a_failed_report_leaves_the_pass_as_it_was_and_says_why(
    invoke: Invoke, ces: Emulator, env: Any, logs: Any, fault: dict[str, Any], code: str
) -> None:
    env(CES_NAMESPACE=None)
    quiet = invoke(_tick())
    for job in list(ces.jobs.values()):
        job.seconds = 0  # the first pass's sync over: the second pass starts nothing more
    env(CES_NAMESPACE=NAMESPACE, HTTP_READ_TIMEOUT_SECONDS="0.2", RETRY_BASE_SECONDS="0", RETRY_CAP_SECONDS="0")
    ces.inject(path_contains="/metric-data", **fault)
    answer = invoke(_tick())
    assert answer["status"] == quiet["status"] == "reconciled" and answer["metrics"]["published"] is False
    assert answer["metrics"]["error_code"] == code and answer["metrics"]["error"]
    [line] = [r for r in logs.records() if r["message"] == "metrics-failed"]
    assert line["error_code"] == answer["metrics"]["error_code"] and ces.metric_data == []


def test_a_failing_report_is_retried_as_any_call_cce_did_not_act_on(invoke: Invoke, ces: Emulator) -> None:
    ces.inject(path_contains="/metric-data", status=503, times=1)
    answer = invoke(_tick())
    assert answer["metrics"]["published"] is True and len(ces.metric_data) == 19


# --- a fanned-out pass reports home ---------------------------------------------------------------------------

SCOPES = [{"region": OWN_REGION, "project_id": PROJECT}, {"region": "eu-west-101", "project_id": "p-eu-first"}]


@pytest.fixture
def fleet(emulator: Emulator, env: Any) -> Emulator:
    regional = emulator.url + "/{region}"
    env(CCE_ENDPOINT=regional, IAM_ENDPOINT=regional, FGS_ENDPOINT=regional, CES_ENDPOINT=regional)
    env(HUAWEICLOUD_SDK_REGION=OWN_REGION, CES_NAMESPACE=NAMESPACE, CCE_SYNC_SPEC=json.dumps(SPEC))
    env(SYNC_SCOPES=json.dumps(SCOPES), SYNC_RECONCILE=json.dumps({"clusters": "all"}), CCE_CLUSTER_ID=None)
    env(RUNTIME_FUNC_NAME="nodepool-sync")
    for scope in SCOPES:
        emulator.regions[scope["project_id"]] = scope["region"]
        emulator.add_pool(scope["project_id"], f"c-{scope['project_id']}", "np-a", "a", nodes=2, synced=0)
    return emulator


def test_a_worker_of_another_region_and_project_reports_home_labelled_with_its_scope(
    invoke: Invoke, fleet: Emulator, instance: Instance
) -> None:
    coordinator = invoke(load_event("timer-defaults.json"))
    assert coordinator["status"] == "dispatched" and coordinator["metrics"]["published"] is True
    [body] = [i["body"] for i in fleet.invocations if i["body"]["scope"]["project_id"] == "p-eu-first"]
    seen = len(fleet.metric_data)
    answer = instance.handle(body, FakeContext())
    assert answer["project_id"] == "p-eu-first" and answer["metrics"]["published"] is True
    sent = fleet.metric_data[seen:]
    assert {(p["region"], p["project_id"]) for p in sent} == {(OWN_REGION, PROJECT)}  # Cloud Eye at home
    labels = {tuple(d["value"] for d in p["metric"]["dimensions"][:2]) for p in sent}
    assert labels == {("eu-west-101", "p-eu-first")}
    dispatched = {p["metric"]["metric_name"]: p["value"] for p in fleet.metric_data[:seen]}
    assert dispatched == {"scopes_dispatched": 2, "scopes_not_dispatched": 0}


def test_the_metrics_table_of_the_docs_lists_every_series() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "observability.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert table == {series.value for series in Series}


# --- locally: python -m local metrics ------------------------------------------------------------------------


def test_the_metrics_command_prints_the_latest_value_of_each_series_and_a_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local import clouds
    from local import template as templates

    emulator = clouds.start_emulator(dict(templates.load()["function"]["environment"]), jobs=(60, 60))
    discovery = tmp_path / ".emulator.json"
    discovery.write_text(json.dumps({"url": emulator.url, "pid": 0}))
    monkeypatch.setattr(clouds, "DISCOVERY", discovery)
    monkeypatch.delenv("NODEPOOL_SYNC_DISCOVERY", raising=False)
    try:
        tick = run_cli("generate-event", "timer").stdout
        for _ in range(2):
            assert run_cli("invoke", "-", stdin=tick).returncode == 0
        table = run_cli("metrics")
        chart = run_cli("metrics", "--chart", "pools_drifted")
    finally:
        emulator.stop()
    assert table.returncode == 0 and chart.returncode == 0, (table.stderr, chart.stderr)
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
    assert set(rows) >= {s.value for s in Series} - {Series.SCOPES_DISPATCHED, Series.SCOPES_NOT_DISPATCHED}
    assert rows["pools_drifted"][-1] == "2" and rows["syncs_started"][-1] == "2"  # two points each
    [line] = chart.stdout.splitlines()  # one place: the demo project, two passes drawn as two bars
    assert re.search(r" [▁▂▃▄▅▆▇█]{2} \(max \d+, latest \d+\)$", line), line


def test_the_metrics_command_without_an_emulator_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from local import clouds

    monkeypatch.setattr(clouds, "DISCOVERY", tmp_path / "none.json")
    monkeypatch.delenv("NODEPOOL_SYNC_DISCOVERY", raising=False)
    result = run_cli("metrics")
    assert result.returncode == 2 and "make emulator" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("configured", "region", "expected"),
    [
        ("", "eu-west-101", "https://ces.eu-west-101.myhuaweicloud.com"),
        ("", "ap-southeast-1", "https://ces.ap-southeast-1.myhuaweicloud.com"),
        ("http://127.0.0.1:9/{region}", "eu-west-101", "http://127.0.0.1:9/eu-west-101"),
    ],
)
def test_cloud_eyes_endpoint_is_the_sdks_region_tables_unless_configured(
    configured: str, region: str, expected: str
) -> None:
    from handler.settings import Settings

    settings = Settings.from_environ({"HUAWEICLOUD_SDK_REGION": region, "CES_ENDPOINT": configured})
    assert settings.endpoint("ces") == expected
