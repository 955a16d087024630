"""Fleet scale: one timer reconciles many projects in many regions, fanned out over FunctionGraph's own
asynchronous invocation. The coordinator invokes one worker per scope and reads no node pool; each worker,
run here as FunctionGraph would run it, touches only its scope's region and project, with credentials for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from handler.errors import SyncError
from handler.function import Instance
from local.emulator import Emulator
from tests.conftest import (
    ACCESS_KEY,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    PROJECT,
    SECRET_KEY,
    SECURITY_TOKEN,
    FakeContext,
    LogCapture,
    apig_event,
    load_event,
    status_body,
)

Invoke = Callable[..., Any]
OWN_REGION = "ap-southeast-1"
SCOPES = [
    {"region": OWN_REGION, "project_id": PROJECT},
    {"region": OWN_REGION, "project_id": "p-southeast-second"},
    {"region": "eu-west-101", "project_id": "p-eu-first"},
    {"region": "eu-west-101", "project_id": "p-eu-second"},
]
SPEC = {"maxUnavailable": 1}
AGENCY_TOKEN = "MIIagency-token-own-project-only-" + "a" * 20


@pytest.fixture
def fleet(emulator: Emulator, env: Any) -> Emulator:
    """Four scopes in two regions; in each project one cluster with two drifted pools and one in sync."""
    env(
        HUAWEICLOUD_SDK_REGION=OWN_REGION,
        CCE_ENDPOINT=emulator.url + "/{region}",
        IAM_ENDPOINT=emulator.url + "/{region}",
        FGS_ENDPOINT=emulator.url + "/{region}",
        SYNC_SCOPES=json.dumps(SCOPES),
        SYNC_RECONCILE=json.dumps({"clusters": "all", "max_syncing_per_cluster": 1}),
        CCE_SYNC_SPEC=json.dumps(SPEC),
        CCE_CLUSTER_ID=None,
        RUNTIME_FUNC_NAME="nodepool-sync",
    )
    for scope in SCOPES:
        project = scope["project_id"]
        emulator.regions[project] = scope["region"]
        cluster = f"c-{project}"
        emulator.add_pool(project, cluster, f"np-{project}-a", "a", nodes=3, synced=0)
        emulator.add_pool(project, cluster, f"np-{project}-b", "b", nodes=3, synced=1)
        emulator.add_pool(project, cluster, f"np-{project}-c", "c", nodes=2, synced=2)
    emulator.job_seconds = 60.0  # started syncs stay running: a second delivery must see them
    return emulator


def _tick(time: str = "2026-12-02T10:00:00+08:00") -> dict[str, Any]:
    return {**load_event("timer-defaults.json"), "time": time}


def test_a_timer_pass_under_four_scopes_invokes_one_worker_per_scope_and_reads_no_pool(
    invoke: Invoke, fleet: Emulator
) -> None:
    answer = invoke(_tick())
    assert answer["status"] == "dispatched" and answer["pass_id"].startswith("timer-")
    assert [(s["region"], s["project_id"]) for s in answer["scopes"]] == [
        (s["region"], s["project_id"]) for s in SCOPES
    ]
    assert all(s["request_id"] for s in answer["scopes"])
    assert fleet.cce_requests() == [] and len(fleet.invocations) == 4
    urns = {i["urn"] for i in fleet.invocations}
    assert urns == {f"urn:fss:{OWN_REGION}:{PROJECT}:function:default:nodepool-sync:latest"}
    assert {(i["region"], i["project_id"]) for i in fleet.invocations} == {(OWN_REGION, PROJECT)}  # its own FGS
    bodies = [i["body"] for i in fleet.invocations]
    assert sorted(b["scope"]["project_id"] for b in bodies) == sorted(s["project_id"] for s in SCOPES)
    assert {b["pass_id"] for b in bodies} == {answer["pass_id"]} and all("reconcile" in b for b in bodies)


@pytest.mark.parametrize(
    ("when", "tick"),
    [
        ("2026-12-02T10:00:00+08:00", 1796176800.0),
        ("2026-12-02T02:00:00Z", 1796176800.0),
        ("2026-12-02T10:00:00", None),  # no offset: not a time the tick can be measured from
        ("soon", None),
    ],
)
def test_a_ticks_pass_id_names_its_time_for_the_workers_to_measure_news_from(
    invoke: Invoke, fleet: Emulator, when: str, tick: float | None
) -> None:
    from handler.model import tick_of

    answer = invoke(_tick(when))
    assert answer["pass_id"].startswith("timer-") and tick_of(answer["pass_id"]) == tick
    assert {i["body"]["pass_id"] for i in fleet.invocations} == {answer["pass_id"]}


def test_every_delivery_of_one_tick_carries_its_pass_id_and_the_next_tick_another(
    invoke: Invoke, fleet: Emulator, env: Any
) -> None:
    env(EVENT_DEDUP_WINDOW_SECONDS="0")
    first, again, next_tick = invoke(_tick()), invoke(_tick()), invoke(_tick("2026-12-02T10:10:00+08:00"))
    assert first["pass_id"] == again["pass_id"] != next_tick["pass_id"]


def _context(mode: str) -> FakeContext:
    if mode == "agency":  # the agency's token covers only the function's own project; its temporary AK/SK sign
        return FakeContext(
            token=AGENCY_TOKEN, access_key=ACCESS_KEY, secret_key=SECRET_KEY, security_token=SECURITY_TOKEN
        )
    return FakeContext()


def _credentials(mode: str, emulator: Emulator, env: Any) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None, HUAWEICLOUD_AUTH_MODE=mode)
    if mode == "password":
        env(
            HUAWEICLOUD_IAM_USERNAME=IAM_USER,
            HUAWEICLOUD_IAM_PASSWORD=IAM_PASSWORD,
            HUAWEICLOUD_IAM_DOMAIN_NAME=IAM_DOMAIN,
        )
    elif mode == "aksk":
        env(HUAWEICLOUD_SDK_AK=ACCESS_KEY, HUAWEICLOUD_SDK_SK=SECRET_KEY)
        emulator.add_keys(ACCESS_KEY, SECRET_KEY)
    else:
        emulator.add_token(AGENCY_TOKEN, project_id=PROJECT)
        emulator.add_keys(ACCESS_KEY, SECRET_KEY, SECURITY_TOKEN)


def _run_workers(emulator: Emulator, instance: Instance, context: FakeContext) -> list[Any]:
    """Each asynchronous invocation the coordinator made, run as FunctionGraph runs it: a direct call."""
    return [instance.handle(invocation["body"], context) for invocation in list(emulator.invocations)]


@pytest.mark.parametrize("mode", ["password", "aksk", "agency"])
def test_each_worker_touches_only_its_scope_with_credentials_for_it(
    invoke: Invoke, fleet: Emulator, env: Any, mode: str, answers: list[Any], instance: Instance
) -> None:
    _credentials(mode, fleet, env)
    assert invoke(_tick(), _context(mode))["status"] == "dispatched"
    for invocation in list(fleet.invocations):
        seen = len(fleet.requests)
        answer = instance.handle(invocation["body"], _context(mode))
        answers.append(answer)
        scope = invocation["body"]["scope"]
        assert answer["status"] == "reconciled" and answer["project_id"] == scope["project_id"], answer
        assert answer["totals"]["started"] == 1 and answer["totals"]["deferred"] == 1  # one at a time per cluster
        for request in fleet.requests[seen:]:
            assert request.region == scope["region"], request.path
            assert request.is_iam or f"/projects/{scope['project_id']}/" in request.path, request.path
            if mode == "agency" and scope["project_id"] != PROJECT:
                assert "x-auth-token" not in request.headers and "x-security-token" in request.headers
    started = sorted(s.path.split("/")[-3] for s in fleet.syncs())
    assert started == sorted(f"np-{s['project_id']}-a" for s in SCOPES)  # a before b, by name
    if mode == "password":  # a token per project (the coordinator's own one reused), from its region's IAM
        tokens = {(r.region, r.json["auth"]["scope"]["project"]["id"]) for r in fleet.iam_requests()}
        assert tokens == {(s["region"], s["project_id"]) for s in SCOPES} and len(fleet.iam_requests()) == 4


def test_a_worker_delivered_twice_starts_nothing_twice(
    invoke: Invoke, fleet: Emulator, env: Any, instance: Instance
) -> None:
    env(EVENT_DEDUP_WINDOW_SECONDS="0")  # as two instances would: nothing remembered between them
    invoke(_tick())
    body = fleet.invocations[2]["body"]
    first, second = instance.handle(body, FakeContext()), instance.handle(body, FakeContext())
    assert first["totals"]["started"] == 1 and second["totals"]["started"] == 0 and len(fleet.syncs()) == 1


def test_a_worker_delivered_twice_to_one_instance_gets_the_first_result(
    invoke: Invoke, fleet: Emulator, instance: Instance
) -> None:
    invoke(_tick())
    body = fleet.invocations[0]["body"]
    first, second = instance.handle(body, FakeContext()), instance.handle(body, FakeContext())
    assert first == second and len(fleet.syncs()) == 1


def test_a_scope_that_cannot_be_dispatched_does_not_stop_the_others(invoke: Invoke, fleet: Emulator, env: Any) -> None:
    env(SYNC_ALLOWED_TARGETS=f"{PROJECT}/*/*,p-southeast-second/*/*,p-eu-first/*/*")  # not p-eu-second
    refused = {"error_code": "FSS.0403", "error_msg": "no permission"}
    fleet.inject(method="POST", path_contains="/invocations-async", status=403, body=refused, times=1)
    answer = invoke(_tick())
    by_project = {s["project_id"]: s for s in answer["scopes"]}
    assert by_project["p-eu-second"]["error_code"] == "FUNC.FORBIDDEN"  # never dispatched
    assert sorted(s.get("error_code", "sent") for s in answer["scopes"]) == [
        "FSS.0403",
        "FUNC.FORBIDDEN",
        "sent",
        "sent",
    ]
    assert len(fleet.invocations) == 2


@pytest.mark.parametrize(
    ("body", "trigger", "code"),
    [
        ({"scope": {"region": "eu-west-101", "project_id": "p-elsewhere"}}, "direct", "FUNC.FORBIDDEN"),
        ({"scope": SCOPES[2]}, "timer", "FUNC.EVENT"),
        ({"scope": SCOPES[2]}, "eventgrid", "FUNC.EVENT"),
    ],
    ids=["a scope not in SYNC_SCOPES", "a scope in a timer's event", "a scope in an EventGrid event"],
)
def test_a_scope_is_honoured_only_when_configured_and_invoked_directly(
    invoke: Invoke, fleet: Emulator, body: dict[str, Any], trigger: str, code: str
) -> None:
    document = {"reconcile": {"clusters": "all"}, **body}
    event: Any = document
    if trigger == "timer":
        event = {**_tick(), "user_event": json.dumps(document)}
    elif trigger == "eventgrid":
        event = {**load_event("eventgrid.json"), "data": document}
    answer = invoke(event)
    assert answer["error_code"] == code and fleet.requests == []  # refused before any credential work


def test_a_scope_the_allowlist_does_not_reach_is_refused_by_the_worker_too(
    invoke: Invoke, fleet: Emulator, env: Any
) -> None:
    env(SYNC_ALLOWED_TARGETS=f"{PROJECT}/*/*")
    answer = invoke({"reconcile": {"clusters": "all"}, "scope": SCOPES[3], "pass_id": "pass-1"})
    assert answer["error_code"] == "FUNC.FORBIDDEN" and fleet.requests == []


# --- parallel within a worker --------------------------------------------------------------------------------


@pytest.fixture
def twenty(emulator: Emulator, env: Any) -> Emulator:
    """20 clusters, one drifted pool each, 50 ms per CCE call."""
    env(CCE_SYNC_SPEC=json.dumps(SPEC))
    for index_ in range(20):
        emulator.add_pool(PROJECT, f"c-{index_:02d}", f"np-{index_:02d}", f"pool-{index_:02d}", nodes=2, synced=0)
    emulator.latency = 0.05
    return emulator


def test_starts_and_reads_run_concurrently_up_to_the_passs_concurrency(invoke: Invoke, twenty: Emulator) -> None:
    answer = invoke({"reconcile": {"clusters": "all", "concurrency": 8}, "spec": SPEC})
    assert answer["totals"]["started"] == 20 and len(twenty.syncs()) == 20
    assert 4 <= twenty.peak_in_flight <= 8  # never past the concurrency, and never one after another


def test_throttling_halves_the_concurrency_and_defers_what_cannot_wait(
    invoke: Invoke, twenty: Emulator, logs: LogCapture, env: Any
) -> None:
    env(RETRY_AFTER_CAP_SECONDS="0.05", RETRY_MAX_ATTEMPTS="2")
    throttled = {"error_code": "APIG.0308", "error_msg": "The request is throttled"}
    twenty.inject(method="POST", path_contains="/operation/upgrade", status=429, body=throttled, times=99,
                  headers={"Retry-After": "1"})  # fmt: skip
    answer = invoke({"reconcile": {"clusters": "all", "concurrency": 8}, "spec": SPEC})
    assert answer["totals"]["deferred"] == 20 and answer["totals"]["failed"] == 0
    reasons = {p["reason"] for c in answer["clusters"] for p in c["pools"]}
    assert reasons == {"throttled: CCE answered APIG.0308 and asked to wait longer than this pass has"}
    [summary] = [r for r in logs.records() if r["message"] == "reconcile-pass"]
    assert summary["throttled"] >= 1 and summary["concurrency"] < 8


@pytest.mark.parametrize(
    ("status", "body", "attempts"),
    [
        (429, {"error_code": "FSS.0429", "error_msg": "Function Disabled"}, 1),
        (404, {"error_code": "FSS.1051", "error_msg": "The function does not exist"}, 1),
    ],
    ids=["a disabled function", "no such function"],
)
def test_a_final_functiongraph_error_is_not_retried_and_the_scope_carries_its_code(
    invoke: Invoke, fleet: Emulator, env: Any, status: int, body: dict[str, str], attempts: int
) -> None:
    env(RETRY_MAX_ATTEMPTS="3")
    fleet.inject(path_contains="invocations-async", status=status, body=body, times=100)
    answer = invoke(_tick())
    tried = [r for r in fleet.requests if r.is_fgs]
    assert len(tried) == attempts * len(SCOPES), len(tried)
    assert {s["error_code"] for s in answer["scopes"]} == {body["error_code"]}, answer


NODE_PASSWORD_PLAIN = "Pl4nted-Node-Pw!"
WITH_PASSWORD = {
    "reconcile": {"clusters": "all", "max_syncing_per_cluster": 1},
    "spec": {
        "maxUnavailable": 1,
        "nodeTemplate": {
            "lifeCycle": {},
            "login": {"userPassword": {"username": "root", "password": NODE_PASSWORD_PLAIN}},
        },
    },
}


def test_no_plain_node_password_travels_in_a_workers_payload(invoke: Invoke, fleet: Emulator) -> None:
    assert invoke(WITH_PASSWORD)["status"] == "dispatched"
    from handler.validation import is_salted_password

    payloads = [i["body"] for i in fleet.invocations]
    sent = [p["spec"]["nodeTemplate"]["login"]["userPassword"]["password"] for p in payloads]
    assert len(sent) == 4 and all(is_salted_password(password) for password in sent)
    assert all(NODE_PASSWORD_PLAIN not in json.dumps(p) for p in payloads)


def test_two_dispatches_of_one_tick_are_one_worker_each_though_salted_anew(
    invoke: Invoke, fleet: Emulator, env: Any, instance: Instance
) -> None:
    env(SYNC_RECONCILE=None, EVENT_DEDUP_WINDOW_SECONDS="600")
    tick = {**_tick(), "user_event": json.dumps(WITH_PASSWORD)}
    invoke(tick)
    invoke(tick)  # the timer delivered twice: two coordinators, each salting the password anew
    bodies = [i["body"] for i in fleet.invocations if i["body"]["scope"]["project_id"] == "p-eu-first"]
    assert len(bodies) == 2 and bodies[0] != bodies[1] and bodies[0]["pass_id"] == bodies[1]["pass_id"]
    first, second = instance.handle(bodies[0], FakeContext()), instance.handle(bodies[1], FakeContext())
    assert first == second and len([s for s in fleet.syncs() if "p-eu-first" in s.path]) == 1


def test_an_eventgrid_event_cannot_take_a_workers_place_in_the_duplicate_window(
    invoke: Invoke, fleet: Emulator, instance: Instance
) -> None:
    invoke(_tick())
    body = fleet.invocations[2]["body"]
    scope = body["scope"]
    key = f"{body['pass_id']}|{scope['region']}|{scope['project_id']}"
    mimic = {**load_event("eventgrid.json"), "source": "pass", "id": key}  # a worker's key as it used to be
    instance.handle(mimic, FakeContext())
    answer = instance.handle(body, FakeContext())
    assert answer["status"] == "reconciled" and answer["totals"]["started"] == 1, answer


def test_a_document_naming_a_project_fans_out_to_that_projects_scopes_only(invoke: Invoke, fleet: Emulator) -> None:
    answer = invoke({**WITH_PASSWORD, "project_id": "p-eu-first"})
    assert [s["project_id"] for s in answer["scopes"]] == ["p-eu-first"] and len(fleet.invocations) == 1


def test_a_document_naming_a_project_no_scope_has_is_refused(invoke: Invoke, fleet: Emulator) -> None:
    answer = invoke({**WITH_PASSWORD, "project_id": "p-nowhere"})
    assert answer["error_code"] == "FUNC.FORBIDDEN" and fleet.invocations == []


def test_a_documents_own_pass_id_is_never_taken_and_a_timers_document_pass_is_scheduled(
    invoke: Invoke, fleet: Emulator, env: Any
) -> None:
    env(EVENT_DEDUP_WINDOW_SECONDS="0")
    forged = invoke(apig_event({**WITH_PASSWORD, "pass_id": "timer-nodepool-sync-20261202T020000Z"}, {}))
    _, body = status_body(forged)
    assert body["pass_id"].startswith("pass-") and body["pass_id"] != "timer-nodepool-sync-20261202T020000Z"
    tick = {**_tick(), "user_event": json.dumps(WITH_PASSWORD)}
    first, again = invoke(tick), invoke(tick)
    assert first["pass_id"] == again["pass_id"] and first["pass_id"].startswith("timer-")


def test_a_change_event_outside_sync_scopes_is_ignored_saying_why(invoke: Invoke, fleet: Emulator, env: Any) -> None:
    env(SYNC_SCOPES=json.dumps(SCOPES[1:]))  # the function's own project is not one of them
    answer = invoke(fleet.update_template("p-southeast-second", "c-p-southeast-second", "np-p-southeast-second-a"))
    assert answer["status"] == "ignored" and "not in SYNC_SCOPES" in answer["reason"] and fleet.syncs() == []


def test_a_foreign_scopes_worker_tells_a_person_through_the_topic_where_it_lives(
    invoke: Invoke, fleet: Emulator, env: Any, instance: Instance
) -> None:
    topic = f"urn:smn:{OWN_REGION}:{PROJECT}:nodepool-sync-alerts"
    env(SMN_TOPIC_URN=topic, SMN_ENDPOINT=fleet.url + "/{region}")
    fleet.add_job("p-eu-first", "c-p-eu-first", "np-p-eu-first-a", "Failed", ended_ago=60, reason="drain timed out")
    invoke(_tick())
    [body] = [i["body"] for i in fleet.invocations if i["body"]["scope"]["project_id"] == "p-eu-first"]
    answer = instance.handle(body, FakeContext())
    assert answer["notification"]["published"] is True, answer
    [published] = [r for r in fleet.requests if r.is_smn]
    assert published.region == OWN_REGION and f"/v2/{PROJECT}/" in published.path
    assert fleet.published[0]["topic"] == topic and "drain timed out" in fleet.published[0]["message"]


@pytest.fixture
def accessible(fleet: Emulator, env: Any) -> Emulator:
    """SYNC_SCOPES=accessible over what IAM lists: the four scopes' projects, named after their regions (or a
    region's subproject), one disabled, and an account's project named after no region."""
    env(SYNC_SCOPES="accessible")
    fleet.add_project(PROJECT, OWN_REGION)
    fleet.add_project("p-southeast-second", f"{OWN_REGION}_second")
    fleet.add_project("p-eu-first", "eu-west-101")
    fleet.add_project("p-eu-second", "eu-west-101_ops", enabled=False)
    fleet.add_project("p-mos", "MOS")
    return fleet


def test_accessible_fans_out_over_the_enabled_projects_named_after_a_region(
    invoke: Invoke, accessible: Emulator, instance: Instance
) -> None:
    answer = invoke(_tick())
    assert answer["status"] == "dispatched", answer
    assert sorted((s["region"], s["project_id"]) for s in answer["scopes"]) == [
        (OWN_REGION, PROJECT),
        (OWN_REGION, "p-southeast-second"),
        ("eu-west-101", "p-eu-first"),
    ]
    listed = [r for r in accessible.requests if r.path == "/v3/auth/projects"]
    assert len(listed) == 1 and listed[0].method == "GET"
    worker = next(i["body"] for i in accessible.invocations if i["body"]["scope"]["project_id"] == "p-eu-first")
    assert instance.handle(worker, FakeContext())["totals"]["started"] == 1  # a listed scope's worker runs


def test_sync_scope_regions_narrow_what_accessible_lists(invoke: Invoke, accessible: Emulator, env: Any) -> None:
    env(SYNC_SCOPE_REGIONS='["eu-west-101"]')
    answer = invoke(_tick())
    assert [(s["region"], s["project_id"]) for s in answer["scopes"]] == [("eu-west-101", "p-eu-first")]


def test_when_iam_cannot_list_the_projects_nothing_is_dispatched(invoke: Invoke, accessible: Emulator) -> None:
    accessible.inject(path_contains="/v3/auth/projects", status=503, times=10)
    with pytest.raises(SyncError):  # transient: raised, so the platform retries the tick
        invoke(_tick())
    assert accessible.invocations == []


def test_the_worker_runner_runs_each_worker_in_a_process_of_its_own(invoke: Invoke, fleet: Emulator, env: Any) -> None:
    from local.workers import run_workers

    invoke(_tick())
    results = run_workers(env, [i["body"] for i in fleet.invocations])
    assert [r.answer["status"] for r in results] == ["reconciled"] * 4, [r.answer for r in results]
    assert sum(r.answer["totals"]["started"] for r in results) == 4 and all(r.wall_s > 0 for r in results)
