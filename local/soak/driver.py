"""The soak's driver: the real handler, in several function instances, against the emulator, through a seeded
random history of timer ticks (exactly an interval apart, fanned out over the scopes, each worker delivered late
and sometimes twice), API Gateway syncs and status reads, EventGrid syncs, CCE changes (CTS traces) and
redeliveries, some at once, with faults injected at random. It records what it sent; the emulator records what
CCE and SMN saw."""

from __future__ import annotations

import heapq
import json
import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from handler.errors import SyncError
from handler.function import Function
from handler.logs import logger
from handler.settings import Settings

from .. import events
from .. import template as templates
from ..emulator import Emulator
from ..host import LocalContext
from .world import INTERVAL, SCOPES, SimClock, World

__all__ = ["History", "Invocation", "run"]

INSTANCES = 6  # function instances, each running one invocation at a time (FunctionGraph's default)
DEADLINE_MS = 8000.0
SHORT_DEADLINE_MS = 1500.0  # with a slow answer injected: near the deadline


@dataclass
class Invocation:
    """One invocation as the driver made it, and what the function answered."""

    number: int
    kind: str
    instance: str
    sim: float  # CCE's time when it ran
    deadline_ms: float
    event: Any
    key: str = ""  # the event's identity: a redelivery carries its first delivery's
    first: int | None = None  # a redelivery: the number of the first delivery
    overrides: tuple[str, ...] = ()
    order: tuple[int, ...] = ()  # the instances it prefers, drawn when it was made (the seed decides)
    tick: float = 0.0  # a worker: the timer tick whose pass it runs
    started: float = 0.0
    ended: float = 0.0
    answer: Any = None


@dataclass
class History:
    """Everything a soak did and saw: the driver's invocations, the emulator's records, the function's logs."""

    seed: int
    start: float
    end: float
    invocations: list[Invocation]
    emulator: Emulator
    drifted: dict[tuple[str, str, str], list[float]]
    logs: list[str]
    faults: Counter[str] = field(default_factory=Counter)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class _Instance:
    def __init__(self, name: str, environment: dict[str, str], clock: SimClock) -> None:
        self.name, self.lock = name, threading.Lock()
        self.function = Function(Settings.from_environ({**environment, "RUNTIME_FUNC_NAME": name}), clock=clock.now)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def inject_fault(emulator: Emulator, draw: random.Random) -> tuple[str, float]:
    """Queue one fault on the emulator, drawn at random: its kind, and the deadline the step's invocations get."""
    kind = draw.choice(["5xx", "throttled", "locked", "lost", "slow", "job-read", "list", "smn", "fgs"])
    inject, times = emulator.inject, draw.randint(1, 3)
    if kind == "5xx":
        where = draw.choice(["/nodepools", "/clusters", "/operation/upgrade"])
        inject(path_contains=where, status=draw.choice([500, 502, 503]), times=times)
    elif kind == "throttled":
        body = {"errorCode": "CCE.02429001", "errorMessage": "throttled"}
        inject(path_contains="/api/v3/", status=429, body=body, headers={"Retry-After": "0"}, times=times)
    elif kind == "locked":
        body = {"errorCode": "CCE.01429002", "errorMessage": "The resource is locked by a running operation"}
        inject(path_endswith="/operation/upgrade", status=429, body=body)
    elif kind == "lost":  # CCE acted, and its answer never came
        inject(path_endswith="/operation/upgrade", process_first=True, drop=True)
    elif kind == "slow":
        inject(path_contains="/nodepools", delay=draw.uniform(0.5, 1.2), times=times)
        return kind, SHORT_DEADLINE_MS
    elif kind == "job-read":
        inject(path_contains="/jobs/", status=500, times=times + 2)
    elif kind == "list":
        inject(path_endswith="/nodepools", status=draw.choice([500, 503]), times=times + 2)
    elif kind == "smn":
        inject(path_contains="/publish", status=503)  # once: a retry gets through
    else:
        inject(path_contains="/invocations-async", status=503)  # once: a retry gets through
    return kind, DEADLINE_MS


class JobPlan:
    """Each new sync job: a few minutes (now and then hours: stuck), failing at a rate, most of them through a
    storm of seven hours on the third day. Drawn from the seed, the pool and the time, not from the driver's
    sequence: the emulator asks from its own threads."""

    def __init__(self, seed: int, clock: SimClock) -> None:
        self.seed, self.clock = seed, clock
        self.storm = (clock.now() + 2.4 * 86400, clock.now() + 2.7 * 86400)

    def __call__(self, project: str, cluster: str, pool: str) -> tuple[str, float]:
        now = self.clock.now()
        draw = random.Random(f"{self.seed}|{project}|{pool}|{now}")
        rate = 0.6 if self.storm[0] <= now < self.storm[1] else 0.05
        outcome = "Failed" if draw.random() < rate else "Success"
        seconds = draw.uniform(4000, 9000) if draw.random() < 0.03 else draw.uniform(120, 1500)
        return outcome, seconds


class Driver:
    """A seeded history over the world; `run` plays `ticks` timer ticks and what happens between them."""

    def __init__(self, world: World, seed: int) -> None:
        self.world, self.random, self.seed = world, random.Random(seed), seed
        self.template = templates.load()
        environment = world.environment()
        self.instances = [_Instance(f"soak-i{n}", environment, world.clock) for n in range(INSTANCES)]
        self.invocations: list[Invocation] = []
        self.faults: Counter[str] = Counter()
        self.workers: list[tuple[float, int, float, dict[str, Any]]] = []  # (due, tiebreak, tick, body)
        self._sequence, self._delivered = 0, dict[str, int]()  # a worker's key -> its first delivery
        self._lock = threading.Lock()
        world.emulator.job_plan = JobPlan(seed, world.clock)

    # --- invoking --------------------------------------------------------------------------------------------

    def _invoke(self, call: Invocation) -> Invocation:
        """Run one invocation on a free instance (the one it names, waiting for it), as FunctionGraph would."""
        same = call.instance
        while True:
            order = [i for i in self.instances if i.name == same] or [self.instances[n] for n in call.order]
            for instance in order:
                if instance.lock.acquire(blocking=bool(same)):
                    try:
                        call.instance, call.started = instance.name, time.time()
                        try:
                            call.answer = instance.function.handle(call.event, LocalContext(call.deadline_ms / 1000))
                        except SyncError as error:  # raised for the platform to retry (a timer, EventGrid, a worker)
                            call.answer = {"raised": type(error).__name__, "code": error.code, "error": str(error)}
                        call.ended = time.time()
                    finally:
                        instance.lock.release()
                    return call
            time.sleep(0.001)

    def _call(self, kind: str, event: Any, deadline_ms: float = DEADLINE_MS, **fields: Any) -> Invocation:
        with self._lock:
            self._sequence += 1
            number = self._sequence
        key = fields.pop("key", "") or f"{kind}-{number}"
        order = tuple(self.random.sample(range(INSTANCES), INSTANCES))
        return Invocation(number, kind, "", self.world.clock.now(), deadline_ms, event, key=key, order=order, **fields)

    # --- what happens ----------------------------------------------------------------------------------------

    def _tick(self, when: float) -> Invocation:
        timer = self.template["triggers"]["timer"]
        event = {"version": "v1.0", "time": _iso(when), "trigger_type": "TIMER", "trigger_name": timer["name"]}
        return self._call("timer", {**event, "user_event": ""})

    def _pool(self, home_region_only: bool = True) -> tuple[str, str, str, str]:
        regions = dict((project, region) for region, project in SCOPES)
        pools = [p for p in self.world.pools if not home_region_only or regions[p[0]] == SCOPES[0][0]]
        return self.random.choice(pools)

    def _random_call(self) -> Invocation:
        """One of the requests people and CCE make between ticks."""
        kind = self.random.choices(
            ["apig-sync", "apig-status", "eventgrid", "change", "redelivery"], weights=[30, 15, 20, 25, 10]
        )[0]
        if kind == "redelivery":
            # EventGrid and CTS deliver an event again (an API client's retry is a new request)
            earlier = [c for c in self.invocations[-60:] if c.kind in ("eventgrid", "change")]
            if earlier:
                first = self.random.choice(earlier)
                call = self._call(
                    "redelivery", first.event, key=first.key, first=first.number, overrides=first.overrides
                )
                call.instance = first.instance if self.random.random() < 0.5 else ""  # to the same instance or not
                return call
            kind = "change"
        project, cluster, pool, _ = self._pool(home_region_only=kind != "change")
        target = {"cluster_id": cluster, "nodepool_id": pool}
        document: dict[str, Any] = {"project_id": project, "spec": {"maxUnavailable": 1}}
        overrides: tuple[str, ...] = ()
        if kind == "apig-sync" and self.random.random() < 0.03:
            overrides = ("ignore_windows",)
            document["ignore_windows"] = True
        if kind == "apig-sync":
            body = json.dumps(document).encode()
            return self._call(kind, events.apig_event(self.template, body, target), overrides=overrides)
        if kind == "apig-status":
            event = events.apig_event(self.template, b"", target, method="GET", query={"project_id": project})
            return self._call(kind, event)
        if kind == "eventgrid":
            return self._call(kind, events.eventgrid_event(self.template, {**document, **target}))
        trace = self.world.change_template(project, cluster, pool)
        return self._call("change", trace if self.random.random() < 0.7 else events.cloud_event(trace))

    def _fault(self) -> float:
        """Queue one fault on the emulator; the deadline the step's invocations get."""
        kind, deadline = inject_fault(self.world.emulator, self.random)
        self.faults[kind] += 1
        return deadline

    def _step(self, calls: list[Invocation]) -> None:
        """Run the step's invocations together (each on an instance of its own), then forget unused faults."""
        if len(calls) == 1:
            self.invocations.append(self._invoke(calls[0]))
        else:
            with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                for done in pool.map(self._invoke, calls):
                    self.invocations.append(done)
        emulator = self.world.emulator
        with emulator.lock:
            emulator.faults.clear()
            sent, emulator.invocations[:] = list(emulator.invocations), []
        for invocation in sent:  # FunctionGraph runs each a little later; now and then twice
            body, tick = invocation["body"], self.world.clock.now()  # only a tick's coordinator invokes workers
            due = tick + self.random.uniform(1, 90)
            heapq.heappush(self.workers, (due, self._next(), tick, body))
            if self.random.random() < 0.05:
                heapq.heappush(self.workers, (due + self.random.uniform(0, 60), self._next(), tick, body))

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def run(self, ticks: int) -> None:
        """Play `ticks` timer ticks, exactly INTERVAL apart, and everything between them."""
        clock, started = self.world.clock, self.world.clock.now()
        next_tick, played = started + INTERVAL, 0
        next_random = started + self.random.expovariate(2.5 / INTERVAL)
        while played < ticks or self.workers:
            due_worker = self.workers[0][0] if self.workers else float("inf")
            when = min(next_tick if played < ticks else float("inf"), due_worker, next_random)
            clock.advance_to(when)
            calls: list[Invocation] = []
            if when == due_worker:
                _, _, tick, body = heapq.heappop(self.workers)
                key = f"worker-{body.get('pass_id')}-{json.dumps(body.get('scope'), sort_keys=True)}"
                call = self._call("worker", body, key=key, first=self._delivered.get(key), tick=tick)
                self._delivered.setdefault(key, call.number)
                calls.append(call)
            elif when == next_tick:
                calls.append(self._tick(when))
                next_tick, played = next_tick + INTERVAL, played + 1
            else:
                calls.append(self._random_call())
                next_random = when + self.random.expovariate(2.5 / INTERVAL)
            if played >= ticks and not self.workers and calls[0].kind != "worker":
                next_random = float("inf")
            while self.random.random() < 0.3 and len(calls) < 4:  # some at once
                calls.append(self._random_call())
            if self.random.random() < 0.25:
                deadline = self._fault()
                for call in calls:
                    call.deadline_ms = deadline
            self._step(calls)


def run(seed: int, ticks: int, emulator: Emulator) -> History:
    """A soak of `ticks` ticks against `emulator`, seeded; what happened."""
    start = time.time() - ticks * INTERVAL - 86400  # in the past: CCE's times never run ahead of the real clock
    start -= start % 86400  # from a day's start, UTC
    clock = SimClock(start)
    world = World(emulator, clock)
    lines = _Lines()
    log = logger()
    saved = log.handlers[:]
    log.handlers[:] = [lines]
    try:
        driver = Driver(world, seed)
        driver.run(ticks)
    finally:
        log.handlers[:] = saved
    return History(seed, start, clock.now(), driver.invocations, emulator, world.drifted, lines.lines, driver.faults)
