"""Reconcile: read CCE's node pool state, sync exactly the pools whose nodes lag their template, gently."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from handler.errors import SyncError
from local.emulator import Emulator, cloud_event, cts_trace
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, FakeContext, apig_event, load_event, status_body

Invoke = Callable[..., Any]
SPEC = {"maxUnavailable": 1}
POOLS = f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools"


def _pass(**options: Any) -> dict[str, Any]:
    return {"reconcile": {"clusters": [CLUSTER], **options}, "spec": SPEC}


@pytest.fixture
def cluster(emulator: Emulator) -> Emulator:
    """A cluster with pools in every class: two drifted, one in sync, one empty, one unknown, one syncing."""
    emulator.add_pool(PROJECT, CLUSTER, "np-a", "a-drifted", nodes=3, synced=1)
    emulator.add_pool(PROJECT, CLUSTER, "np-b", "b-drifted", nodes=2, synced=0)
    emulator.add_pool(PROJECT, CLUSTER, "np-c", "c-in-sync", nodes=2, synced=2)
    emulator.add_pool(PROJECT, CLUSTER, "np-d", "d-empty", nodes=0, synced=0)
    emulator.add_pool(PROJECT, CLUSTER, "np-e", "e-unknown")
    emulator.add_pool(PROJECT, CLUSTER, "np-f", "f-syncing", nodes=2, synced=1)
    emulator.set_busy(PROJECT, CLUSTER, "np-f", "job-f")
    return emulator


def _pools(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [one] = answer["clusters"]
    return {pool["name"]: pool for pool in one["pools"]}


def _started(emulator: Emulator) -> list[str]:
    return sorted(sync.json["spec"]["nodePoolID"] for sync in emulator.syncs())  # starts run concurrently


def test_every_pool_is_classified_in_order_of_precedence(invoke: Invoke, cluster: Emulator) -> None:
    pools = _pools(invoke(_pass(max_syncing_per_cluster=3)))
    assert {name: (p["class"], p.get("nodes")) for name, p in pools.items()} == {
        "a-drifted": ("drifted", "1/3"),
        "b-drifted": ("drifted", "0/2"),
        "c-in-sync": ("in_sync", "2/2"),
        "d-empty": ("in_sync", "0/0"),
        "e-unknown": ("unknown", None),
        "f-syncing": ("syncing", "1/2"),
    }
    assert pools["f-syncing"]["jobid"] == "job-f"


def test_drifted_pools_are_started_while_the_cluster_has_room(invoke: Invoke, cluster: Emulator) -> None:
    answer = invoke(_pass(max_syncing_per_cluster=3))
    pools = _pools(answer)
    assert (pools["a-drifted"]["action"], pools["b-drifted"]["action"]) == ("started", "started")
    assert pools["a-drifted"]["jobid"] in cluster.jobs and "action" not in pools["c-in-sync"]
    assert _started(cluster) == ["np-a", "np-b"] and list(pools)[:2] == ["a-drifted", "b-drifted"]  # by name
    assert answer["totals"]["started"] == 2 and answer["totals"]["drifted"] == 2


@pytest.mark.parametrize(("limit", "started"), [(1, []), (2, ["np-a"]), (3, ["np-a", "np-b"])])
def test_pools_already_syncing_count_against_the_limit(
    invoke: Invoke, cluster: Emulator, limit: int, started: list[str]
) -> None:
    pools = _pools(invoke(_pass(max_syncing_per_cluster=limit)))
    assert _started(cluster) == started
    deferred = [name for name, pool in pools.items() if pool.get("action") == "deferred"]
    assert len(deferred) == 2 - len(started)


@pytest.mark.parametrize(("force", "started"), [(False, []), (True, ["np-e"])])
def test_an_unknown_pool_is_synced_only_when_forced(
    invoke: Invoke, cluster: Emulator, force: bool, started: list[str]
) -> None:
    invoke(_pass(force=force, nodepools={"names": ["e-unknown"]}, max_syncing_per_cluster=9))
    assert _started(cluster) == started


def test_the_allowlist_refuses_a_drifted_pool(invoke: Invoke, cluster: Emulator, env: Any) -> None:
    env(SYNC_ALLOWED_TARGETS=f"{CLUSTER}/np-b")
    answer = invoke(_pass(max_syncing_per_cluster=9))
    pools = _pools(answer)
    assert pools["a-drifted"]["action"] == "refused" and pools["a-drifted"]["error_code"] == "FUNC.FORBIDDEN"
    assert pools["b-drifted"]["action"] == "started" and _started(cluster) == ["np-b"]


def test_a_start_cce_refuses_is_failed_and_the_answer_is_207(invoke: Invoke, cluster: Emulator) -> None:
    cluster.inject(path_contains="/nodepools/np-a/operation/upgrade", status=409)
    status, body = status_body(invoke(apig_event(_pass(max_syncing_per_cluster=9), path_parameters={})))
    assert status == 207 and body["totals"]["failed"] == 1 and body["totals"]["started"] == 1
    assert _pools(body)["a-drifted"]["error_code"] == "CCE.01409000"


def test_a_clean_pass_through_api_gateway_is_200(invoke: Invoke, cluster: Emulator) -> None:
    status, body = status_body(invoke(apig_event(_pass(max_syncing_per_cluster=9), path_parameters={})))
    assert status == 200 and body["status"] == "reconciled"


def test_a_pass_reads_one_list_per_cluster_and_posts_only_its_starts(invoke: Invoke, cluster: Emulator) -> None:
    invoke(_pass(max_syncing_per_cluster=9))
    assert [(r.method, r.path, r.query) for r in cluster.cce_requests("GET")] == [
        ("GET", POOLS, "advanceStatus=true"),
        ("GET", f"/api/v3/projects/{PROJECT}/jobs/job-f", ""),  # the syncing pool's job: is it stuck?
    ]
    assert len(cluster.syncs()) == 2


def test_a_repeated_pass_over_an_unchanged_cluster_posts_nothing(invoke: Invoke, cluster: Emulator) -> None:
    invoke(_pass(max_syncing_per_cluster=9))  # jobs end at once: the started pools are in sync afterwards
    before = len(cluster.syncs())
    answer = invoke(_pass(max_syncing_per_cluster=9))
    assert len(cluster.syncs()) == before and answer["totals"]["started"] == 0
    assert _pools(answer)["a-drifted"]["class"] == "in_sync"


def test_a_pass_never_starts_a_second_sync_on_a_pool(invoke: Invoke, cluster: Emulator) -> None:
    cluster.job_seconds = 60.0  # the started syncs keep running
    invoke(_pass(max_syncing_per_cluster=9))
    answer = invoke(_pass(max_syncing_per_cluster=9))
    assert _started(cluster) == ["np-a", "np-b"]
    assert _pools(answer)["a-drifted"]["class"] == "syncing"


def test_a_dry_run_says_what_would_start_and_sends_nothing(invoke: Invoke, cluster: Emulator) -> None:
    answer = invoke({**_pass(max_syncing_per_cluster=2), "dry_run": True})
    assert _pools(answer)["a-drifted"]["action"] == "would_start" and answer["dry_run"] is True
    assert _pools(answer)["b-drifted"]["action"] == "deferred" and cluster.syncs() == []


def test_names_and_exclusions_choose_the_pools(invoke: Invoke, cluster: Emulator) -> None:
    answer = invoke(
        _pass(nodepools={"names": ["a-drifted", "b-drifted"]}, exclude=["a-drifted"], max_syncing_per_cluster=9)
    )
    assert list(_pools(answer)) == ["b-drifted"] and _started(cluster) == ["np-b"]


def test_clusters_all_lists_the_projects_clusters(invoke: Invoke, cluster: Emulator) -> None:
    cluster.add_pool(PROJECT, "c-second", "np-z", "z-drifted", nodes=1, synced=0)
    answer = invoke({"reconcile": {"clusters": "all", "max_syncing_per_cluster": 9}, "spec": SPEC})
    assert sorted(c["cluster_id"] for c in answer["clusters"]) == sorted([CLUSTER, "c-second"])
    assert f"/api/v3/projects/{PROJECT}/clusters" in [r.path for r in cluster.cce_requests("GET")]
    assert sorted(_started(cluster)) == ["np-a", "np-b", "np-z"]


def test_a_cluster_that_cannot_be_read_is_reported_and_the_others_proceed(invoke: Invoke, cluster: Emulator) -> None:
    cluster.add_pool(PROJECT, "c-second", "np-z", "z-drifted", nodes=1, synced=0)
    cluster.inject(path_contains="/clusters/c-second/nodepools", status=404)
    answer = invoke({"reconcile": {"clusters": [CLUSTER, "c-second"], "max_syncing_per_cluster": 9}, "spec": SPEC})
    [broken] = [c for c in answer["clusters"] if c["cluster_id"] == "c-second"]
    assert broken["status"] == "failed" and answer["totals"]["clusters_unread"] == 1
    assert _started(cluster) == ["np-a", "np-b"]


def test_a_pass_that_can_read_nothing_raises_for_a_timer(invoke: Invoke, cluster: Emulator, env: Any) -> None:
    env(SYNC_RECONCILE=json.dumps({"clusters": [CLUSTER]}), CCE_SYNC_SPEC=json.dumps(SPEC))
    cluster.inject(path_contains="/nodepools", status=503, times=9)
    with pytest.raises(SyncError) as caught:
        invoke(load_event("timer-defaults.json"))
    assert caught.value.transient


def test_an_empty_timer_runs_the_configured_pass(invoke: Invoke, cluster: Emulator, env: Any) -> None:
    env(SYNC_RECONCILE=json.dumps({"max_syncing_per_cluster": 9}), CCE_SYNC_SPEC=json.dumps(SPEC))
    answer = invoke(load_event("timer-defaults.json"))
    assert answer["status"] == "reconciled" and _started(cluster) == ["np-a", "np-b"]


def test_a_malformed_configured_pass_is_a_configuration_error(invoke: Invoke, env: Any) -> None:
    env(SYNC_RECONCILE=json.dumps({"max_syncing_per_cluster": 0}), CCE_SYNC_SPEC=json.dumps(SPEC))
    answer = invoke(load_event("timer-defaults.json"))
    assert answer["error_code"] == "FUNC.CONFIG" and "SYNC_RECONCILE" in answer["error_msg"]


# --- change events -----------------------------------------------------------------------------------------


@pytest.fixture
def configured(env: Any) -> None:
    """A change event runs the configured pass: CCE_SYNC_SPEC gives its spec (the cluster: CCE_CLUSTER_ID)."""
    env(CCE_SYNC_SPEC=json.dumps(SPEC), SYNC_RECONCILE=json.dumps({"max_syncing_per_cluster": 3}))


def _cts(pool: str = "np-a", **changes: Any) -> dict[str, Any]:
    event = cts_trace(PROJECT, CLUSTER, pool, "pool")
    event["cts"].update(changes)
    return event


def _shapes(trace: dict[str, Any]) -> list[Any]:
    return [trace, cloud_event(trace)]


@pytest.mark.parametrize("shape", ["cts", "eventgrid"])
def test_a_pool_update_reconciles_that_pool(invoke: Invoke, cluster: Emulator, configured: None, shape: str) -> None:
    trace = cluster.update_template(PROJECT, CLUSTER, "np-c")
    event = trace if shape == "cts" else cloud_event(trace)
    answer = invoke(event)
    assert answer["status"] == "reconciled" and list(_pools(answer)) == ["c-in-sync"]
    assert _started(cluster) == ["np-c"]  # the other drifted pools wait for the timer


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"code": "500"}, "did not succeed"),
        ({"code": 404}, "did not succeed"),
        ({"trace_rating": "warning"}, "did not succeed"),
        ({"trace_rating": "incident"}, "did not succeed"),
        ({"trace_name": "deleteNodePool"}, "is not a node pool change"),
    ],
    ids=["failed call", "not found", "a warning", "an incident", "another trace"],
)
@pytest.mark.parametrize("shape", [0, 1], ids=["cts", "eventgrid"])
def test_a_trace_that_asks_for_nothing_is_ignored(
    invoke: Invoke, cluster: Emulator, configured: None, changes: dict[str, Any], reason: str, shape: int
) -> None:
    answer = invoke(_shapes(_cts(**changes))[shape])
    assert answer["status"] == "ignored" and reason in answer["reason"] and cluster.requests == []


@pytest.mark.parametrize(
    "event",
    [
        {"cts": "not a trace"},
        {**cloud_event(cts_trace(PROJECT, CLUSTER, "np-a", "a")), "data": "{not json"},
    ],
    ids=["cts", "eventgrid"],
)
def test_an_unparseable_change_event_is_answered_not_raised(
    invoke: Invoke, cluster: Emulator, configured: None, event: Any
) -> None:
    answer = invoke(event)
    assert answer["status"] in ("ignored", "rejected") and cluster.syncs() == []


@pytest.mark.parametrize(
    "changes",
    [{"code": 0, "trace_type": "ConsoleAction"}, {"code": None}, {"code": 204}, {"code": "200"}],
    ids=["console action (code 0)", "no code", "204", "'200'"],
)
def test_a_successful_trace_in_every_published_form_is_acted_on(
    invoke: Invoke, cluster: Emulator, configured: None, changes: dict[str, Any]
) -> None:
    answer = invoke(_cts("np-b", **changes))
    assert answer["status"] == "reconciled" and _started(cluster) == ["np-b"]


def test_a_console_trace_naming_the_pool_by_name_only_is_acted_on(
    invoke: Invoke, cluster: Emulator, configured: None
) -> None:
    event = {
        "cts": {
            **load_event("cts-console-update.json")["cts"],
            "resource_id": "b-drifted",
            "resource_name": "b-drifted",
        }
    }
    answer = invoke(event)
    assert answer["status"] == "reconciled" and _started(cluster) == ["np-b"]


def test_a_trace_naming_no_cluster_falls_back_to_the_configured_one(
    invoke: Invoke, cluster: Emulator, configured: None
) -> None:
    event = _cts(resource_url="", message="updated", resource_id="np-b")
    answer = invoke(event)
    assert answer["status"] == "reconciled" and _started(cluster) == ["np-b"]


def test_a_trace_leaving_nowhere_to_look_is_ignored(
    invoke: Invoke, cluster: Emulator, configured: None, env: Any
) -> None:
    env(CCE_CLUSTER_ID=None)
    answer = invoke(_cts(resource_url="", message="updated", resource_id=""))
    assert answer["status"] == "ignored" and cluster.requests == []


@pytest.mark.parametrize("shape", [0, 1], ids=["cts", "eventgrid"])
def test_a_change_outside_the_allowlist_reads_nothing(
    invoke: Invoke, cluster: Emulator, configured: None, env: Any, shape: int
) -> None:
    env(SYNC_ALLOWED_TARGETS="another-cluster/*")
    answer = invoke(_shapes(_cts())[shape])
    assert answer["clusters"][0]["status"] == "refused" and cluster.requests == []


def test_a_duplicate_change_event_costs_one_read_never_a_sync(
    invoke: Invoke, cluster: Emulator, configured: None, env: Any
) -> None:
    env(EVENT_DEDUP_WINDOW_SECONDS="0")
    cluster.job_seconds = 60.0
    event = _cts()
    invoke(event)
    invoke(event)
    lists = [r for r in cluster.cce_requests("GET") if r.path == POOLS]
    assert _started(cluster) == ["np-a"] and len(lists) == 2  # one list each; the second also asks np-a's job


# --- single syncs: the in-sync short cut ---------------------------------------------------------------------


@pytest.fixture
def synced_pool(emulator: Emulator, env: Any) -> Emulator:
    env(SYNC_SKIP_IF_BUSY=None)  # the default: one read before the POST
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool", nodes=3, synced=3)
    return emulator


def test_a_single_sync_of_a_pool_in_sync_posts_nothing(invoke: Invoke, synced_pool: Emulator) -> None:
    answer = invoke({"spec": SPEC})
    assert answer["status"] == "in_sync" and answer["nodes"] == "3/3" and synced_pool.syncs() == []


@pytest.mark.parametrize(
    "document",
    [{"force": True, "spec": SPEC}, {"spec": {**SPEC, "nodeIDs": ["node-1"]}}],
    ids=["force", "nodeIDs"],
)
def test_force_or_named_nodes_sync_a_pool_in_sync(invoke: Invoke, synced_pool: Emulator, document: Any) -> None:
    assert invoke(document)["status"] == "accepted" and len(synced_pool.syncs()) == 1
    assert "force" not in synced_pool.syncs()[0].json


def test_a_drifted_pool_is_synced(invoke: Invoke, synced_pool: Emulator) -> None:
    synced_pool.update_template(PROJECT, CLUSTER, NODEPOOL)
    assert invoke({"spec": SPEC}, FakeContext())["status"] == "accepted" and len(synced_pool.syncs()) == 1


TRACES = [
    ({"resource_url": "/api/v3/projects/p/clusters/c-1/nodepools/np-1"}, ("c-1", "np-1")),
    ({"resource_url": "", "message": "PUT /api/v3/projects/p/clusters/c-1/nodepools/np-1, code 200"}, ("c-1", "np-1")),
    (
        {"resource_url": "", "request": {"url": "https://cce/api/v3/projects/p/clusters/c-1/nodepools/np-1"}},
        ("c-1", "np-1"),
    ),
    ({"resource_url": "/api/v3/projects/p/clusters/c-1", "resource_id": "np-9"}, ("c-1", "np-9")),
    ({"resource_url": "/api/v3/projects/p/clusters/../nodepools/np-1", "resource_id": "../x"}, ("", "")),
    ({"resource_url": 7, "message": None, "request": ["clusters/c-1"]}, ("", "")),
]


@pytest.mark.parametrize(("fields", "found"), TRACES)
def test_a_trace_is_read_for_the_cluster_and_pool_it_names(fields: dict[str, Any], found: tuple[str, str]) -> None:
    from handler.changes import read_trace

    trace = {"trace_name": "updateConfiguration", "code": 200, "resource_id": "", **fields}
    change = read_trace(trace)
    assert change.relevant and (change.cluster_id, change.nodepool_id) == found
