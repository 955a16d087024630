"""The emulator's state and lifecycle: one object holding IAM's and CCE's state (iam.py, cce.py), SMN's messages,
FunctionGraph's invocations, every request received and the faults to inject; start() serves it (server.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .cce import CceState
from .iam import IamState
from .records import Fault, Job, Nodes, Recorded
from .server import Handler, Server

__all__ = ["Emulator"]

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "cce-upgrade-request.schema.json"


class Emulator(IamState, CceState):
    """The emulated cloud; start() binds a free loopback port, `url` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.users: dict[tuple[str, str], str] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (project_id or "*", expires epoch)
        self.keys: dict[str, tuple[str, str | None]] = {}  # AK -> (SK, security token or None)
        self.projects: dict[str, tuple[str, bool]] = {}  # IAM's projects: ID -> (name, enabled)
        self.pools: dict[tuple[str, str], dict[str, str]] = {}  # (project, cluster) -> {pool id: name}
        self.clusters: dict[str, dict[str, str]] = {}  # project -> {cluster id: name}, besides those with pools
        self.nodes: dict[tuple[str, str, str], Nodes] = {}  # pools whose node counts are modelled
        self.published: list[dict[str, Any]] = []  # SMN messages: topic, subject, message, sim (CCE time)
        self.metric_data: list[dict[str, Any]] = []  # Cloud Eye points: region, project_id, received, the item
        self.jobs: dict[str, Job] = {}
        self.latest_job: dict[tuple[str, str, str], Job] = {}
        self.busy: dict[tuple[str, str, str], str] = {}  # pools shown as synchronizing -> job id
        self.token_lifetime = 86400.0
        self.omit_expires_at = False
        self.job_seconds = 0.0
        self.job_outcome = "Success"
        # Pools have several scaling groups and a sync's nodes sit outside the default one, so a read without
        # advanceStatus=true (the default group only) does not see the sync running.
        self.multi_group = True
        self.lock_running = True  # a sync on a pool whose operation still runs answers 429 CCE.01429002
        self.latency = 0.0  # seconds each CCE request takes before it is answered (a far-away region, say)
        # As CCE: an unknown cluster, node pool or job is a 404 (CCE.01404001). Off for the tests' scratch emulator,
        # which syncs pools it was never told of; on for `make emulator` and the local tools.
        self.strict = False
        self.job_seconds_range: tuple[float, float] | None = None  # each job a random duration in this range
        self.job_plan: Callable[[str, str, str], tuple[str, float]] | None = None  # a new job's outcome, seconds
        self.clock: Callable[[], float] = time.time  # CCE's time: jobs' and templates' (a soak's simulated one)
        self.on_reset: Any = None  # `python -m local emulator --reset`: restores the layout (the CLI sets it)
        self.in_flight = self.peak_in_flight = 0  # CCE requests being answered now, and the most at once
        self.regions: dict[str, str] = {}  # project -> its region: a request naming another region is a 404
        self.invocations: list[dict[str, Any]] = []  # asynchronous invocations: region, project_id, urn, body
        self.run_async: Any = None  # called with each invocation, in a thread of its own (make run's workers)
        self.log: Callable[[str], None] | None = None  # a line per request, reset, stop (make emulator's output)
        self.worker_environment: dict[str, str] | None = None  # what the CLI's invocation ran with (workers get it)
        self._validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        class Bound(Handler):
            emulator = self

        self._server = Server((self.host, self.port), Bound)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="emulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def inject(self, **fault: Any) -> Fault:
        """Queue a fault (see Fault's fields); the first matching queued fault applies."""
        made = Fault(**fault)
        with self.lock:
            self.faults.append(made)
        return made

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.invocations.clear()
            self.regions.clear()
            self.in_flight = self.peak_in_flight = 0
            self.latency = 0.0
            self.busy.clear()
            self.jobs.clear()
            self.latest_job.clear()
            self.nodes.clear()
            self.clusters.clear()
            self.published.clear()
            self.metric_data.clear()
            self.clock, self.job_plan = time.time, None  # a test's own clock or job plan ends with it
            self.projects.clear()

    def cce_requests(self, method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.is_cce and (method is None or r.method == method)]

    def syncs(self) -> list[Recorded]:
        return [r for r in self.cce_requests("POST") if r.path.endswith("/operation/upgrade")]

    @property
    def request_ids(self) -> list[str]:
        """The X-Request-Id answered to each CCE request, in order."""
        return [r.request_id for r in self.cce_requests()]

    def iam_requests(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.is_iam]

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None
