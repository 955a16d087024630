"""The emulator answers node pool reads as the official SDK documents CCE (huaweicloudsdkcce 3.1.219 models).

ShowNodePool / ListNodePools `advanceStatus`: true makes `status.conditions` reflect the whole node pool, the
default reflects only the default scaling group. ListNodePools `showDefaultNodePool`: "true" includes
`DefaultPool`, hidden by default. (huaweicloudsdkcce v3/model/show_node_pool_request.py, list_node_pools_request.py)
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from local.emulator import Emulator
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, TOKEN

POOLS = f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools"


def _get(emulator: Emulator, path: str) -> Any:
    response = requests.get(emulator.url + path, headers={"X-Auth-Token": TOKEN}, timeout=5)
    assert response.status_code == 200
    return response.json()


def _syncing(pool: dict[str, Any]) -> bool:
    return any(
        c["type"] == "ConfigurationSynchronizing" and c["status"] == "True" for c in pool["status"]["conditions"]
    )


@pytest.mark.parametrize(
    ("query", "shown"), [("", False), ("?advanceStatus=false", False), ("?advanceStatus=true", True)]
)
def test_a_running_sync_shows_only_with_advance_status(emulator: Emulator, query: str, shown: bool) -> None:
    emulator.set_busy(PROJECT, CLUSTER, NODEPOOL, "job-1")
    assert _syncing(_get(emulator, f"{POOLS}/{NODEPOOL}{query}")) is shown


def test_a_single_group_pool_shows_its_sync_without_advance_status(emulator: Emulator) -> None:
    emulator.multi_group = False
    try:
        emulator.set_busy(PROJECT, CLUSTER, NODEPOOL, "job-1")
        assert _syncing(_get(emulator, f"{POOLS}/{NODEPOOL}"))
    finally:
        emulator.multi_group = True


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["pool-a"]),
        ("?showDefaultNodePool=false", ["pool-a"]),
        ("?showDefaultNodePool=true", ["DefaultPool", "pool-a"]),
        ("?advanceStatus=true&showDefaultNodePool=true", ["DefaultPool", "pool-a"]),
    ],
)
def test_the_pool_list_hides_the_default_pool_unless_asked(emulator: Emulator, query: str, names: list[str]) -> None:
    emulator.add_pool(PROJECT, CLUSTER, "DefaultPool", "DefaultPool")
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a")
    listing = _get(emulator, POOLS + query)
    assert [item["metadata"]["name"] for item in listing["items"]] == names


def test_the_pool_list_shows_a_running_sync_only_with_advance_status(emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a")
    emulator.set_busy(PROJECT, CLUSTER, NODEPOOL, "job-1")
    assert not _syncing(_get(emulator, POOLS)["items"][0])
    assert _syncing(_get(emulator, POOLS + "?advanceStatus=true")["items"][0])


# Node counts as NodePoolStatus reports them (huaweicloudsdkcce NodePoolStatus: currentNode,
# configurationSyncedNodeCount), and ListClusters (GET /api/v3/projects/{project_id}/clusters).


def test_a_pool_reports_its_node_counts_when_modelled(emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a", nodes=3, synced=1)
    status = _get(emulator, f"{POOLS}/{NODEPOOL}?advanceStatus=true")["status"]
    assert (status["currentNode"], status["configurationSyncedNodeCount"]) == (3, 1)


def test_a_pool_without_a_node_model_reports_no_counts(emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a")
    assert "currentNode" not in _get(emulator, f"{POOLS}/{NODEPOOL}")["status"]


def test_a_template_update_drifts_every_node_and_a_finished_sync_brings_them_back(emulator: Emulator) -> None:
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a", nodes=4)
    trace = emulator.update_template(PROJECT, CLUSTER, NODEPOOL)
    assert trace["cts"]["trace_name"] == "updateNodePool" and NODEPOOL in trace["cts"]["resource_url"]
    assert _get(emulator, f"{POOLS}/{NODEPOOL}")["status"]["configurationSyncedNodeCount"] == 0
    body = {"spec": {"maxUnavailable": 1, "nodePoolID": NODEPOOL}}
    headers = {"X-Auth-Token": TOKEN, "X-Project-Id": PROJECT}
    response = requests.post(
        emulator.url + f"{POOLS}/{NODEPOOL}/operation/upgrade", json=body, headers=headers, timeout=5
    )
    assert response.status_code == 200  # job_seconds is 0: the job is done at once
    assert _get(emulator, f"{POOLS}/{NODEPOOL}")["status"]["configurationSyncedNodeCount"] == 4


def test_two_syncs_of_one_pool_at_once_never_both_start_as_ccees_lock(emulator: Emulator) -> None:
    import threading
    import time

    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a", nodes=4)
    emulator.job_seconds = 60.0

    def slow_plan(*_: str) -> tuple[str, float]:
        time.sleep(0.05)  # a slow CCE between its check and its job: the lock must still hold
        return "Success", 60.0

    emulator.job_plan = slow_plan
    body = {"spec": {"maxUnavailable": 1, "nodePoolID": NODEPOOL}}
    headers = {"X-Auth-Token": TOKEN, "X-Project-Id": PROJECT}
    statuses: list[int] = []

    def post() -> None:
        url = emulator.url + f"{POOLS}/{NODEPOOL}/operation/upgrade"
        statuses.append(requests.post(url, json=body, headers=headers, timeout=5).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 429, 429, 429, 429, 429] and len(emulator.jobs) == 1


def test_the_cluster_list_names_added_clusters_and_those_with_pools(emulator: Emulator) -> None:
    emulator.add_cluster(PROJECT, "c-empty", "empty")
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "pool-a")
    listing = _get(emulator, f"/api/v3/projects/{PROJECT}/clusters")
    assert {item["metadata"]["uid"] for item in listing["items"]} == {"c-empty", CLUSTER}


# --- the emulator speaks as the platform -----------------------------------------------------------------------


def test_a_pool_status_has_no_phase_and_conditions_as_the_sdk_names_them(emulator: Emulator) -> None:
    emulator.add_pool("p1", "c1", "np-1", "one", nodes=2, synced=1)
    emulator.set_busy("p1", "c1", "np-1")
    status = emulator.pool_view("p1", "c1", "np-1")["status"]
    assert "phase" not in status
    [condition] = status["conditions"]
    assert set(condition) == {"type", "status", "reason", "message", "lastProbeTime", "lastTransitTime"}


def test_job_times_carry_nanoseconds_as_cce_writes_them() -> None:
    from local.emulator import go_time

    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+0000 UTC", go_time(1_796_025_600.123456789))


def test_traces_carry_a_numeric_code_and_a_console_action_names_the_pool_by_name_without_a_path() -> None:
    from local.emulator import cts_trace

    api = cts_trace("p1", "c1", "np-1", "one")["cts"]
    console = cts_trace("p1", "c1", "np-1", "one", console=True)["cts"]
    assert api["code"] == 200 and api["resource_url"].endswith("/nodepools/np-1")
    assert console["code"] == 0 and "resource_url" not in console and console["resource_id"] == "one"
    assert "/nodepools/" not in console["message"]


def test_the_official_sdk_lists_shows_and_syncs_a_pool_against_the_emulator_with_ak_sk(emulator: Emulator) -> None:
    """huaweicloudsdkcce signs with AK/SK and keeps only the endpoint's scheme and host: the emulator serves the
    home region without a path prefix, and verifies the SDK's signatures as CCE would."""
    from huaweicloudsdkcce.v3 import (
        CceClient,
        ListNodePoolsRequest,
        NodePoolUpgradeSpec,
        ShowNodePoolRequest,
        UpgradeNodePool,
        UpgradeNodePoolRequest,
    )
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    emulator.add_keys("AKSDKORACLE01", "sdk-oracle-secret-key-01")
    emulator.add_pool(PROJECT, "c-sdk", "np-sdk", "web", nodes=2, synced=0)
    credentials = BasicCredentials("AKSDKORACLE01", "sdk-oracle-secret-key-01", PROJECT)
    client = CceClient.new_builder().with_credentials(credentials).with_endpoints([emulator.url]).build()
    listed = client.list_node_pools(ListNodePoolsRequest(cluster_id="c-sdk", show_default_node_pool="true"))
    shown = client.show_node_pool(ShowNodePoolRequest(cluster_id="c-sdk", nodepool_id="np-sdk"))
    body = UpgradeNodePool(spec=NodePoolUpgradeSpec(node_pool_id="np-sdk", max_unavailable=1))
    synced = client.upgrade_node_pool(UpgradeNodePoolRequest(cluster_id="c-sdk", nodepool_id="np-sdk", body=body))
    assert [p.metadata.uid for p in listed.items] == ["np-sdk"]
    assert (shown.status.current_node, shown.status.configuration_synced_node_count) == (2, 0)
    assert synced.jobid and len(emulator.syncs()) == 1
    assert all(r.status == 200 for r in emulator.cce_requests())  # every signature verified
