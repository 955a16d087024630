"""The soak (make soak): its checker catches each deliberate violation (tables, no HTTP), and a short seeded
history of the real handler against the emulator holds every invariant."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from local.emulator import Emulator
from local.soak.check import (
    Invariant,
    Job,
    Start,
    Timeline,
    _starts_checked,
    check,
    news_checked,
    overlapping,
    secrets_checked,
)
from local.soak.driver import run
from local.soak.world import INTERVAL, RULES, SECRET_KEY, window_open

P = "p-one"
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc).timestamp()  # inside the weekday window
WAVES = {"c-test": 1, "c-stage": 2, "c-prod": 3}


def _job(pool: str, created: float, seconds: float = 600.0, outcome: str = "Success", cluster: str = "c-prod") -> Job:
    return Job(f"job-{pool}-{created:.0f}", P, cluster, pool, created, created + seconds, outcome)


def _found(
    jobs: list[Job], start: Job, drifted: dict[tuple[str, str, str], list[float]] | None = None
) -> set[Invariant]:
    timeline = Timeline([*jobs, start], drifted or {}, WAVES, RULES)
    return {f.invariant for f in _starts_checked(timeline, [Start(start, 1, "worker")])}


def test_a_clean_start_breaks_nothing() -> None:
    assert _found([], _job("np-new", MONDAY_NOON)) == set()


def test_the_checker_catches_a_double_start() -> None:
    jobs = [_job("np-a", MONDAY_NOON), _job("np-a", MONDAY_NOON + 60)]
    assert [f.invariant for f in overlapping(jobs)] == [Invariant.ONE_AT_A_TIME]
    assert list(overlapping([_job("np-a", MONDAY_NOON), _job("np-a", MONDAY_NOON + 600)])) == []  # one after another


def test_the_checker_catches_a_start_past_the_budget() -> None:
    running = [_job(f"np-{n}", MONDAY_NOON - 60, cluster=f"c-x{n}") for n in range(RULES.max_syncing)]
    assert Invariant.BUDGET in _found(running, _job("np-new", MONDAY_NOON, cluster="c-new"))
    assert Invariant.BUDGET not in _found(running[1:], _job("np-new", MONDAY_NOON, cluster="c-new"))


def test_the_checker_catches_a_passs_start_past_the_per_cluster_limit() -> None:
    assert Invariant.BUDGET in _found([_job("np-a", MONDAY_NOON - 60)], _job("np-b", MONDAY_NOON))


def test_the_checker_catches_a_start_during_a_halt() -> None:
    failed = [
        _job(f"np-f{n}", MONDAY_NOON - 1200, outcome="Failed", cluster=f"c-f{n}")
        for n in range(RULES.halt_after_failures)
    ]
    drifted = {(P, job.cluster, job.pool): [MONDAY_NOON - 3600] for job in failed}
    assert Invariant.HALT in _found(failed, _job("np-new", MONDAY_NOON), drifted)
    assert Invariant.HALT not in _found(failed[1:], _job("np-new", MONDAY_NOON), drifted)


def test_the_checker_catches_a_start_in_a_closed_wave() -> None:
    drifted = {(P, "c-test", "np-t"): [MONDAY_NOON - 3600]}
    assert Invariant.WAVES in _found([], _job("np-s", MONDAY_NOON, cluster="c-stage"), drifted)
    synced = [_job("np-t", MONDAY_NOON - 1800, cluster="c-test")]  # its sync ended: wave 1 is done
    assert Invariant.WAVES not in _found(synced, _job("np-s", MONDAY_NOON, cluster="c-stage"), drifted)


def test_the_checker_catches_a_start_outside_a_window() -> None:
    saturday_noon = MONDAY_NOON - 2 * 86400
    assert not window_open(saturday_noon) and window_open(MONDAY_NOON)
    assert Invariant.WINDOWS in _found([], _job("np-a", saturday_noon))


def test_an_override_excuses_only_the_guard_it_lifts() -> None:
    saturday_noon = MONDAY_NOON - 2 * 86400
    timeline = Timeline([_job("np-a", saturday_noon)], {}, WAVES, RULES)
    lifted = Start(_job("np-a", saturday_noon), 1, "apig-sync", ("ignore_windows",))
    assert list(_starts_checked(timeline, [lifted])) == []


def test_the_checker_catches_an_alert_sent_twice_and_one_never_sent() -> None:
    job = _job("np-a", MONDAY_NOON, outcome="Failed")
    twice = [{"message": f"sync job failed, job {job.id}"}] * 2  # two messages naming no pass: two passes
    repeated = [{"message": f"sync job failed, job {job.id}\n\npass timer-1-a\n"}] * 2  # one pass, delivered twice
    passes = {(P, job.cluster): [(job.end + 30, True, job.end + 40)]}
    assert [f.invariant for f in news_checked([job], twice, passes)[1]] == [Invariant.NEWS]
    assert [f.what for f in news_checked([job], [], passes)[1]] == [f"job {job.id} of np-a never announced"]
    assert news_checked([job], twice[:1], passes)[1] == [] and news_checked([job], repeated, passes)[1] == []
    unable = {(P, job.cluster): [(job.end + 30, False, job.end + 40)]}  # the pass could not read the job or publish
    assert news_checked([job], [], unable)[1] == []
    later = {
        (P, job.cluster): [(job.end + INTERVAL + 1, True, job.end + INTERVAL + 5)]
    }  # no pass within the interval after it
    assert news_checked([job], [], later)[1] == []
    superseded = news_checked([job], [], passes, latest=lambda failed, listed: False)  # an operator synced it again
    assert superseded[1] == []


def test_the_checker_catches_a_secret_anywhere() -> None:
    assert secrets_checked(["all clear", f"key {SECRET_KEY}"])[1][0].invariant is Invariant.SECRETS


@pytest.mark.parametrize("seed", [7, 11])
def test_a_short_soak_holds_every_invariant(seed: int) -> None:
    with Emulator() as emulator:
        history = run(seed, 10, emulator)
    report = check(history)
    assert report.findings == [], report.findings[:3]
    assert len(history.invocations) > 60 and all(
        report.tested[i] > 0 for i in (Invariant.ONE_AT_A_TIME, Invariant.BUDGET)
    )
    assert report.tested[Invariant.DEADLINE] == len(history.invocations) and report.tested[Invariant.SECRETS] > 100


def test_make_soak_prints_the_seed_and_each_invariant_and_exits_1_on_a_violation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from local.soak import __main__ as soak
    from local.soak.check import Finding, Report

    assert soak.main(["--seed", "5", "--ticks", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("soak seed 5 (SOAK_SEED=5 make soak replays it)")
    assert all(f"\n{invariant.value}   " in printed for invariant in Invariant)
    found = Finding(Invariant.WINDOWS, MONDAY_NOON, "np-a started outside every window", 1)
    monkeypatch.setattr(soak, "check", lambda history: Report(check(history).tested, [found]))
    assert soak.main(["--seed", "5", "--ticks", "2"]) == 1
    assert "FAILED: 1 violation(s); replay with SOAK_SEED=5" in capsys.readouterr().out
