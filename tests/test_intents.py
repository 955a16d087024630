"""interpret(): every event shape and settings case becomes one intent, decided without I/O (no emulator here)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from handler import intents, triggers
from handler.errors import ConfigurationError
from handler.judge import judge
from handler.kinds.table import AskStatus, Ignore, Intent, ReactToChange, Refuse, RunPass, SyncFleet, SyncOne
from handler.model import Target
from handler.settings import Settings
from local.emulator import cloud_event, cts_trace
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, apig_event, load_event

SPEC = {"maxUnavailable": 1}
BASE = {
    "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
    "CCE_CLUSTER_ID": CLUSTER,
    "CCE_NODEPOOL_ID": NODEPOOL,
    "CCE_SYNC_SPEC": json.dumps(SPEC),
}
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc).timestamp()  # a Wednesday, 12:00 UTC
DEFAULT_TARGET = Target(PROJECT, CLUSTER, NODEPOOL)


def interpret(event: Any, **environment: str | None) -> Intent:
    merged = {k: v for k, v in {**BASE, **environment}.items() if v is not None}
    settings = Settings.from_environ(merged)
    trigger = triggers.recognize(event)
    unwrapped = triggers.unwrap(event, trigger, settings.max_body_bytes)
    return intents.interpret(unwrapped, judge(settings, "", NOW))


def timer(document: Any) -> dict[str, Any]:
    return {**load_event("timer.json"), "user_event": json.dumps(document)}


def eventgrid(document: Any) -> dict[str, Any]:
    return {**load_event("eventgrid.json"), "data": document}


def _code(intent: Intent) -> str:
    assert isinstance(intent, Refuse), intent
    return intent.error.code


# --- single syncs --------------------------------------------------------------------------------------------

SHAPES = {"direct": lambda d: d, "timer": timer, "eventgrid": eventgrid}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(
    "document",
    [{"force": True}, {"wait": True}, {"metadata": {"labels": {"team": "ops"}}}, {"dry_run": True}, {"spec": SPEC}],
    ids=["force", "wait", "metadata", "dry_run", "spec"],
)
def test_a_document_of_control_fields_alone_syncs_the_default_pool(shape: str, document: dict[str, Any]) -> None:
    intent = interpret(SHAPES[shape](document))
    assert isinstance(intent, SyncOne) and intent.target == DEFAULT_TARGET


def test_document_keys_come_from_the_generated_schemas() -> None:
    from handler.validation import SCHEMA_DIR, document_keys

    names = ("sync-request", "sync-fleet", "sync-reconcile")
    schemas = [json.loads((SCHEMA_DIR / f"{n}.schema.json").read_text()) for n in names]
    assert document_keys() == {key for schema in schemas for key in schema["properties"]}


def test_an_object_with_no_known_key_is_no_request() -> None:
    with pytest.raises(Exception, match="none of the expected shapes"):
        interpret({"hello": "world"})


@pytest.mark.parametrize(
    ("document", "environment", "code"),
    [
        ({"spec": {"maxUnavailable": 0}}, {}, "FUNC.INVALID"),
        ({"wait": True}, {"CCE_SYNC_SPEC": None}, "FUNC.INVALID"),
        ({"spec": SPEC}, {"SYNC_ALLOWED_TARGETS": "other/*"}, "FUNC.FORBIDDEN"),
        ({"spec": SPEC, "project_id": "p2"}, {"SYNC_ALLOWED_TARGETS": f"{CLUSTER}/*"}, "FUNC.FORBIDDEN"),
        ({"spec": SPEC}, {"SYNC_WINDOWS": "Mon 01:00-02:00+00:00"}, "FUNC.WINDOW"),
    ],
    ids=["invalid", "no spec", "allowlist", "another project", "outside every window"],
)
def test_a_single_sync_that_cannot_go_is_refused_with_its_code(
    document: dict[str, Any], environment: dict[str, str | None], code: str
) -> None:
    assert _code(interpret(document, **environment)) == code


def test_a_refusal_after_validation_names_the_target() -> None:
    intent = interpret({"spec": SPEC}, SYNC_ALLOWED_TARGETS="other/*")
    assert isinstance(intent, Refuse) and intent.target == DEFAULT_TARGET


@pytest.mark.parametrize(
    ("windows", "document"),
    [("Wed 11:00-13:00+00:00", {"spec": SPEC}), ("Mon 01:00-02:00+00:00", {"spec": SPEC, "force": True})],
    ids=["inside a window", "forced outside"],
)
def test_a_window_open_at_now_or_force_lets_a_sync_go(windows: str, document: dict[str, Any]) -> None:
    assert isinstance(interpret(document, SYNC_WINDOWS=windows), SyncOne)


@pytest.mark.parametrize(
    ("windows", "shown"),
    [
        ("Thu 01:00-05:00+08:00", "2026-12-02T17:00:00Z (Thu 01:00+08:00 as configured)"),
        ("Wed 09:00-10:00-05:00", "2026-12-02T14:00:00Z (Wed 09:00-05:00 as configured)"),
    ],
)
def test_a_closed_window_names_its_next_opening_in_utc_and_as_configured(windows: str, shown: str) -> None:
    intent = interpret({"spec": SPEC}, SYNC_WINDOWS=windows)
    assert isinstance(intent, Refuse) and intent.error.message.endswith(f"next opens {shown}")


def test_sync_dry_run_makes_every_sync_a_dry_run_whatever_the_document_says() -> None:
    intent = interpret({"spec": SPEC, "dry_run": False}, SYNC_DRY_RUN="true")
    assert isinstance(intent, SyncOne) and intent.sync.dry_run


# --- API Gateway ---------------------------------------------------------------------------------------------


def test_a_post_on_the_route_syncs_the_paths_pool() -> None:
    intent = interpret(apig_event({"spec": SPEC}, {"cluster_id": "c-2", "nodepool_id": "np-2"}))
    assert isinstance(intent, SyncOne) and intent.target == Target(PROJECT, "c-2", "np-2")


def test_a_get_on_the_route_asks_for_status() -> None:
    intent = interpret(apig_event(None, {"cluster_id": "c-2", "nodepool_id": "np-2"}, httpMethod="GET", body=None))
    assert isinstance(intent, AskStatus) and intent.target == Target(PROJECT, "c-2", "np-2")


def test_a_status_question_outside_the_allowlist_is_refused() -> None:
    event = apig_event(None, {"cluster_id": "c-2", "nodepool_id": "np-2"}, httpMethod="GET", body=None)
    assert _code(interpret(event, SYNC_ALLOWED_TARGETS=f"{CLUSTER}/*")) == "FUNC.FORBIDDEN"


# --- fleets --------------------------------------------------------------------------------------------------


def test_a_fleet_of_targets_judges_each_target() -> None:
    targets = [{"nodepool_id": "np-1"}, {"nodepool_id": "np-2"}, {"nodepool_id": "np-3", "spec": {"maxUnavailable": 0}}]
    fleet = {"spec": SPEC, "targets": targets}
    intent = interpret(fleet, SYNC_ALLOWED_TARGETS=f"{CLUSTER}/np-1,{CLUSTER}/np-3")
    assert isinstance(intent, SyncFleet)
    first, second, third = intent.judged
    assert first.target.nodepool_id == "np-1"  # type: ignore[union-attr]
    assert second.code == "FUNC.FORBIDDEN" and third.code == "FUNC.INVALID"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("environment", "code"),
    [
        ({"SYNC_ALLOWED_TARGETS": "other/*"}, "FUNC.FORBIDDEN"),
        ({"SYNC_WINDOWS": "Mon 01:00-02:00+00:00"}, "FUNC.WINDOW"),
    ],
    ids=["cluster outside the allowlist", "outside every window"],
)
def test_a_fleet_by_names_is_refused_before_any_read(environment: dict[str, str], code: str) -> None:
    fleet = {"spec": SPEC, "nodepools": {"names": ["web"]}}
    assert _code(interpret(fleet, **environment)) == code


def test_a_fleet_by_names_in_an_allowed_cluster_is_left_to_the_list() -> None:
    intent = interpret({"spec": SPEC, "nodepools": {"names": ["web"]}}, SYNC_ALLOWED_TARGETS=f"{CLUSTER}/*")
    assert isinstance(intent, SyncFleet) and intent.judged == ()


# --- reconcile passes ----------------------------------------------------------------------------------------


def test_an_empty_timer_runs_the_configured_pass_as_the_scheduled_one() -> None:
    intent = interpret(load_event("timer-defaults.json"), SYNC_RECONCILE="{}")
    assert isinstance(intent, RunPass) and intent.plan.scheduled and intent.plan.cluster_ids == (CLUSTER,)


def test_a_reconcile_document_is_a_pass_that_is_not_the_scheduled_one() -> None:
    intent = interpret({"reconcile": {"clusters": ["c-1", "c-1", "c-2"]}})
    assert isinstance(intent, RunPass) and not intent.plan.scheduled and intent.plan.cluster_ids == ("c-1", "c-2")


def test_a_pass_judges_the_windows_once_at_now() -> None:
    intent = interpret({"reconcile": {}}, SYNC_WINDOWS="Thu 01:00-02:00+00:00")
    expected = datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc).timestamp()
    assert isinstance(intent, RunPass) and intent.plan.closed_until == expected


@pytest.mark.parametrize(
    ("event", "environment", "code"),
    [
        ({"reconcile": {}, "project_id": "p2"}, {"SYNC_ALLOWED_TARGETS": f"{CLUSTER}/*"}, "FUNC.FORBIDDEN"),
        ({"reconcile": {"max_syncing_per_cluster": 0}}, {}, "FUNC.INVALID"),
    ],
    ids=["a project outside the allowlist", "an invalid document"],
)
def test_a_pass_that_cannot_run_is_refused(event: Any, environment: dict[str, str], code: str) -> None:
    assert _code(interpret(event, **environment)) == code


# --- change events -------------------------------------------------------------------------------------------


def _trace(cluster: str = CLUSTER, pool: str = "np-a", **changes: Any) -> dict[str, Any]:
    event = cts_trace(PROJECT, cluster, pool, "a")
    event["cts"].update(changes)
    return event


@pytest.mark.parametrize("shape", [lambda t: t, cloud_event], ids=["cts", "eventgrid"])
def test_a_pool_change_narrows_the_configured_pass_to_that_pool(shape: Any) -> None:
    intent = interpret(shape(_trace()), SYNC_RECONCILE='{"max_syncing_per_cluster": 2}')
    assert isinstance(intent, ReactToChange)
    assert intent.plan.cluster_ids == (CLUSTER,) and intent.plan.focus == "np-a" and not intent.plan.scheduled


@pytest.mark.parametrize(
    ("trace", "reconcile", "words"),
    [
        (_trace(code="500"), "{}", "did not succeed"),
        (_trace(trace_name="deleteNodePool"), "{}", "not a node pool change"),
        (_trace(cluster="c-elsewhere"), '{"clusters": ["c-1"]}', "not in the configured pass"),
    ],
    ids=["a failed call", "another trace", "a cluster the pass leaves out"],
)
def test_a_change_outside_what_the_pass_covers_is_ignored(trace: Any, reconcile: str, words: str) -> None:
    intent = interpret(trace, SYNC_RECONCILE=reconcile)
    assert isinstance(intent, Ignore) and words in intent.reason


def test_a_change_in_any_cluster_counts_when_the_pass_takes_all() -> None:
    intent = interpret(_trace(cluster="c-elsewhere"), SYNC_RECONCILE='{"clusters": "all"}')
    assert isinstance(intent, ReactToChange) and intent.plan.cluster_ids == ("c-elsewhere",)


# --- the same input, the same intent -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["timer.json", "eventgrid.json", "apig.json", "direct.json", "apig-plain-body.json"])
def test_interpret_is_pure(name: str) -> None:
    event = load_event(name)
    assert interpret(event) == interpret(event) and isinstance(interpret(event), SyncOne)


def test_the_windows_are_judged_at_the_given_time_not_the_clock() -> None:
    settings = Settings.from_environ({**BASE, "SYNC_WINDOWS": "Wed 11:00-13:00+00:00"})
    unwrapped = triggers.unwrap({"spec": SPEC}, triggers.recognize({"spec": SPEC}), 1024)
    inside = intents.interpret(unwrapped, judge(settings, "", NOW))
    outside = intents.interpret(unwrapped, judge(settings, "", NOW + timedelta(hours=2).total_seconds()))
    assert isinstance(inside, SyncOne) and _code(outside) == "FUNC.WINDOW"


def test_an_apig_body_is_judged_as_a_document() -> None:
    body = base64.b64encode(json.dumps({"spec": {"maxUnavailable": 99}}).encode()).decode()
    assert _code(interpret({**apig_event(), "body": body})) == "FUNC.INVALID"


# --- API Gateway routes never fall back to the defaults ----------------------------------------------------------


def test_a_route_without_path_parameters_takes_the_ids_from_its_path() -> None:
    event = {**apig_event({"spec": SPEC}), "pathParameters": {"": "c-9/nodepools/np-9"}}
    event["path"] = "/clusters/c-9/nodepools/np-9/sync"
    intent = interpret(event)
    assert isinstance(intent, SyncOne) and intent.target == Target(PROJECT, "c-9", "np-9")


@pytest.mark.parametrize("path", ["/clusters//nodepools/np-9/sync", "/clusters/c-9/nodepools//sync"])
def test_a_route_naming_a_pool_it_gives_no_id_for_is_refused(path: str) -> None:
    event = {**apig_event({"spec": SPEC}), "pathParameters": {}, "path": path}
    with pytest.raises(Exception, match="names a"):
        interpret(event)


def test_a_route_that_names_no_target_uses_the_defaults() -> None:
    intent = interpret(load_event("apig-published.json"))  # GET /PathParameterTest/helloWorld/Test
    assert isinstance(intent, AskStatus) and intent.target == DEFAULT_TARGET


def test_a_reconcile_documents_unset_options_take_the_schemas_defaults() -> None:
    from handler.plans import plan_reconcile
    from handler.validation import RECONCILE_SCHEMA, Defaults, schema_defaults

    plan = plan_reconcile({"reconcile": {}, "spec": {"maxUnavailable": 1}}, {}, Defaults(PROJECT, CLUSTER))
    defaults = schema_defaults(RECONCILE_SCHEMA)
    assert (plan.max_syncing_per_cluster, plan.concurrency) == (
        defaults["max_syncing_per_cluster"],
        defaults["concurrency"],
    )


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SYNC_RECONCILE", '{"max_syncing_per_cluster": 0}', "/max_syncing_per_cluster"),
        ("SYNC_RECONCILE", '{"wavess": [["c-1"]]}', "wavess"),
        ("CCE_SYNC_SPEC", '{"maxUnavailable": 0}', "/maxUnavailable"),
    ],
    ids=["a bound", "an unknown field", "the default spec"],
)
def test_a_malformed_configured_pass_or_spec_is_refused_when_the_settings_are_read(
    variable: str, value: str, named: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_environ({variable: value})
    assert refused.value.message.startswith(f"{variable}: ") and named in refused.value.message
