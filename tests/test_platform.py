"""The function as FunctionGraph runs it: variables from the context's user data, the agency on every runtime.

Facts: encrypted variables reach a Python function only through `context.getUserData(key)` and the JSON in
RUNTIME_USERDATA; the open-source runtime names the agency token getter `getAuthToken()`.
https://github.com/openyuanrong/runtime/blob/main/api/python/yr/functionsdk/context.py
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from handler.environment import Environment
from handler.function import Instance
from handler.passwords import sha512_crypt
from handler.settings import Settings
from local.emulator import Emulator
from tests.conftest import (
    CLUSTER,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    NODE_PASSWORD,
    NODEPOOL,
    PROJECT,
    FakeContext,
    LogCapture,
    load_event,
    only_platform_variables,
)

Invoke = Callable[..., Any]
WITH_LOGIN = {
    "spec": {"maxUnavailable": 1, "nodeTemplate": {"lifeCycle": {}, "login": {"userPassword": {"username": "root"}}}}
}


def _user_data(emulator: Emulator) -> dict[str, str]:
    return {
        "CCE_ENDPOINT": emulator.url,
        "IAM_ENDPOINT": emulator.url,
        "CCE_CLUSTER_ID": CLUSTER,
        "CCE_NODEPOOL_ID": NODEPOOL,
        "HUAWEICLOUD_IAM_USERNAME": IAM_USER,
        "HUAWEICLOUD_IAM_DOMAIN_NAME": IAM_DOMAIN,
        "HUAWEICLOUD_IAM_PASSWORD": IAM_PASSWORD,
        "NODE_LOGIN_PASSWORD": NODE_PASSWORD,
    }


def _sent_password(emulator: Emulator) -> str:
    sent = emulator.syncs()[-1].json["spec"]["nodeTemplate"]["login"]["userPassword"]["password"]
    return base64.b64decode(sent).decode("ascii")


def _assert_salted_from(crypted: str, password: str) -> None:
    salt = crypted.split("$")[2]
    assert crypted == sha512_crypt(password, salt)


def test_a_function_configured_only_through_user_data_syncs_with_an_iam_password_and_salts_the_node_password(
    invoke: Invoke, emulator: Emulator, env: Any, instance: Instance
) -> None:
    only_platform_variables(env)
    context = FakeContext(user_data=_user_data(emulator))
    instance.warm(context)
    answer = invoke(WITH_LOGIN, context)
    assert answer["status"] == "accepted" and answer["nodepool_id"] == NODEPOOL
    [iam] = emulator.iam_requests()
    assert iam.json["auth"]["identity"]["password"]["user"]["password"] == IAM_PASSWORD
    assert iam.json["auth"]["scope"]["project"]["id"] == PROJECT
    [sync] = emulator.syncs()
    assert sync.path == f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools/{NODEPOOL}/operation/upgrade"
    _assert_salted_from(_sent_password(emulator), NODE_PASSWORD)


def test_runtime_userdata_serves_when_the_context_has_no_getuserdata(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    only_platform_variables(env)
    env(RUNTIME_USERDATA=json.dumps(_user_data(emulator)))
    assert invoke(WITH_LOGIN, FakeContext())["status"] == "accepted"
    assert len(emulator.iam_requests()) == 1
    _assert_salted_from(_sent_password(emulator), NODE_PASSWORD)


def test_settings_are_read_once_from_the_first_context(
    invoke: Invoke, emulator: Emulator, env: Any, instance: Instance
) -> None:
    only_platform_variables(env)
    instance.warm(FakeContext(user_data=_user_data(emulator)))
    later = FakeContext(user_data={**_user_data(emulator), "CCE_NODEPOOL_ID": "np-other"})
    assert invoke({"spec": {"maxUnavailable": 1}}, later)["nodepool_id"] == NODEPOOL


@pytest.mark.parametrize(
    ("environ", "user_data", "expected"),
    [
        ({"X": "environ"}, {"X": "context"}, "environ"),
        ({"RUNTIME_USERDATA": '{"X": "serialised"}'}, {"X": "context"}, "context"),
        ({"RUNTIME_USERDATA": '{"X": "serialised"}'}, None, "serialised"),
        ({"RUNTIME_USERDATA": '{"X": 7}'}, None, None),
        ({"RUNTIME_USERDATA": "not json"}, None, None),
        ({"RUNTIME_USERDATA": '["X"]'}, {}, None),
    ],
)
def test_a_variable_is_looked_up_in_environ_then_user_data_then_runtime_userdata(
    environ: dict[str, str], user_data: dict[str, str] | None, expected: str | None
) -> None:
    lookup = None if user_data is None else user_data.get
    assert Environment(environ, lookup).get("X") == expected


def test_an_encrypted_variable_is_a_masked_secret_like_the_others() -> None:
    settings = Settings.from_environ(Environment({}, {"HUAWEICLOUD_IAM_PASSWORD": IAM_PASSWORD}.get))
    assert IAM_PASSWORD in settings.secrets() and IAM_PASSWORD not in repr(settings)


def test_a_malformed_user_data_variable_is_named_in_the_error(invoke: Invoke, env: Any) -> None:
    only_platform_variables(env)
    answer = invoke(load_event("timer.json"), FakeContext(user_data={"SYNC_WAIT": "maybe"}))
    assert answer["status"] == "rejected" and "SYNC_WAIT" in answer["error_msg"]


def test_the_open_source_runtime_agency_token_getter_authenticates(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None)
    agency_token = "MIIauth-token-from-getAuthToken-01"
    emulator.add_token(agency_token)
    context = FakeContext(auth_token=agency_token)
    assert not hasattr(context, "getToken")
    assert invoke(load_event("direct.json"), context)["status"] == "accepted"
    assert emulator.syncs()[0].headers["x-auth-token"] == agency_token


def test_log_level_comes_from_user_data_too(invoke: Invoke, emulator: Emulator, env: Any, logs: LogCapture) -> None:
    assert invoke(load_event("direct.json"), FakeContext(user_data={"LOG_LEVEL": "warning"}))["status"] == "accepted"
    assert logs.syncs() == []
    env(LOG_LEVEL=None)
    assert invoke(load_event("direct.json"))["status"] == "accepted"
    assert len(logs.syncs()) == 1


def test_a_log_level_that_is_not_one_is_named(invoke: Invoke, env: Any) -> None:
    env(LOG_LEVEL="LOUD")
    answer = invoke(load_event("direct.json"))
    assert answer["status"] == "rejected" and "LOG_LEVEL" in answer["error_msg"]


@pytest.mark.parametrize(
    ("region", "service", "endpoint"),
    [
        ("ap-southeast-1", "smn", "https://smn.ap-southeast-1.myhuaweicloud.com"),
        ("cn-north-2", "smn", "https://smn.cn-north-2.myhuaweicloud.cn"),
        ("cn-north-2", "cce", "https://cce.cn-north-2.myhuaweicloud.com"),
        ("eu-west-101", "smn", "https://smn.eu-west-101.myhuaweicloud.eu"),
        ("eu-west-101", "cce", "https://cce.eu-west-101.myhuaweicloud.eu"),
        ("eu-west-101", "iam", "https://iam.eu-west-101.myhuaweicloud.eu"),
    ],
)
def test_endpoints_follow_the_sdks_region_tables(region: str, service: str, endpoint: str) -> None:
    from handler.settings import Settings

    settings = Settings.from_environ({"HUAWEICLOUD_SDK_REGION": region})
    assert settings.endpoint(service) == endpoint


def test_smn_endpoint_overrides_the_region_table() -> None:
    from handler.settings import Settings

    settings = Settings.from_environ({"HUAWEICLOUD_SDK_REGION": "cn-north-2", "SMN_ENDPOINT": "https://smn.example"})
    assert settings.endpoint("smn") == "https://smn.example"


def test_an_endpoint_may_name_the_region_so_one_server_plays_every_region() -> None:
    from handler.settings import Settings

    settings = Settings.from_environ(
        {"HUAWEICLOUD_SDK_REGION": "ap-southeast-1", "CCE_ENDPOINT": "http://127.0.0.1:8080/{region}"}
    )
    assert settings.endpoint("cce") == "http://127.0.0.1:8080/ap-southeast-1"
    assert settings.endpoint("cce", "eu-west-101") == "http://127.0.0.1:8080/eu-west-101"
    assert settings.endpoint("functiongraph", "la-south-2") == "https://functiongraph.la-south-2.myhuaweicloud.com"
