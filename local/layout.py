"""The demo layout: the clusters and node pools `make run` tells its story with, and `make emulator` holds.

One project (DEMO_PROJECT) whose template cluster has a pool in every class, three clusters for a rollout in
waves, three for a halt, and four projects in two regions for a fanned-out pass.
"""

from __future__ import annotations

from typing import Any

from .emulator import Emulator

__all__ = [
    "DEMO_AK",
    "DEMO_DOMAIN",
    "DEMO_PASSWORD",
    "DEMO_PROJECT",
    "DEMO_SCOPES",
    "DEMO_SK",
    "DEMO_USER",
    "HALT",
    "ROLLOUT",
    "demo_cluster",
    "fleet",
    "halt",
    "rollout",
    "seed",
]

DEMO_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEMO_DOMAIN, DEMO_USER, DEMO_PASSWORD = "demo-account", "nodepool-sync-bot", "Demo-IAM-Passw0rd!"
DEMO_AK, DEMO_SK = "AKDEMONODEPOOLSYNC01", "demo-secret-key-for-the-emulator-01"  # for the official SDK's clients
ROLLOUT = (("cce-test", "test"), ("cce-stage", "stage"), ("cce-prod", "prod"))
HALT = (("cce-halt-a", "a"), ("cce-halt-b", "b"), ("cce-halt-c", "c"))
DEMO_SCOPES = (  # two regions, two projects each (not the demo's own project): the fan-out
    ("ap-southeast-1", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    ("ap-southeast-1", "1b2c3d4e5f60718293a4b5c6d7e8f9a0"),
    ("eu-west-101", "2c3d4e5f60718293a4b5c6d7e8f9a0b1"),
    ("eu-west-101", "3d4e5f60718293a4b5c6d7e8f9a0b1c2"),
)


def demo_cluster(emulator: Emulator, project: str, cluster: str, nodepool: str) -> None:
    """A cluster with node pools in every class: drifted, in sync, unknown (no counts), syncing."""
    emulator.add_pool(project, cluster, "np-web-0001", "web", nodes=3, synced=1)  # drifted
    emulator.add_pool(project, cluster, "np-batch-0001", "batch", nodes=2, synced=0)  # drifted
    emulator.add_pool(project, cluster, "np-api-0001", "api", nodes=2, synced=2)  # in sync
    emulator.add_pool(project, cluster, "np-jobs-0001", "jobs", nodes=4, synced=2)  # syncing (below)
    emulator.add_job(project, cluster, "np-jobs-0001", "Success", ended_ago=-600, seconds=1200)  # 10 min in
    emulator.add_pool(project, cluster, nodepool, "workers")  # no counts reported: unknown
    emulator.add_pool(project, cluster, "DefaultPool", "DefaultPool", nodes=1, synced=1)
    emulator.add_pool(project, cluster, "np-analytics-0001", "analytics", nodes=2, synced=0)  # drifted, and:
    emulator.add_job(project, cluster, "np-analytics-0001", "Failed", ended_ago=300, reason="drain timed out")


def rollout(emulator: Emulator, project: str) -> None:
    """Three clusters (test, stage, prod), each with one drifted pool: what waves roll out over."""
    for cluster, name in ROLLOUT:
        emulator.add_cluster(project, cluster, f"{name}-cluster")
        emulator.add_pool(project, cluster, f"np-{name}-web", f"{name}-web", nodes=3, synced=0)


def halt(emulator: Emulator, project: str) -> None:
    """Three clusters with a drifted pool each; two of them failed a minute ago."""
    for cluster, name in HALT:
        emulator.add_pool(project, cluster, f"np-halt-{name}", f"halt-{name}", nodes=2, synced=0)
    emulator.add_job(project, "cce-halt-a", "np-halt-a", "Failed", ended_ago=60, reason="drain timed out")
    emulator.add_job(project, "cce-halt-b", "np-halt-b", "Failed", ended_ago=60, reason="image pull failed")


def fleet(emulator: Emulator) -> list[dict[str, str]]:
    """Four projects in two regions, one cluster each with two drifted pools and one in sync; the scopes."""
    emulator.add_project(DEMO_PROJECT, "ap-southeast-1")  # the function's own: SYNC_SCOPES=accessible lists it too
    emulator.add_project("9e8d7c6b5a4f30291807f6e5d4c3b2a1", "MOS")  # named after no region: never a scope
    names = ("ap-southeast-1_apps", "ap-southeast-1_data", "eu-west-101", "eu-west-101_data")
    for index, (region, project) in enumerate(DEMO_SCOPES):
        emulator.regions[project] = region
        emulator.add_project(project, names[index])  # a region's own project, or one of its subprojects
        cluster = f"cce-{region}-{index}"
        emulator.add_pool(project, cluster, f"np-web-{index}", "web", nodes=3, synced=1)
        emulator.add_pool(project, cluster, f"np-batch-{index}", "batch", nodes=2, synced=0)
        emulator.add_pool(project, cluster, f"np-api-{index}", "api", nodes=2, synced=2)
    return [{"region": region, "project_id": project} for region, project in DEMO_SCOPES]


def demo_clusters() -> list[str]:
    """The clusters of the layout besides the template's, which the demo's allowlist must reach."""
    return [cluster for cluster, _ in (*ROLLOUT, *HALT)]


def seed(emulator: Emulator, environment: dict[str, Any]) -> None:
    """The whole layout, for the template's cluster and pool, and the demo's IAM user."""
    emulator.add_user(DEMO_DOMAIN, DEMO_USER, DEMO_PASSWORD)
    emulator.add_keys(DEMO_AK, DEMO_SK)
    demo_cluster(emulator, DEMO_PROJECT, environment["CCE_CLUSTER_ID"], environment["CCE_NODEPOOL_ID"])
    rollout(emulator, DEMO_PROJECT)
    halt(emulator, DEMO_PROJECT)
    fleet(emulator)
