"""The emulator answers node pool reads as the official SDK documents CCE (huaweicloudsdkcce 3.1.219 models).

ShowNodePool / ListNodePools `advanceStatus`: true makes `status.conditions` reflect the whole node pool, the
default reflects only the default scaling group. ListNodePools `showDefaultNodePool`: "true" includes
`DefaultPool`, hidden by default. (../shared/reference/platform-facts.md, "CCE reads the function relies on")
"""

from __future__ import annotations

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
