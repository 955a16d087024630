"""`python -m local.soak [--seed N] [--ticks N]` (make soak): one soak, its figures, exit 1 on any violation."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import datetime, timezone

from ..emulator import Emulator
from .check import Invariant, Report, check
from .driver import History, run

TEXT = {
    Invariant.ONE_AT_A_TIME: "one sync at a time per pool; none sent to a pool read as syncing",
    Invariant.BUDGET: "syncing pools within max_syncing (and max_syncing_per_cluster for passes)",
    Invariant.HALT: "no start while the halt is in force",
    Invariant.WAVES: "no start of a wave while an earlier one is drifted, syncing or backing off",
    Invariant.WINDOWS: "no start outside a window",
    Invariant.NEWS: "each failed job announced at most once, and by the pass that reads it",
    Invariant.DEADLINE: "every answer within its deadline",
    Invariant.SECRETS: "no secret in any answer, log or payload",
    Invariant.REDELIVERY: "a redelivered event does what its first delivery did",
}


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%a %Y-%m-%d %H:%M:%S")


def figures(history: History, report: Report, seconds: float) -> list[str]:
    """The soak in lines: per invariant, moments tested and violations; what ran; answer times."""
    kinds = Counter(call.kind for call in history.invocations)
    sent = [r for r in history.emulator.requests if r.method == "POST" and r.path.endswith("/operation/upgrade")]
    ratios = sorted((c.ended - c.started) * 1000 / c.deadline_ms for c in history.invocations)
    times = sorted((c.ended - c.started) * 1000 for c in history.invocations)
    days = (history.end - history.start) / 86400
    lines = [
        f"soak seed {history.seed}: {len(history.invocations)} invocations over {days:.1f} simulated days "
        f"({_utc(history.start)} to {_utc(history.end)} UTC) in {seconds:.0f} s",
        "",
        f"{'invariant':<4} {'what':<78} {'tested':>7} {'violations':>10}",
    ]
    for invariant in Invariant:
        tested, violated = report.tested[invariant], report.violations[invariant]
        lines.append(f"{invariant.value:<4} {TEXT[invariant]:<78} {tested:>7} {violated:>10}")
    lines += [
        "",
        "invocations: " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()),
        "faults injected: " + ", ".join(f"{kind} {count}" for kind, count in history.faults.most_common()),
        f"syncs sent: {len(sent)}; started: {sum(bool(r.job_id) for r in sent)}; "
        f"refused by CCE's lock: {sum(r.status == 429 and bool(r.syncing) for r in sent)}, "
        f"by injected 429s: {sum(r.status == 429 and not r.syncing for r in sent)}; "
        f"failed jobs: {sum(j.outcome == 'Failed' for j in history.emulator.jobs.values())}; "
        f"SMN messages: {len(history.emulator.published)}",
        f"starts past a limit only through a simultaneous invocation (allowed, see docs): {report.races}",
        f"answer time: median {statistics.median(times):.0f} ms, worst {times[-1]:.0f} ms; of the deadline: "
        f"median {statistics.median(ratios):.1%}, worst {ratios[-1]:.1%}",
    ]
    return lines


def around(history: History, report: Report, limit: int = 5) -> list[str]:
    """Each violation (the first `limit`) with the invocations around it."""
    lines = []
    for finding in report.findings[:limit]:
        lines += [
            "",
            f"{finding.invariant.value} at {_utc(finding.sim)}: {finding.what} (invocation {finding.invocation})",
        ]
        near = [c for c in history.invocations if abs(c.sim - finding.sim) <= 900]
        for call in near[:12]:
            answer = str(call.answer)[:140]
            lines.append(f"  #{call.number} {_utc(call.sim)} {call.kind} on {call.instance}: {answer}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.soak", description=__doc__)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED") or random.randrange(1 << 31)))
    parser.add_argument(
        "--ticks", type=int, default=int(os.environ.get("SOAK_STEPS") or 1008), help="timer ticks (1008: a week)"
    )
    args = parser.parse_args(argv)
    print(f"soak seed {args.seed} (SOAK_SEED={args.seed} make soak replays it), {args.ticks} ticks", flush=True)
    began = time.perf_counter()
    with Emulator() as emulator:
        history = run(args.seed, args.ticks, emulator)
    report = check(history)
    for line in figures(history, report, time.perf_counter() - began):
        print(line)
    if report.findings:
        for line in around(history, report):
            print(line)
        print(f"\nFAILED: {len(report.findings)} violation(s); replay with SOAK_SEED={args.seed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
