"""The deployment as rendered: true to the provider's published schemas, and a function that syncs when run.

Provider facts: tests/provider/schemas.json (made by tests/provider/extract.py from
huaweicloud/terraform-provider-huaweicloud docs/json/resources, at the commit it records).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from handler import index
from local import template as templates
from local import terraform
from local.emulator import Emulator
from tests.conftest import (
    ACCESS_KEY,
    CLUSTER,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    NODE_PASSWORD,
    NODEPOOL,
    PROJECT,
    ROOT,
    SECRET_KEY,
    FakeContext,
    only_platform_variables,
    readme_code,
    readme_section,
    run_cli,
)

PROVIDER = json.loads((Path(__file__).parent / "provider" / "schemas.json").read_text(encoding="utf-8"))
META_ARGUMENTS = {"depends_on", "count", "for_each", "provider", "lifecycle"}
# The event_data keys FunctionGraph knows (huaweicloudsdkfunctiongraph 3.1.219, TriggerEventDataRequestBody:
# https://github.com/huaweicloud/huaweicloud-sdk-python-v3/blob/master/huaweicloud-sdk-functiongraph/huaweicloudsdkfunctiongraph/v2/model/trigger_event_data_request_body.py).
TRIGGER_EVENT_DATA_KEYS = {
    "name", "schedule_type", "schedule", "user_event", "type", "path", "protocol", "req_method", "group_id",
    "group_name", "match_mode", "env_name", "env_id", "auth", "func_info", "sl_domain", "backend_type",
    "operations", "instance_id",
}  # fmt: skip
AGENCY_TOKEN = "MIIagency-token-for-the-rendered-function"
CREDENTIALS = {
    "agency": {"mode": "agency", "agency": "nodepool-sync-agency", "create_agency": True, "policy": "sync-cce"},
    "existing-agency": {"mode": "agency", "agency": "ops-agency"},
    "password": {"mode": "password", "iam_username": IAM_USER, "iam_domain_name": IAM_DOMAIN},
    "aksk": {"mode": "aksk"},
}
VALUES = {
    "cluster_id": CLUSTER,
    "nodepool_id": NODEPOOL,
    "apig_instance_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "apig_group_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "eg_channel_id": "c0ffee00-0000-4000-8000-000000000001",
    "huaweicloud_iam_password": IAM_PASSWORD,
    "huaweicloud_sdk_ak": ACCESS_KEY,
    "huaweicloud_sdk_sk": SECRET_KEY,
    "node_login_password": NODE_PASSWORD,
    "huaweicloud_smn_topic.alerts.topic_urn": f"urn:smn:ap-southeast-1:{PROJECT}:nodepool-sync-alerts",
}


def _template(credentials: str = "agency", gateway: str = "dedicated") -> dict[str, Any]:
    template = copy.deepcopy(templates.load())
    template["function"]["credentials"] = dict(CREDENTIALS[credentials])
    if gateway == "shared":
        template["triggers"]["apig"]["gateway"] = "shared"
        template["triggers"]["apig"]["env_id"] = "DEFAULT_ENVIRONMENT_RELEASE_ID"  # the shared gateway's RELEASE
        del template["triggers"]["apig"]["instance_id"]
    return template


def _variables(config: dict[str, Any]) -> dict[str, str]:
    """What `terraform apply -var ...` would fill: the declared defaults, the values a user gives, and the
    attributes of created resources (known after apply)."""
    defaults = {name: v["default"] for name, v in config["variable"].items() if "default" in v}
    return {**defaults, **{k: v for k, v in VALUES.items() if k in config["variable"] or "." in k}}


_LITERAL = r'"(?:[^"\\]|\\.)*"'
_ENTRY = re.compile(rf"\s*({_LITERAL})\s*=\s*(\w+(?:\.\w+)+|{_LITERAL})\s*(,|$)")


def evaluate(value: str, variables: dict[str, str]) -> str:
    """Terraform's value for the string forms the rendering uses: `${jsonencode({...})}` and `${var.x}`."""
    match = re.fullmatch(r"\$\{jsonencode\(\{(.*)\}\)\}", value, re.DOTALL)
    if match is None:
        return re.sub(r"\$\{var\.(\w+)\}", lambda m: variables[m[1]], value)
    body, position, result = match[1], 0, {}
    while position < len(body):
        entry = _ENTRY.match(body, position)
        assert entry is not None, f"not a rendering form this evaluator knows: {body[position:][:60]!r}"
        key, expression = json.loads(entry[1]), entry[2]
        literal = expression.startswith('"')
        name = expression.removeprefix("var.")  # a variable, or a resource attribute known after apply
        result[key] = _interpolate(json.loads(expression), variables) if literal else variables[name]
        position = entry.end()
    return json.dumps(result)


def _interpolate(text: str, variables: dict[str, str]) -> str:
    """An HCL string literal's value: `${var.x}` filled in, `$${` the escape of a literal `${`."""
    filled = re.sub(r"(?<!\$)\$\{var\.(\w+)\}", lambda m: variables[m[1]], text)
    return filled.replace("$${", "${")


# --- the provider's published schemas ------------------------------------------------------------------------


def _check_block(path: str, rendered: dict[str, Any], schema: dict[str, Any], problems: list[str]) -> None:
    attributes, blocks = schema["attributes"], schema["blocks"]
    for name, value in rendered.items():
        where = f"{path}.{name}"
        if name in META_ARGUMENTS:
            continue
        if name == "dynamic":  # `dynamic "<block>" { for_each, content }`: the content is one of that block
            for block, generated in value.items():
                if block not in blocks:
                    problems.append(f"{where}.{block}: no such block")
                else:
                    _check_block(f"{where}.{block}.content", generated["content"], blocks[block], problems)
            continue
        if name in blocks:
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                _check_block(f"{where}[{i}]", item, blocks[name], problems)
            continue
        spec = attributes.get(name)
        if spec is None:
            problems.append(f"{where}: no such attribute")
        elif spec.get("deprecated"):
            problems.append(f"{where}: deprecated")
        elif spec.get("computed") and not (spec.get("optional") or spec.get("required")):
            problems.append(f"{where}: computed only")
        elif not _fits(value, spec["type"]):
            problems.append(f"{where}: {type(value).__name__} where the schema says {spec['type']}")
    for name, spec in attributes.items():
        if spec.get("required") and name not in rendered:
            problems.append(f"{path}.{name}: required and missing")
    for group in schema.get("exactly_one_of", ()):  # the provider's Go code (tests/provider/extract.py GO_FACTS)
        if sum(name in rendered for name in group) != 1:
            problems.append(f"{path}: exactly one of {', '.join(group)}")
    for name, spec in blocks.items():
        if spec.get("min_items") and not rendered.get(name):
            problems.append(f"{path}.{name}: at least {spec['min_items']} block(s) required")


def _fits(value: Any, kind: Any) -> bool:
    if isinstance(value, str) and value.startswith("${") and value.endswith("}") and kind != "string":
        return True  # one expression: Terraform evaluates it to the attribute's type (a list, a number...)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(kind, list) and kind[0] in ("set", "list"):
        return isinstance(value, list) and all(_fits(item, kind[1]) for item in value)
    return False


def _problems(config: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for kind, published in (("resource", PROVIDER["resources"]), ("data", PROVIDER["data_sources"])):
        for resource_type, resources in config.get(kind, {}).items():
            schema = published.get(resource_type)
            if schema is None:
                problems.append(f"{resource_type}: not a {kind} of the provider")
                continue
            for name, rendered in resources.items():
                _check_block(f"{resource_type}.{name}", rendered, schema, problems)
    return problems


RENDERINGS = [
    pytest.param(credentials, gateway, id=f"{credentials}-{gateway}")
    for credentials in CREDENTIALS
    for gateway in ("dedicated", "shared")
]


@pytest.mark.parametrize(("credentials", "gateway"), RENDERINGS)
def test_every_rendered_resource_and_attribute_is_in_the_provider_schema(credentials: str, gateway: str) -> None:
    assert _problems(terraform.render_terraform(_template(credentials, gateway))) == []


def test_the_schema_check_catches_unknown_missing_and_mistyped_attributes() -> None:
    config = terraform.render_terraform(_template())
    function = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"]
    del function["app"]
    function["max_instance_num"] = 10
    function["no_such_attribute"] = "x"
    config["resource"]["huaweicloud_eg_event_subscription"]["sync_requests"]["sources"][0]["bogus"] = "y"
    assert _problems(config) == [
        "huaweicloud_fgs_function.nodepool_sync.max_instance_num: int where the schema says string",
        "huaweicloud_fgs_function.nodepool_sync.no_such_attribute: no such attribute",
        "huaweicloud_fgs_function.nodepool_sync.app: required and missing",
        "huaweicloud_eg_event_subscription.sync_requests.sources[0].bogus: no such attribute",
    ]


def test_the_provider_facts_name_their_commit() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", PROVIDER["commit"]) and PROVIDER["commit"] in PROVIDER["source"]


@pytest.mark.parametrize(("credentials", "gateway"), RENDERINGS)
def test_every_referenced_variable_is_declared_with_a_description(credentials: str, gateway: str) -> None:
    config = terraform.render_terraform(_template(credentials, gateway))
    referenced = set(re.findall(r"\bvar\.(\w+)", json.dumps([config["resource"], config["provider"], config["data"]])))
    assert referenced == set(config["variable"])
    assert all(v["description"] and v["type"] == "string" for v in config["variable"].values())


def test_the_rendering_names_the_provider_and_its_region() -> None:
    config = terraform.render_terraform(_template())
    assert config["terraform"]["required_providers"]["huaweicloud"]["source"] == "huaweicloud/huaweicloud"
    assert config["provider"] == {"huaweicloud": {"region": "${var.region}"}}
    assert config["variable"]["region"]["default"] == "ap-southeast-1"


@pytest.mark.parametrize(("gateway", "kind"), [("dedicated", "DEDICATEDGATEWAY"), ("shared", "APIG")])
def test_api_gateway_is_dedicated_unless_the_template_asks_for_the_shared_one(gateway: str, kind: str) -> None:
    trigger = terraform.render_terraform(_template(gateway=gateway))["resource"]["huaweicloud_fgs_function_trigger"]
    event_data = json.loads(trigger["apig"]["event_data"])
    assert trigger["apig"]["type"] == kind
    assert ("instance_id" in event_data) is (gateway == "dedicated")
    assert set(event_data) <= TRIGGER_EVENT_DATA_KEYS
    assert set(json.loads(trigger["timer"]["event_data"])) <= TRIGGER_EVENT_DATA_KEYS


def test_eventgrid_gets_its_custom_source_and_invokes_through_its_own_agency() -> None:
    resources = terraform.render_terraform(_template())["resource"]
    source = resources["huaweicloud_eg_custom_event_source"]["sync_requests"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,127}", source["name"]) and source["type"] == "APPLICATION"
    subscription = resources["huaweicloud_eg_event_subscription"]["sync_requests"]
    assert subscription["depends_on"] == ["huaweicloud_eg_custom_event_source.sync_requests"]
    [rendered_source], [target] = subscription["sources"], subscription["targets"]
    assert rendered_source["provider_type"] == "CUSTOM"
    assert rendered_source["name"] == "${huaweicloud_eg_custom_event_source.sync_requests.name}"
    assert json.loads(rendered_source["filter_rule"])["source"] == [{"op": "StringIn", "values": ["nodepool-sync"]}]
    assert json.loads(target["detail"])["agency_name"] == "EG_TARGET_AGENCY"
    assert (target["provider_type"], target["name"], target["detail_name"]) == (
        "OFFICIAL",
        "HC.FunctionGraph",
        "detail",
    )


def test_without_notifications_the_policy_has_no_smn_action_and_there_is_no_topic() -> None:
    template = _template("agency")
    del template["function"]["notifications"]
    resources = terraform.render_terraform(template)["resource"]
    assert "smn:topic:publish" not in resources["huaweicloud_identity_role"]["nodepool_sync"]["policy"]
    assert "huaweicloud_smn_topic" not in resources


def test_the_created_topic_reaches_the_function_as_smn_topic_urn() -> None:
    config = terraform.render_terraform(_template("agency"))
    assert config["resource"]["huaweicloud_smn_topic"]["alerts"]["name"] == "nodepool-sync-alerts"
    function = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"]
    user_data = json.loads(evaluate(function["user_data"], _variables(config)))
    assert user_data["SMN_TOPIC_URN"].startswith("urn:smn:")


def test_the_created_agency_trusts_functiongraph_with_exactly_the_actions_the_function_calls() -> None:
    resources = terraform.render_terraform(_template("agency"))["resource"]
    role = resources["huaweicloud_identity_role"]["nodepool_sync"]
    assert json.loads(role["policy"]) == {
        "Version": "1.1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "cce:nodepool:update",
                    "cce:nodepool:get",
                    "cce:nodepool:list",
                    "cce:job:get",
                    "cce:cluster:list",
                    "smn:topic:publish",  # the template turns notifications on
                    "functiongraph:function:invokeAsync",  # a fanned-out pass's coordinator invokes its workers
                    "functiongraph:function:invoke",
                    "ces:metricData:create",  # the template sets CES_NAMESPACE: each pass reports its figures
                ],
            }
        ],
    }
    agency = resources["huaweicloud_identity_agency"]["nodepool_sync"]
    assert agency["delegated_service_name"] == "op_svc_cff" and "delegated_domain_name" not in agency
    assert agency["project_role"] == [
        {"project": "${var.region}", "roles": ["${huaweicloud_identity_role.nodepool_sync.name}", "CTS Administrator"]}
    ]
    function = resources["huaweicloud_fgs_function"]["nodepool_sync"]
    assert function["agency"] == function["app_agency"] == "${huaweicloud_identity_agency.nodepool_sync.name}"


@pytest.mark.parametrize(
    ("credentials", "agency", "iam"),
    [("existing-agency", "ops-agency", False), ("password", None, False), ("aksk", None, False)],
)
def test_without_the_cts_trigger_only_a_created_agency_renders_iam_resources(
    credentials: str, agency: str | None, iam: bool
) -> None:
    template = _template(credentials)
    del template["triggers"]["changes"]["cts"]
    resources = terraform.render_terraform(template)["resource"]
    assert ("huaweicloud_identity_agency" in resources) is iam
    assert resources["huaweicloud_fgs_function"]["nodepool_sync"].get("agency") == agency


@pytest.mark.parametrize("credentials", ["password", "aksk"])
def test_the_cts_trigger_gets_an_agency_with_the_cts_role_in_password_and_aksk_modes(credentials: str) -> None:
    resources = terraform.render_terraform(_template(credentials))["resource"]
    agency = resources["huaweicloud_identity_agency"]["cts"]
    assert agency["delegated_service_name"] == "op_svc_cff"
    assert agency["project_role"] == [{"project": "${var.region}", "roles": ["CTS Administrator"]}]
    function = resources["huaweicloud_fgs_function"]["nodepool_sync"]
    assert function["agency"] == "${huaweicloud_identity_agency.cts.name}" and "app_agency" not in function
    assert "huaweicloud_identity_role" not in resources  # CCE is reached with the credentials, not the agency


@pytest.mark.parametrize(
    ("credentials", "plain", "encrypted"),
    [
        ("agency", {"HUAWEICLOUD_AUTH_MODE": "agency"}, {"NODE_LOGIN_PASSWORD"}),
        (
            "password",
            {"HUAWEICLOUD_AUTH_MODE": "password", "HUAWEICLOUD_IAM_USERNAME": IAM_USER},
            {"HUAWEICLOUD_IAM_PASSWORD", "NODE_LOGIN_PASSWORD"},
        ),
        (
            "aksk",
            {"HUAWEICLOUD_AUTH_MODE": "aksk", "HUAWEICLOUD_SDK_AK": ACCESS_KEY},
            {"HUAWEICLOUD_SDK_SK", "NODE_LOGIN_PASSWORD"},
        ),
    ],
)
def test_secrets_go_only_to_encrypted_variables(credentials: str, plain: dict[str, str], encrypted: set[str]) -> None:
    config = terraform.render_terraform(_template(credentials))
    function, variables = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"], _variables(config)
    user_data = json.loads(evaluate(function["user_data"], variables))
    assert plain.items() <= user_data.items() and user_data["HUAWEICLOUD_SDK_REGION"] == "ap-southeast-1"
    assert set(json.loads(evaluate(function["encrypted_user_data"], variables))) == encrypted
    assert not encrypted & set(user_data)
    assert all(config["variable"][name].get("sensitive") for name in ("node_login_password",))


# --- the template's schema -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"credentials": {"mode": "password", "iam_username": "u"}}, "credentials"),
        ({"credentials": {"mode": "password", "iam_domain_name": "d"}}, "credentials"),
        ({"credentials": {"mode": "agency", "agency": "a", "create_agency": True}}, "credentials"),
        ({"credentials": {"mode": "aksk", "iam_username": "u"}}, "credentials"),
        ({"credentials": {"mode": "token"}}, "credentials"),
        ({"environment": {"HUAWEICLOUD_IAM_PASSWORD": "plain-text"}}, "environment"),
        ({"secret_environment": ["HUAWEICLOUD_AUTH_TOKEN"]}, "secret_environment"),
    ],
)
def test_the_template_schema_refuses_partial_or_misplaced_credentials(
    tmp_path: Path, change: dict[str, Any], words: str
) -> None:
    data = yaml.safe_load((templates.TEMPLATE).read_text())
    data["function"].update(change)
    bad = tmp_path / "template.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(templates.TemplateError, match=words):
        templates.load(bad)


@pytest.mark.parametrize(
    ("trigger", "change"),
    [
        ("apig", {"instance_id": None}),
        ("apig", {"gateway": "shared"}),
        ("eventgrid", {"source_name": "ops.nodepool-sync"}),
        ("eventgrid", {"target_agency": None}),
    ],
)
def test_the_template_schema_refuses_triggers_the_platform_would_refuse(
    tmp_path: Path, trigger: str, change: dict[str, Any]
) -> None:
    data = yaml.safe_load((templates.TEMPLATE).read_text())
    for key, value in change.items():
        if value is None:
            del data["triggers"][trigger][key]
        else:
            data["triggers"][trigger][key] = value
    bad = tmp_path / "template.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(templates.TemplateError, match=trigger):
        templates.load(bad)


def test_an_unknown_terraform_variable_in_the_template_is_refused() -> None:
    template = _template()
    template["triggers"]["apig"]["group_id"] = "${var.apig_group}"
    with pytest.raises(templates.TemplateError, match="apig_group"):
        terraform.render_terraform(template)


# --- render, deploy as FunctionGraph would, run ------------------------------------------------------------------


@pytest.fixture
def deployed(
    platform: Callable[..., None], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, dict[str, str]], tuple[dict[str, Any], FakeContext]]]:
    """Deploy a rendering as FunctionGraph does: plain variables in os.environ, every variable (encrypted ones
    included) in the context's user data; the region's endpoints stand in for the emulator."""

    def deploy(credentials: str, context_values: dict[str, str]) -> tuple[dict[str, Any], FakeContext]:
        config = terraform.render_terraform(_template(credentials))
        function, variables = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"], _variables(config)
        plain = json.loads(evaluate(function["user_data"], variables))
        encrypted = json.loads(evaluate(function.get("encrypted_user_data", "{}"), variables))
        only_platform_variables(platform)
        platform(**plain, CCE_ENDPOINT=emulator.url, IAM_ENDPOINT=emulator.url)
        return config, FakeContext(user_data={**plain, **encrypted}, **context_values)

    yield deploy
    for name in (
        "HUAWEICLOUD_SDK_REGION",
        "HUAWEICLOUD_AUTH_MODE",
        "LOG_LEVEL",
        "CCE_SYNC_SPEC",
        "SYNC_RECONCILE",
        "SMN_TOPIC_URN",
    ):
        monkeypatch.delenv(name, raising=False)


def _timer_event(config: dict[str, Any]) -> dict[str, Any]:
    """The event FunctionGraph makes from the rendered timer trigger."""
    data = json.loads(config["resource"]["huaweicloud_fgs_function_trigger"]["timer"]["event_data"])
    now = datetime.now(timezone.utc).isoformat()
    return {
        "version": "v1.0",
        "time": now,
        "trigger_type": "TIMER",
        "trigger_name": data["name"],
        "user_event": data["user_event"],
    }


CREDENTIAL_CASES = [
    ("agency", {"token": AGENCY_TOKEN}, "x-auth-token"),
    ("agency", {"auth_token": AGENCY_TOKEN}, "x-auth-token"),
    ("existing-agency", {"token": AGENCY_TOKEN}, "x-auth-token"),
    ("password", {}, "x-auth-token"),
    ("aksk", {}, "authorization"),
]


def _drifted_template_pool(emulator: Emulator) -> tuple[str, str]:
    """The template's cluster and node pool, in the emulator, with nodes behind their template."""
    environment = templates.load()["function"]["environment"]
    cluster, pool = environment["CCE_CLUSTER_ID"], environment["CCE_NODEPOOL_ID"]
    emulator.add_pool(PROJECT, cluster, pool, "workers", nodes=3, synced=1)
    return cluster, pool


@pytest.mark.parametrize(("credentials", "context_values", "auth"), CREDENTIAL_CASES)
def test_the_rendered_function_syncs_on_its_rendered_timer(
    deployed: Any, emulator: Emulator, answers: list[Any], credentials: str, context_values: dict[str, str], auth: str
) -> None:
    emulator.add_token(AGENCY_TOKEN)
    emulator.add_keys(ACCESS_KEY, SECRET_KEY)
    cluster, pool = _drifted_template_pool(emulator)
    config, context = deployed(credentials, context_values)
    index.initializer(context)
    answers.append(index.handler(_timer_event(config), context))
    assert answers[-1]["status"] == "reconciled" and answers[-1]["totals"]["started"] == 1, answers[-1]
    [sync] = emulator.syncs()
    assert sync.path == f"/api/v3/projects/{PROJECT}/clusters/{cluster}/nodepools/{pool}/operation/upgrade"
    assert sync.json["spec"]["maxUnavailable"] == 1 and auth in sync.headers  # CCE_SYNC_SPEC
    assert len(emulator.iam_requests()) == (credentials == "password")


def test_the_rendered_function_syncs_a_pool_when_its_cts_trigger_reports_a_change(
    deployed: Any, emulator: Emulator, answers: list[Any]
) -> None:
    emulator.add_token(AGENCY_TOKEN)
    cluster, pool = _drifted_template_pool(emulator)
    emulator.add_pool(PROJECT, cluster, "np-other", "other", nodes=2, synced=0)
    config, context = deployed("agency", {"token": AGENCY_TOKEN})
    operations = json.loads(config["resource"]["huaweicloud_fgs_function_trigger"]["changes"]["event_data"])
    assert operations["operations"] == ["CCE:nodepool:updateNodePool;updateConfiguration"]
    answers.append(index.handler(emulator.update_template(PROJECT, cluster, pool), context))
    assert answers[-1]["status"] == "reconciled"
    assert [s.json["spec"]["nodePoolID"] for s in emulator.syncs()] == [pool]  # that pool, not the other


# --- the README's deploy instructions --------------------------------------------------------------------------


def test_the_readme_apply_command_gives_every_variable_without_a_default() -> None:
    commands = readme_code("Apply")
    assert "make package deploy-config" in commands and "terraform init" in commands
    given = set(re.findall(r"-var (\w+)=", commands))
    config = terraform.render_terraform(templates.load())
    needed = {name for name, variable in config["variable"].items() if "default" not in variable}
    assert given == needed


def test_the_readme_variables_table_lists_every_variable_deploy_config_may_declare() -> None:
    table = readme_section("Variables").strip().split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", table, re.MULTILINE))
    assert {name for pair in listed for name in pair if name} == set(terraform.VARIABLES)


def test_make_deploy_config_output_passes_the_schema_check(tmp_path: Path) -> None:
    output = tmp_path / "main.tf.json"
    result = run_cli("deploy-config", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert _problems(json.loads(output.read_text())) == []


# --- a plan that stays empty, and checks the platform at plan time (issue: platform truth, second pass) --------


def _json_strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every attribute whose value is a JSON object in a string (event_data, filter_rule, detail, policy, ...)."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _json_strings(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _json_strings(item, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) and value.startswith("{") else []


def test_deploy_config_output_re_serialised_as_the_provider_reads_it_is_byte_identical(tmp_path: Path) -> None:
    output = tmp_path / "main.tf.json"
    assert run_cli("deploy-config", "--output", str(output)).returncode == 0
    rendered = _json_strings(json.loads(output.read_text())["resource"])
    assert {path.rsplit(".", 1)[-1] for path, _ in rendered} >= {"event_data", "filter_rule", "detail", "transform"}
    assert [path for path, text in rendered if terraform.go_json(json.loads(text)) != text] == []


def test_go_json_is_what_gos_json_marshal_writes() -> None:
    value = {"b": [1, "x<y>&z"], "a": {"é": True, "c": None}}
    assert terraform.go_json(value) == '{"a":{"c":null,"é":true},"b":[1,"x\\u003cy\\u003e\\u0026z"]}'


def test_the_provider_facts_record_the_agencys_exactly_one_of_pair() -> None:
    agency = PROVIDER["resources"]["huaweicloud_identity_agency"]
    assert agency["exactly_one_of"] == [["delegated_domain_name", "delegated_service_name"]]
    assert agency["attributes"]["delegated_service_name"]["internal"] is True
    assert (
        agency["go_source"].endswith("resource_huaweicloud_identity_agency.go")
        and PROVIDER["commit"] in agency["go_source"]
    )
    config = terraform.render_terraform(_template())
    config["resource"]["huaweicloud_identity_agency"]["nodepool_sync"]["delegated_domain_name"] = "op_svc_cff"
    assert (
        "huaweicloud_identity_agency.nodepool_sync: exactly one of delegated_domain_name, delegated_service_name"
        in (_problems(config))
    )


def test_the_dedicated_gateways_environment_is_looked_up_by_name_at_plan_time() -> None:
    config = terraform.render_terraform(_template())
    lookup = config["data"]["huaweicloud_apig_environments"]["sync_api"]
    assert lookup["instance_id"] == "${var.apig_instance_id}" and lookup["name"] == "RELEASE"
    [check] = lookup["lifecycle"]["postcondition"]
    assert "length(self.environments)" in check["condition"] and "RELEASE" in check["error_message"]
    event_data = json.loads(config["resource"]["huaweicloud_fgs_function_trigger"]["apig"]["event_data"])
    assert event_data["env_id"] == "${data.huaweicloud_apig_environments.sync_api.environments[0].id}"


def test_one_change_trigger_by_default_and_eventgrids_only_when_asked() -> None:
    template = _template()
    resources = terraform.render_terraform(template)["resource"]
    assert resources["huaweicloud_fgs_function_trigger"]["changes"]["type"] == "CTS"
    assert set(resources["huaweicloud_eg_event_subscription"]) == {"sync_requests"}
    template["triggers"]["changes"]["eventgrid"] = True
    asked = terraform.render_terraform(template)
    subscription = asked["resource"]["huaweicloud_eg_event_subscription"]["cce_changes"]
    rule = json.loads(subscription["sources"][0]["filter_rule"])
    assert rule["data"]["trace_name"][0]["values"] == ["updateConfiguration", "updateNodePool"]
    assert _problems(asked) == []


def test_the_cts_resource_type_and_traces_are_checked_against_ctss_own_list_at_plan_time() -> None:
    data = terraform.render_terraform(_template())["data"]["huaweicloud_cts_operations"]["cce_nodepool"]
    assert data["service_type"] == "CCE"
    [check] = data["lifecycle"]["postcondition"]
    condition = check["condition"]
    assert 'o.resource_type == "nodepool"' in condition
    assert "contains(" in condition and '"updateNodePool"' in condition and '"updateConfiguration"' in condition
    assert check["error_message"].startswith("CTS lists no nodepool operations")


# --- fleet scale: the workers' configuration -------------------------------------------------------------------


def test_the_workers_run_without_platform_retries_and_fail_to_the_smn_topic() -> None:
    config = terraform.render_terraform(_template())
    [async_config] = config["resource"]["huaweicloud_fgs_async_invoke_configuration"].values()
    assert async_config["function_urn"] == "${huaweicloud_fgs_function.nodepool_sync.urn}"
    assert async_config["max_async_retry_attempts"] == 0
    [failure] = async_config["on_failure"]
    assert failure["destination"] == "SMN"
    assert json.loads(failure["param"]) == {"topic_urn": "${huaweicloud_smn_topic.alerts.topic_urn}"}


def test_sync_scopes_come_from_a_variable_and_the_agency_gets_the_cce_role_in_each_scopes_project() -> None:
    config = terraform.render_terraform(_template())
    function = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"]
    variables = {**_variables(config), "sync_scopes": '[{"region": "eu-west-101", "project_id": "p2"}]'}
    assert json.loads(evaluate(function["user_data"], variables))["SYNC_SCOPES"] == variables["sync_scopes"]
    lookup = config["data"]["huaweicloud_identity_projects"]["scopes"]
    assert "jsondecode(contains" in lookup["for_each"] and lookup["project_id"] == "${each.key}"
    dynamic = config["resource"]["huaweicloud_identity_agency"]["nodepool_sync"]["dynamic"]["project_role"]
    assert "data.huaweicloud_identity_projects.scopes" in dynamic["for_each"] and "var.region" in dynamic["for_each"]
    assert dynamic["content"]["roles"] == ["${huaweicloud_identity_role.nodepool_sync.name}"]


# --- what deploy-config gives a person: outputs, variables, an example tfvars, warnings ------------------------
_ATTRIBUTE = re.compile(r"\$\{(data\.)?(huaweicloud_\w+)\.(\w+)\.(\w+)(?:\[0\]\.(\w+))?\}")


@pytest.mark.parametrize(("credentials", "gateway"), RENDERINGS)
def test_the_outputs_name_attributes_the_provider_has(credentials: str, gateway: str) -> None:
    config = terraform.render_terraform(_template(credentials, gateway))
    assert set(config["output"]) == {"api_url", "function_urn", "topic_urn", "agency_name"}
    for output in config["output"].values():
        for data, kind, name, attribute, nested in _ATTRIBUTE.findall(output["value"]):
            published = PROVIDER["data_sources" if data else "resources"][kind]
            assert name in config["data" if data else "resource"][kind]
            assert attribute in published["attributes"]
            assert not nested or f'"{nested}"' in json.dumps(published["attributes"][attribute]["type"])


def test_the_api_url_is_the_groups_domain_and_the_sync_route_of_the_given_pool() -> None:
    config = terraform.render_terraform(_template())
    variables = {**_variables(config), "data.huaweicloud_apig_groups.sync_api.groups[0].sl_domain": "g.apig.example"}
    url = re.sub(r"\$\{([^}]+)\}", lambda m: variables[m[1].removeprefix("var.")], config["output"]["api_url"]["value"])
    assert url == f"https://g.apig.example/clusters/{CLUSTER}/nodepools/{NODEPOOL}/sync"


def test_the_cluster_and_pool_are_variables_and_the_allowlist_follows_the_cluster() -> None:
    config = terraform.render_terraform(_template())
    assert {"cluster_id", "nodepool_id"} <= set(terraform.required_variables(config))
    function = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"]
    user_data = json.loads(evaluate(function["user_data"], {**_variables(config), "cluster_id": "c-mine"}))
    assert (user_data["CCE_CLUSTER_ID"], user_data["SYNC_ALLOWED_TARGETS"]) == ("c-mine", "c-mine/*")


def _tfvars(text: str) -> dict[str, str]:
    """`name = "value"` lines (comments skipped), as terraform reads a tfvars file of strings."""
    found = re.findall(r'^(\w+) = ("(?:[^"\\]|\\.)*")$', text, re.MULTILINE)
    return {name: json.loads(value) for name, value in found}


def test_deploy_config_writes_a_tfvars_example_of_the_required_variables_and_no_secret(tmp_path: Path) -> None:
    result = run_cli("deploy-config", "--output", str(tmp_path / "main.tf.json"))
    config = json.loads((tmp_path / "main.tf.json").read_text())
    example = (tmp_path / "terraform.tfvars.example").read_text()
    given = _tfvars(example)
    assert set(given) == {n for n, v in config["variable"].items() if "default" not in v and not v.get("sensitive")}
    assert given["cluster_id"] == CLUSTER and _problems(config) == []
    for name in (n for n, v in config["variable"].items() if v.get("sensitive")):
        assert f"export TF_VAR_{name}=..." in example and name not in given
    assert all(f"-var {name}=..." in result.stdout for name in terraform.required_variables(config))


def test_deploy_config_warns_about_the_sample_ids_and_a_missing_zip(tmp_path: Path) -> None:
    result = run_cli("deploy-config", "--output", str(tmp_path / "main.tf.json"))
    assert result.returncode == 0
    assert "warning: template.yaml holds the sample cluster and pool IDs" in result.stderr
    zip_missing = not (ROOT / "dist" / "nodepool-sync.zip").exists()
    assert ("does not exist yet: make package" in result.stderr) == zip_missing


def test_a_template_variable_that_is_not_a_setting_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    template = yaml.safe_load(templates.TEMPLATE.read_text())
    template["function"]["environment"]["SYNC_ALOWED_TARGETS"] = template["function"]["environment"].pop(
        "SYNC_ALLOWED_TARGETS"
    )
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    result = run_cli("--template", str(path), "deploy-config", "--output", str(tmp_path / "main.tf.json"))
    assert result.returncode == 2
    assert "SYNC_ALOWED_TARGETS is not a setting of the function; did you mean SYNC_ALLOWED_TARGETS?" in result.stderr


def _environment_size(config: dict[str, Any], variables: dict[str, str]) -> tuple[int, int]:
    """The function's precondition evaluated as Terraform would: the variables' size, and the limit."""
    [check] = config["resource"]["huaweicloud_fgs_function"]["nodepool_sync"]["lifecycle"]["precondition"]
    condition = check["condition"]
    parts = re.findall(r"length\((jsonencode\(\{.*?\}\))\)(?= \+| <=)", condition)
    limit = int(condition.rsplit("<=", 1)[1].strip(" }"))
    return sum(len(evaluate("${" + part + "}", variables)) for part in parts), limit


@pytest.mark.parametrize(("scopes", "fits"), [(4, True), (60, False)])
def test_the_function_refuses_an_environment_past_functiongraphs_4096_characters(scopes: int, fits: bool) -> None:
    config = terraform.render_terraform(_template("password"))
    many = [{"region": "ap-southeast-1", "project_id": f"{index:032x}"} for index in range(scopes)]
    size, limit = _environment_size(config, {**_variables(config), "sync_scopes": json.dumps(many)})
    assert limit == 4096 and (size <= limit) is fits, size


def test_deploy_config_refuses_a_template_whose_own_variables_take_more_than_4096_characters(tmp_path: Path) -> None:
    template = templates.load()
    template["function"]["environment"]["CCE_SYNC_SPEC"] = json.dumps({"maxUnavailable": 1, "nodeIDs": ["n" * 60] * 70})
    (tmp_path / "template.yaml").write_text(json.dumps(template))
    result = run_cli(
        "--template", str(tmp_path / "template.yaml"), "deploy-config", "--output", str(tmp_path / "m.json")
    )
    assert result.returncode == 2 and "4096" in result.stderr, result.stderr


def test_sync_scopes_accessible_plans_without_a_list_and_gives_the_agency_its_role_in_every_project() -> None:
    config = terraform.render_terraform(_template("agency"))
    lookup = config["data"]["huaweicloud_identity_projects"]["scopes"]
    assert 'contains(["", "accessible"], var.sync_scopes) ? "[]"' in lookup["for_each"]
    agency = config["resource"]["huaweicloud_identity_agency"]["nodepool_sync"]
    assert agency["all_resources_roles"] == (
        '${var.sync_scopes == "accessible" ? [huaweicloud_identity_role.nodepool_sync.name] : []}'
    )
    problems: list[str] = []
    schema = json.loads((ROOT / "tests" / "provider" / "schemas.json").read_text())["resources"]
    _check_block("agency", agency, schema["huaweicloud_identity_agency"], problems)
    assert problems == []


# --- what operators watch (docs/observability.md) ------------------------------------------------------------


def test_every_alarm_watches_a_reported_series_in_every_scope_and_notifies_the_topic() -> None:
    from handler.metrics import Series
    from local.observability import ALARMS, SCOPE_DIMENSIONS

    resources = terraform.render_terraform(_template())["resource"]
    rules = resources["huaweicloud_ces_alarmrule"]
    watched = {rule["condition"][0]["metric_name"] for rule in rules.values()}
    assert {"halted", "syncs_failed", "pools_stuck", "clusters_unread", "notify_failed", "pools_drifted"} <= watched
    assert watched <= {series.value for series in Series} and len(rules) == len(ALARMS)
    topic = "${huaweicloud_smn_topic.alerts.topic_urn}"
    for rule in rules.values():
        assert rule["metric"] == [{"namespace": "NODEPOOL.SYNC"}] and rule["alarm_type"] == "ALL_INSTANCE"
        assert rule["resources"] == [{"dimensions": [{"name": name} for name in SCOPE_DIMENSIONS]}]  # no values
        assert rule["alarm_actions"] == rule["ok_actions"] == [{"type": "notification", "notification_list": [topic]}]
        condition = rule["condition"][0]
        assert condition["period"] in (1, 300, 1200, 3600, 14400, 86400) and 1 <= condition["count"] <= 5
    drifted = rules["drifted_20h"]["condition"][0]
    assert drifted["period"] * drifted["count"] == 20 * 3600 and drifted["filter"] == "min"


def test_without_a_topic_the_alarms_are_rendered_without_actions() -> None:
    template = _template()
    del template["function"]["notifications"]
    resources = terraform.render_terraform(template)["resource"]
    assert all(
        not r["alarm_action_enabled"] and "alarm_actions" not in r
        for r in resources["huaweicloud_ces_alarmrule"].values()
    )
    assert "huaweicloud_lts_notification_template" not in resources and _problems({"resource": resources}) == []


def test_without_ces_namespace_there_are_no_alarms_no_dashboard_and_no_ces_action() -> None:
    template = _template()
    del template["function"]["environment"]["CES_NAMESPACE"]
    resources = terraform.render_terraform(template)["resource"]
    assert "huaweicloud_ces_alarmrule" not in resources and "huaweicloud_ces_dashboard" not in resources
    assert "ces:metricData:create" not in resources["huaweicloud_identity_role"]["nodepool_sync"]["policy"]
    assert "huaweicloud_lts_group" in resources  # the function's logs are its own whatever it reports


def test_the_dashboard_charts_convergence_the_worst_ten_clusters_syncs_guards_and_health() -> None:
    from handler.metrics import Series

    resources = terraform.render_terraform(_template())["resource"]
    widgets = list(resources["huaweicloud_ces_dashboard_widget"].values())
    charted = [m["metric_name"] for w in widgets for m in w["metrics"]]
    assert set(charted) <= {series.value for series in Series}
    assert {"pools_drifted", "pools_syncing", "pools_stuck", "halted", "wave_open", "pass_duration"} <= set(charted)
    [worst] = [w for w in widgets if "properties" in w]
    assert worst["properties"] == [{"top_n": 10, "filter": "topN", "order": "desc"}]
    assert worst["metrics"][0]["dimensions"] == [
        {"name": "region,project_id,cluster_id", "filter_type": "all_instances"}
    ]
    assert all(w["dashboard_id"] == "${huaweicloud_ces_dashboard.nodepool_sync.id}" for w in widgets)


def test_the_function_logs_to_its_own_lts_stream_and_silence_raises_an_lts_alarm() -> None:
    config = terraform.render_terraform(_template())
    resources = config["resource"]
    function = resources["huaweicloud_fgs_function"]["nodepool_sync"]
    assert function["enable_lts_log"] is True
    assert function["log_group_id"] == "${huaweicloud_lts_group.nodepool_sync.id}"
    assert function["log_stream_id"] == "${huaweicloud_lts_stream.nodepool_sync.id}"
    [silent] = resources["huaweicloud_lts_keywords_alarm_rule"].values()
    [request] = silent["keywords_requests"]
    assert (request["keywords"], request["condition"], request["number"]) == ("reconcile-pass", "<", 1)
    assert (request["search_time_range_unit"], request["search_time_range"]) == ("minute", 30)
    rule = silent["dynamic"]["notification_save_rule"]["content"]
    assert rule["topics"] == [
        {"name": "nodepool-sync-alerts", "topic_urn": "${huaweicloud_smn_topic.alerts.topic_urn}"}
    ]
    assert config["variable"]["lts_alarm_user_name"]["default"] == ""


def test_the_lts_structuring_sample_is_a_line_the_function_writes() -> None:
    from local.observability import SAMPLE_LINE

    resources = terraform.render_terraform(_template())["resource"]
    [structuring] = resources["huaweicloud_lts_structuring_custom_configuration"].values()
    assert json.loads(structuring["content"]) == SAMPLE_LINE
    assert {f["field_name"] for f in structuring["demo_fields"]} == set(SAMPLE_LINE)
