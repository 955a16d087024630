"""The soak's world: a simulated clock that CCE (the emulator) and the function both read, the fleet it holds,
the function's configuration, and the rules the checker judges starts by (stated here independently of the
function's own code, so a check is not the function grading itself)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any, NamedTuple

from ..emulator import Emulator

__all__ = ["HOME", "INTERVAL", "RULES", "SCOPES", "SimClock", "World", "window_open"]

HOME = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # the function's own project (ap-southeast-1)
SCOPES = (
    ("ap-southeast-1", HOME),
    ("ap-southeast-1", "5b6c7d8e9f0a1b2c3d4e5f6071829304"),
    ("eu-west-101", "9e8d7c6b5a4f3e2d1c0b"),
)
CLUSTER_NAMES = ("test", "stage", "prod-a", "prod-b")
POOL_NAMES = ("web", "batch", "api")
INTERVAL = 600.0  # SYNC_RECONCILE_INTERVAL_SECONDS and the timer's rate: ticks exactly this far apart
ACCESS_KEY, SECRET_KEY = "AKSOAK00000001", "soak-secret-key-never-logged-0001"
NODE_PASSWORD = "Soak-node-passw0rd!"


class Rules(NamedTuple):
    """The guards as configured (SYNC_RECONCILE, SYNC_WINDOWS, the backoff): what every start must respect."""

    max_syncing: int = 3
    max_syncing_per_cluster: int = 1
    halt_after_failures: int = 3
    backoff_seconds: float = 2 * 3600.0
    stuck_after_seconds: float = 3600.0
    waves: tuple[tuple[str, ...], ...] = (("test",), ("stage",))
    windows: str = "Mon-Fri 00:00-18:00+00:00, Sat-Sun 02:00-06:00+00:00"

    def wave(self, cluster_name: str) -> int:
        return next((n for n, names in enumerate(self.waves, 1) if cluster_name in names), len(self.waves) + 1)


RULES = Rules()


def window_open(epoch: float) -> bool:
    """RULES.windows, read by hand: weekdays 00:00 to 18:00 UTC, weekends 02:00 to 06:00."""
    when = datetime.fromtimestamp(epoch, timezone.utc)
    minute = when.hour * 60 + when.minute
    return minute < 18 * 60 if when.weekday() < 5 else 2 * 60 <= minute < 6 * 60


class SimClock:
    """CCE's and the function's time: moved on by the driver between steps, still while a step runs."""

    def __init__(self, start: float) -> None:
        self._now, self._lock = start, threading.Lock()

    def now(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        with self._lock:
            self._now = max(self._now, when)


class World:
    """The emulator holding the fleet (every scope: four clusters of three pools, in waves by name), its clock,
    and the variables every function instance runs with."""

    def __init__(self, emulator: Emulator, clock: SimClock) -> None:
        self.emulator, self.clock = emulator, clock
        self.pools: list[tuple[str, str, str, str]] = []  # (project, cluster ID, pool ID, cluster name)
        self.drifted: dict[tuple[str, str, str], list[float]] = {}  # pool -> when its template changed
        emulator.clock = clock.now
        emulator.strict = True
        emulator.add_keys(ACCESS_KEY, SECRET_KEY)
        for region, project in SCOPES:
            emulator.regions[project] = region
            for c, cluster_name in enumerate(CLUSTER_NAMES):
                cluster = f"c{c}-{project[:8]}-{cluster_name}"
                emulator.add_cluster(project, cluster, cluster_name)
                for p, pool_name in enumerate(POOL_NAMES):
                    pool = f"np-{cluster}-{pool_name}"
                    emulator.add_pool(project, cluster, pool, pool_name, nodes=3, synced=0 if (c + p) % 3 == 0 else 3)
                    self.pools.append((project, cluster, pool, cluster_name))
                    if (c + p) % 3 == 0:
                        self.drifted[(project, cluster, pool)] = [clock.now() - 1]

    def change_template(self, project: str, cluster: str, pool: str) -> dict[str, Any]:
        """A person changes the pool's template: its nodes drift; the CTS trace CCE records."""
        trace = self.emulator.update_template(project, cluster, pool)
        self.drifted.setdefault((project, cluster, pool), []).append(self.clock.now())
        return trace

    def environment(self) -> dict[str, str]:
        """The function's variables: every guard configured, three scopes fanned out over, AK/SK credentials."""
        regional = self.emulator.url + "/{region}"
        scopes = [{"region": region, "project_id": project} for region, project in SCOPES]
        reconcile = {
            "clusters": "all",
            # unqualified entries are the function's own scope's; a worker's are qualified with its project
            "waves": [[f"{p}/{n}" if p != HOME else n for _, p in SCOPES for n in names] for names in RULES.waves],
            "max_syncing": RULES.max_syncing,
            "max_syncing_per_cluster": RULES.max_syncing_per_cluster,
            "halt_after_failures": RULES.halt_after_failures,
        }
        return {
            "HUAWEICLOUD_SDK_REGION": SCOPES[0][0],
            "HUAWEICLOUD_SDK_PROJECT_ID": HOME,
            "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": SECRET_KEY,
            "HUAWEICLOUD_AUTH_MODE": "aksk",
            **{
                name: regional
                for name in ("CCE_ENDPOINT", "IAM_ENDPOINT", "SMN_ENDPOINT", "FGS_ENDPOINT", "CES_ENDPOINT")
            },
            "CCE_SYNC_SPEC": json.dumps({"maxUnavailable": 1}),
            "NODE_LOGIN_PASSWORD": NODE_PASSWORD,
            "SYNC_RECONCILE": json.dumps(reconcile),
            "SYNC_SCOPES": json.dumps(scopes),
            "SYNC_WINDOWS": RULES.windows,
            "SYNC_FAILED_BACKOFF_SECONDS": str(RULES.backoff_seconds),
            "SYNC_STUCK_AFTER_SECONDS": str(RULES.stuck_after_seconds),
            "SYNC_RECONCILE_INTERVAL_SECONDS": str(INTERVAL),
            "SYNC_ALLOWED_TARGETS": ",".join(f"{project}/*/*" for _, project in SCOPES),
            "SMN_TOPIC_URN": f"urn:smn:{SCOPES[0][0]}:{HOME}:nodepool-sync-alerts",
            "CES_NAMESPACE": "NODEPOOL.SYNC",
            "FUNCTION_URN": f"urn:fss:{SCOPES[0][0]}:{HOME}:function:default:nodepool-sync:latest",
            "RETRY_BASE_SECONDS": "0.01",
            "RETRY_CAP_SECONDS": "0.05",
            "RETRY_AFTER_CAP_SECONDS": "0.2",
            "HTTP_READ_TIMEOUT_SECONDS": "2",
            "ANSWER_RESERVE_MS": "150",
            "LOG_LEVEL": "INFO",
        }
