"""The per-pool decision and the pass-wide rules, as tables: plain values in, plain values out, no HTTP."""

from __future__ import annotations

import pytest

from handler.decide import Action, Candidate, Decision, News, Policy, decide
from handler.gate import Rules, hold, schedule
from handler.model import Job, JobPhase, PoolClass, PoolState

NOW = 1_800_000_000.0
HOUR = 3600.0
POLICY = Policy(failed_backoff_seconds=6 * HOUR, stuck_after_seconds=2 * HOUR, interval_seconds=600.0)


def pool(kind: str, jobid: str = "job-1", pool_id: str = "np-1") -> PoolState:
    counts = {"drifted": (3, 1), "in_sync": (3, 3), "unknown": (None, None), "syncing": (3, 1)}[kind]
    return PoolState(pool_id, pool_id, kind == "syncing", jobid, *counts)


def job(phase: JobPhase, ended_ago: float | None = 60.0, created_ago: float | None = None, resource: str = "") -> Job:
    updated = None if ended_ago is None else NOW - ended_ago
    created = None if created_ago is None else NOW - created_ago
    return Job("job-1", phase, "drain timed out", created, updated, resource)


FAILED_RECENTLY = job(JobPhase.FAILED, ended_ago=60)


@pytest.mark.parametrize(
    ("state", "latest", "policy", "kind", "action", "news"),
    [
        (pool("in_sync"), None, POLICY, PoolClass.IN_SYNC, None, None),
        (pool("unknown"), None, POLICY, PoolClass.UNKNOWN, None, None),
        (pool("unknown"), None, POLICY._replace(force=True), PoolClass.UNKNOWN, Action.STARTED, None),
        (pool("drifted"), None, POLICY, PoolClass.DRIFTED, Action.STARTED, None),
        (pool("drifted"), job(JobPhase.SUCCESS), POLICY, PoolClass.DRIFTED, Action.STARTED, None),
        (pool("drifted"), FAILED_RECENTLY, POLICY, PoolClass.DRIFTED, Action.BACKING_OFF, News.JOB_FAILED),
        (pool("drifted"), job(JobPhase.FAILED, 3 * HOUR), POLICY, PoolClass.DRIFTED, Action.BACKING_OFF, None),
        (pool("drifted"), job(JobPhase.FAILED, 7 * HOUR), POLICY, PoolClass.DRIFTED, Action.STARTED, None),
        (pool("drifted"), job(JobPhase.FAILED, resource="np-9"), POLICY, PoolClass.DRIFTED, Action.STARTED, None),
        (pool("drifted"), job(JobPhase.FAILED, None, 120), POLICY, PoolClass.DRIFTED, Action.BACKING_OFF,
         News.JOB_FAILED),
        (pool("drifted"), job(JobPhase.FAILED, None, None), POLICY, PoolClass.DRIFTED, Action.BACKING_OFF, None),
        (pool("drifted"), FAILED_RECENTLY, POLICY._replace(ignore_backoff=True), PoolClass.DRIFTED, Action.STARTED,
         News.JOB_FAILED),
        (pool("drifted"), None, POLICY._replace(closed_until=NOW + HOUR), PoolClass.DRIFTED, Action.DEFERRED, None),
        (pool("drifted"), FAILED_RECENTLY, POLICY._replace(closed_until=NOW + HOUR), PoolClass.DRIFTED,
         Action.DEFERRED, News.JOB_FAILED),
        (pool("drifted"), None, POLICY._replace(closed_until=NOW + HOUR, ignore_windows=True), PoolClass.DRIFTED,
         Action.STARTED, None),
        (pool("syncing"), job(JobPhase.RUNNING, None, 0.5 * HOUR), POLICY, PoolClass.SYNCING, None, None),
        (pool("syncing"), job(JobPhase.RUNNING, None, 2 * HOUR + 60), POLICY, PoolClass.STUCK, None, News.STUCK),
        (pool("syncing"), job(JobPhase.RUNNING, None, 5 * HOUR), POLICY, PoolClass.STUCK, None, None),
        (pool("syncing"), None, POLICY, PoolClass.SYNCING, None, None),
    ],
    ids=[
        "in sync: nothing",
        "unknown: nothing",
        "unknown, forced: start",
        "drifted: start",
        "drifted after a success: start",
        "failed a minute ago: back off, news",
        "failed 3 h ago: back off, old news",
        "failed 7 h ago: start",
        "another resource's failure: start",
        "failed, only a creation time: back off from it",
        "failed, no time at all: back off",
        "ignore_backoff: start, still news",
        "window closed: defer",
        "window closed after a failure: defer, still news",
        "ignore_windows: start",
        "syncing 30 min: syncing",
        "syncing past the limit within the interval: stuck, news",
        "stuck for long: stuck, old news",
        "syncing, job unreadable: syncing",
    ],
)  # fmt: skip
def test_decide(
    state: PoolState, latest: Job | None, policy: Policy, kind: PoolClass, action: Action | None, news: News | None
) -> None:
    decision = hold(decide(state, latest, policy, NOW), policy)
    assert (decision.kind, decision.action, decision.news) == (kind, action, news)


def test_a_backoff_lasts_from_the_failure_for_the_backoff_seconds() -> None:
    decision = hold(decide(pool("drifted"), FAILED_RECENTLY, POLICY, NOW), POLICY)
    assert decision.until == NOW - 60 + 6 * HOUR and decision.reason == "drain timed out"
    assert decision.jobid == "job-1" and decision.failed


def test_a_failure_without_a_time_says_why_it_backs_off() -> None:
    decision = hold(decide(pool("drifted"), job(JobPhase.FAILED, None, None), POLICY, NOW), POLICY)
    assert decision.until is None and "cannot be read" in decision.note


def test_a_deferred_pool_names_the_next_window() -> None:
    policy = POLICY._replace(closed_until=NOW + HOUR)
    decision = hold(decide(pool("drifted"), None, policy, NOW), policy)
    assert decision.reason == "outside_window" and decision.next_window == NOW + HOUR


def _candidates(*kinds: tuple[str, str]) -> list[Candidate]:
    made = []
    for index, (cluster, kind) in enumerate(kinds):
        state = pool(kind, pool_id=f"np-{index}")
        made.append(Candidate(cluster, state, decide(state, None, POLICY, NOW)))
    return made


@pytest.mark.parametrize(
    ("kinds", "limit", "actions"),
    [
        ([("c1", "drifted"), ("c1", "drifted")], 1, [Action.STARTED, Action.DEFERRED]),
        ([("c1", "drifted"), ("c1", "drifted")], 2, [Action.STARTED, Action.STARTED]),
        ([("c1", "syncing"), ("c1", "drifted")], 1, [None, Action.DEFERRED]),
        ([("c1", "syncing"), ("c1", "drifted")], 2, [None, Action.STARTED]),
        ([("c1", "drifted"), ("c2", "drifted")], 1, [Action.STARTED, Action.STARTED]),
        ([("c1", "in_sync"), ("c1", "drifted")], 1, [None, Action.STARTED]),
    ],
    ids=[
        "the limit defers the second",
        "room for two",
        "a running sync counts",
        "a running sync leaves room",
        "the limit is per cluster",
        "a pool in sync takes no room",
    ],
)
def test_schedule_keeps_each_cluster_under_its_limit(
    kinds: list[tuple[str, str]], limit: int, actions: list[Action | None]
) -> None:
    decisions = schedule(_candidates(*kinds), Rules(max_syncing_per_cluster=limit)).decisions
    assert [d.action for d in decisions] == actions


def test_a_pool_the_pass_does_not_take_still_counts_while_it_syncs() -> None:
    other = Candidate("c1", pool("syncing", pool_id="np-x"), Decision(PoolClass.SYNCING))
    [decision] = schedule(_candidates(("c1", "drifted")), Rules(max_syncing_per_cluster=1), [other]).decisions
    assert decision.action is Action.DEFERRED and decision.reason == "max_syncing_per_cluster reached"


def test_a_dry_run_would_start_what_a_pass_starts() -> None:
    decisions = schedule(_candidates(("c1", "drifted"), ("c1", "drifted")), Rules(1, dry_run=True)).decisions
    assert [d.action for d in decisions] == [Action.WOULD_START, Action.DEFERRED]


# --- waves, the fleet budget, the halt ---------------------------------------------------------------------------


def _fleet(*pools: tuple[str, str, int], failed: tuple[int, ...] = ()) -> list[Candidate]:
    """(cluster, kind, wave) per pool; the pools at the `failed` indexes failed a minute ago."""
    made = []
    for index, (cluster, kind, wave) in enumerate(pools):
        state = pool(kind, pool_id=f"np-{index}")
        latest = FAILED_RECENTLY if index in failed else None
        made.append(Candidate(cluster, state, decide(state, latest, POLICY._replace(ignore_backoff=True), NOW), wave))
    return made


@pytest.mark.parametrize(
    ("pools", "actions", "open_wave"),
    [
        ([("c1", "drifted", 1), ("c2", "drifted", 2)], [Action.STARTED, Action.DEFERRED], 1),
        ([("c1", "syncing", 1), ("c2", "drifted", 2)], [None, Action.DEFERRED], 1),
        ([("c1", "in_sync", 1), ("c2", "drifted", 2)], [None, Action.STARTED], 2),
        ([("c1", "unknown", 1), ("c2", "drifted", 2)], [None, Action.STARTED], 2),
        (
            [("c1", "in_sync", 1), ("c2", "drifted", 2), ("c3", "drifted", 3)],
            [None, Action.STARTED, Action.DEFERRED],
            2,
        ),
        ([("c1", "in_sync", 1), ("c2", "in_sync", 2), ("c3", "drifted", 3)], [None, None, Action.STARTED], 3),
    ],
    ids=[
        "a drifted pool holds the next wave",
        "a syncing pool holds it",
        "an earlier wave in sync opens it",
        "a pool without counts does not hold it",
        "waves open one at a time",
        "the last wave (clusters in none) opens last",
    ],
)
def test_waves_open_strictly_in_order(
    pools: list[tuple[str, str, int]], actions: list[Action | None], open_wave: int
) -> None:
    planned = schedule(_fleet(*pools), Rules(max_syncing_per_cluster=5, waves=2))
    assert [d.action for d in planned.decisions] == actions and planned.open_wave == open_wave


def test_a_pool_backing_off_from_a_failure_holds_the_next_wave_and_is_named() -> None:
    candidates = _fleet(("c1", "drifted", 1), ("c2", "drifted", 2), failed=(0,))
    backing_off = candidates[0]._replace(
        decision=hold(decide(candidates[0].pool, FAILED_RECENTLY, POLICY, NOW), POLICY)
    )
    planned = schedule([backing_off, candidates[1]], Rules(5, waves=1))
    assert [d.action for d in planned.decisions] == [Action.BACKING_OFF, Action.DEFERRED]
    assert planned.held_by == (backing_off,) and planned.decisions[1].reason == "wave 2 waits for wave 1"


def test_a_narrowed_pass_judges_its_wave_by_the_earlier_waves_it_read_for_context() -> None:
    [later] = _fleet(("c2", "drifted", 2))
    [earlier] = _fleet(("c1", "syncing", 1))
    planned = schedule([later], Rules(5, waves=1), context=[earlier])
    assert planned.decisions[0].action is Action.DEFERRED and planned.held_by == (earlier,)


@pytest.mark.parametrize(
    ("pools", "budget", "started"),
    [
        ([("c1", "drifted", 1), ("c2", "drifted", 1), ("c3", "drifted", 1)], 2, 2),
        ([("c1", "syncing", 1), ("c2", "drifted", 1), ("c3", "drifted", 1)], 2, 1),
        ([("c1", "syncing", 1), ("c2", "syncing", 1), ("c3", "drifted", 1)], 2, 0),
        ([("c1", "drifted", 1), ("c2", "drifted", 1), ("c3", "drifted", 1)], None, 3),
    ],
    ids=["two of three", "a running sync counts", "no room left", "no budget"],
)
def test_the_fleet_budget_holds_across_clusters(
    pools: list[tuple[str, str, int]], budget: int | None, started: int
) -> None:
    planned = schedule(_fleet(*pools), Rules(max_syncing_per_cluster=5, max_syncing=budget))
    assert sum(d.action is Action.STARTED for d in planned.decisions) == started
    assert all(d.reason == "max_syncing reached" for d in planned.decisions if d.action is Action.DEFERRED)


@pytest.mark.parametrize(
    ("failed", "threshold", "ignore_halt", "halted"),
    [((0, 1), 2, False, True), ((0,), 2, False, False), ((0, 1), 2, True, False), ((0, 1), None, False, False)],
    ids=["two failures halt at two", "one does not", "ignore_halt lifts it", "no threshold, no halt"],
)
def test_the_pass_halts_when_failures_spread(
    failed: tuple[int, ...], threshold: int | None, ignore_halt: bool, halted: bool
) -> None:
    pools = [("c1", "drifted", 1), ("c2", "drifted", 1), ("c3", "drifted", 1)]
    planned = schedule(_fleet(*pools, failed=failed), Rules(5, halt_after_failures=threshold, ignore_halt=ignore_halt))
    assert planned.halted is halted
    started = [d.action is Action.STARTED for d in planned.decisions]
    assert started == ([False, False, False] if halted else [True, True, True])
    if halted:
        assert all(d.reason.startswith("halted: 2 pools") for d in planned.decisions)


def test_ignore_backoff_does_not_lift_the_halt() -> None:
    candidates = _fleet(("c1", "drifted", 1), ("c2", "drifted", 1), failed=(0, 1))  # decided with ignore_backoff
    assert all(c.decision.action is Action.STARTED for c in candidates)
    assert schedule(candidates, Rules(5, halt_after_failures=2)).halted


@pytest.mark.parametrize(
    ("ended_ago", "news"),
    [(0.0, True), (1.0, True), (599.999, True), (600.0, False), (-0.001, False), (-5.0, False)],
    ids=["ended now", "a second ago", "just inside", "an interval ago", "just after now", "after now"],
)
def test_a_failure_is_news_within_the_interval_up_to_now_so_passes_an_interval_apart_tell_it_once(
    ended_ago: float, news: bool
) -> None:
    decision = decide(pool("drifted"), job(JobPhase.FAILED, ended_ago=ended_ago), POLICY, NOW)
    assert (decision.news is News.JOB_FAILED) is news and decision.action is Action.STARTED


@pytest.mark.parametrize(
    ("tick_ago", "ended_ago", "news"),
    [
        (100.0, 130.0, True),  # ended 30 s before the tick: this tick's news
        (100.0, 70.0, False),  # ended after the tick (while the pass was late): the next tick's
        (100.0, 650.0, True),  # 550 s before the tick
        (100.0, 701.0, False),  # more than an interval before the tick: the previous tick's
        (601.0, 70.0, True),  # a tick more than an interval old is not this pass's: measured from now
    ],
)
def test_a_scheduled_pass_measures_news_back_from_its_tick(tick_ago: float, ended_ago: float, news: bool) -> None:
    failed = job(JobPhase.FAILED, ended_ago=ended_ago)
    decision = decide(pool("drifted"), failed, POLICY, NOW, news_at=NOW - tick_ago)
    assert (decision.news is News.JOB_FAILED) is news
