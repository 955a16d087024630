"""`python -m local validate`: the handler's own judgement of an event, without sending anything.

It is the handler's first steps, not a copy of them: settings, triggers.recognize/unwrap, then
intents.interpret at the current time. So `validate` and `invoke --dry-run` agree by construction on whatever is
decided before the cloud is read (a test checks it on every sample event, fleets, passes and change events).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from handler import intents, triggers
from handler.errors import DocumentInvalid, SyncError
from handler.intents import AskStatus, Ignore, ReactToChange, Refuse, RunPass, SyncFleet, SyncOne
from handler.model import Trigger, Unwrapped
from handler.settings import Settings

__all__ = ["Verdict", "verdict"]

_SOURCES = {
    "project_id": "HUAWEICLOUD_SDK_PROJECT_ID",
    "cluster_id": "CCE_CLUSTER_ID",
    "nodepool_id": "CCE_NODEPOOL_ID",
    "spec": "CCE_SYNC_SPEC",
}


class Verdict(NamedTuple):
    """Valid or not; what it is; the problems (one line each, with the handler's error code); the defaults the
    environment supplied."""

    valid: bool
    kind: str
    problems: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()


def problems(error: SyncError, where: str = "") -> tuple[str, ...]:
    """One line per problem, each ending with the error code the handler answers."""
    prefix = f"{where}: " if where else ""
    if isinstance(error, DocumentInvalid):
        lines = [f"{prefix}{e} [{error.code}]" for e in error.errors]
        return (*lines, *((f"{prefix}... and {error.omitted} more [{error.code}]",) if error.omitted else ()))
    return (f"{prefix}{error.message} [{error.code}]",)


def _applied(unwrapped: Unwrapped, judge: intents.Judge, fields: tuple[str, ...]) -> tuple[str, ...]:
    document, overrides, defaults = unwrapped.document, unwrapped.overrides, judge.defaults
    return tuple(
        f"{field} from {_SOURCES[field]}"
        for field in fields
        if field not in document and field not in overrides and getattr(defaults, field)
    )


def _describe(unwrapped: Unwrapped, intent: intents.Intent, judge: intents.Judge) -> Verdict:
    if isinstance(intent, Refuse):
        return Verdict(False, "document", problems(intent.error))
    if isinstance(intent, SyncOne):
        return Verdict(True, "single sync", defaults=_applied(unwrapped, judge, tuple(_SOURCES)[:3]))
    if isinstance(intent, SyncFleet):
        found = tuple(
            line
            for index, one in enumerate(intent.judged)
            if isinstance(one, SyncError)
            for line in problems(one, f"/targets/{index}")
        )
        applied = _applied(unwrapped, judge, ("project_id", "cluster_id"))
        return Verdict(not found, f"fleet ({intent.fleet.selection.value})", found, applied)
    if isinstance(intent, RunPass):
        plan = intent.plan
        where = "every cluster" if plan.every_cluster else f"{len(plan.cluster_ids)} cluster(s)"
        applied = ("spec from CCE_SYNC_SPEC",) if "spec" not in unwrapped.document else ()
        return Verdict(True, f"reconcile pass over {where}", defaults=applied)
    if isinstance(intent, ReactToChange):
        return Verdict(True, f"change event: {intent.reason}")
    if isinstance(intent, Ignore):
        return Verdict(True, f"change event, ignored: {intent.reason}")
    assert isinstance(intent, AskStatus)
    return Verdict(True, "status question")


def verdict(event: Any, environment: Mapping[str, str], now: float | None = None) -> list[Verdict]:
    """One verdict per request the event holds (one, or one per event of an EventGrid batch)."""
    try:
        settings = Settings.from_environ(environment)
        trigger = triggers.recognize(event)
        items = triggers.unwrap_batch(event) if trigger is Trigger.EVENTGRID_BATCH else [event]
    except SyncError as error:
        return [Verdict(False, "event", problems(error))]
    judge = intents.judge(settings, "", time.time() if now is None else now)
    verdicts = []
    for item in items:
        kind = Trigger.EVENTGRID if trigger is Trigger.EVENTGRID_BATCH else trigger
        try:
            unwrapped = triggers.unwrap(item, kind, settings.max_body_bytes)
        except SyncError as error:
            verdicts.append(Verdict(False, "event", problems(error)))
            continue
        verdicts.append(_describe(unwrapped, intents.interpret(unwrapped, judge), judge))
    return verdicts
