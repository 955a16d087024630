"""One gate for every start: its decisions as a table (no HTTP), the admission no other module can make, and,
against the emulator, each guard of the configured pass holding a single sync, a fleet's target and a change
event, while the request's override (or no such guard) lets the same request through."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from handler import gate
from handler.decide import Action, Candidate, Decision, Guard
from handler.errors import BudgetReached, Halted, WaveClosed
from handler.model import PoolClass, PoolState, Target
from local.emulator import Emulator
from tests.conftest import PROJECT, apig_event, load_event, status_body

Invoke = Callable[..., Any]
SPEC = {"maxUnavailable": 1}
TARGET = Target(PROJECT, "c-stage", "np-stage")


def _pool(pool_id: str, kind: str = "drifted") -> PoolState:
    counts = {"drifted": (2, 0), "in_sync": (2, 2)}.get(kind, (2, 1))
    return PoolState(pool_id, pool_id, kind == "syncing", "", *counts)


def _view(*pools: tuple[str, str, str, int], unread: tuple[tuple[str, int], ...] = ()) -> gate.View:
    """Candidates as (cluster, pool, kind, wave); kind "failed" is a drifted pool whose last sync failed."""
    made = []
    for cluster, pool_id, kind, wave in pools:
        state = _pool(pool_id, "drifted" if kind == "failed" else kind)
        decision = Decision(state.kind, Action.STARTED if state.kind is PoolClass.DRIFTED else None)
        made.append(Candidate(cluster, state, decision._replace(failed=kind == "failed"), wave))
    waves = {cluster: wave for cluster, _, _, wave in pools}
    return gate.View(tuple(made), waves, 3, unread)


@pytest.mark.parametrize(
    ("options", "lifts", "expected"),
    [
        ({}, frozenset(), None),
        ({"max_syncing_per_cluster": 2}, frozenset(), None),
        ({"halt_after_failures": 2}, frozenset(), (2, 0, None)),
        ({"halt_after_failures": 2}, frozenset({"ignore_halt"}), None),
        ({"halt_after_failures": 2, "ignore_halt": True}, frozenset(), None),
        ({"waves": [["c-test"]]}, frozenset(), (None, 1, None)),
        ({"waves": [["c-test"]]}, frozenset({"ignore_waves"}), None),
        ({"max_syncing": 3}, frozenset(), (None, 0, 3)),
        ({"max_syncing": 3, "waves": [["a"]]}, frozenset({"ignore_budget"}), (None, 1, None)),
    ],
    ids=[
        "nothing configured",
        "the per-cluster limit is not an operator's guard",
        "the halt",
        "ignore_halt lifts it",
        "the configured pass's own ignore_halt too",
        "the waves",
        "ignore_waves lifts them",
        "the budget",
        "ignore_budget lifts only the budget",
    ],
)
def test_an_operators_request_meets_the_configured_halt_waves_and_budget(
    options: dict[str, Any], lifts: frozenset[str], expected: tuple[int | None, int, int | None] | None
) -> None:
    rules = gate.explicit_rules(options, lifts)
    assert (rules and (rules.halt_after_failures, rules.waves, rules.max_syncing)) == expected
    assert rules is None or rules.explicit


@pytest.mark.parametrize(
    ("options", "view", "guard"),
    [
        ({"halt_after_failures": 2}, _view(("c-test", "a", "failed", 1), ("c-prod", "b", "failed", 3)), Guard.HALT),
        ({"halt_after_failures": 3}, _view(("c-test", "a", "failed", 1), ("c-prod", "b", "failed", 3)), None),
        ({"waves": [["c-test"], ["c-stage"]]}, _view(("c-test", "a", "drifted", 1), ("c-stage", "b", "in_sync", 2)),
         Guard.WAVE),
        ({"waves": [["c-test"], ["c-stage"]]}, _view(("c-test", "a", "in_sync", 1), ("c-stage", "b", "in_sync", 2)),
         None),
        ({"waves": [["c-test"], ["c-stage"]]}, _view(("c-stage", "b", "in_sync", 2), unread=(("c-test", 1),)),
         Guard.WAVE),
        ({"max_syncing": 1}, _view(("c-test", "a", "syncing", 1)), Guard.BUDGET),
        ({"max_syncing": 2}, _view(("c-test", "a", "syncing", 1)), None),
        ({"max_syncing": 2}, _view(("c-test", "a", "syncing", 1), unread=(("c-prod", 3),)), Guard.BUDGET),
    ],
    ids=[
        "halted: two failures of the pass",
        "not halted below the threshold",
        "an earlier wave drifted: closed",
        "earlier waves in sync: open",
        "an earlier wave's cluster unread: doubt holds the wave",
        "the budget spent by a running sync",
        "room in the budget",
        "a cluster unread: doubt holds the budget",
    ],
)  # fmt: skip
def test_the_gate_admits_or_names_the_guard_that_holds(
    options: dict[str, Any], view: gate.View, guard: Guard | None
) -> None:
    outcome = gate.admit(TARGET, gate.explicit_rules(options, frozenset()), view)
    if guard is None:
        assert isinstance(outcome, gate.Admission) and outcome.target == TARGET
    else:
        assert isinstance(outcome, Decision) and outcome.guard is guard and outcome.action is Action.DEFERRED


def test_what_an_invocation_admitted_counts_toward_the_budget() -> None:
    rules = gate.explicit_rules({"max_syncing": 1}, frozenset())
    first = gate.admit(TARGET, rules, _view(), [])
    second = gate.admit(TARGET._replace(nodepool_id="np-other"), rules, _view(), [TARGET])
    assert isinstance(first, gate.Admission) and isinstance(second, Decision) and second.guard is Guard.BUDGET


@pytest.mark.parametrize(
    ("guard", "error"), [(Guard.HALT, Halted), (Guard.WAVE, WaveClosed), (Guard.BUDGET, BudgetReached)]
)
def test_each_guard_answers_its_own_code(guard: Guard, error: type[Exception]) -> None:
    held = gate.held(Decision(PoolClass.DRIFTED, Action.DEFERRED, reason="why", guard=guard))
    assert isinstance(held, error) and held.status == 409 and not held.transient and "why" in held.message


def test_only_the_gate_makes_an_admission() -> None:
    with pytest.raises(TypeError):
        gate.Admission(TARGET, object())  # type: ignore[arg-type]


# --- end to end: the configured pass's guards hold every kind of request ----------------------------------


@pytest.fixture
def rollout(emulator: Emulator, env: Any) -> Emulator:
    """Three clusters in waves (test, stage, prod), one drifted pool each; the function configured for them."""
    for cluster, name in (("c-test", "test"), ("c-stage", "stage"), ("c-prod", "prod")):
        emulator.add_cluster(PROJECT, cluster, f"{name}-cluster")
        emulator.add_pool(PROJECT, cluster, f"np-{name}", f"pool-{name}", nodes=2, synced=0)
    env(CCE_SYNC_SPEC=json.dumps(SPEC), CCE_CLUSTER_ID="c-stage", CCE_NODEPOOL_ID="np-stage")
    return emulator


def _configure(env: Any, **options: Any) -> None:
    clusters = {"clusters": ["c-test", "c-stage", "c-prod"], "max_syncing_per_cluster": 5}
    env(SYNC_RECONCILE=json.dumps({**clusters, **options}))


GUARDS = {  # the guard, how the fleet is made to trip it, and its code
    "halt": ({"halt_after_failures": 2}, "FUNC.HALTED"),
    "waves": ({"waves": [["c-test"], ["c-stage"]]}, "FUNC.WAVE_CLOSED"),
    "budget": ({"max_syncing": 1}, "FUNC.BUDGET"),
}


def _trip(emulator: Emulator, guard: str) -> None:
    if guard == "halt":  # test and prod failed a minute ago
        for cluster, pool in (("c-test", "np-test"), ("c-prod", "np-prod")):
            emulator.add_job(PROJECT, cluster, pool, "Failed", ended_ago=60)
    elif guard == "budget":  # prod is syncing
        emulator.set_busy(PROJECT, "c-prod", "np-prod")
    # waves: test (wave 1) is drifted already


def _tripped(emulator: Emulator, env: Any, guard: str) -> str:
    """The function configured with the guard and the fleet made to trip it: the guard's answer code."""
    options, code = GUARDS[guard]
    _configure(env, **options)
    _trip(emulator, guard)
    return code


@pytest.mark.parametrize("guard", list(GUARDS))
def test_a_single_sync_is_deferred_by_each_guard_and_sent_with_its_override(
    invoke: Invoke, rollout: Emulator, env: Any, guard: str
) -> None:
    code = _tripped(rollout, env, guard)
    held = invoke({"spec": SPEC})
    assert held["status"] == "deferred" and held["error_code"] == code and held["http_status"] == 409, held
    assert rollout.syncs() == []
    sent = invoke({"spec": SPEC, f"ignore_{guard}": True})
    assert sent["status"] == "accepted" and len(rollout.syncs()) == 1, sent


def test_a_single_sync_is_not_sent_to_a_pool_the_gates_view_shows_syncing(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    """The busy guard read the pool idle; by the time the gate read the configured pass, another invocation had
    started it: the function sends nothing to a pool it has seen syncing (found by make soak, seed 3)."""
    _configure(env, max_syncing=3)
    idle = rollout.pool_view(PROJECT, "c-stage", "np-stage")
    rollout.set_busy(PROJECT, "c-stage", "np-stage", "job-of-another-invocation")
    rollout.inject(path_endswith="/nodepools/np-stage", raw=json.dumps(idle).encode())  # the guard's read: idle
    answer = invoke({"spec": SPEC})
    assert answer["error_code"] == "FUNC.BUSY" and "job-of-another-invocation" in answer["error_msg"], answer
    assert rollout.syncs() == []


@pytest.mark.parametrize("guard", list(GUARDS))
def test_an_api_gateway_sync_is_refused_with_409_and_the_guards_code(
    invoke: Invoke, rollout: Emulator, env: Any, guard: str
) -> None:
    code = _tripped(rollout, env, guard)
    event = apig_event({"spec": SPEC}, {"cluster_id": "c-stage", "nodepool_id": "np-stage"})
    status, body = status_body(invoke(event))
    assert status == 409 and body["error_code"] == code and rollout.syncs() == []


@pytest.mark.parametrize("guard", list(GUARDS))
def test_a_fleets_target_is_refused_by_each_guard_and_sent_with_its_override(
    invoke: Invoke, rollout: Emulator, env: Any, guard: str
) -> None:
    code = _tripped(rollout, env, guard)
    fleet = {"cluster_id": "c-stage", "spec": SPEC, "targets": [{"nodepool_id": "np-stage"}]}
    held = invoke(fleet)
    assert held["status"] == "none_accepted" and held["results"][0]["error_code"] == code, held
    assert rollout.syncs() == []
    sent = invoke({**fleet, f"ignore_{guard}": True})
    assert sent["status"] == "all_accepted" and len(rollout.syncs()) == 1, sent


def test_without_a_guard_configured_a_single_sync_reads_no_fleet(invoke: Invoke, rollout: Emulator) -> None:
    assert invoke({"spec": SPEC})["status"] == "accepted"
    assert [r.method for r in rollout.cce_requests()] == ["POST"]  # the busy guard is off in these tests


@pytest.mark.parametrize("guard", ["halt", "budget"])
def test_a_change_event_counts_the_whole_configured_pass(
    invoke: Invoke, rollout: Emulator, env: Any, guard: str
) -> None:
    _tripped(rollout, env, guard)
    answer = invoke(rollout.update_template(PROJECT, "c-stage", "np-stage"))
    pools = [p for c in answer["clusters"] for p in c["pools"]]
    assert [(p["nodepool_id"], p["action"]) for p in pools] == [("np-stage", "deferred")], answer
    assert rollout.syncs() == []


def test_a_pass_does_not_open_the_next_wave_while_an_earlier_cluster_cannot_be_read(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    rollout.add_pool(PROJECT, "c-test", "np-test", "pool-test", nodes=2, synced=2)  # wave 1 in sync
    rollout.inject(path_contains="/clusters/c-test/nodepools", status=503, times=10)
    answer = invoke({"reconcile": {"clusters": ["c-test", "c-stage"], "waves": [["c-test"]]}, "spec": SPEC})
    stage = [p for c in answer["clusters"] if c["cluster_id"] == "c-stage" for p in c["pools"]]
    assert stage[0]["action"] == "deferred" and "c-test" in stage[0]["reason"], answer
    assert rollout.syncs() == []


def test_a_console_change_named_by_the_pool_still_waits_for_the_earlier_waves(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    from local.events import cts_trace

    _configure(env, waves=[["c-test"], ["c-stage"]])
    answer = invoke(cts_trace(PROJECT, "c-stage", "np-stage", "pool-stage", console=True))
    started = [p["nodepool_id"] for c in answer.get("clusters", ()) for p in c["pools"] if p.get("action") == "started"]
    assert "np-stage" not in started and [s.path.split("/")[-3] for s in rollout.syncs()] in ([], ["np-test"]), answer


def test_a_failed_pool_whose_job_cannot_be_read_counts_toward_the_halt(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    _configure(env, halt_after_failures=2)
    rollout.add_job(PROJECT, "c-test", "np-test", "Failed", ended_ago=60)
    prod = rollout.add_job(PROJECT, "c-prod", "np-prod", "Failed", ended_ago=60)
    rollout.inject(path_contains=f"/jobs/{prod.id}", status=503, times=20)
    held = invoke({"spec": SPEC})
    assert held["status"] == "deferred" and held["error_code"] == "FUNC.HALTED" and rollout.syncs() == [], held


def test_a_pass_under_a_budget_starts_nothing_while_a_cluster_cannot_be_read(invoke: Invoke, rollout: Emulator) -> None:
    rollout.inject(path_contains="/clusters/c-prod/nodepools", status=503, times=10)
    answer = invoke({"reconcile": {"clusters": ["c-test", "c-prod"], "max_syncing": 5}, "spec": SPEC})
    reasons = [p["reason"] for c in answer["clusters"] for p in c.get("pools", ()) if p.get("action") == "deferred"]
    assert reasons and all("c-prod" in reason for reason in reasons) and rollout.syncs() == [], answer


@pytest.mark.parametrize(
    "document",
    [
        {"spec": SPEC, "ignore_halt": True},
        {"cluster_id": "c-stage", "spec": SPEC, "targets": [{"nodepool_id": "np-stage"}], "ignore_budget": True},
        {"reconcile": {"clusters": ["c-stage"], "ignore_waves": True}, "spec": SPEC},
    ],
    ids=["single", "fleet", "reconcile"],
)
def test_sync_overrides_deny_refuses_every_document_that_lifts_a_guard(
    invoke: Invoke, rollout: Emulator, env: Any, document: dict[str, Any]
) -> None:
    env(SYNC_OVERRIDES="deny")
    answer = invoke(document)
    assert answer["error_code"] == "FUNC.OVERRIDES" and answer["http_status"] == 403 and rollout.syncs() == []


def test_an_override_is_logged_with_who_sent_it(invoke: Invoke, rollout: Emulator, env: Any, logs: Any) -> None:
    _configure(env, halt_after_failures=2)
    event = apig_event({"spec": SPEC, "ignore_halt": True}, {"cluster_id": "c-stage", "nodepool_id": "np-stage"})
    status, _ = status_body(invoke(event))
    [line] = logs.syncs()
    assert status == 200 and line["overrides"] == ["ignore_halt"]
    assert line["trigger"] == "apig" and line["correlation_id"] == event["requestContext"]["requestId"]


def test_an_eventgrid_override_is_logged_with_its_source(invoke: Invoke, rollout: Emulator, logs: Any) -> None:
    event = {**load_event("eventgrid.json"), "data": {"spec": SPEC, "ignore_budget": True}}
    assert invoke(event)["status"] == "accepted"
    [line] = logs.syncs()
    assert line["overrides"] == ["ignore_budget"] and line["source"] == event["source"]


@pytest.mark.parametrize("command", [["validate", "-"], ["deploy-config", "--output", "OUT"]])
def test_an_unknown_field_in_sync_reconcile_stops_validate_and_deploy_config_naming_it(
    command: list[str], tmp_path: Any
) -> None:
    from local import template as templates
    from tests.conftest import run_cli

    template = templates.load(templates.TEMPLATE)
    template["function"]["environment"]["SYNC_RECONCILE"] = '{"wavess": [["c-test"]]}'
    (tmp_path / "template.yaml").write_text(json.dumps(template))
    args = [a.replace("OUT", str(tmp_path / "main.tf.json")) for a in command]
    result = run_cli("--template", str(tmp_path / "template.yaml"), *args, stdin=json.dumps({"spec": SPEC}))
    assert result.returncode == 2 and "SYNC_RECONCILE" in result.stderr and "wavess" in result.stderr, result


def test_a_cold_start_with_a_bad_sync_reconcile_answers_every_event_naming_it(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    env(SYNC_RECONCILE='{"max_syncing": 0}')
    answer = invoke({"spec": SPEC})
    assert answer["error_code"] == "FUNC.CONFIG" and answer["error_msg"].startswith("SYNC_RECONCILE: /max_syncing")
    assert rollout.requests == []


@pytest.mark.parametrize(
    ("name", "close"),
    [
        ("SYNC_RECONCLE", "SYNC_RECONCILE"),
        ("CCE_CLUSTERID", "CCE_CLUSTER_ID"),
        ("HUAWEICLOUD_SDK_REGON", "HUAWEICLOUD_SDK_REGION"),
        ("SYNC_SOMETHING_ELSE", None),
        ("RUNTIME_FUNC_NAMEE", None),
        ("PATH", None),
        ("SYNC_RECONCILE", None),
    ],
    ids=["a letter missing", "an underscore missing", "a typo in the region", "far from any", "the platform's",
         "no setting's prefix", "a setting itself"],
)  # fmt: skip
def test_a_name_close_to_a_settings_is_suggested(name: str, close: str | None) -> None:
    from handler.variables import misspelt

    assert dict(misspelt([name])).get(name) == close


def test_the_cli_warns_of_a_misspelt_setting_in_an_env_file(tmp_path: Any) -> None:
    from tests.conftest import run_cli

    (tmp_path / "env").write_text('SYNC_RECONCLE={"max_syncing": 1}\n')
    result = run_cli("validate", "-", "--env-file", str(tmp_path / "env"), stdin=json.dumps({"spec": SPEC}))
    assert "warning: SYNC_RECONCLE is not a setting of the function; did you mean SYNC_RECONCILE?" in result.stderr


def test_the_function_logs_a_misspelt_setting_once_at_its_cold_start(
    invoke: Invoke, rollout: Emulator, env: Any, logs: Any
) -> None:
    env(SYNC_RECONCLE='{"max_syncing": 1}')
    invoke({"spec": SPEC})
    invoke({"spec": SPEC})
    warnings = [r for r in logs.records() if r.get("message") == "not a setting"]
    assert warnings == [{"message": "not a setting", "variable": "SYNC_RECONCLE", "did_you_mean": "SYNC_RECONCILE"}]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"waves": [["cce-tset"], ["c-stage"]]}, "'cce-tset' matches no cluster"),
        ({"exclude": ["pool-tset"]}, "'pool-tset' matches no node pool"),
    ],
    ids=["a misspelt wave entry", "a misspelt exclude entry"],
)
def test_a_misspelt_guard_entry_stops_the_pass_before_any_start(
    invoke: Invoke, rollout: Emulator, options: dict[str, Any], named: str
) -> None:
    rollout.add_cluster(PROJECT, "c-test", "cce-test")
    answer = invoke({"reconcile": {"clusters": ["c-test", "c-stage", "c-prod"], **options}, "spec": SPEC})
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.CONFIG", answer
    assert named in answer["error_msg"] and "did you mean" in answer["error_msg"] and rollout.syncs() == []


def test_a_misspelt_pool_name_is_reported_not_found_and_the_others_proceed(invoke: Invoke, rollout: Emulator) -> None:
    selection = {"names": ["pool-test", "pool-tset"]}
    answer = invoke({"reconcile": {"clusters": ["c-test"], "nodepools": selection}, "spec": SPEC})
    assert answer["not_found"] == ["pool-tset"] and len(rollout.syncs()) == 1, answer


def test_a_qualified_entry_counts_only_in_its_projects_scope() -> None:
    from handler.plans import plan_reconcile
    from handler.validation import Defaults

    options = {"waves": [[f"{PROJECT}/c-test", "p-other/c-x", "c-own"]], "exclude": ["p-other/web"]}
    own = plan_reconcile({"reconcile": options}, {}, Defaults(PROJECT, "c-test"), starts=False)
    foreign = plan_reconcile({"reconcile": options}, {}, Defaults(PROJECT, "c-test"), starts=False, foreign=True)
    assert own.waves == (("c-test", "c-own"),) and own.exclude == frozenset()
    assert foreign.waves == (("c-test",),) and foreign.exclude == frozenset()


def _status(invoke: Invoke, cluster: str = "c-stage", pool: str = "np-stage") -> dict[str, Any]:
    event = apig_event(None, {"cluster_id": cluster, "nodepool_id": pool}, httpMethod="GET", body=None)
    status, body = status_body(invoke(event))
    assert status == 200, body
    return body


def test_the_status_of_a_pool_held_by_the_halt_says_so_with_the_failed_pools(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    _configure(env, halt_after_failures=2)
    env(CCE_SYNC_SPEC=None)  # the guards are judged without a spec
    _trip(rollout, "halt")
    body = _status(invoke)
    assert body["halted"] is True and sorted(f["nodepool_id"] for f in body["failed"]) == ["np-prod", "np-test"]
    assert body["held"]["guard"] == "halt" and rollout.syncs() == []


def test_the_status_says_which_pools_hold_its_wave(invoke: Invoke, rollout: Emulator, env: Any) -> None:
    _configure(env, waves=[["c-test"], ["c-stage"]])
    body = _status(invoke)
    assert (body["wave"], body["wave_open"], body["held"]["guard"]) == (2, False, "wave")
    assert [h["nodepool_id"] for h in body["held_by"]] == ["np-test"]


def test_the_status_says_an_earlier_cluster_could_not_be_read_and_the_wave_stays_closed(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    _configure(env, waves=[["c-test"], ["c-stage"]])
    rollout.add_pool(PROJECT, "c-test", "np-test", "pool-test", nodes=2, synced=2)
    rollout.inject(path_contains="/clusters/c-test/nodepools", status=503, times=10)
    body = _status(invoke)
    assert body["wave_open"] is False and body["unread"] == ["c-test"] and "c-test" in body["held"]["reason"]


def test_the_status_says_the_budget_holds_and_when_the_pools_backoff_ends(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    _configure(env, max_syncing=1)
    _trip(rollout, "budget")
    rollout.add_job(PROJECT, "c-stage", "np-stage", "Failed", ended_ago=60)
    body = _status(invoke)
    assert body["held"]["guard"] == "budget" and body["backoff_until"].endswith("Z")


def test_a_status_without_guards_reads_only_its_pool(invoke: Invoke, rollout: Emulator) -> None:
    body = _status(invoke)
    assert "held" not in body and [r.path.split("/")[-1] for r in rollout.cce_requests()] == ["np-stage"]


def _closed() -> str:
    from datetime import datetime, timezone

    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    return f"{days[(datetime.now(timezone.utc).weekday() + 3) % 7]} 01:00-02:00+00:00"  # never open today


@pytest.mark.parametrize(
    "document",
    [{"spec": SPEC}, {"cluster_id": "c-stage", "spec": SPEC, "targets": [{"nodepool_id": "np-stage"}]}],
    ids=["single", "fleet"],
)
def test_ignore_windows_lifts_a_closed_window_for_a_single_sync_and_a_fleet(
    invoke: Invoke, rollout: Emulator, env: Any, document: dict[str, Any]
) -> None:
    env(SYNC_WINDOWS=_closed())
    held = invoke(document)
    assert held["status"] == "deferred" and held["error_code"] == "FUNC.WINDOW", held
    assert rollout.syncs() == []
    sent = invoke({**document, "ignore_windows": True})
    assert sent["status"] in ("accepted", "all_accepted") and len(rollout.syncs()) == 1, sent


def test_the_requested_pools_own_recent_failure_counts_toward_the_halt(
    invoke: Invoke, rollout: Emulator, env: Any
) -> None:
    _configure(env, halt_after_failures=2)
    rollout.add_job(PROJECT, "c-test", "np-test", "Failed", ended_ago=60)
    rollout.add_job(PROJECT, "c-stage", "np-stage", "Failed", ended_ago=60)  # the requested pool itself
    held = invoke({"spec": SPEC})
    assert held["error_code"] == "FUNC.HALTED" and rollout.syncs() == [], held


def test_reconcile_clusters_take_a_clusters_name_as_waves_do(invoke: Invoke, rollout: Emulator) -> None:
    rollout.strict = True  # as CCE: an unknown cluster ID answers 404, so a name is looked up
    answer = invoke({"reconcile": {"clusters": ["test-cluster", "c-stage"]}, "spec": SPEC})
    assert [c["cluster_id"] for c in answer["clusters"]] == ["c-test", "c-stage"], answer
    assert sorted(s.path.split("/")[-3] for s in rollout.syncs()) == ["np-stage", "np-test"]
