"""Beyond one request: following the job, fleets of node pools, the busy guard and the target allowlist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local.emulator import Emulator
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, FakeContext, LogCapture, apig_event, status_body

Invoke = Callable[..., Any]
SPEC = {"maxUnavailable": 1}
CLUSTER_PATH = {"cluster_id": CLUSTER}  # a route like /clusters/{cluster_id}/sync: fleets name no single pool


@pytest.fixture
def fast_jobs(env: Any, emulator: Emulator) -> Emulator:
    env(JOB_POLL_INTERVAL_SECONDS="0.05", JOB_POLL_MAX_INTERVAL_SECONDS="0.1")
    emulator.job_seconds = 0.3
    return emulator


def test_wait_until_success(invoke: Invoke, fast_jobs: Emulator) -> None:
    answer = invoke({"wait": True, "spec": SPEC})
    assert answer["status"] == "succeeded" and answer["job"] == {"id": answer["jobid"], "phase": "Success"}
    job_reads = [r for r in fast_jobs.cce_requests("GET") if "/jobs/" in r.path]
    assert len(job_reads) >= 2 and job_reads[0].path == f"/api/v3/projects/{PROJECT}/jobs/{answer['jobid']}"


def test_wait_until_failed(invoke: Invoke, fast_jobs: Emulator) -> None:
    fast_jobs.job_outcome = "Failed"
    answer = invoke({"wait": True, "spec": SPEC})
    assert answer["status"] == "job_failed" and answer["error_code"] == "FUNC.JOB_FAILED"
    assert answer["jobid"] and "Node reset failed" in answer["error_msg"]
    status, body = status_body(invoke(apig_event({"wait": True, "spec": SPEC})))
    assert status == 502 and body["error_code"] == "FUNC.JOB_FAILED"


def test_wait_out_of_time_answers_still_running(invoke: Invoke, fast_jobs: Emulator) -> None:
    fast_jobs.job_seconds = 60.0
    status, body = status_body(invoke(apig_event({"wait": True, "spec": SPEC}), FakeContext(remaining_ms=1200)))
    assert status == 202 and body["status"] == "running" and body["job"]["phase"] == "Running"
    assert body["jobid"] and body["job"]["id"] == body["jobid"]


def test_sync_wait_variable(invoke: Invoke, fast_jobs: Emulator, env: Any) -> None:
    env(SYNC_WAIT="true")
    assert invoke({"spec": SPEC})["status"] == "succeeded"


def test_without_wait_nothing_is_followed(invoke: Invoke, fast_jobs: Emulator) -> None:
    assert invoke({"spec": SPEC})["status"] == "accepted"
    assert not any("/jobs/" in r.path for r in fast_jobs.requests)


def _targets(*pools: str) -> list[dict[str, str]]:
    return [{"nodepool_id": pool} for pool in pools]


def test_fleet_all_accepted(invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke({"spec": SPEC, "targets": _targets("np-a", "np-b", "np-c")})
    assert (answer["status"], answer["accepted"], answer["total"]) == ("all_accepted", 3, 3)
    assert [r["nodepool_id"] for r in answer["results"]] == ["np-a", "np-b", "np-c"]
    assert [s.json["spec"]["nodePoolID"] for s in emulator.syncs()] == ["np-a", "np-b", "np-c"]
    assert all(s.path.startswith(f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/") for s in emulator.syncs())


def test_fleet_targets_may_carry_their_own_spec_and_cluster(invoke: Invoke, emulator: Emulator) -> None:
    targets = [
        {"nodepool_id": "np-a"},
        {"cluster_id": "other-cluster", "nodepool_id": "np-b", "spec": {"maxUnavailable": 4}},
    ]
    answer = invoke({"spec": SPEC, "targets": targets})
    assert answer["status"] == "all_accepted"
    second = emulator.syncs()[1]
    assert "/clusters/other-cluster/" in second.path and second.json["spec"]["maxUnavailable"] == 4


def test_fleet_with_one_rejected(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains="/nodepools/np-b/operation/upgrade", status=404)
    targets = [*_targets("np-a", "np-b"), {"nodepool_id": "np-c", "spec": {"maxUnavailable": 99}}]
    status, body = status_body(invoke(apig_event({"spec": SPEC, "targets": targets}, CLUSTER_PATH)))
    assert status == 207 and body["status"] == "some_accepted"
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "rejected"]
    assert body["results"][1]["http_status"] == 404 and body["results"][2]["error_code"] == "FUNC.INVALID"


def test_fleet_with_one_skipped_busy(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(SYNC_SKIP_IF_BUSY="true")
    emulator.set_busy(PROJECT, CLUSTER, "np-b", "job-still-running")
    answer = invoke({"spec": SPEC, "targets": _targets("np-a", "np-b")})
    assert answer["status"] == "some_accepted"
    assert answer["results"][1] == {
        "cluster_id": CLUSTER, "nodepool_id": "np-b", "status": "skipped", "error_code": "FUNC.BUSY",
        "error_msg": "skipped: sync in progress (job job-still-running)", "request_id": "",
        "jobid": "job-still-running", "http_status": 409,
    }  # fmt: skip
    assert [s.json["spec"]["nodePoolID"] for s in emulator.syncs()] == ["np-a"]


def test_fleet_running_out_of_time_names_the_unreached(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains="/operation/upgrade", delay=0.6, times=9)
    event = apig_event({"spec": SPEC, "targets": _targets("np-a", "np-b", "np-c", "np-d")}, CLUSTER_PATH)
    status, body = status_body(invoke(event, FakeContext(remaining_ms=2500)))
    assert status == 207 and body["status"] == "some_accepted"
    assert [r["nodepool_id"] for r in body["results"]] == ["np-a", "np-b"]
    assert body["not_reached"] == [
        {"cluster_id": CLUSTER, "nodepool_id": "np-c"},
        {"cluster_id": CLUSTER, "nodepool_id": "np-d"},
    ]
    assert len(emulator.syncs()) == 2


def test_fleet_with_none_accepted_answers_the_first_error(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains="/operation/upgrade", status=409, times=2)
    status, body = status_body(invoke(apig_event({"spec": SPEC, "targets": _targets("np-a", "np-b")}, CLUSTER_PATH)))
    assert status == 409 and body["status"] == "none_accepted"


@pytest.fixture
def pools(emulator: Emulator) -> Emulator:
    for pool_id, name in (("np-web-1", "web"), ("np-batch-1", "batch"), ("DefaultPool", "DefaultPool")):
        emulator.add_pool(PROJECT, CLUSTER, pool_id, name)
    return emulator


def test_select_pools_by_name(invoke: Invoke, pools: Emulator) -> None:
    answer = invoke({"spec": SPEC, "nodepools": {"names": ["web", "missing"]}})
    assert answer["status"] == "some_accepted"
    assert [s.json["spec"]["nodePoolID"] for s in pools.syncs()] == ["np-web-1"]
    [missing] = [r for r in answer["results"] if r["status"] == "rejected"]
    assert missing["nodepool_name"] == "missing" and missing["error_code"] == "FUNC.NO_POOL"
    [listing] = [r for r in pools.cce_requests("GET") if r.path.endswith("/nodepools")]
    assert listing.path == f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools"
    assert listing.query == "advanceStatus=true"


def test_naming_the_default_pool_asks_cce_to_list_it(invoke: Invoke, pools: Emulator) -> None:
    assert invoke({"spec": SPEC, "nodepools": {"names": ["DefaultPool"]}})["status"] == "all_accepted"
    assert [s.json["spec"]["nodePoolID"] for s in pools.syncs()] == ["DefaultPool"]


def test_select_all_pools_leaves_out_the_default_pool(invoke: Invoke, pools: Emulator) -> None:
    assert invoke({"spec": SPEC, "nodepools": {"all": True}})["status"] == "all_accepted"
    assert sorted(s.json["spec"]["nodePoolID"] for s in pools.syncs()) == ["np-batch-1", "np-web-1"]


def test_select_all_pools_with_the_default_pool_when_asked(invoke: Invoke, pools: Emulator) -> None:
    assert invoke({"spec": SPEC, "nodepools": {"all": True, "include_default": True}})["accepted"] == 3
    assert "DefaultPool" in {s.json["spec"]["nodePoolID"] for s in pools.syncs()}


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"spec": SPEC, "nodepools": {}}, "/nodepools"),
        ({"spec": SPEC, "nodepools": {"names": ["a"], "all": True}}, "/nodepools"),
        ({"spec": SPEC, "targets": [{"cluster_id": "c"}]}, "/targets/0/nodepool_id"),
        ({"spec": SPEC, "targets": [{"nodepool_id": "../x"}]}, "/targets/0/nodepool_id"),
        ({"spec": SPEC, "targets": [], "nodepools": {"all": True}}, "/nodepools"),
    ],
)
def test_malformed_fleet_documents(document: dict[str, Any], path: str, invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke(document)
    assert answer["status"] == "rejected" and path in [e["path"] for e in answer["errors"]]
    assert emulator.requests == []


def test_busy_guard_skips_a_pool_that_is_synchronizing(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(SYNC_SKIP_IF_BUSY=None)  # the default is on
    emulator.set_busy(PROJECT, CLUSTER, NODEPOOL, "job-0042")
    status, body = status_body(invoke(apig_event({"spec": SPEC})))
    assert status == 409 and body["error_code"] == "FUNC.BUSY" and body["jobid"] == "job-0042"
    assert invoke({"spec": SPEC})["status"] == "skipped"
    assert emulator.syncs() == []


def test_busy_guard_lets_an_idle_pool_through(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(SYNC_SKIP_IF_BUSY=None)
    assert invoke({"spec": SPEC})["status"] == "accepted"
    assert [r.method for r in emulator.cce_requests()] == ["GET", "POST"]
    assert emulator.cce_requests("GET")[0].query == "advanceStatus=true"


def test_busy_guard_sees_a_sync_started_by_another_instance(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    """CCE is the shared state: a second sync while the first one's job runs is skipped."""
    env(SYNC_SKIP_IF_BUSY=None)
    emulator.job_seconds = 60.0
    first = invoke({"spec": SPEC})
    second = invoke({"spec": SPEC})
    assert first["status"] == "accepted" and second["status"] == "skipped" and second["jobid"] == first["jobid"]
    assert len(emulator.syncs()) == 1


def test_busy_guard_can_be_turned_off_and_cces_lock_still_answers(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(SYNC_SKIP_IF_BUSY="false")
    emulator.set_busy(PROJECT, CLUSTER, NODEPOOL)
    assert invoke({"spec": SPEC})["status"] == "skipped"  # CCE's 429 CCE.01429002, read as "already syncing"
    assert [r.method for r in emulator.cce_requests()] == ["POST"]


@pytest.mark.parametrize(
    ("allowed", "nodepool", "outcome"),
    [
        (f"{CLUSTER}/{NODEPOOL}", NODEPOOL, "accepted"),
        (f"{CLUSTER}/{NODEPOOL}", "np-other", "refused"),
        (f"other-cluster/*, {CLUSTER}/*", "np-other", "accepted"),
        ("*/*", "np-other", "accepted"),
        (f"*/{NODEPOOL}", "np-other", "refused"),
    ],
)
def test_allowed_targets(
    allowed: str, nodepool: str, outcome: str, invoke: Invoke, emulator: Emulator, env: Any, logs: LogCapture
) -> None:
    env(SYNC_ALLOWED_TARGETS=allowed)
    status, body = status_body(invoke(apig_event({"spec": SPEC}, {"cluster_id": CLUSTER, "nodepool_id": nodepool})))
    if outcome == "accepted":
        assert status == 200 and len(emulator.syncs()) == 1
    else:
        assert status == 403 and body["error_code"] == "FUNC.FORBIDDEN"
        assert emulator.requests == []
        assert logs.syncs()[0]["outcome"] == "rejected" and logs.syncs()[0]["http_status"] == 403


def test_allowed_targets_apply_to_every_fleet_target(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(SYNC_ALLOWED_TARGETS=f"{CLUSTER}/np-a")
    answer = invoke({"spec": SPEC, "targets": _targets("np-a", "np-b")})
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert answer["results"][1]["http_status"] == 403 and len(emulator.syncs()) == 1


@pytest.mark.parametrize("allowed", ["no-slash", "a/b/c/d", "a/../b", "a/*x"])
def test_a_malformed_allowlist_is_a_configuration_error(allowed: str, invoke: Invoke, env: Any) -> None:
    env(SYNC_ALLOWED_TARGETS=allowed)
    status, body = status_body(invoke(apig_event({"spec": SPEC})))
    assert status == 500 and "SYNC_ALLOWED_TARGETS" in body["error_msg"]
