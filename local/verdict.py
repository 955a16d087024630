"""`python -m local validate`: the verdict the handler would reach on an event or document, without sending.

It runs the handler's own steps (triggers.unwrap, the settings, the defaults, validation, the allowlist) in
the handler's order, so `validate` and `invoke --dry-run` agree (a test checks it on every sample event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from handler import plans, triggers, validation
from handler.errors import DocumentInvalid, SyncError, TargetNotAllowed
from handler.settings import Settings
from handler.triggers import Trigger

__all__ = ["Verdict", "verdict"]

_SOURCES = {
    "project_id": "HUAWEICLOUD_SDK_PROJECT_ID",
    "cluster_id": "CCE_CLUSTER_ID",
    "nodepool_id": "CCE_NODEPOOL_ID",
    "spec": "CCE_SYNC_SPEC",
}


class Verdict(NamedTuple):
    """Valid or not; the problems (one line each); the defaults the environment supplied."""

    valid: bool
    kind: str
    problems: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()


def _applied(
    document: Mapping[str, Any], overrides: Mapping[str, str], defaults: validation.Defaults
) -> tuple[str, ...]:
    applied = []
    for field, variable in _SOURCES.items():
        if field not in document and field not in overrides and getattr(defaults, field):
            applied.append(f"{field} from {variable}")
    return tuple(applied)


def _allowed(settings: Settings, defaults: validation.Defaults, target: validation.Target) -> None:
    if not settings.allowed_targets.allows(defaults.project_id, *target):
        raise TargetNotAllowed(f"{target.cluster_id}/{target.nodepool_id} is not in SYNC_ALLOWED_TARGETS")


def _one(settings: Settings, unwrapped: triggers.Unwrapped) -> Verdict:
    defaults = settings.defaults()
    document, overrides = unwrapped.document, unwrapped.overrides
    if unwrapped.change is not None:
        reason = unwrapped.change.reason
        return Verdict(True, "change event" if unwrapped.change.relevant else f"change event, ignored: {reason}")
    if not document and unwrapped.trigger is Trigger.TIMER and settings.reconcile is not None:
        document = {"reconcile": dict(settings.reconcile)}
    if validation.is_reconcile(document):
        plan = plans.plan_reconcile(document, overrides, defaults)
        applied = ("spec from CCE_SYNC_SPEC",) if "spec" not in document else ()
        return Verdict(
            True,
            f"reconcile pass over {'every cluster' if plan.every_cluster else len(plan.cluster_ids)} cluster(s)",
            defaults=applied,
        )
    if validation.is_fleet(document):
        fleet = plans.plan_fleet(document, overrides, defaults)
        for target in fleet.documents:
            _allowed(settings, defaults, validation.prepare(target, {}, defaults).target)
        return Verdict(True, f"fleet ({fleet.selection.value})", defaults=_applied(document, overrides, defaults))
    sync = validation.prepare(document, overrides, defaults)
    _allowed(settings, defaults, sync.target)
    return Verdict(True, "single sync", defaults=_applied(document, overrides, defaults))


def verdict(event: Any, environment: Mapping[str, str]) -> list[Verdict]:
    """One verdict per document the event holds (one, or one per event of an EventGrid batch)."""
    try:
        settings = Settings.from_environ(environment)
        trigger = triggers.recognize(event)
        items = triggers.unwrap_batch(event) if trigger is Trigger.EVENTGRID_BATCH else [event]
    except SyncError as error:
        return [Verdict(False, "event", (error.message,))]
    verdicts = []
    for item in items:
        kind = Trigger.EVENTGRID if trigger is Trigger.EVENTGRID_BATCH else trigger
        try:
            if not isinstance(item, dict) or (kind is Trigger.EVENTGRID and "specversion" not in item):
                raise triggers.not_a_cloudevent(item)
            verdicts.append(_one(settings, triggers.unwrap(item, kind, settings.max_body_bytes)))
        except DocumentInvalid as error:
            problems = tuple(str(e) for e in error.errors) + (
                (f"... and {error.omitted} more",) if error.omitted else ()
            )
            verdicts.append(Verdict(False, "document", problems))
        except SyncError as error:
            verdicts.append(Verdict(False, "document", (error.message,)))
    return verdicts
