"""A controller you can leave running: backoff from failing pools, stuck syncs, maintenance windows, SMN."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from handler.times import parse_time
from handler.windows import parse_windows
from local.emulator import Emulator
from tests.conftest import CLUSTER, PROJECT, TOKEN, FakeContext, load_event

Invoke = Callable[..., Any]
SPEC = {"maxUnavailable": 1}
TOPIC = f"urn:smn:ap-southeast-1:{PROJECT}:ops-alerts"
HOUR = 3600.0


def _pass(**options: Any) -> dict[str, Any]:
    return {"reconcile": {"clusters": [CLUSTER], "max_syncing_per_cluster": 9, **options}, "spec": SPEC}


def _pool(answer: dict[str, Any], name: str) -> dict[str, Any]:
    [cluster] = answer["clusters"]
    [pool] = [p for p in cluster["pools"] if p["name"] == name]
    return pool


@pytest.fixture
def drifted(emulator: Emulator) -> Emulator:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    return emulator


# --- backoff -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ended_ago", "backing_off"), [(1 * HOUR, True), (7 * HOUR, False)], ids=["inside the backoff", "past it"]
)
def test_a_pool_whose_last_sync_failed_backs_off(
    invoke: Invoke, drifted: Emulator, ended_ago: float, backing_off: bool
) -> None:
    job = drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=ended_ago, reason="drain timed out")
    pool = _pool(invoke(_pass()), "a")
    if backing_off:
        assert pool["action"] == "backing_off" and pool["jobid"] == job.id and pool["reason"] == "drain timed out"
        until = datetime.fromisoformat(pool["until"].replace("Z", "+00:00")).timestamp()
        assert abs(until - (job.created + job.seconds + 6 * HOUR)) < 5 and drifted.syncs() == []
    else:
        assert pool["action"] == "started" and len(drifted.syncs()) == 1


@pytest.mark.parametrize(
    ("options", "action"),
    [
        ({"force": True}, "backing_off"),
        ({"ignore_backoff": True}, "started"),
        ({"ignore_windows": True}, "backing_off"),
    ],
    ids=["force does not lift it", "ignore_backoff does", "ignore_windows does not"],
)
def test_only_ignore_backoff_starts_a_pool_that_is_backing_off(
    invoke: Invoke, drifted: Emulator, options: dict[str, bool], action: str
) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    assert _pool(invoke(_pass(**options)), "a")["action"] == action


@pytest.mark.parametrize(
    ("outcome", "resource"), [("Success", ""), ("Failed", "another-resource")], ids=["succeeded", "not the pool's"]
)
def test_no_backoff_after_a_successful_job_or_another_resources(
    invoke: Invoke, drifted: Emulator, outcome: str, resource: str
) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", outcome, ended_ago=60, resource_id=resource)
    drifted.update_template(PROJECT, CLUSTER, "np-a")  # the template changed after that job
    assert _pool(invoke(_pass()), "a")["action"] == "started"


def test_the_backoff_setting_is_read(invoke: Invoke, drifted: Emulator, env: Any) -> None:
    env(SYNC_FAILED_BACKOFF_SECONDS="30")
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    assert _pool(invoke(_pass()), "a")["action"] == "started"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30 08:00:00.123456 +0000 UTC", "2026-11-30T08:00:00.123456+00:00"),
        ("2026-11-30 16:00:00 +0800 CST", "2026-11-30T08:00:00+00:00"),
        ("2026-11-30T08:00:00Z", "2026-11-30T08:00:00+00:00"),
        ("2026-11-30T08:00:00.5+08:00", "2026-11-30T00:00:00.500000+00:00"),
        ("yesterday", None),
        ("2026-11-30T08:00:00", None),
        (1764489600, None),
    ],
)
def test_cce_timestamps_in_either_format_or_none(text: Any, expected: str | None) -> None:
    parsed = parse_time(text)
    if expected is None:
        assert parsed is None
    else:
        assert parsed == datetime.fromisoformat(expected).timestamp()


@pytest.mark.parametrize(
    ("metadata", "until_from"),
    [
        ({"updateTimestamp": "soon", "creationTimestamp": "2999-01-01 00:00:00 +0000 UTC"}, None),
        ({"updateTimestamp": "soon"}, None),
    ],
    ids=["update unreadable, creation in the far future", "no time at all"],
)
def test_a_failed_job_without_a_readable_time_backs_off_and_says_why(
    invoke: Invoke, drifted: Emulator, logs: Any, metadata: dict[str, str], until_from: None
) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    drifted.inject(path_contains="/jobs/", status=200, body={"status": {"phase": "Failed"}, "metadata": metadata})
    pool = _pool(invoke(_pass()), "a")
    assert pool["action"] == "backing_off" and "until" not in pool and drifted.syncs() == []
    [action] = [r for r in logs.records() if r["message"] == "reconcile-action"]
    assert "cannot be read" in action["note"]


def test_a_failed_job_with_only_a_creation_time_backs_off_from_it(invoke: Invoke, drifted: Emulator) -> None:
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    body = {"status": {"phase": "Failed"}, "metadata": {"updateTimestamp": "soon", "creationTimestamp": created}}
    drifted.inject(path_contains="/jobs/", status=200, body=body)
    pool = _pool(invoke(_pass()), "a")
    until = datetime.fromisoformat(pool["until"].replace("Z", "+00:00")).timestamp()
    assert pool["action"] == "backing_off" and abs(until - (parse_time(created) or 0) - 6 * HOUR) < 5


# --- stuck -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("running_for", "stuck"), [(3 * HOUR, True), (0.5 * HOUR, False)])
def test_a_sync_running_too_long_is_stuck_and_still_counts(
    invoke: Invoke, drifted: Emulator, running_for: float, stuck: bool
) -> None:
    drifted.add_pool(PROJECT, CLUSTER, "np-s", "s", nodes=2, synced=1)
    drifted.add_job(PROJECT, CLUSTER, "np-s", "Success", ended_ago=-HOUR, seconds=running_for + HOUR)
    answer = invoke(_pass(max_syncing_per_cluster=1))
    assert _pool(answer, "s")["class"] == ("stuck" if stuck else "syncing")
    assert _pool(answer, "a")["action"] == "deferred"  # the stuck sync still holds the cluster's one slot


# --- windows -----------------------------------------------------------------------------------------------


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("windows", "moment", "open_"),
    [
        ("Mon-Fri 01:00-05:00+08:00", "2026-11-30T02:00:00+08:00", True),  # a Monday
        ("Mon-Fri 01:00-05:00+08:00", "2026-11-30T06:00:00+08:00", False),
        ("Mon-Fri 01:00-05:00+08:00", "2026-11-29T02:00:00+08:00", False),  # a Sunday
        ("Sat-Sun 00:00-06:00+08:00", "2026-11-29T05:59:00+08:00", True),
        ("Fri 22:00-02:00+00:00", "2026-11-28T01:30:00+00:00", True),  # Saturday night: Friday's window
        ("Fri 22:00-02:00+00:00", "2026-11-29T01:30:00+00:00", False),
        ("Sun-Tue 10:00-11:00+00:00", "2026-12-01T10:30:00+00:00", True),  # Tuesday, in a range that wraps
        ("* 10:00-11:00-05:00", "2026-11-30T15:30:00+00:00", True),
    ],
)
def test_maintenance_windows(windows: str, moment: str, open_: bool) -> None:
    assert parse_windows(windows).open_at(_at(moment)) is open_


def test_the_next_window_is_named_in_utc() -> None:
    upcoming = parse_windows("Mon-Fri 01:00-05:00+08:00").next_start(_at("2026-11-28T12:00:00+00:00"))
    assert upcoming == _at("2026-11-29T17:00:00+00:00")  # Monday 01:00 in +08:00


@pytest.mark.parametrize(
    "value", ["Mon 1:00-2:00+08:00", "Funday 01:00-02:00+08:00", "Mon 01:00-02:00", "Mon 25:00-26:00+00:00"]
)
def test_a_malformed_window_is_a_configuration_error_naming_the_variable(invoke: Invoke, env: Any, value: str) -> None:
    env(SYNC_WINDOWS=value)
    answer = invoke(load_event("timer.json"))
    assert answer["error_code"] == "FUNC.CONFIG" and "SYNC_WINDOWS" in answer["error_msg"]


def _closed_now() -> str:
    """A window that is surely closed now: one hour, starting two hours from now."""
    now = datetime.now(timezone.utc)
    start = (now.hour + 2) % 24
    return f"* {start:02d}:00-{(start + 1) % 24:02d}:00+00:00"


def test_outside_every_window_a_pass_defers_with_the_next_window(invoke: Invoke, drifted: Emulator, env: Any) -> None:
    env(SYNC_WINDOWS=_closed_now())
    pool = _pool(invoke(_pass()), "a")
    assert (pool["action"], pool["reason"]) == ("deferred", "outside_window") and pool["next_window"].endswith("Z")
    assert drifted.syncs() == []


@pytest.mark.parametrize(
    ("options", "action"),
    [({"force": True}, "deferred"), ({"ignore_backoff": True}, "deferred"), ({"ignore_windows": True}, "started")],
    ids=["force does not lift it", "ignore_backoff does not", "ignore_windows does"],
)
def test_only_ignore_windows_starts_a_pass_outside_every_window(
    invoke: Invoke, drifted: Emulator, env: Any, options: dict[str, bool], action: str
) -> None:
    env(SYNC_WINDOWS=_closed_now())
    assert _pool(invoke(_pass(**options)), "a")["action"] == action


def test_outside_every_window_a_single_sync_is_deferred_unless_forced(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(SYNC_WINDOWS=_closed_now())
    answer = invoke({"spec": SPEC})
    assert answer["status"] == "deferred" and answer["next_window"].endswith("Z") and emulator.syncs() == []
    assert invoke({"spec": SPEC, "force": True})["status"] == "accepted"


# --- notifications -----------------------------------------------------------------------------------------


@pytest.fixture
def smn(emulator: Emulator, env: Any) -> Emulator:
    env(SMN_TOPIC_URN=TOPIC, SMN_ENDPOINT=emulator.url, CCE_SYNC_SPEC=json.dumps(SPEC))
    env(SYNC_RECONCILE=json.dumps(_pass()["reconcile"]))
    return emulator


def _scheduled(invoke: Invoke) -> Any:
    """The timer's pass (SYNC_RECONCILE): the one that tells a person."""
    return invoke(load_event("timer-defaults.json"))


def test_a_pass_with_a_fresh_failure_publishes_one_message(invoke: Invoke, drifted: Emulator, smn: Emulator) -> None:
    drifted.add_pool(PROJECT, CLUSTER, "np-b", "b", nodes=2, synced=0)
    job = drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60, reason="drain timed out")
    drifted.inject(path_contains="/nodepools/np-b/operation/upgrade", status=409)
    answer = _scheduled(invoke)
    assert answer["notification"]["published"] is True and answer["notification"]["items"] == 2
    [message] = smn.published
    assert message["topic"] == TOPIC and len(message["subject"].encode()) <= 512
    assert "1 start failed" in message["subject"] and "1 sync job failed" in message["subject"]
    assert f"node pool a (np-a): sync job failed, job {job.id}: drain timed out" in message["message"]
    assert "node pool b (np-b): start failed" in message["message"] and TOKEN not in json.dumps(message)


def test_a_pass_with_nothing_new_publishes_nothing(invoke: Invoke, drifted: Emulator, smn: Emulator) -> None:
    answer = _scheduled(invoke)
    assert "notification" not in answer and smn.published == []


def test_the_same_failed_job_is_announced_once(invoke: Invoke, drifted: Emulator, smn: Emulator) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=3 * HOUR)  # failed before the previous pass
    answer = _scheduled(invoke)
    assert _pool(answer, "a")["action"] == "backing_off" and smn.published == []


def test_a_sync_that_became_stuck_since_the_last_pass_is_announced(
    invoke: Invoke, drifted: Emulator, smn: Emulator
) -> None:
    drifted.add_pool(PROJECT, CLUSTER, "np-s", "s", nodes=2, synced=1)
    drifted.add_job(PROJECT, CLUSTER, "np-s", "Success", ended_ago=-HOUR, seconds=2 * HOUR + 60 + HOUR)
    _scheduled(invoke)
    assert len(smn.published) == 1 and "sync stuck" in smn.published[0]["message"]


def test_a_failing_smn_never_fails_the_pass(invoke: Invoke, drifted: Emulator, smn: Emulator) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    smn.inject(path_contains="/publish", status=500, times=9)
    answer = _scheduled(invoke)
    assert answer["status"] == "reconciled" and answer["notification"]["published"] is False


def test_a_failure_that_ends_while_a_pass_reads_is_told_by_the_next_pass_an_interval_later(
    invoke: Invoke, emulator: Emulator, smn: Emulator
) -> None:
    """The job fails after the pass listed its (syncing) pool and before the pass judged it; the next tick comes
    exactly one interval later and reads as slowly: its list is less than an interval after the failure, so the
    failure is news to it (measured from when each pass judged, it was news to neither)."""
    import time

    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    job = emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=-0.3, seconds=100, reason="drain timed out")
    emulator.inject(path_contains="/jobs/", delay=0.6, times=2)  # each pass reads the job 0.6 s after its list
    started = time.time()
    first = _scheduled(invoke)
    assert _pool(first, "a")["class"] == "syncing" and smn.published == []
    job.created -= HOUR / 6 - (time.time() - started)  # the next tick, exactly SYNC_RECONCILE_INTERVAL_SECONDS on
    second = _scheduled(invoke)
    assert _pool(second, "a")["action"] == "backing_off"
    [message] = smn.published
    assert "node pool a (np-a): sync job failed" in message["message"] and "drain timed out" in message["message"]
    job.created -= HOUR / 6  # and the tick after that: no longer news
    assert _pool(_scheduled(invoke), "a")["action"] == "backing_off" and len(smn.published) == 1


def test_a_failure_is_news_to_the_tick_whose_interval_it_ended_in_however_late_each_pass_runs(
    emulator: Emulator, smn: Emulator, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure ends 30 s after tick T; T's pass runs 100 s late, the next tick's 1 s late. Measured from when
    each pass ran, both would tell it (both ran less than an interval after it); measured from the tick, only the
    next does."""
    from datetime import datetime, timezone

    from handler.function import Function
    from handler.settings import Settings

    tick, now = time.time() - HOUR, [0.0]
    monkeypatch.setattr(emulator, "clock", lambda: now[0])  # CCE's time and the function's, one clock
    now[0] = tick + 100
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=70, reason="drain timed out")  # at tick + 30
    function = Function(Settings.from_environ(dict(env)), clock=lambda: now[0])

    def scheduled(at: float) -> Any:
        when = datetime.fromtimestamp(at, timezone.utc).isoformat()
        return function.handle({**load_event("timer-defaults.json"), "time": when}, FakeContext())

    assert _pool(scheduled(tick), "a")["action"] == "backing_off" and smn.published == []
    now[0] = tick + HOUR / 6 + 1
    assert _pool(scheduled(tick + HOUR / 6), "a")["action"] == "backing_off"
    [message] = smn.published
    assert "node pool a (np-a): sync job failed" in message["message"] and "pass timer-" in message["message"]


def test_a_pass_other_than_the_scheduled_one_tells_nobody(invoke: Invoke, drifted: Emulator, smn: Emulator) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    answer = invoke(_pass())  # a reconcile document (an API call, say) between two ticks
    assert _pool(answer, "a")["action"] == "backing_off" and "notification" not in answer and smn.published == []


def test_a_failing_smn_is_retried_as_cce_is(invoke: Invoke, drifted: Emulator, smn: Emulator) -> None:
    drifted.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    smn.inject(path_contains="/publish", status=503, times=1)
    answer = _scheduled(invoke)
    assert answer["notification"]["published"] is True and len(smn.published) == 1


def test_every_pass_logs_its_actions_and_one_summary(invoke: Invoke, drifted: Emulator, logs: Any) -> None:
    invoke(_pass())
    records = logs.records()
    [action] = [r for r in records if r["message"] == "reconcile-action"]
    [summary] = [r for r in records if r["message"] == "reconcile-pass"]
    assert action["action"] == "started" and summary["started"] == 1 and summary["duration_ms"] >= 0
