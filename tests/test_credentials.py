"""Credential sources, their order, the IAM token cache, AK/SK signing and the node password secret."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from handler import index
from handler.credentials import sign_request
from handler.errors import SyncError
from handler.function import Instance
from local.emulator import Recorded, verify_signature
from tests.conftest import (
    ACCESS_KEY,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    NODE_PASSWORD,
    PROJECT,
    SECRET_KEY,
    SECURITY_TOKEN,
    TOKEN,
    FakeContext,
    LogCapture,
    load_event,
)

Invoke = Callable[..., Any]
NO_TOKEN = {"HUAWEICLOUD_AUTH_TOKEN": None}
PASSWORD_VARS = {
    "HUAWEICLOUD_IAM_USERNAME": IAM_USER,
    "HUAWEICLOUD_IAM_PASSWORD": IAM_PASSWORD,
    "HUAWEICLOUD_IAM_DOMAIN_NAME": IAM_DOMAIN,
}
AKSK_VARS = {"HUAWEICLOUD_SDK_AK": ACCESS_KEY, "HUAWEICLOUD_SDK_SK": SECRET_KEY}
AGENCY_TOKEN = "MIIagency-token-planted-0001"
AGENCY_CONTEXT = FakeContext(token=AGENCY_TOKEN)
TEMP_AK, TEMP_SK, TEMP_ST = "AKTEMP0001", "temp-secret-key-planted", "temp-security-token-planted"
AGENCY_KEYS_CONTEXT = FakeContext(token="", access_key=TEMP_AK, secret_key=TEMP_SK, security_token=TEMP_ST)


def _auth_of(emulator: Any) -> str:
    """Which kind of credential the last sync carried: a token (which one) or a signature (which key)."""
    sync = emulator.syncs()[-1]
    if "x-auth-token" in sync.headers:
        token = sync.headers["x-auth-token"]
        return "env-token" if token == TOKEN else "agency-token" if token == AGENCY_TOKEN else "iam-token"
    access = sync.headers["authorization"].split("Access=")[1].split(",")[0]
    return f"signed:{access}" + (":st" if "x-security-token" in sync.headers else "")


def test_token_source(invoke: Invoke, emulator: Any) -> None:
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert _auth_of(emulator) == "env-token" and emulator.iam_requests() == []


def test_password_source_fetches_a_project_scoped_token(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    [iam] = emulator.iam_requests()
    assert iam.path == "/v3/auth/tokens" and iam.query == "nocatalog=true"
    assert iam.headers["user-agent"].startswith("nodepool-sync/")
    assert iam.json == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"domain": {"name": IAM_DOMAIN}, "name": IAM_USER, "password": IAM_PASSWORD}},
            },
            "scope": {"project": {"id": PROJECT}},
        }
    }
    assert _auth_of(emulator) == "iam-token"


def test_aksk_source_signs_as_the_sdk_does(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **AKSK_VARS)
    emulator.add_keys(ACCESS_KEY, SECRET_KEY)
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert _auth_of(emulator) == f"signed:{ACCESS_KEY}"
    assert "x-sdk-date" in emulator.syncs()[0].headers


def test_aksk_signs_a_node_pool_read_with_its_query(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **AKSK_VARS, SYNC_SKIP_IF_BUSY=None)
    emulator.add_keys(ACCESS_KEY, SECRET_KEY)
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    [read] = emulator.cce_requests("GET")
    assert read.query == "advanceStatus=true" and "authorization" in read.headers


def test_aksk_with_security_token(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **AKSK_VARS, HUAWEICLOUD_SDK_SECURITY_TOKEN=SECURITY_TOKEN)
    emulator.add_keys(ACCESS_KEY, SECRET_KEY, SECURITY_TOKEN)
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert _auth_of(emulator) == f"signed:{ACCESS_KEY}:st"


def test_a_wrong_secret_key_is_refused_by_the_emulator(invoke: Invoke, emulator: Any, env: Any) -> None:
    """Guards the signing tests: the emulator really checks signatures."""
    env(**NO_TOKEN, **AKSK_VARS)
    emulator.add_keys(ACCESS_KEY, "another-secret")
    answer = invoke(load_event("direct.json"))
    assert answer["status"] == "rejected" and answer["http_status"] == 502 and answer["upstream_status"] == 401


def test_agency_token_source(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN)
    emulator.add_token(AGENCY_TOKEN)
    assert invoke(load_event("direct.json"), AGENCY_CONTEXT)["status"] == "accepted"
    assert _auth_of(emulator) == "agency-token"


def test_agency_temporary_keys_source(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN)
    emulator.add_keys(TEMP_AK, TEMP_SK, TEMP_ST)
    assert invoke(load_event("direct.json"), AGENCY_KEYS_CONTEXT)["status"] == "accepted"
    assert _auth_of(emulator) == f"signed:{TEMP_AK}:st"


ORDER = [
    ({}, AGENCY_CONTEXT, "env-token"),
    ({**NO_TOKEN, **PASSWORD_VARS, **AKSK_VARS}, AGENCY_CONTEXT, "iam-token"),
    ({**NO_TOKEN, **AKSK_VARS}, AGENCY_CONTEXT, f"signed:{ACCESS_KEY}"),
    ({**NO_TOKEN}, AGENCY_CONTEXT, "agency-token"),
    ({**PASSWORD_VARS, "HUAWEICLOUD_AUTH_MODE": "password"}, AGENCY_CONTEXT, "iam-token"),
    ({**AKSK_VARS, "HUAWEICLOUD_AUTH_MODE": "aksk"}, AGENCY_CONTEXT, f"signed:{ACCESS_KEY}"),
    ({**AKSK_VARS, "HUAWEICLOUD_AUTH_MODE": "agency"}, AGENCY_CONTEXT, "agency-token"),
    ({**PASSWORD_VARS, "HUAWEICLOUD_AUTH_MODE": "token"}, None, "env-token"),
]


@pytest.mark.parametrize(("variables", "context", "expected"), ORDER)
def test_source_order_and_forcing(
    variables: dict[str, Any], context: Any, expected: str, invoke: Invoke, emulator: Any, env: Any
) -> None:
    env(**variables)
    emulator.add_keys(ACCESS_KEY, SECRET_KEY)
    emulator.add_token(AGENCY_TOKEN)
    assert invoke(load_event("direct.json"), context)["status"] == "accepted"
    assert _auth_of(emulator) == expected


PARTIAL = [
    ({"HUAWEICLOUD_IAM_USERNAME": IAM_USER}, "HUAWEICLOUD_IAM_PASSWORD, HUAWEICLOUD_IAM_DOMAIN_NAME"),
    ({"HUAWEICLOUD_IAM_USERNAME": IAM_USER, "HUAWEICLOUD_IAM_PASSWORD": IAM_PASSWORD}, "HUAWEICLOUD_IAM_DOMAIN_NAME"),
    ({"HUAWEICLOUD_SDK_AK": ACCESS_KEY}, "HUAWEICLOUD_SDK_SK"),
    ({"HUAWEICLOUD_SDK_SK": SECRET_KEY}, "HUAWEICLOUD_SDK_AK"),
    ({"HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN}, "HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK"),
    ({"HUAWEICLOUD_AUTH_MODE": "aksk"}, "HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK"),
]


@pytest.mark.parametrize(("variables", "missing"), PARTIAL)
def test_partial_credentials_name_what_is_missing(
    variables: dict[str, Any], missing: str, invoke: Invoke, emulator: Any, env: Any
) -> None:
    env(**NO_TOKEN, **variables)
    answer = invoke(load_event("apig.json"), AGENCY_CONTEXT)
    assert answer["statusCode"] == 500 and missing in answer["body"]
    assert emulator.requests == []


def test_forced_agency_without_an_agency_says_so(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(HUAWEICLOUD_AUTH_MODE="agency")
    answer = invoke(load_event("apig.json"), FakeContext())
    assert answer["statusCode"] == 500 and "set an agency on the function" in answer["body"]
    assert emulator.requests == []


def test_no_credentials_lists_every_way_to_set_them(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN)
    answer = invoke(load_event("apig.json"), FakeContext())
    assert answer["statusCode"] == 500
    for name in ("HUAWEICLOUD_AUTH_TOKEN", "HUAWEICLOUD_IAM_USERNAME", "HUAWEICLOUD_SDK_AK", "agency"):
        assert name in answer["body"]


def test_the_token_is_fetched_once_for_many_invocations(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    for _ in range(20):
        assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert len(emulator.iam_requests()) == 1 and len(emulator.syncs()) == 20


def test_concurrent_invocations_share_one_token_fetch(
    emulator: Any, env: Any, instance: Instance, answers: list[Any]
) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    emulator.inject(path_contains="/v3/auth/tokens", delay=0.3)  # keeps the fetch in flight while all 8 arrive
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        answers.append(instance.handle(load_event("direct.json"), None))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a["status"] for a in answers] == ["accepted"] * 8
    assert len(emulator.iam_requests()) == 1


@pytest.mark.parametrize(("lifetime", "margin", "fetches"), [(3600, "600", 1), (300, "600", 3), (3600, "0", 1)])
def test_token_expiry_with_the_refresh_margin(
    lifetime: float, margin: str, fetches: int, invoke: Invoke, emulator: Any, env: Any
) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS, TOKEN_REFRESH_MARGIN_SECONDS=margin)
    emulator.token_lifetime = lifetime
    for _ in range(3):
        assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert len(emulator.iam_requests()) == fetches


def test_a_401_drops_the_token_and_retries_once(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    emulator.inject(path_contains="/operation/upgrade", status=401, body={"error_code": "APIG.1002"})
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert len(emulator.iam_requests()) == 2 and len(emulator.syncs()) == 2
    first, second = (s.headers["x-auth-token"] for s in emulator.syncs())
    assert first != second


def test_a_second_401_is_reported(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    emulator.inject(path_contains="/operation/upgrade", status=401, body={"error_code": "APIG.1002"}, times=2)
    answer = invoke(load_event("direct.json"))
    assert answer["status"] == "rejected" and answer["upstream_status"] == 401
    assert len(emulator.syncs()) == 2


def test_a_static_token_is_not_retried_after_401(invoke: Invoke, emulator: Any) -> None:
    emulator.inject(path_contains="/operation/upgrade", status=401)
    assert invoke(load_event("direct.json"))["upstream_status"] == 401
    assert len(emulator.syncs()) == 1


def test_wrong_iam_password_names_the_user_not_the_password(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    emulator.users = {(IAM_DOMAIN, IAM_USER): "another-password"}
    answer = invoke(load_event("direct.json"))
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.CONFIG"
    assert IAM_USER in answer["error_msg"] and IAM_PASSWORD not in answer["error_msg"]
    assert emulator.syncs() == []


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"delay": 1.0}, {"drop": True}, {"malformed": True, "status": 201}, {"status": 429}],
    ids=["500", "timeout", "reset", "malformed-body-no-token", "429"],
)
def test_iam_outages_are_transient(fault: dict[str, Any], invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS, HTTP_READ_TIMEOUT_SECONDS="0.3")
    emulator.inject(path_contains="/v3/auth/tokens", **fault)
    with pytest.raises(SyncError) as caught:
        invoke(load_event("direct.json"))
    assert caught.value.transient and emulator.syncs() == []


def test_an_injected_iam_401_is_a_configuration_error(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    emulator.inject(path_contains="/v3/auth/tokens", status=401, body={"error": {"code": 401, "title": "Unauthorized"}})
    status, body = answer_of(invoke(load_event("apig.json")))
    assert status == 500 and body["error_code"] == "FUNC.CONFIG" and IAM_USER in body["error_msg"]


def answer_of(answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return answer["statusCode"], json.loads(answer["body"])


def test_a_token_without_expires_at_is_used(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS)
    emulator.omit_expires_at = True
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert len(emulator.iam_requests()) == 1


def test_iam_endpoint_must_be_https_off_loopback(invoke: Invoke, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS, IAM_ENDPOINT="http://iam.example.com")
    answer = invoke(load_event("apig.json"))
    assert answer["statusCode"] == 500 and "IAM_ENDPOINT" in answer["body"]


def test_initializer_warms_the_token(emulator: Any, platform: Any, answers: list[Any]) -> None:
    platform(**NO_TOKEN, **PASSWORD_VARS)
    index.initializer(FakeContext())
    assert len(emulator.iam_requests()) == 1
    answers.append(index.handler(load_event("direct.json"), FakeContext()))
    assert answers[0]["status"] == "accepted" and len(emulator.iam_requests()) == 1


def test_node_login_password_from_the_environment(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(NODE_LOGIN_PASSWORD=NODE_PASSWORD)
    template = {"lifeCycle": {}, "login": {"userPassword": {"username": "root"}}}
    assert invoke({"spec": {"maxUnavailable": 1, "nodeTemplate": template}})["status"] == "accepted"
    sent = emulator.syncs()[0].json["spec"]["nodeTemplate"]["login"]["userPassword"]["password"]
    assert base64.b64decode(sent).startswith(b"$6$")


def test_secrets_are_masked_in_dry_run_with_signing(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **AKSK_VARS, HUAWEICLOUD_SDK_SECURITY_TOKEN=SECURITY_TOKEN)
    answer = invoke({"dry_run": True, "spec": {"maxUnavailable": 1}})
    headers = answer["request"]["headers"]
    assert headers["Authorization"] == "***" and headers["X-Security-Token"] == "***"
    assert emulator.requests == []


def test_no_secret_in_logs_even_on_failures(invoke: Invoke, emulator: Any, env: Any, logs: LogCapture) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS, NODE_LOGIN_PASSWORD=NODE_PASSWORD)
    emulator.inject(path_contains="/operation/upgrade", status=400, body={"errorMessage": f"echo {IAM_PASSWORD}"})
    invoke({"spec": {"maxUnavailable": 1}})
    text = "\n".join(logs.lines)
    assert logs.lines and IAM_PASSWORD not in text and "***" in text


def test_the_signature_matches_an_independent_verifier() -> None:
    """Our signer against the emulator's verifier, which is written separately from the algorithm text."""
    url = "https://cce.ap-southeast-1.myhuaweicloud.com/api/v3/projects/p/clusters/c/nodepools/n?b=2&a=1 x"
    headers = {"Content-Type": "application/json", "X-Project-Id": "p", "X_Skipped": "y"}
    body = b'{"spec":{}}'
    added = sign_request("POST", url, headers, body, "AK1", "SK1", datetime.now(timezone.utc))
    assert "x_skipped" not in added["Authorization"]
    received = {k.lower(): v for k, v in {**headers, **added}.items()}
    recorded = Recorded("POST", "/api/v3/projects/p/clusters/c/nodepools/n", "b=2&a=1%20x", received, body)
    assert verify_signature(recorded, {"AK1": ("SK1", None)}) is None
    assert verify_signature(recorded, {"AK1": ("SK2", None)}) == "Signature mismatch"


def test_the_sdk_iam_endpoint_variable_is_honoured(invoke: Invoke, emulator: Any, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS, IAM_ENDPOINT=None, HUAWEICLOUD_SDK_IAM_ENDPOINT=emulator.url)
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert len(emulator.iam_requests()) == 1


def test_a_bad_sdk_iam_endpoint_is_named(invoke: Invoke, env: Any) -> None:
    env(**NO_TOKEN, **PASSWORD_VARS, IAM_ENDPOINT=None, HUAWEICLOUD_SDK_IAM_ENDPOINT="http://iam.example.com")
    answer = invoke(load_event("apig.json"))
    assert answer["statusCode"] == 500 and "HUAWEICLOUD_SDK_IAM_ENDPOINT" in answer["body"]
