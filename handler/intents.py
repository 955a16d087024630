"""What one request asks for, decided without I/O: an unwrapped event and the settings become one intent.

    interpret(unwrapped, Judge(settings, defaults, now)) -> kinds.Intent (one of the table of kinds)

What can be judged before reading the cloud is judged here, once, for the handler and for
`python -m local validate` alike: the document (schema and rules), the allowlist, the maintenance windows (at
`now`), the configured pass. A fleet's selection is judged target by target once CCE has listed its pools.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .endpoints import Scope
from .errors import (
    ConfigurationError,
    DocumentInvalid,
    EventError,
    FieldError,
    OverridesDenied,
    SyncError,
    TargetNotAllowed,
)
from .gate import explicit_rules, window_holds
from .judge import Judge, Judged
from .kinds.refuse import Refuse
from .kinds.single import SyncOne
from .model import TIMER_PASS, Trigger, Unwrapped
from .validation import Defaults, is_fleet, is_reconcile, requested_overrides, target_of

if TYPE_CHECKING:  # the other kinds, fleets' and passes' plans: imported when one comes, never by a single sync
    from .kinds.change import ReactToChange
    from .kinds.fanout import Coordinate
    from .kinds.fleet import SyncFleet
    from .kinds.ignore import Ignore
    from .kinds.passes import RunPass
    from .kinds.table import Intent
    from .kinds.worker import Work
    from .plans import Fleet, Reconcile


def plan_reconcile(
    document: Mapping[str, Any], overrides: Mapping[str, str], defaults: Defaults, foreign: bool = False
) -> Reconcile:
    from .plans import plan_reconcile as plan

    return plan(document, overrides, defaults, foreign=foreign)


__all__ = ["interpret"]


def interpret(unwrapped: Unwrapped, judge: Judge) -> Intent:
    """The one intent of an unwrapped event (a pure function: the same input, the same intent)."""
    try:
        return _interpret(unwrapped, judge)
    except Judged as judged:
        return Refuse(judged.error, judged.target)
    except SyncError as error:
        return Refuse(error)


def _interpret(unwrapped: Unwrapped, judge: Judge) -> Intent:
    settings, defaults = judge.settings, judge.defaults
    if unwrapped.trigger in (Trigger.CTS, Trigger.EVENTGRID) and unwrapped.change:
        return _change(unwrapped.trace, judge)
    if unwrapped.asks_status:
        target = target_of(unwrapped.overrides, defaults)
        refusal = judge.refusal(*target)
        if refusal is not None:
            return Refuse(refusal, target)
        from .kinds.status import AskStatus

        return AskStatus(target, explicit_rules(settings.reconcile, frozenset()) is not None)
    document, overrides = unwrapped.document, unwrapped.overrides
    lifted = requested_overrides(document)
    if lifted and settings.overrides == "deny":
        return Refuse(OverridesDenied(f"SYNC_OVERRIDES=deny: no request may lift a guard ({', '.join(lifted)})"))
    if "scope" in document:
        return _worker(unwrapped, judge)
    if not document and unwrapped.trigger is Trigger.TIMER and settings.reconcile is not None:
        plan = _configured(judge, scheduled=True)._replace(pass_id=unwrapped.pass_id)
        if _fans_out(judge):
            return _coordinate({"reconcile": dict(settings.reconcile)}, unwrapped.pass_id, judge)
        from .kinds.passes import RunPass

        return RunPass(plan)
    if is_reconcile(document):
        plan = plan_reconcile(document, overrides, defaults)
        timer = unwrapped.trigger is Trigger.TIMER  # scheduled, whatever its user_event holds
        if _fans_out(judge) and not overrides:
            return _coordinate(document, unwrapped.pass_id if timer else _pass_id(unwrapped, judge), judge)
        return _pass(plan._replace(scheduled=timer, pass_id=unwrapped.pass_id if timer else plan.pass_id), judge)
    if is_fleet(document):
        from .plans import plan_fleet

        return _fleet(plan_fleet(document, overrides, defaults), judge)
    return SyncOne(judge.sync(document, overrides))


def _pass(plan: Reconcile, judge: Judge) -> RunPass | Refuse:
    refusal = judge.refusal(plan.project_id)
    if refusal is not None:
        return Refuse(refusal)
    from .kinds.passes import RunPass

    return RunPass(plan._replace(closed_until=judge.closed_until()))


def _fans_out(judge: Judge) -> bool:
    """Whether a pass covers more than the function's own region and project (SYNC_SCOPES)."""
    scopes = judge.settings.scopes
    return judge.settings.accessible or (
        bool(scopes) and scopes != (judge.settings.own_scope(judge.defaults.project_id),)
    )


def _pass_id(unwrapped: Unwrapped, judge: Judge) -> str:
    """A pass ID of the coordinator's own for a request that is not a timer's tick: unique per request (the time,
    the request's correlation ID and document), never shaped like a tick's; a document's own `pass_id` is never
    taken."""

    canonical = json.dumps(unwrapped.document, sort_keys=True, separators=(",", ":"), default=str)
    seed = f"{judge.now!r}|{unwrapped.trigger.value}|{unwrapped.correlation_id}|{canonical}"
    return "pass-" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def _coordinate(document: dict[str, Any], pass_id: str, judge: Judge) -> Coordinate | Refuse:
    """One worker per scope of SYNC_SCOPES (only the scopes of the document's project, when it names one); a scope
    whose project the allowlist does not reach is not dispatched."""
    body = {key: value for key, value in document.items() if key not in ("project_id", "scope", "pass_id")}
    wanted = document.get("project_id")
    from .kinds.fanout import Coordinate

    if judge.settings.accessible:  # the scopes are listed when the pass is coordinated
        project = wanted if isinstance(wanted, str) else ""
        return Coordinate({**body, "pass_id": pass_id}, pass_id, (), (), accessible=True, project=project)
    scopes = [scope for scope in judge.settings.scopes if wanted is None or scope.project_id == wanted]
    if not scopes:
        return Refuse(TargetNotAllowed(f"no scope of SYNC_SCOPES is in project {str(wanted)[:64]}"))
    dispatched, refused = [], []
    for scope in scopes:
        refusal = judge.refusal(scope.project_id)
        if refusal is None:
            dispatched.append(scope)
        else:
            refused.append((scope, refusal))
    return Coordinate({**body, "pass_id": pass_id}, pass_id, tuple(dispatched), tuple(refused))


def _worker(unwrapped: Unwrapped, judge: Judge) -> Work | Refuse:
    """A worker of a fanned-out pass: the pass for its scope, refused before any credential work when the
    scope is not one of SYNC_SCOPES, not reached by the allowlist, or not in a direct invocation."""
    document = unwrapped.document
    if unwrapped.trigger is not Trigger.DIRECT:
        return Refuse(EventError("a scope is honoured only in a direct (asynchronous) invocation of the function"))
    plan = plan_reconcile(document, {}, judge.defaults)  # the document's shape first (scope included)
    scope = Scope(document["scope"]["region"], document["scope"]["project_id"])
    own = judge.settings.own_scope(judge.defaults.project_id)
    regions = judge.settings.scope_regions
    listed = judge.settings.accessible and (not regions or scope.region in regions)
    if not listed and scope not in (judge.settings.scopes or (own,)):
        return Refuse(TargetNotAllowed(f"scope {scope.region}/{scope.project_id} is not in SYNC_SCOPES"))
    if document.get("project_id", scope.project_id) != scope.project_id:
        return Refuse(DocumentInvalid([FieldError("/project_id", "differs from the scope's, which decides")]))
    refusal = judge.refusal(scope.project_id)
    if refusal is not None:
        return Refuse(refusal)
    foreign = scope != own
    defaults = judge.defaults._replace(
        project_id=scope.project_id, cluster_id="" if foreign else judge.defaults.cluster_id
    )
    options = dict(document["reconcile"])
    if foreign and "clusters" not in options:
        options["clusters"] = "all"  # CCE_CLUSTER_ID is a cluster of the function's own project
    plan = plan_reconcile({**document, "reconcile": options}, {}, defaults, foreign=foreign)
    scheduled = plan.pass_id.startswith(TIMER_PASS)
    from .kinds.worker import Work

    return Work(plan._replace(region=scope.region, closed_until=judge.closed_until(), scheduled=scheduled))


def _configured(judge: Judge, scheduled: bool = False) -> Reconcile:
    """The pass the function's own settings describe (SYNC_RECONCILE, CCE_SYNC_SPEC): their faults are its own."""
    options = dict(judge.settings.reconcile or {})
    try:
        plan = plan_reconcile({"reconcile": options}, {}, judge.defaults)
    except DocumentInvalid as error:
        raise ConfigurationError(
            f"SYNC_RECONCILE and CCE_SYNC_SPEC make no valid reconcile pass: {error.message}"
        ) from None
    return plan._replace(closed_until=judge.closed_until(), scheduled=scheduled)


def _fleet(fleet: Fleet, judge: Judge) -> SyncFleet | Refuse:
    closed_until = judge.closed_until()
    lifts = frozenset(requested_overrides(fleet.shared))
    if closed_until is not None and window_holds(closed_until, lifts):  # outside every window, none of it starts
        return Refuse(judge.outside_window(closed_until))
    from .kinds.fleet import SyncFleet
    from .plans import Selection

    if fleet.selection is not Selection.TARGETS:
        refusal = judge.refusal(fleet.project_id, fleet.cluster_id)
        return Refuse(refusal) if refusal is not None else SyncFleet(fleet)
    return SyncFleet(fleet, tuple(judge.target(document) for document in fleet.documents))


def _change(trace: Any, judge: Judge) -> ReactToChange | Ignore | Refuse:
    """A change acts only within the configured pass: on its clusters (or all, when it says so), its pools."""
    from .changes import read_trace  # change events are rare: their reading is imported when one comes
    from .kinds.change import ReactToChange
    from .kinds.ignore import Ignore

    change = read_trace(trace)
    if not change.relevant:
        return Ignore(change.reason)
    scopes, own = judge.settings.scopes, judge.settings.own_scope(judge.defaults.project_id)
    if scopes and own not in scopes and not judge.settings.accessible:
        return Ignore(
            f"{change.reason}, and the function's own scope ({own.region}/{own.project_id}) is not in SYNC_SCOPES"
        )
    options = judge.settings.reconcile or {}
    if "clusters" not in options and not judge.defaults.cluster_id:
        return Ignore(f"{change.reason}, and no cluster is configured to look at")
    plan = _configured(judge)
    if change.cluster_id:
        if not plan.every_cluster and change.cluster_id not in plan.cluster_ids:
            return Ignore(f"{change.reason}: cluster {change.cluster_id} is not in the configured pass")
        plan = plan._replace(
            every_cluster=False,
            cluster_ids=(change.cluster_id,),
            context_clusters=plan.cluster_ids,
            context_every=plan.every_cluster,
        )
    if change.nodepool_id:
        plan = plan._replace(focus=change.nodepool_id)
    refusal = judge.refusal(plan.project_id)
    return Refuse(refusal) if refusal is not None else ReactToChange(plan, change.reason)
