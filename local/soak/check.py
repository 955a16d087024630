"""The controller's safety invariants, checked from the emulator's own records (every request CCE and SMN
received, every job's start, length and outcome, every message published), never from the function's answers.
docs/failure-behaviour.md's table states them; each has a test that feeds the checker a deliberate violation."""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from .world import INTERVAL, NODE_PASSWORD, RULES, SECRET_KEY, Rules, window_open

__all__ = ["Finding", "Invariant", "Report", "Start", "Timeline", "check"]

PASS_KINDS = ("timer", "worker", "change")  # what runs a pass (the per-cluster limit is a pass's)


class Invariant(str, Enum):
    """Each invariant, by its number in docs/failure-behaviour.md."""

    ONE_AT_A_TIME = "I1"
    BUDGET = "I2"
    HALT = "I3"
    WAVES = "I4"
    WINDOWS = "I5"
    NEWS = "I6"
    DEADLINE = "I7"
    SECRETS = "I8"
    REDELIVERY = "I9"


class Finding(NamedTuple):
    """A violation: which invariant, when (CCE's time), what, and the invocation behind it (0: none)."""

    invariant: Invariant
    sim: float
    what: str
    invocation: int = 0


class Job(NamedTuple):
    """A sync job as CCE ran it."""

    id: str
    project: str
    cluster: str
    pool: str
    created: float
    end: float
    outcome: str


class Start(NamedTuple):
    """An accepted sync: its job, the invocation that sent it (0: unknown), that invocation's kind, the guards
    its request lifted, and the jobs simultaneous invocations started (none could see the other's)."""

    job: Job
    invocation: int = 0
    kind: str = ""
    overrides: tuple[str, ...] = ()
    unseen: frozenset[str] = frozenset()


@dataclass
class Timeline:
    """What CCE's state was at any moment, from its jobs and the template changes: per pool, in order."""

    jobs: Sequence[Job]
    drifted: dict[tuple[str, str, str], list[float]]
    waves: dict[str, int]  # cluster ID -> its wave
    rules: Rules = RULES
    _by_pool: dict[tuple[str, str, str], list[Job]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_pool: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
        for job in sorted(self.jobs, key=lambda j: j.created):
            by_pool[(job.project, job.cluster, job.pool)].append(job)
        self._by_pool = dict(by_pool)

    def pools(self, project: str) -> list[tuple[str, str, str]]:
        return [pool for pool in {*self._by_pool, *self.drifted} if pool[0] == project]

    def running(
        self, pool: tuple[str, str, str], t: float, before: bool = False, unseen: frozenset[str] = frozenset()
    ) -> bool:
        """Whether a job of the pool runs at t (`before`: one started before t; `unseen` jobs left out)."""
        return any(
            j.created <= t < j.end and (not before or j.created < t) and j.id not in unseen
            for j in self._by_pool.get(pool, ())
        )

    def latest(self, pool: tuple[str, str, str], t: float) -> Job | None:
        """The pool's latest job started before t."""
        jobs = [j for j in self._by_pool.get(pool, ()) if j.created < t]
        return jobs[-1] if jobs else None

    def drifted_at(self, pool: tuple[str, str, str], t: float) -> bool:
        """Whether the pool's nodes lag its template at t: changed, and no sync succeeded since."""
        changes = [u for u in self.drifted.get(pool, ()) if u <= t]
        if not changes:
            return False
        return not any(
            j.outcome == "Success" and j.created >= changes[-1] and j.end <= t for j in self._by_pool.get(pool, ())
        )

    def backing_off(self, pool: tuple[str, str, str], t: float) -> bool:
        job = self.latest(pool, t)
        return job is not None and job.outcome == "Failed" and job.end <= t < job.end + self.rules.backoff_seconds


def _starts_checked(timeline: Timeline, starts: Sequence[Start]) -> Iterable[Finding]:
    """I2 to I5 at every start: the budget, the halt, the waves, the windows (overrides excepted)."""
    rules = timeline.rules
    for start in starts:
        job, t = start.job, start.job.created
        own = (job.project, job.cluster, job.pool)
        pools = timeline.pools(job.project)
        if "ignore_budget" not in start.overrides:
            syncing = sum(timeline.running(pool, t, unseen=start.unseen) for pool in pools)
            if syncing > rules.max_syncing:
                yield Finding(Invariant.BUDGET, t, f"{job.pool}: {syncing} syncing in {job.project}", start.invocation)
            in_cluster = sum(timeline.running(pool, t, unseen=start.unseen) for pool in pools if pool[1] == job.cluster)
            if start.kind in PASS_KINDS and in_cluster > rules.max_syncing_per_cluster:
                what = f"{job.pool}: {in_cluster} syncing in cluster {job.cluster}"
                yield Finding(Invariant.BUDGET, t, what, start.invocation)
        if "ignore_halt" not in start.overrides:
            failed = [p for p in pools if timeline.backing_off(p, t) and timeline.drifted_at(p, t)]
            if len(failed) >= rules.halt_after_failures:
                yield Finding(Invariant.HALT, t, f"{job.pool} started while {len(failed)} failed", start.invocation)
        wave = timeline.waves.get(job.cluster, 1)
        if wave > 1 and "ignore_waves" not in start.overrides:
            earlier = [p for p in pools if timeline.waves.get(p[1], 1) < wave and p != own]
            holding = [
                p[2]
                for p in earlier
                if timeline.running(p, t, before=True) or timeline.drifted_at(p, t) or timeline.backing_off(p, t)
            ]
            if holding:
                what = f"{job.pool} (wave {wave}) started while {', '.join(holding[:3])} held it"
                yield Finding(Invariant.WAVES, t, what, start.invocation)
        if "ignore_windows" not in start.overrides and not window_open(t):
            yield Finding(Invariant.WINDOWS, t, f"{job.pool} started outside every window", start.invocation)


def overlapping(jobs: Sequence[Job]) -> Iterable[Finding]:
    """I1: two syncs of one pool whose runs overlap."""
    by_pool: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
    for job in sorted(jobs, key=lambda j: j.created):
        by_pool[(job.project, job.cluster, job.pool)].append(job)
    for pool, runs in by_pool.items():
        for earlier, later in itertools.pairwise(runs):
            if later.created < earlier.end:
                yield Finding(Invariant.ONE_AT_A_TIME, later.created, f"{pool[2]}: {later.id} while {earlier.id} ran")


class Report(NamedTuple):
    """How many moments each invariant was tested at, every violation found, and the starts that went past a
    limit only because a simultaneous invocation started another (docs/failure-behaviour.md)."""

    tested: Counter[Invariant]
    findings: list[Finding]
    races: int = 0

    @property
    def violations(self) -> Counter[Invariant]:
        return Counter(f.invariant for f in self.findings)


def announced(messages: Sequence[dict[str, Any]], job_id: str) -> int:
    """How many passes' SMN messages say the job failed (a worker delivered twice repeats its pass's message,
    which names the pass; docs/failure-behaviour.md)."""
    passes = set()
    for number, message in enumerate(messages):
        text = str(message.get("message", ""))
        if f"sync job failed, job {job_id}" in text:
            named = re.search(r"^pass (\S+)$", text, flags=re.MULTILINE)
            passes.add(named.group(1) if named else f"message {number}")
    return len(passes)


def news_checked(
    failed: Sequence[Job],
    messages: Sequence[dict[str, Any]],
    passes: dict[tuple[str, str], list[tuple[float, bool, float]]],
    latest: Callable[[Job, float], bool] = lambda job, listed: True,
) -> tuple[int, list[Finding]]:
    """I6: each failed job announced at most once; and at least once when the scheduled pass whose interval it
    ended in read its pool and could publish. `passes`: per (project, cluster), each scheduled pass's tick (its
    interval ends there), whether it read the cluster and the job and published without a failure, and when it
    listed the cluster. `latest`:
    whether the job was still its pool's latest when that pass ran (a newer sync, an operator's, supersedes it
    in CCE's status, and then no pass can see it)."""
    findings, tested = [], 0
    for job in failed:
        count = announced(messages, job.id)
        tested += 1
        if count > 1:
            findings.append(Finding(Invariant.NEWS, job.end, f"job {job.id} of {job.pool} announced {count} times"))
        covering = [
            ok and latest(job, listed)
            for at, ok, listed in passes.get((job.project, job.cluster), ())
            if at - INTERVAL < job.end <= at
        ]
        if covering and covering[0] and count == 0:
            findings.append(Finding(Invariant.NEWS, job.end, f"job {job.id} of {job.pool} never announced"))
    return tested, findings


def secrets_checked(
    texts: Iterable[str], planted: Sequence[str] = (SECRET_KEY, NODE_PASSWORD)
) -> tuple[int, list[Finding]]:
    """I8: no planted secret in any answer, log line or payload."""
    tested, findings = 0, []
    for text in texts:
        tested += 1
        for secret in planted:
            if secret in text:
                findings.append(Finding(Invariant.SECRETS, 0.0, f"a secret in: {text[:80]}"))
    return tested, findings


def instance_of(user_agent: str) -> str:
    match = re.search(r"\(([^)]*)\)", user_agent)
    return match.group(1) if match else ""


class Calls:
    """Which invocation each request the emulator received came from: its instance (the User-Agent names it)
    runs one invocation at a time."""

    def __init__(self, invocations: Sequence[Any]) -> None:
        self._by_instance: dict[str, list[Any]] = defaultdict(list)
        for call in sorted(invocations, key=lambda c: c.started):
            self._by_instance[call.instance].append(call)
        self._starts = {name: [c.started for c in calls] for name, calls in self._by_instance.items()}

    def of(self, request: Any) -> Any:
        name = instance_of(request.headers.get("user-agent", ""))
        calls = self._by_instance.get(name, [])
        index = bisect.bisect_right(self._starts.get(name, []), request.at) - 1
        if index >= 0 and calls[index].started <= request.at <= calls[index].ended + 0.001:
            return calls[index]
        return None


def check(history: Any, rules: Rules = RULES) -> Report:
    """Every invariant over a soak's history (local/soak/driver.History)."""
    emulator = history.emulator
    calls = Calls(history.invocations)
    by_number = {c.number: c for c in history.invocations}
    kind_of = {c.number: (by_number[c.first].kind if c.first in by_number else c.kind) for c in history.invocations}
    requests = list(emulator.requests)
    jobs = [
        Job(j.id, j.project_id, j.cluster_id, j.nodepool_id, j.created, j.created + j.seconds, j.outcome)
        for j in emulator.jobs.values()
    ]
    waves = {}
    for (project, cluster), _ in emulator.pools.items():
        waves[cluster] = rules.wave(emulator.cluster_ids(project).get(cluster, cluster))
    timeline = Timeline(jobs, history.drifted, waves, rules)
    tested: Counter[Invariant] = Counter()
    findings: list[Finding] = list(overlapping(jobs))
    tested[Invariant.ONE_AT_A_TIME] += len(jobs)
    per_call: dict[int, list[Any]] = defaultdict(list)
    for request in requests:
        call = calls.of(request)
        if call is not None:
            per_call[call.number].append(request)
    # I1, second half: no sync sent to a pool the same invocation had read as syncing
    for number, sent in per_call.items():
        seen: set[str] = set()
        for request in sorted(sent, key=lambda r: r.at):
            if request.method == "POST" and request.path.endswith("/operation/upgrade"):
                tested[Invariant.ONE_AT_A_TIME] += 1
                pool = request.path.split("/")[-3]
                if pool in seen:
                    findings.append(Finding(Invariant.ONE_AT_A_TIME, request.sim, f"{pool} read as syncing", number))
            seen.update(request.syncing)
    job_by_id = {j.id: j for j in jobs}
    started_by = {n: {r.job_id for r in sent if r.job_id in job_by_id} for n, sent in per_call.items()}
    by_sim: dict[float, list[Any]] = defaultdict(list)
    for one in history.invocations:
        by_sim[one.sim].append(one)
    starts = []
    for request in requests:
        if request.job_id in job_by_id:
            call = calls.of(request)
            number = call.number if call is not None else 0
            overrides = tuple(call.overrides) if call is not None else ()
            unseen = frozenset(j for other in _simultaneous(call, by_sim) for j in started_by.get(other, ()))
            starts.append(Start(job_by_id[request.job_id], number, kind_of.get(number, ""), overrides, unseen))
    for invariant in (Invariant.BUDGET, Invariant.HALT, Invariant.WINDOWS):
        tested[invariant] += len(starts)
    tested[Invariant.WAVES] += sum(waves.get(s.job.cluster, 1) > 1 for s in starts)
    findings += _starts_checked(timeline, starts)
    races = sum(
        1 for start in starts if start.unseen and list(_starts_checked(timeline, [start._replace(unseen=frozenset())]))
    )
    findings += _overrides_recorded(history)
    findings += _news(history, jobs, per_call, tested, by_number)
    for call in history.invocations:
        tested[Invariant.DEADLINE] += 1
        if (call.ended - call.started) * 1000 > call.deadline_ms:
            what = f"{call.kind} answered in {(call.ended - call.started) * 1000:.0f} ms of {call.deadline_ms:.0f}"
            findings.append(Finding(Invariant.DEADLINE, call.sim, what, call.number))
    texts = [json.dumps(c.answer, default=str) for c in history.invocations] + list(history.logs)
    texts += [r.body.decode("utf-8", "replace") for r in requests if r.body]
    texts += [json.dumps(m, default=str) for m in emulator.published]
    count, found = secrets_checked(texts)
    tested[Invariant.SECRETS] += count
    findings += found
    findings += _redeliveries(history, per_call, job_by_id, tested, by_number)
    return Report(tested, sorted(findings, key=lambda f: f.sim), races)


def _simultaneous(call: Any, by_sim: dict[float, list[Any]]) -> list[int]:
    """The invocations that ran at the same time as `call` (a step's, on other instances): none saw the other."""
    if call is None:
        return []
    return [
        other.number
        for other in by_sim.get(call.sim, ())
        if other.number != call.number and other.started < call.ended and call.started < other.ended
    ]


def _overrides_recorded(history: Any) -> list[Finding]:
    """An override is an exception only when recorded: the request's `sync` log line names it."""
    findings = []
    for call in history.invocations:
        if not call.overrides or not isinstance(call.event, dict):
            continue
        correlation = str(call.event.get("requestContext", {}).get("requestId", ""))
        lines = [line for line in history.logs if correlation and correlation in line and '"overrides"' in line]
        if not lines:
            findings.append(Finding(Invariant.WINDOWS, call.sim, f"{call.kind}: its overrides not logged", call.number))
    return findings


def _news(
    history: Any,
    jobs: Sequence[Job],
    per_call: dict[int, list[Any]],
    tested: Counter[Invariant],
    by_number: dict[int, Any],
) -> list[Finding]:
    """I6 from the scheduled passes' own requests: when each listed each cluster, and whether it read the job of
    every pool and published without a failure."""
    passes: dict[tuple[str, str], list[tuple[float, bool, float]]] = defaultdict(list)
    for number, sent in per_call.items():
        call = by_number[number]
        if call.kind != "worker":
            continue
        published = [r for r in sent if r.path.endswith("/publish")]
        failed_publish = any(r.status != 200 for r in published) and not any(r.status == 200 for r in published)
        job_reads = [r for r in sent if "/jobs/" in r.path]
        unread_job = any(r.status != 200 for r in job_reads)
        for request in sent:
            parts = request.path.split("/")
            if request.method == "GET" and request.path.endswith("/nodepools") and request.status == 200:
                project, cluster = parts[4], parts[6]
                passes[(project, cluster)].append((call.tick, not failed_publish and not unread_job, request.sim))
    for listed in passes.values():
        listed.sort()
    failed = [j for j in jobs if j.outcome == "Failed" and j.end + INTERVAL <= history.end]
    timeline = Timeline(jobs, history.drifted, {})

    def latest(job: Job, listed: float) -> bool:
        return timeline.latest((job.project, job.cluster, job.pool), listed + 1e-6) == job

    count, findings = news_checked(failed, history.emulator.published, passes, latest)
    tested[Invariant.NEWS] += count
    return findings


def _redeliveries(
    history: Any,
    per_call: dict[int, list[Any]],
    jobs: dict[str, Job],
    tested: Counter[Invariant],
    by_number: dict[int, Any],
) -> list[Finding]:
    """I9: a redelivery to the instance that answered the first gets the same answer (unless the first raised,
    for the platform to retry); to any instance, it starts no pool the first delivery started."""
    findings = []
    for call in history.invocations:
        if call.first is None or call.first not in by_number:
            continue
        first = by_number[call.first]
        tested[Invariant.REDELIVERY] += 1
        started = {jobs[r.job_id].pool for r in per_call.get(first.number, ()) if r.job_id in jobs}
        again = {jobs[r.job_id].pool for r in per_call.get(call.number, ()) if r.job_id in jobs}
        retried = isinstance(first.answer, dict) and "raised" in first.answer  # a retry of what failed: tried anew
        if call.instance == first.instance and not retried and call.answer != first.answer:
            findings.append(Finding(Invariant.REDELIVERY, call.sim, f"{call.kind}: another answer", call.number))
        elif started & again:
            what = f"{call.kind}: {', '.join(sorted(started & again))} started again"
            findings.append(Finding(Invariant.REDELIVERY, call.sim, what, call.number))
    return findings
