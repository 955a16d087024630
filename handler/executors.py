"""One executor per intent: the intent says what to do (judged already), its executor does it through the
`Cloud` and returns a result for `answers` to render. A refusal is raised as the error it carries."""

from __future__ import annotations

from .cloud import Cloud
from .intents import AskStatus, Coordinate, Ignore, Intent, Judge, ReactToChange, Refuse, RunPass, SyncFleet, SyncOne
from .results import Ignored, Result

__all__ = ["execute"]


def execute(intent: Intent, cloud: Cloud, judge: Judge) -> Result:
    """Do what the intent says; raises SyncError when it cannot be done."""
    if isinstance(intent, SyncOne):
        from .syncing import sync_one

        return sync_one(intent.sync, cloud, judge.settings.skip_if_busy)
    if isinstance(intent, AskStatus):
        from .syncing import ask_status

        status = ask_status(cloud, intent.target)
        if intent.waves is None:
            return status
        from .reconcile import wave_state

        return status._replace(wave=wave_state(intent.waves, cloud, judge.settings, intent.target.cluster_id))
    if isinstance(intent, Refuse):
        raise intent.error
    if isinstance(intent, Ignore):
        return Ignored(intent.reason)
    if isinstance(intent, SyncFleet):
        from .fleet import sync_fleet  # fleets and passes only: a single sync never imports them

        return sync_fleet(intent, cloud, judge)
    if isinstance(intent, Coordinate):
        from .coordinate import dispatch

        return dispatch(intent, cloud, judge.settings.own_urn(judge.defaults.project_id))
    from .reconcile import run_pass

    report = run_pass(intent.plan, cloud, judge.settings)
    if isinstance(intent, ReactToChange) and not any(c.pools or c.error for c in report.clusters):
        return Ignored(f"{intent.reason}, and the configured pass takes no such node pool")
    assert isinstance(intent, RunPass | ReactToChange)
    return report
