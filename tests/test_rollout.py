"""Fleet safety end to end: waves that open strictly in order over successive passes, a budget across clusters,
a halt when failures spread, and overrides that each lift their own guard only (against the emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from local.emulator import Emulator
from tests.conftest import PROJECT, apig_event, load_event, status_body

Invoke = Callable[..., Any]
SPEC = {"maxUnavailable": 1}
TOPIC = f"urn:smn:ap-southeast-1:{PROJECT}:ops-alerts"
HOUR = 3600.0


def _pass(**options: Any) -> dict[str, Any]:
    reconcile = {"clusters": ["c-test", "c-stage", "c-prod"], "max_syncing_per_cluster": 5, **options}
    return {"reconcile": reconcile, "spec": SPEC}


def _actions(answer: dict[str, Any]) -> dict[str, str]:
    return {p["nodepool_id"]: p.get("action", p["class"]) for c in answer["clusters"] for p in c.get("pools", ())}


@pytest.fixture
def fleet(emulator: Emulator) -> Emulator:
    """Three clusters (test, stage, prod), each with one drifted pool; jobs finish at once and succeed."""
    for cluster, name in (("c-test", "test"), ("c-stage", "stage"), ("c-prod", "prod")):
        emulator.add_cluster(PROJECT, cluster, f"{name}-cluster")
        emulator.add_pool(PROJECT, cluster, f"np-{name}", f"pool-{name}", nodes=2, synced=0)
    return emulator


def test_waves_open_strictly_in_order_over_successive_passes(invoke: Invoke, fleet: Emulator) -> None:
    document = _pass(waves=[["c-test"], ["stage-cluster"]])  # by ID, by name; prod is in no wave: the last
    seen: list[dict[str, str]] = []
    for _ in range(4):
        answer = invoke(document)
        seen.append(_actions(answer))
    assert seen[0] == {"np-test": "started", "np-stage": "deferred", "np-prod": "deferred"}
    assert seen[1] == {"np-test": "in_sync", "np-stage": "started", "np-prod": "deferred"}
    assert seen[2] == {"np-test": "in_sync", "np-stage": "in_sync", "np-prod": "started"}
    assert seen[3] == {"np-test": "in_sync", "np-stage": "in_sync", "np-prod": "in_sync"}
    assert [s.path.split("/")[-3] for s in fleet.syncs()] == ["np-test", "np-stage", "np-prod"]


def test_the_answer_names_the_open_wave_and_what_holds_the_next(invoke: Invoke, fleet: Emulator) -> None:
    answer = invoke(_pass(waves=[["c-test"], ["c-stage"]]))
    assert answer["waves"]["open"] == 1
    assert answer["waves"]["held_by"] == [
        {"cluster_id": "c-test", "nodepool_id": "np-test", "name": "pool-test", "class": "drifted"}
    ]
    deferred = {p["nodepool_id"]: p["reason"] for c in answer["clusters"] for p in c["pools"] if "reason" in p}
    assert deferred == {"np-stage": "wave 2 waits for wave 1", "np-prod": "wave 3 waits for wave 1"}


def test_a_change_in_a_later_wave_waits_for_the_earlier_waves(invoke: Invoke, fleet: Emulator, env: Any) -> None:
    env(CCE_SYNC_SPEC=json.dumps(SPEC), SYNC_RECONCILE=json.dumps(_pass(waves=[["c-test"]])["reconcile"]))
    answer = invoke(fleet.update_template(PROJECT, "c-stage", "np-stage"))
    assert _actions(answer) == {"np-stage": "deferred"} and fleet.syncs() == []  # c-test (wave 1) is drifted
    assert [c["cluster_id"] for c in answer["clusters"]] == ["c-stage"]  # read for context, not reported


def test_the_fleet_budget_holds_across_clusters_counting_running_syncs(invoke: Invoke, fleet: Emulator) -> None:
    fleet.add_pool(PROJECT, "c-prod", "np-busy", "pool-busy", nodes=2, synced=1)
    fleet.set_busy(PROJECT, "c-prod", "np-busy")
    answer = invoke(_pass(max_syncing=2))
    assert answer["totals"]["started"] == 1 and len(fleet.syncs()) == 1  # one running + one started = 2
    reasons = [p["reason"] for c in answer["clusters"] for p in c["pools"] if p.get("action") == "deferred"]
    assert reasons == ["max_syncing reached", "max_syncing reached"]


@pytest.fixture
def failing(fleet: Emulator, env: Any) -> Emulator:
    """Test and stage failed a minute ago; prod is drifted; SMN is on; the timer runs the pass."""
    env(SMN_TOPIC_URN=TOPIC, SMN_ENDPOINT=fleet.url, CCE_SYNC_SPEC=json.dumps(SPEC))
    fleet.add_job(PROJECT, "c-test", "np-test", "Failed", ended_ago=60, reason="drain timed out")
    fleet.add_job(PROJECT, "c-stage", "np-stage", "Failed", ended_ago=60, reason="image pull failed")
    return fleet


def _timer(invoke: Invoke, env: Any, **options: Any) -> Any:
    env(SYNC_RECONCILE=json.dumps(_pass(**options)["reconcile"]))
    return invoke(load_event("timer-defaults.json"))


def test_two_recent_failures_halt_the_pass_and_notify_once(invoke: Invoke, failing: Emulator, env: Any) -> None:
    answer = _timer(invoke, env, halt_after_failures=2)
    assert answer["status"] == "halted" and failing.syncs() == []
    failed = {f["nodepool_id"]: (f["jobid"], f["reason"]) for f in answer["halt"]["failed"]}
    assert {k: v[1] for k, v in failed.items()} == {"np-test": "drain timed out", "np-stage": "image pull failed"}
    assert all(jobid for jobid, _ in failed.values())
    assert _actions(answer)["np-prod"] == "deferred"
    [message] = failing.published
    assert "pass halted" in message["subject"] and "2 pools' latest syncs failed" in message["message"]


def test_a_halt_is_not_announced_again_once_its_failures_are_old_news(
    invoke: Invoke, fleet: Emulator, env: Any
) -> None:
    env(SMN_TOPIC_URN=TOPIC, SMN_ENDPOINT=fleet.url, CCE_SYNC_SPEC=json.dumps(SPEC))
    fleet.add_job(PROJECT, "c-test", "np-test", "Failed", ended_ago=2 * HOUR)  # before the previous tick
    fleet.add_job(PROJECT, "c-stage", "np-stage", "Failed", ended_ago=2 * HOUR)
    answer = _timer(invoke, env, halt_after_failures=2)
    assert answer["status"] == "halted" and fleet.published == []


def test_the_halt_lifts_when_the_failures_age_out(invoke: Invoke, fleet: Emulator, env: Any) -> None:
    fleet.add_job(PROJECT, "c-test", "np-test", "Failed", ended_ago=7 * HOUR)  # past SYNC_FAILED_BACKOFF_SECONDS
    fleet.add_job(PROJECT, "c-stage", "np-stage", "Failed", ended_ago=7 * HOUR)
    answer = invoke(_pass(halt_after_failures=2))
    assert answer["status"] == "reconciled" and answer["totals"]["started"] == 3


@pytest.mark.parametrize(
    ("options", "status", "started"),
    [
        ({"force": True}, "halted", []),
        ({"ignore_backoff": True}, "halted", []),
        ({"ignore_windows": True}, "halted", []),
        ({"ignore_halt": True}, "reconciled", ["np-prod"]),  # the failed pools still back off
        ({"ignore_halt": True, "ignore_backoff": True}, "reconciled", ["np-prod", "np-stage", "np-test"]),
    ],
    ids=["force", "ignore_backoff", "ignore_windows", "ignore_halt", "ignore_halt and ignore_backoff"],
)
def test_each_override_lifts_its_own_guard_only(
    invoke: Invoke, failing: Emulator, options: dict[str, bool], status: str, started: list[str]
) -> None:
    answer = invoke(_pass(halt_after_failures=2, **options))
    assert answer["status"] == status
    assert sorted(s.path.split("/")[-3] for s in failing.syncs()) == started


def test_the_status_route_says_the_pools_wave_and_whether_it_is_open(invoke: Invoke, fleet: Emulator, env: Any) -> None:
    env(CCE_SYNC_SPEC=json.dumps(SPEC), SYNC_RECONCILE=json.dumps(_pass(waves=[["c-test"], ["c-stage"]])["reconcile"]))
    get = {"httpMethod": "GET", "body": None}
    status, first = status_body(invoke(apig_event(None, {"cluster_id": "c-test", "nodepool_id": "np-test"}, **get)))
    assert status == 200 and (first["wave"], first["wave_open"]) == (1, True)
    _, second = status_body(invoke(apig_event(None, {"cluster_id": "c-stage", "nodepool_id": "np-stage"}, **get)))
    assert (second["wave"], second["wave_open"]) == (2, False) and fleet.syncs() == []
