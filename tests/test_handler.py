"""The function end to end: every trigger shape through `handler`, against the loopback emulator."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from handler import __version__
from handler.errors import SyncError
from handler.function import Instance
from local.emulator import Emulator
from tests.conftest import (
    CLUSTER,
    NODEPOOL,
    PROJECT,
    TOKEN,
    FakeContext,
    LogCapture,
    apig_event,
    load_event,
    status_body,
)

SYNC_PATH = f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools/{NODEPOOL}/operation/upgrade"
Invoke = Callable[..., Any]


def _accepted(emulator: Emulator, request_index: int = -1) -> dict[str, Any]:
    """The success document the function must give for the sync the emulator received."""
    return {
        "status": "accepted",
        "jobid": list(emulator.jobs)[-1],
        "project_id": PROJECT,
        "cluster_id": CLUSTER,
        "nodepool_id": NODEPOOL,
        "request_id": emulator.request_ids[request_index],
    }


def _assert_sent(emulator: Emulator, body: dict[str, Any]) -> None:
    [sync] = emulator.syncs()
    assert sync.path == SYNC_PATH
    assert sync.headers["content-type"] == "application/json"
    assert sync.headers["x-auth-token"] == TOKEN
    assert sync.headers["x-project-id"] == PROJECT
    assert sync.headers["user-agent"] == f"nodepool-sync/{__version__} (nodepool-sync)"
    assert sync.json == body


SPEC_FROM_EVENTS = {
    "spec": {"maxUnavailable": 2, "nodeIDs": ["5ea3c41e-1d2b-11ee-b8a5-0255ac100b05"], "nodePoolID": NODEPOOL}
}


@pytest.mark.parametrize("name", ["timer.json", "eventgrid.json", "eventgrid-data-string.json", "direct.json"])
def test_non_http_triggers_forward_the_document_and_answer_accepted(
    name: str, invoke: Invoke, emulator: Emulator
) -> None:
    answer = invoke(load_event(name), FakeContext())
    _assert_sent(emulator, SPEC_FROM_EVENTS)
    assert answer == _accepted(emulator)


@pytest.mark.parametrize("name", ["apig.json", "apig-plain-body.json"])
def test_api_gateway_forwards_the_body_with_path_parameters(name: str, invoke: Invoke, emulator: Emulator) -> None:
    event = load_event(name)
    answer = invoke(event, FakeContext())
    _assert_sent(emulator, {"spec": {"maxUnavailable": 3, "nodePoolID": NODEPOOL}})
    correlation = event["requestContext"]["requestId"]
    assert answer == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Correlation-Id": correlation},
        "body": json.dumps(_accepted(emulator), separators=(",", ":")),
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    "shape",
    [
        lambda d: d,
        lambda d: {**load_event("timer.json"), "user_event": json.dumps(d)},
        lambda d: {**load_event("eventgrid.json"), "data": d},
    ],
    ids=["direct", "timer", "eventgrid"],
)
@pytest.mark.parametrize("document", [{"force": True}, {"metadata": {"labels": {"a": "b"}}}], ids=["force", "metadata"])
def test_a_document_of_control_fields_syncs_the_default_pool(
    shape: Any, document: dict[str, Any], invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(CCE_SYNC_SPEC=json.dumps({"maxUnavailable": 1}))
    answer = invoke(shape(document))
    assert answer["status"] == "accepted" and answer["nodepool_id"] == NODEPOOL and len(emulator.syncs()) == 1


def test_timer_with_empty_user_event_uses_the_environment(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(CCE_SYNC_SPEC='{"maxUnavailable": 5}')
    answer = invoke(load_event("timer-defaults.json"), FakeContext())
    _assert_sent(emulator, {"spec": {"maxUnavailable": 5, "nodePoolID": NODEPOOL}})
    assert answer["status"] == "accepted"


def test_timer_with_text_that_is_not_json_is_rejected(invoke: Invoke, emulator: Emulator) -> None:
    event = {**load_event("timer.json"), "user_event": "Hello world"}
    answer = invoke(event)
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.EVENT"
    assert "user_event is not valid JSON" in answer["error_msg"]
    assert emulator.cce_requests() == []


def test_eventgrid_batch_gives_one_result_per_event(invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke(load_event("eventgrid-batch.json"))
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert [r["event_id"] for r in answer["results"]] == ["b-0001", "b-0002"]
    assert answer["results"][1]["errors"] == [
        {"path": "/spec/maxUnavailable", "message": "0 is less than the minimum of 1"}
    ]
    assert len(emulator.syncs()) == 1


def test_a_batch_entry_that_is_not_a_cloudevent_is_rejected_alone(invoke: Invoke, emulator: Emulator) -> None:
    event = load_event("eventgrid-batch.json")
    event["events"][1] = "not an event"
    answer = invoke(event)
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ([], "the event is a list"),
        ("spec", "the event is a str"),
        (None, "the event is a NoneType"),
        ({"hello": "world"}, "none of the expected shapes"),
    ],
)
def test_unrecognizable_events_name_what_was_expected(
    event: Any, words: str, invoke: Invoke, emulator: Emulator
) -> None:
    answer = invoke(event)
    assert answer["status"] == "rejected" and words in answer["error_msg"]
    assert "API Gateway request (httpMethod)" in answer["error_msg"]
    assert emulator.requests == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_api_gateway_takes_post_and_get_only(method: str, invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke(apig_event(httpMethod=method))
    status, body = status_body(answer)
    assert status == 405 and answer["headers"]["Allow"] == "GET, POST"
    assert body["error_code"] == "FUNC.METHOD"
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"body": base64.b64encode(b"{not json").decode()}, 400, "FUNC.EVENT"),
        ({"body": "%%%not-base64%%%"}, 400, "FUNC.EVENT"),
        ({"body": base64.b64encode(b"[1, 2]").decode()}, 400, "FUNC.EVENT"),
        ({"headers": {"content-type": "text/plain"}}, 415, "FUNC.MEDIA_TYPE"),
        ({"body": base64.b64encode(b'{"spec": {"maxUnavailable": 1}, "spec": {}}').decode()}, 400, "FUNC.EVENT"),
        ({"pathParameters": {"cluster_id": "../../admin", "nodepool_id": NODEPOOL}}, 400, "FUNC.INVALID"),
    ],
    ids=["not-json", "not-base64", "array", "text-plain", "duplicate-keys", "path-injection"],
)
def test_api_gateway_bad_requests(
    changes: dict[str, Any], status: int, code: str, invoke: Invoke, emulator: Emulator
) -> None:
    answer = invoke(apig_event(**changes))
    got_status, body = status_body(answer)
    assert (got_status, body["error_code"]) == (status, code)
    assert emulator.requests == []


def test_validation_errors_list_every_field(invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke(apig_event({"spec": {"maxUnavailable": 25, "maxUnavailble": 1}}))
    status, body = status_body(answer)
    assert status == 400 and body["error_code"] == "FUNC.INVALID"
    assert [e["path"] for e in body["errors"]] == ["/spec/maxUnavailable", "/spec/maxUnavailble"]
    assert emulator.requests == []


@pytest.mark.parametrize(
    "bad_id",
    ["../x", "a/b", "a%2Fb", "a?b", "a#b", "a b", "a\tb", "a\nb", "é", "a..b", "", "x" * 65, "a\x00b"],
)
def test_path_injection_ids_are_rejected_before_any_request(bad_id: str, invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke({"cluster_id": bad_id, "spec": {"maxUnavailable": 1}})
    assert answer["status"] == "rejected" and answer["errors"][0]["path"] == "/cluster_id"
    assert emulator.requests == []


def test_dry_run_shows_the_request_and_sends_nothing(invoke: Invoke, emulator: Emulator) -> None:
    template = {"lifecycle": {"preInstall": "ZWNobyAx"}, "login": {"userPassword": {"password": "Node-Pass-2026"}}}
    answer = invoke({"dry_run": True, "spec": {"maxUnavailable": 1, "nodeTemplate": template}})
    assert answer == {
        "status": "dry_run",
        "project_id": PROJECT,
        "cluster_id": CLUSTER,
        "nodepool_id": NODEPOOL,
        "request": {
            "method": "POST",
            "url": f"{emulator.url}{SYNC_PATH}",
            "headers": {
                "Content-Type": "application/json",
                "X-Project-Id": PROJECT,
                "User-Agent": f"nodepool-sync/{__version__} (nodepool-sync)",
                "X-Auth-Token": "***",
            },
            "body": {
                "spec": {
                    "maxUnavailable": 1,
                    "nodeTemplate": {
                        "lifeCycle": {"preInstall": "ZWNobyAx"},
                        "login": {"userPassword": {"password": "***"}},
                    },
                    "nodePoolID": NODEPOOL,
                }
            },
        },
    }
    assert emulator.requests == []


def test_sync_dry_run_variable_makes_every_sync_a_dry_run(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(SYNC_DRY_RUN="true")
    assert invoke(load_event("direct.json"))["status"] == "dry_run"
    assert emulator.requests == []


def test_the_password_is_sent_salted(invoke: Invoke, emulator: Emulator) -> None:
    template = {"lifeCycle": {}, "login": {"userPassword": {"password": "Node-Pass-2026"}}}
    assert invoke({"spec": {"maxUnavailable": 1, "nodeTemplate": template}})["status"] == "accepted"
    sent = emulator.syncs()[0].json["spec"]["nodeTemplate"]["login"]["userPassword"]["password"]
    assert base64.b64decode(sent).startswith(b"$6$")


def test_empty_200_answer_is_success(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(status=200, body={}, path_contains="/operation/upgrade")
    answer = invoke(load_event("direct.json"))
    assert answer["status"] == "accepted" and answer["jobid"] is None


# The error mapping: what CCE (or the network) answers -> API Gateway status and error code.
MAPPING = [
    ({"status": 400, "body": {"errorCode": "CCE.01400001", "errorMessage": "bad"}}, 400, "CCE.01400001"),
    ({"status": 404, "body": {"errorCode": "CCE.01404001", "errorMessage": "no pool"}}, 404, "CCE.01404001"),
    ({"status": 409, "body": {"errorCode": "CCE.01409001", "errorMessage": "conflict"}}, 409, "CCE.01409001"),
    ({"status": 429, "body": {"errorCode": "CCE.01429002", "errorMessage": "locked"}, "times": 9}, 409, "FUNC.BUSY"),
    ({"status": 429, "body": {"errorCode": "CCE.02429001", "errorMessage": "slow down"}, "times": 9}, 429,
     "CCE.02429001"),
    ({"status": 401, "body": {"error_code": "APIG.1002", "error_msg": "bad token"}, "times": 9}, 502, "APIG.1002"),
    ({"status": 403, "body": {"errorCode": "CCE.01403001", "errorMessage": "denied"}}, 502, "CCE.01403001"),
    ({"status": 503, "body": {"errorCode": "CCE.01503001", "errorMessage": "down"}, "times": 9}, 502, "CCE.01503001"),
    ({"status": 500, "body": {"errorCode": "CCE.01500001", "errorMessage": "boom"}, "times": 9}, 502, "FUNC.AMBIGUOUS"),
    ({"drop": True, "times": 9}, 502, "FUNC.AMBIGUOUS"),
    ({"delay": 1.5, "status": 200, "times": 9}, 502, "FUNC.AMBIGUOUS"),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "status", "code"), MAPPING, ids=[f"{m[1]}-{m[2]}" for m in MAPPING])
def test_error_mapping_for_api_gateway(
    fault: dict[str, Any], status: int, code: str, invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(HTTP_READ_TIMEOUT_SECONDS="0.5")
    emulator.inject(path_contains="/operation/upgrade", **fault)
    got_status, body = status_body(invoke(apig_event()))
    assert (got_status, body["error_code"]) == (status, code)
    assert body["error_msg"] and "request_id" in body


def test_cce_permission_errors_keep_cce_status_in_the_body(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains="/operation/upgrade", status=403, body={"errorCode": "CCE.01403001"})
    _, body = status_body(invoke(apig_event()))
    assert body["upstream_status"] == 403


@pytest.mark.parametrize("status", [400, 404, 409])
def test_permanent_cce_errors_are_answered_rejected(status: int, invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains="/operation/upgrade", status=status)
    answer = invoke(load_event("timer.json"))
    assert answer["status"] == "rejected" and answer["http_status"] == status


@pytest.mark.parametrize(
    "fault",
    [{"status": 503, "times": 9}, {"status": 429, "times": 9}, {"drop": True, "times": 9}, {"status": 500, "times": 9}],
)
def test_transient_failures_raise_for_non_http_triggers(
    fault: dict[str, Any], invoke: Invoke, emulator: Emulator
) -> None:
    emulator.inject(path_contains="/operation/upgrade", **fault)
    with pytest.raises(SyncError) as caught:
        invoke(load_event("timer.json"))
    assert caught.value.transient is True


def test_configuration_error_names_the_setting(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(CCE_ENDPOINT=None, HUAWEICLOUD_SDK_REGION=None)
    status, body = status_body(invoke(apig_event()))
    assert status == 500 and "HUAWEICLOUD_SDK_REGION" in body["error_msg"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SYNC_DRY_RUN", "maybe"), ("CCE_SYNC_SPEC", "{not json"), ("CCE_SYNC_SPEC", "[1]"),
     ("HTTP_READ_TIMEOUT_SECONDS", "x"), ("CCE_ENDPOINT", "http://cce.example.com"),
     ("HUAWEICLOUD_AUTH_MODE", "magic")],
)  # fmt: skip
def test_a_malformed_variable_is_named(variable: str, value: str, invoke: Invoke, env: Any) -> None:
    env(**{variable: value})
    status, body = status_body(invoke(apig_event()))
    assert status == 500 and body["error_code"] == "FUNC.CONFIG" and variable in body["error_msg"]


def test_eu_west_101_endpoint_ends_in_eu(env: Any) -> None:
    from handler.settings import Settings

    settings = Settings.from_environ({"HUAWEICLOUD_SDK_REGION": "eu-west-101"})
    assert settings.endpoint("cce") == "https://cce.eu-west-101.myhuaweicloud.eu"
    assert Settings.from_environ({"HUAWEICLOUD_SDK_REGION": "ap-southeast-1"}).endpoint("iam") == (
        "https://iam.ap-southeast-1.myhuaweicloud.com"
    )


@pytest.mark.parametrize(
    ("variables", "context", "expected"),
    [
        ({}, FakeContext(project_id="ctx-project"), PROJECT),
        ({"HUAWEICLOUD_SDK_PROJECT_ID": None}, FakeContext(project_id="ctx-project"), "ctx-project"),
        ({"HUAWEICLOUD_SDK_PROJECT_ID": None, "RUNTIME_PROJECT_ID": "runtime-project"}, None, "runtime-project"),
        ({"HUAWEICLOUD_SDK_PROJECT_ID": None, "RUNTIME_PROJECT_ID": "runtime-project"}, object(), "runtime-project"),
    ],
    ids=["sdk-variable", "context", "runtime-none-context", "runtime-bare-object"],
)
def test_project_id_fallbacks(
    variables: dict[str, Any], context: Any, expected: str, invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(**variables)
    emulator.add_token(TOKEN)
    answer = invoke({"spec": {"maxUnavailable": 1}}, context)
    assert answer["project_id"] == expected
    assert emulator.syncs()[0].headers["x-project-id"] == expected


def test_redirects_are_not_followed_and_the_token_stays_home(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains="/operation/upgrade", redirect_to=f"{emulator.url}/elsewhere", status=307)
    status, body = status_body(invoke(apig_event()))
    assert status == 500 and "redirect" in body["error_msg"]
    assert [r.path for r in emulator.requests if r.method == "POST"] == [SYNC_PATH]
    assert not any(r.path == "/elsewhere" for r in emulator.requests)


def test_one_structured_log_line_per_invocation(invoke: Invoke, emulator: Emulator, logs: LogCapture) -> None:
    invoke(load_event("apig.json"), FakeContext(request_id="fg-77"))
    [line] = logs.syncs()
    assert line["trigger"] == "apig" and line["outcome"] == "accepted" and line["http_status"] == 200
    assert line["cluster_id"] == CLUSTER and line["nodepool_id"] == NODEPOOL
    assert line["request_id"] == "fg-77" and line["cce_request_id"] == emulator.request_ids[-1]
    assert isinstance(line["latency_ms"], float)


def test_a_failure_is_logged_with_its_code(invoke: Invoke, emulator: Emulator, logs: LogCapture) -> None:
    emulator.inject(path_contains="/operation/upgrade", status=404)
    invoke(load_event("timer.json"))
    [line] = logs.syncs()
    assert line["outcome"] == "rejected" and line["http_status"] == 404 and line["error_code"] == "CCE.01404000"


def test_the_session_is_reused_across_invocations(invoke: Invoke, emulator: Emulator, instance: Instance) -> None:
    invoke(load_event("direct.json"))
    first = instance.function().transport.session
    invoke(load_event("direct.json"))
    assert instance.function().transport.session is first
    assert len(emulator.syncs()) == 2


def test_api_gateway_never_syncs_the_default_pool_for_a_route_that_names_another(
    invoke: Invoke, emulator: Emulator
) -> None:
    event = {**apig_event({"spec": {"maxUnavailable": 1}}), "pathParameters": {"": "x"}}
    event["path"] = "/clusters/c-other/nodepools/np-other/sync"
    status, body = status_body(invoke(event))
    assert status == 200 and (body["cluster_id"], body["nodepool_id"]) == ("c-other", "np-other")
    [sync] = emulator.syncs()
    assert sync.path.endswith("/clusters/c-other/nodepools/np-other/operation/upgrade")
    event["path"] = "/clusters/c-other/nodepools//sync"
    status, body = status_body(invoke(event))
    assert status == 400 and body["error_code"] == "FUNC.EVENT" and len(emulator.syncs()) == 1
