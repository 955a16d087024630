"""An unlucky or hostile cloud: one test per defect the adversarial review found (issue 20), each against the
loopback emulator answering what such a cloud could answer. A sync resets nodes: never twice, never widened,
never leaking, always answered within the deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from local.emulator import Emulator, cloud_event, go_time
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, TOKEN, FakeContext, LogCapture, apig_event, load_event

Invoke = Callable[..., Any]
SPEC = {"maxUnavailable": 1}
TOPIC = f"urn:smn:ap-southeast-1:{PROJECT}:ops-alerts"
POOLS = f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools"


def _pass(**options: Any) -> dict[str, Any]:
    return {"reconcile": {"clusters": [CLUSTER], "max_syncing_per_cluster": 2, **options}, "spec": SPEC}


def _entries(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for c in answer["clusters"] for p in c.get("pools", ())}


@pytest.fixture
def scheduled(emulator: Emulator, env: Any) -> Callable[..., Any]:
    """The timer's pass over CLUSTER, with SMN: call it with reconcile options to run one pass."""
    env(SMN_TOPIC_URN=TOPIC, SMN_ENDPOINT=emulator.url, CCE_SYNC_SPEC=json.dumps(SPEC))

    def run(invoke: Invoke, **options: Any) -> Any:
        env(SYNC_RECONCILE=json.dumps(_pass(**options)["reconcile"]))
        return invoke(load_event("timer-defaults.json"))

    return run


# --- 1-5: double or extra syncs ------------------------------------------------------------------------------


def test_01_an_answer_that_breaks_after_the_post_was_written_is_never_resent(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(SYNC_SKIP_IF_BUSY=None)  # the default: the pool is read first, and again after an ambiguous failure
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "workers", nodes=3, synced=1)
    emulator.job_seconds = 60.0
    emulator.inject(method="POST", path_contains="/operation/upgrade", bad_length=True)  # a 200, unreadable
    answer = invoke({"spec": SPEC})
    assert len(emulator.syncs()) == 1
    assert answer["status"] == "accepted" and answer["detail"].startswith("accepted (confirmed")


def test_02_a_cluster_listed_twice_is_read_and_started_once(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    twice = {"items": [{"kind": "Cluster", "metadata": {"uid": CLUSTER, "name": "c"}}] * 2}
    emulator.inject(method="GET", path_endswith=f"/projects/{PROJECT}/clusters", status=200, body=twice)
    answer = invoke(_pass(clusters="all"))
    assert len(emulator.syncs()) == 1 and len(answer["clusters"]) == 1


def test_03_a_pool_listed_twice_is_started_once(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    view = emulator.pool_view(PROJECT, CLUSTER, "np-a")
    emulator.inject(method="GET", path_endswith="/nodepools", status=200, body={"items": [view, view]})
    answer = invoke(_pass())
    assert len(emulator.syncs()) == 1 and list(_entries(answer)) == ["a"]


def test_04_an_ambiguous_start_counts_as_syncing_for_the_rest_of_the_pass(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_pool(PROJECT, CLUSTER, "np-b", "b", nodes=3, synced=0)
    emulator.inject(method="POST", path_contains="/nodepools/np-a/operation/upgrade", status=502)
    answer = invoke(_pass(max_syncing_per_cluster=1))
    pools = _entries(answer)
    assert pools["a"]["action"] == "failed" and pools["b"]["action"] == "deferred"
    assert [s.path.split("/")[-3] for s in emulator.syncs()] == ["np-a"]


def test_05_one_change_delivered_by_both_paths_is_one_event(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(CCE_SYNC_SPEC=json.dumps(SPEC), SYNC_RECONCILE=json.dumps({"max_syncing_per_cluster": 3}))
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=3)
    emulator.job_seconds = 60.0
    trace = emulator.update_template(PROJECT, CLUSTER, "np-a")
    stale = {"items": [emulator.pool_view(PROJECT, CLUSTER, "np-a")]}  # what a list racing the first start shows
    first = invoke(trace)
    emulator.inject(method="GET", path_endswith="/nodepools", status=200, body=stale)
    second = invoke(cloud_event(trace))
    assert len(emulator.syncs()) == 1 and first == second


def test_05_a_locked_pool_is_already_syncing_not_a_failure(
    invoke: Invoke, emulator: Emulator, scheduled: Callable[..., Any]
) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    stale = {"items": [emulator.pool_view(PROJECT, CLUSTER, "np-a")]}
    emulator.set_busy(PROJECT, CLUSTER, "np-a")  # a sync started since the list was made
    emulator.inject(method="GET", path_endswith="/nodepools", status=200, body=stale)
    answer = scheduled(invoke)
    pool = _entries(answer)["a"]
    assert pool["action"] == "deferred" and "CCE.01429002" in pool["reason"] and answer["totals"]["failed"] == 0
    assert len(emulator.syncs()) == 1 and emulator.published == []  # no retry, no alarm


# --- 6-8: requests silently dropped or widened ---------------------------------------------------------------


def test_06_a_request_bringing_a_template_is_sent_to_a_pool_in_sync(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(SYNC_SKIP_IF_BUSY=None)
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "workers", nodes=3, synced=3)
    template = {"lifeCycle": {"preInstall": "ZWNobyAx"}, "login": {"sshKey": "ops-key"}}
    answer = invoke({"spec": {**SPEC, "nodeTemplate": template}})
    assert answer["status"] == "accepted" and len(emulator.syncs()) == 1


# 7: tests/test_controller.py, test_only_ignore_backoff_... and test_only_ignore_windows_... (a table each).


def test_08_a_change_in_a_cluster_the_pass_leaves_out_is_ignored(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(CCE_SYNC_SPEC=json.dumps(SPEC), SYNC_RECONCILE=json.dumps({"clusters": ["c-configured"]}))
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=3)
    answer = invoke(emulator.update_template(PROJECT, CLUSTER, "np-a"))
    assert answer["status"] == "ignored" and "not in the configured pass" in answer["reason"]
    assert emulator.requests == []


# --- 9: leaks ------------------------------------------------------------------------------------------------


def test_09_a_secret_in_a_jobs_reason_is_masked_before_it_is_cut(
    invoke: Invoke, emulator: Emulator, scheduled: Callable[..., Any], logs: LogCapture
) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60, reason="x" * 280 + f" token {TOKEN} refused")
    answer = scheduled(invoke)
    assert _entries(answer)["a"]["action"] == "backing_off"
    everywhere = json.dumps([answer, emulator.published]) + "\n".join(logs.lines)
    assert TOKEN[:12] not in everywhere and "***" in json.dumps(emulator.published)


# --- 10-16: deadlines and crashes ----------------------------------------------------------------------------


def test_10_headers_that_drip_in_do_not_outlast_the_deadline(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(method="POST", path_contains="/operation/upgrade", drip_head=0.05)  # ~150 bytes: 7 s
    started = time.monotonic()
    answer = invoke(apig_event({"spec": SPEC}), FakeContext(remaining_ms=2000))
    assert time.monotonic() - started < 3.0 and answer["statusCode"] in (502, 504)


@pytest.mark.parametrize("offset", ["+24:00", "-24:00"])
def test_11_a_window_offset_of_a_whole_day_is_a_configuration_error(invoke: Invoke, env: Any, offset: str) -> None:
    env(SYNC_WINDOWS=f"Mon 01:00-02:00{offset}")
    answer = invoke({"spec": SPEC})
    assert answer["error_code"] == "FUNC.CONFIG" and "SYNC_WINDOWS" in answer["error_msg"]


def test_12_a_job_dated_near_year_9999_does_not_crash_the_pass(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    late = {"updateTimestamp": "9999-12-31 23:59:59.999999 +0000 UTC", "creationTimestamp": go_time(time.time() - 90)}
    emulator.inject(path_contains="/jobs/", status=200, body={"status": {"phase": "Failed"}, "metadata": late})
    answer = invoke(_pass())
    assert answer["status"] == "reconciled" and _entries(answer)["a"]["action"] == "backing_off"


def test_13_a_deeply_nested_answer_after_a_sync_is_accepted_job_unknown(invoke: Invoke, emulator: Emulator) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    emulator.inject(method="POST", path_contains="/operation/upgrade", raw=deep, process_first=True)
    answer = invoke({"spec": SPEC})
    assert answer["status"] == "accepted" and answer["jobid"] is None and len(emulator.syncs()) == 1


def test_13_a_deeply_nested_list_is_an_upstream_error_for_that_cluster(invoke: Invoke, emulator: Emulator) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    emulator.inject(method="GET", path_endswith=f"/clusters/{CLUSTER}/nodepools", raw=deep, times=9)
    answer = invoke(_pass(clusters=[CLUSTER, "c-2"]))
    first, second = answer["clusters"]
    assert first["status"] == "failed" and first["error_code"] == "FUNC.UPSTREAM" and second["status"] == "read"


def test_14_a_lone_surrogate_from_cce_is_answered_encodable(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    view = json.dumps({"items": [emulator.pool_view(PROJECT, CLUSTER, "np-a")]})
    raw = view.replace('"name": "a"', '"name": "a\\ud800b"').encode()
    emulator.inject(method="GET", path_endswith="/nodepools", raw=raw)
    answer = invoke(apig_event(_pass(), {"cluster_id": CLUSTER}))
    assert answer["statusCode"] == 200 and "a?b" in answer["body"]
    answer["body"].encode("utf-8")  # an unencodable body is what API Gateway could not send


def test_15_a_failed_job_with_no_readable_time_backs_off(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    emulator.inject(path_contains="/jobs/", status=200, body={"status": {"phase": "Failed"}, "metadata": {}})
    pool = _entries(invoke(_pass()))["a"]
    assert pool["action"] == "backing_off" and "cannot be read" in pool["note"] and emulator.syncs() == []


@pytest.mark.parametrize("digits", [0, 1, 3, 6, 7, 9])
def test_15_a_job_time_with_any_fraction_is_read(invoke: Invoke, emulator: Emulator, digits: int) -> None:
    ended = datetime.now(timezone.utc) - timedelta(seconds=60)
    text = ended.strftime("%Y-%m-%dT%H:%M:%S") + ("." + "1" * digits if digits else "") + "Z"
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    body = {"status": {"phase": "Failed"}, "metadata": {"updateTimestamp": text, "creationTimestamp": text}}
    emulator.inject(path_contains="/jobs/", status=200, body=body)
    pool = _entries(invoke(_pass()))["a"]
    assert pool["action"] == "backing_off" and "until" in pool


@pytest.mark.parametrize("python", ["python3.10", "python3.12"])
def test_15_every_supported_python_reads_0_to_9_fractional_digits(python: str) -> None:
    """On Python 3.10 `fromisoformat` takes only 3 or 6 digits: handler.times must not depend on it."""
    import subprocess

    from local.package import find_interpreter
    from tests.conftest import ROOT

    found = find_interpreter(python)
    if found is None:
        pytest.skip(f"{python} is not installed here")
    texts = [f"2026-11-30T08:00:00{'.' + '5' * n if n else ''}Z" for n in range(10)]
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from handler.times import parse_time; "
    script += f"print([parse_time(t, now=1.9e9) for t in {texts!r}])"
    result = subprocess.run([found[0], "-I", "-c", script], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    expected = [1796025600.0 + (int("5" * n) / 10**n if n else 0.0) for n in range(10)]  # 2026-11-30T08:00:00Z
    assert parsed == pytest.approx(expected, abs=1e-6)


def test_16_a_failed_job_dated_a_year_ahead_backs_off_from_its_creation_and_is_old_news(
    invoke: Invoke, emulator: Emulator, scheduled: Callable[..., Any]
) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    times = {
        "updateTimestamp": go_time(time.time() + 365 * 86400),
        "creationTimestamp": go_time(time.time() - 3 * 3600),
    }
    emulator.inject(path_contains="/jobs/", status=200, body={"status": {"phase": "Failed"}, "metadata": times})
    pool = _entries(scheduled(invoke))["a"]
    until = datetime.fromisoformat(pool["until"].replace("Z", "+00:00")).timestamp()
    assert pool["action"] == "backing_off" and until < time.time() + 3 * 3600 + 60 and emulator.published == []


# --- 17-20: alerts lost or repeated --------------------------------------------------------------------------


def test_17_a_failure_of_a_pool_deferred_by_the_window_is_still_announced(
    invoke: Invoke, emulator: Emulator, scheduled: Callable[..., Any], env: Any
) -> None:
    now = datetime.now(timezone.utc)
    env(SYNC_WINDOWS=f"* {(now.hour + 2) % 24:02d}:00-{(now.hour + 3) % 24:02d}:00+00:00")
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60, reason="drain timed out")
    answer = scheduled(invoke)
    assert _entries(answer)["a"]["reason"] == "outside_window"
    [message] = emulator.published
    assert "sync job failed" in message["message"] and "drain timed out" in message["message"]


def test_17_a_pool_whose_job_cannot_be_read_waits_and_says_so(invoke: Invoke, emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a", nodes=3, synced=0)
    emulator.add_job(PROJECT, CLUSTER, "np-a", "Failed", ended_ago=60)
    emulator.inject(path_contains="/jobs/", status=500, times=9)
    pool = _entries(invoke(_pass()))["a"]
    assert pool["action"] == "deferred" and pool["reason"] == "its latest job could not be read"
    assert "could not be read" in pool["note"] and emulator.syncs() == []


def test_18_the_smn_message_fits_smns_limit_and_counts_what_it_leaves_out(
    invoke: Invoke, emulator: Emulator, scheduled: Callable[..., Any]
) -> None:
    for index in range(600):  # 600 lines of some 500 bytes: over SMN's 256 KB
        emulator.add_pool(PROJECT, CLUSTER, f"np-{index:04d}", f"pool-{index:04d}", nodes=3, synced=0)
        emulator.add_job(PROJECT, CLUSTER, f"np-{index:04d}", "Failed", ended_ago=60, reason="r" * 400)
    answer = scheduled(invoke, max_syncing_per_cluster=1)
    [message] = emulator.published
    assert answer["notification"]["published"] is True and answer["notification"]["items"] == 600
    assert len(message["message"].encode("utf-8")) <= 256 * 1024 and "more, left out" in message["message"]


# 19: tests/test_controller.py, test_a_failing_smn_is_retried_as_cce_is.
# 20: tests/test_controller.py, test_a_pass_other_than_the_scheduled_one_tells_nobody.


# --- 21: unbounded output ------------------------------------------------------------------------------------


def test_21_a_huge_pass_lists_a_bounded_number_of_pools_and_counts_the_rest(
    invoke: Invoke, emulator: Emulator, logs: LogCapture
) -> None:
    for index in range(700):
        synced = 0 if index < 300 else 3  # 300 drifted (20 start, 280 wait), 400 in sync
        emulator.add_pool(PROJECT, CLUSTER, f"np-{index:04d}", f"pool-{index:04d}", nodes=3, synced=synced)
    answer = invoke(_pass(max_syncing_per_cluster=20))
    [cluster] = answer["clusters"]
    assert len(cluster["pools"]) == 500 and cluster["pools_omitted"] == 200 and answer["pools_omitted"] == 200
    assert all("action" in p for p in cluster["pools"][:300])  # what was acted on is listed first
    assert answer["totals"]["started"] == 20 and answer["totals"]["deferred"] == 280
    actions = [r for r in logs.records() if r["message"] == "reconcile-action"]
    [summary] = [r for r in logs.records() if r["message"] == "reconcile-pass"]
    assert len(actions) == 200 and summary["actions_not_logged"] == 100
