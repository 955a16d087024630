"""template.yaml: load and validate it, make sample events from it, render it into Terraform JSON."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from jsonschema import Draft202012Validator

from handler.changes import TRACES
from handler.triggers import CCE_SOURCE

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SCHEMA = ROOT / "schemas" / "template.schema.json"
RESOURCE = "nodepool_sync"
SMN_RESOURCE = "alerts"
APIG_GROUP = "sync_api"
# The IDs template.yaml ships with: rendered into terraform.tfvars.example with a warning, never deployed unnoticed.
SAMPLE_IDS = ("7c3e1b2a-5d4f-11ee-9a3b-0255ac100b04", "np-0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5")
EG_RESOURCE = "sync_requests"
# The Terraform variable behind each encrypted variable of the function.
SECRET_VARIABLES = {
    "HUAWEICLOUD_IAM_PASSWORD": "huaweicloud_iam_password",
    "HUAWEICLOUD_SDK_SK": "huaweicloud_sdk_sk",
    "NODE_LOGIN_PASSWORD": "node_login_password",
}
# Every Terraform variable a rendering may reference: (description, sensitive).
VARIABLES = {
    "region": ("Region of the function and the cluster, e.g. ap-southeast-1 (provider and function)", False),
    "cluster_id": ("ID of the CCE cluster whose node pools are synced (CCE_CLUSTER_ID)", False),
    "nodepool_id": ("ID of the node pool a sync without one targets (CCE_NODEPOOL_ID)", False),
    "function_zip": ("Path of the zip built by `make package`", False),
    "apig_instance_id": ("ID of the dedicated API Gateway instance that serves the sync API", False),
    "apig_group_id": ("ID of the API group (in that gateway) that publishes the sync API", False),
    "eg_channel_id": ("ID of the custom EventGrid channel that sync requests are published to", False),
    "huaweicloud_iam_password": ("Password of the IAM user named in template.yaml (encrypted variable)", True),
    "huaweicloud_sdk_ak": ("Access key the function signs CCE requests with", False),
    "huaweicloud_sdk_sk": ("Secret key of that access key (encrypted variable)", True),
    "node_login_password": ("Node login password for syncs that set one; empty for none (encrypted variable)", True),
    "sync_scopes": (
        'SYNC_SCOPES: a JSON list of {"region", "project_id"} a pass fans out over; empty for the function\'s own',
        False,
    ),
}
# The CCE actions the function calls, one per request handler/cce.py makes; the agency's custom policy grants
# exactly these. (Action names follow CCE's fine-grained policy naming; not verified against a live account.)
CCE_ACTIONS = (
    "cce:nodepool:update",  # POST .../nodepools/{id}/operation/upgrade: the sync
    "cce:nodepool:get",  # GET .../nodepools/{id}?advanceStatus=true: busy guard and ambiguity check
    "cce:nodepool:list",  # GET .../nodepools: selecting pools by name or all
    "cce:job:get",  # GET .../jobs/{id}: following the job
    "cce:cluster:list",  # GET .../clusters: a reconcile pass over clusters "all"
)
SMN_ACTIONS = ("smn:topic:publish",)  # POST .../notifications/topics/{urn}/publish: only with notifications
# POST .../fgs/functions/{urn}/invocations-async: a fanned-out pass's coordinator invokes this function once per
# scope. The action that lets an agency invoke a function (EventGrid's target agency needs it: EG user guide
# eg-ug-035, platform-facts.md; the provider's docs/resources/eg_event_stream.md lists functiongraph:function:invoke*).
FGS_ACTIONS = ("functiongraph:function:invoke",)
ASYNC_RESOURCE = "fan_out"
SCOPE_PROJECTS = "scopes"
SCOPES_VARIABLE = "sync_scopes"
# Cloud-service agencies trust the domain op_svc_<service>; FunctionGraph's is op_svc_cff (IAM "Delegating
# Another Service for Resource Management",
# https://support.huaweicloud.com/intl/en-us/usermanual-iam/iam_06_0004.html; the provider reads
# `^op_svc_[A-Za-z]+$` as a service, huaweicloud/services/iam/resource_huaweicloud_identity_agency.go).
FUNCTIONGRAPH_SERVICE = "op_svc_cff"
CCE_EVENT_SOURCE = CCE_SOURCE  # EventGrid's source for CCE's cloud-service events (one fact, in handler/triggers)
# FunctionGraph's CTS trigger needs the function's agency to hold CTS permissions: "select an agency with CTS
# permissions" (FunctionGraph user guide, "Cloud Trace Service (CTS) Trigger", functiongraph_01_0209), and the
# provider's example lists "Authorize FunctionGraph to use the CTS service as an administrator"
# (examples/fgs/triggers/cts/README.md). The system role of that name is "CTS Administrator" (cts_adm; the
# provider's docs/data-sources/identity_role.md).
CTS_ROLE = "CTS Administrator"
CTS_AGENCY_RESOURCE = "cts"
APIG_ENVIRONMENT = "sync_api"
CTS_OPERATIONS = "cce"


def go_json(value: Any) -> str:
    """JSON as the provider reads it back (Go's json.Marshal): compact, keys sorted, <, > and & escaped. What
    it renders this way stays equal to what it reads, so `terraform plan` after `apply` is empty."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


class TemplateError(Exception):
    """template.yaml is missing, not YAML, or does not match its schema."""


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template, validated against schemas/template.schema.json."""
    try:
        template = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: {exc}") from None
    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = sorted(validator.iter_errors(template), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
        raise TemplateError(f"{path} is not valid:\n" + "\n".join(lines))
    _check_variable_names(path, template["function"])
    result: dict[str, Any] = template
    return result


def _check_variable_names(path: Path, function: dict[str, Any]) -> None:
    """Every variable the template sets is one the function reads: a typo would otherwise deploy unnoticed."""
    import difflib

    from handler.variables import variable_names

    known = variable_names()
    for name in function.get("environment", {}):  # secret_environment's names the schema's enum checks already
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else "; docs/settings.md lists them"
            raise TemplateError(f"{path}: function.environment: {name} is not a setting of the function{hint}")


def python_version(template: dict[str, Any]) -> str:
    """'3.12' for runtime Python3.12."""
    return str(template["function"]["runtime"]).removeprefix("Python")


def route_pattern(template: dict[str, Any]) -> re.Pattern[str]:
    """The API Gateway route as a regex with one named group per {parameter}."""
    path = template["triggers"]["apig"]["path"]
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def document(cluster: str | None, nodepool: str | None, spec: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if cluster:
        doc["cluster_id"] = cluster
    if nodepool:
        doc["nodepool_id"] = nodepool
    if spec is not None:
        doc["spec"] = spec
    return doc


def timer_event(template: dict[str, Any], doc: dict[str, Any] | None = None) -> dict[str, Any]:
    timer = template["triggers"]["timer"]
    return {
        "version": "v1.0",
        "time": _now(),
        "trigger_type": "TIMER",
        "trigger_name": timer["name"],
        "user_event": json.dumps(doc) if doc else timer.get("user_event", ""),
    }


def eventgrid_event(template: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    eventgrid = template["triggers"]["eventgrid"]
    return {
        "id": str(uuid.uuid4()),
        "specversion": "1.0",
        "source": eventgrid["source_name"],
        "type": eventgrid["event_types"][0],
        "datacontenttype": "application/json",
        "subject": doc.get("nodepool_id", "nodepool"),
        "time": _now(),
        "data": doc,
    }


def apig_event(
    template: dict[str, Any],
    body: bytes,
    path_parameters: dict[str, str],
    method: str = "POST",
    headers: dict[str, str] | None = None,
    path: str | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway event as FunctionGraph delivers it: Base64 body, lower-case header names."""
    route = template["triggers"]["apig"]["path"]
    if path is None:
        path = route.format(**{k: path_parameters.get(k, k) for k in re.findall(r"\{(\w+)\}", route)})
    return {
        "body": base64.b64encode(body).decode("ascii"),
        "requestContext": {"apiId": "local", "requestId": uuid.uuid4().hex, "stage": "RELEASE"},
        "queryStringParameters": query or {},
        "httpMethod": method,
        "pathParameters": path_parameters,
        "headers": {
            k.lower(): v
            for k, v in (headers or {"content-type": "application/json", "user-agent": "nodepool-sync-local"}).items()
        },
        "path": path,
        "isBase64Encoded": True,
    }


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "nodepool-sync/" + "/".join(parts)))


class Var(NamedTuple):
    """A reference to a Terraform variable (`var.NAME`), or to a resource's attribute when the name has dots."""

    name: str


def _hcl_string(value: str) -> str:
    """An HCL string literal: JSON escapes, and `${`/`%{` escaped so Terraform takes them literally."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _reference(value: Var) -> str:
    """`var.NAME`, or a resource attribute or an expression (a name with dots) as it is."""
    return value.name if "." in value.name else f"var.{value.name}"


def _jsonencode(values: dict[str, str | Var]) -> str:
    """`${jsonencode({...})}`: the JSON text FunctionGraph wants for user_data, with variables filled by Terraform."""
    entries = ", ".join(
        f"{_hcl_string(k)} = {_reference(v) if isinstance(v, Var) else _hcl_string(v)}" for k, v in values.items()
    )
    return f"${{jsonencode({{{entries}}})}}"


def _variables_used(config: Any) -> set[str]:
    text = json.dumps(config)
    return set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", text))


def _function_variables(function: dict[str, Any]) -> tuple[dict[str, str | Var], dict[str, str | Var]]:
    """The function's plain (user_data) and encrypted (encrypted_user_data) variables, by credential mode."""
    credentials = function["credentials"]
    mode = credentials["mode"]
    environment = function.get("environment", {})
    plain: dict[str, str | Var] = {
        **environment,
        "HUAWEICLOUD_SDK_REGION": Var("region"),
        "HUAWEICLOUD_AUTH_MODE": mode,
        "CCE_CLUSTER_ID": Var("cluster_id"),
        "CCE_NODEPOOL_ID": Var("nodepool_id"),
    }
    cluster, targets = environment.get("CCE_CLUSTER_ID", ""), environment.get("SYNC_ALLOWED_TARGETS", "")
    if cluster and cluster in targets:  # the allowlist follows the cluster the deployment is given
        plain["SYNC_ALLOWED_TARGETS"] = Var(_hcl_string(targets).replace(cluster, "${var.cluster_id}"))
    plain["SYNC_SCOPES"] = Var(SCOPES_VARIABLE)  # empty: the function's own region and project
    notifications = function.get("notifications")
    if notifications is not None:
        plain["SMN_TOPIC_URN"] = notifications.get("topic_urn", Var(f"huaweicloud_smn_topic.{SMN_RESOURCE}.topic_urn"))
    secret: dict[str, str | Var] = {}
    if mode == "password":
        plain["HUAWEICLOUD_IAM_USERNAME"] = credentials["iam_username"]
        plain["HUAWEICLOUD_IAM_DOMAIN_NAME"] = credentials["iam_domain_name"]
        secret["HUAWEICLOUD_IAM_PASSWORD"] = Var(SECRET_VARIABLES["HUAWEICLOUD_IAM_PASSWORD"])
    elif mode == "aksk":
        plain["HUAWEICLOUD_SDK_AK"] = Var("huaweicloud_sdk_ak")
        secret["HUAWEICLOUD_SDK_SK"] = Var(SECRET_VARIABLES["HUAWEICLOUD_SDK_SK"])
    for name in function.get("secret_environment", []):
        secret[name] = Var(SECRET_VARIABLES[name])
    return plain, secret


def _agency(name: str, description: str, roles: list[str]) -> dict[str, Any]:
    """An agency delegated to FunctionGraph with these roles in the region's project. The provider reads an
    `op_svc_*` trust domain back into `delegated_service_name` (internal, ExactlyOneOf with
    delegated_domain_name: tests/provider/schemas.json), so it is rendered there: a plan after apply stays empty."""
    return {
        "name": name,
        "description": description,
        "delegated_service_name": FUNCTIONGRAPH_SERVICE,
        "project_role": [{"project": "${var.region}", "roles": roles}],
    }


def _agency_resources(function: dict[str, Any], cts: bool) -> tuple[str | None, dict[str, Any]]:
    """The agency to give the function and, when the template asks, the agency and its custom policy; with the
    CTS trigger, the role it needs (in password and AK/SK modes, an agency of its own for just that)."""
    credentials = function["credentials"]
    cts_roles = [CTS_ROLE] if cts else []
    if credentials["mode"] != "agency":
        if not cts:
            return None, {}
        name = f"{function['name']}-cts"
        agency = _agency(name, f"Lets {function['name']} receive CTS traces (its CTS trigger)", cts_roles)
        resources = {"huaweicloud_identity_agency": {CTS_AGENCY_RESOURCE: agency}}
        return f"${{huaweicloud_identity_agency.{CTS_AGENCY_RESOURCE}.name}}", resources
    if not credentials.get("create_agency", False):
        return credentials["agency"], {}  # an existing agency: it must hold the CTS role itself (README)
    actions = [*CCE_ACTIONS, *(SMN_ACTIONS if "notifications" in function else ()), *FGS_ACTIONS]
    policy = {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": actions}]}
    role = {
        "name": credentials["policy"],
        "description": f"What {function['name']} calls on CCE, and nothing else",
        "type": "XA",  # a project-level service's policy (CCE)
        "policy": go_json(policy),
    }
    cce_role = f"${{huaweicloud_identity_role.{RESOURCE}.name}}"
    description = f"Lets the FunctionGraph function {function['name']} sync CCE node pools"
    agency = _agency(credentials["agency"], description, [cce_role, *cts_roles])
    # The CCE role in every other project a pass fans out over (SYNC_SCOPES): projects are named, scopes carry IDs.
    found = f"data.huaweicloud_identity_projects.{SCOPE_PROJECTS}"
    others = f"${{{{for id, p in {found} : id => p if p.projects[0].name != var.region}}}}"
    agency["dynamic"] = {
        "project_role": {
            "for_each": others,
            "content": {"project": "${project_role.value.projects[0].name}", "roles": [cce_role]},
        }
    }
    resources = {"huaweicloud_identity_role": {RESOURCE: role}, "huaweicloud_identity_agency": {RESOURCE: agency}}
    return f"${{huaweicloud_identity_agency.{RESOURCE}.name}}", resources


def _scope_projects() -> dict[str, Any]:
    """Each scope's project, looked up by ID (huaweicloud_identity_projects) for its name, which roles need."""
    listed = f'jsondecode(var.{SCOPES_VARIABLE} == "" ? "[]" : var.{SCOPES_VARIABLE})'
    scopes = f"${{{{for scope in {listed} : scope.project_id => scope}}}}"
    return {"huaweicloud_identity_projects": {SCOPE_PROJECTS: {"for_each": scopes, "project_id": "${each.key}"}}}


def _async_configuration(function: dict[str, Any], urn: str) -> dict[str, Any]:
    """How FunctionGraph runs the workers the coordinator invokes: no platform retries (the next tick is the
    retry, and a worker is safe to run twice but needless), and failures to the SMN topic when notifications
    are on (huaweicloud_fgs_async_invoke_configuration)."""
    configuration: dict[str, Any] = {
        "function_urn": urn,
        "max_async_retry_attempts": 0,
        "max_async_event_age_in_seconds": 600,  # a worker older than one timer interval is the next tick's job
    }
    notifications = function.get("notifications")
    if notifications is not None:
        topic = notifications.get("topic_urn", f"${{huaweicloud_smn_topic.{SMN_RESOURCE}.topic_urn}}")
        configuration["on_failure"] = [{"destination": "SMN", "param": go_json({"topic_urn": topic})}]
    return {"huaweicloud_fgs_async_invoke_configuration": {ASYNC_RESOURCE: configuration}}


def _apig_environment(apig: dict[str, Any]) -> dict[str, Any]:
    """The dedicated gateway's environment, looked up by name at plan time (huaweicloud_apig_environments), which
    fails the plan with a message when the gateway has none of that name; the shared gateway needs none."""
    if apig.get("gateway") == "shared":
        return {}
    condition = "${length(self.environments) == 1}"
    message = f"the API gateway has no environment named {apig['env_name']}: create it or set triggers.apig.env_name"
    lookup = {
        "instance_id": apig["instance_id"],
        "name": apig["env_name"],
        "lifecycle": {"postcondition": [{"condition": condition, "error_message": message}]},
    }
    return {"huaweicloud_apig_environments": {APIG_ENVIRONMENT: lookup}}


def _apig_trigger(apig: dict[str, Any], urn: str) -> dict[str, Any]:
    """A dedicated gateway's trigger (DEDICATEDGATEWAY with instance_id) unless the template asks for the shared one."""
    shared = apig.get("gateway") == "shared"
    environment = f"${{data.huaweicloud_apig_environments.{APIG_ENVIRONMENT}.environments[0].id}}"
    event_data: dict[str, Any] = {
        "name": apig["name"],
        "group_id": apig["group_id"],
        "env_name": apig["env_name"],
        "env_id": apig["env_id"] if shared else environment,
        "auth": apig["auth"].upper(),
        "protocol": apig.get("protocol", "HTTPS"),
        "path": apig["path"],
        "req_method": apig["method"],
        "match_mode": "NORMAL",
        "backend_type": "FUNCTION",
        "type": 1,
        "func_info": {"timeout": apig.get("timeout_ms", 5000)},
    }
    if not shared:
        event_data["instance_id"] = apig["instance_id"]
    return {"function_urn": urn, "type": "APIG" if shared else "DEDICATEDGATEWAY", "event_data": go_json(event_data)}


def _status_trigger(apig: dict[str, Any], urn: str) -> dict[str, Any]:
    """The GET trigger on the sync path that answers how a pool's sync is going, when the template names it."""
    if "status_name" not in apig:
        return {}
    trigger = _apig_trigger({**apig, "name": apig["status_name"], "method": "GET"}, urn)
    return {"apig_status": trigger}


def _eventgrid_resources(eventgrid: dict[str, Any], urn: str) -> dict[str, Any]:
    """The custom event source in the channel and the subscription that invokes the function through EventGrid's
    own agency."""
    source = {
        "channel_id": eventgrid["channel_id"],
        "name": eventgrid["source_name"],
        "type": "APPLICATION",
        "description": "Sync requests for nodepool-sync",
    }
    source_name = f"${{huaweicloud_eg_custom_event_source.{EG_RESOURCE}.name}}"
    filter_rule = {
        "source": [{"op": "StringIn", "values": [eventgrid["source_name"]]}],
        "type": [{"op": "StringIn", "values": eventgrid["event_types"]}],
    }
    subscription = {
        "channel_id": eventgrid["channel_id"],
        "name": eventgrid["name"],
        "depends_on": [f"huaweicloud_eg_custom_event_source.{EG_RESOURCE}"],
        "sources": [
            {
                "id": _stable_id("source", eventgrid["name"]),
                "provider_type": "CUSTOM",
                "name": source_name,
                "filter_rule": go_json(filter_rule),
            }
        ],
        "targets": [
            _function_target(eventgrid["name"], urn, eventgrid["target_agency"], eventgrid.get("invoke_type", "SYNC"))
        ],
    }
    return {
        "huaweicloud_eg_custom_event_source": {EG_RESOURCE: source},
        "huaweicloud_eg_event_subscription": {EG_RESOURCE: subscription},
    }


EVENTGRID_CHANGES = {  # what `changes.eventgrid: true` renders
    "name": "nodepool-sync-cce-changes",
    "event_types": ["CCE:CloudTrace:ApiCall", "CCE:CloudTrace:ConsoleAction"],
    "trace_names": sorted(TRACES),
}


def _cts_check(operations: list[str]) -> dict[str, Any]:
    """The CTS operations CTS lists, per service (huaweicloud_cts_operations), with a postcondition that fails
    the plan when a resource type or trace the trigger names is not among them: no source confirms CCE's
    `nodepool` resource type, so the plan checks it."""
    data: dict[str, Any] = {}
    for operation in operations:
        service, resource_type, traces = operation.split(":")
        listed = f'flatten([for o in self.operations : o.operation_list if o.resource_type == "{resource_type}"])'
        condition = " && ".join(f'contains({listed}, "{trace}")' for trace in traces.split(";"))
        message = f"CTS lists no {resource_type} operations {traces} for {service}: fix triggers.changes.cts.operations"
        name = f"{CTS_OPERATIONS}_{resource_type.lower()}"
        data[name] = {
            "service_type": service,
            "lifecycle": {"postcondition": [{"condition": f"${{{condition}}}", "error_message": message}]},
        }
    return {"huaweicloud_cts_operations": data}


def _change_resources(changes: dict[str, Any], urn: str, target_agency: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The change-event triggers: the CTS trigger (checked against CTS's operation list at plan time) and, only
    when asked, an EventGrid subscription to CCE's cloud-service events on the OFFICIAL channel (found with the
    huaweicloud_eg_event_channels data source); (resources, data)."""
    resources: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if "cts" in changes:
        cts = changes["cts"]
        event_data = {"name": cts["name"], "operations": cts["operations"]}
        resources["huaweicloud_fgs_function_trigger"] = {
            "changes": {"function_urn": urn, "type": "CTS", "event_data": go_json(event_data)}
        }
        data.update(_cts_check(cts["operations"]))
    eventgrid = changes.get("eventgrid", False)
    if eventgrid is True:
        eventgrid = EVENTGRID_CHANGES
    if eventgrid:
        data["huaweicloud_eg_event_channels"] = {"official": {"provider_type": "OFFICIAL", "name": "default"}}
        filter_rule = {
            "source": [{"op": "StringIn", "values": [CCE_EVENT_SOURCE]}],
            "type": [{"op": "StringIn", "values": eventgrid["event_types"]}],
            "data": {"trace_name": [{"op": "StringIn", "values": eventgrid["trace_names"]}]},
        }
        agency = eventgrid.get("target_agency", target_agency)
        resources["huaweicloud_eg_event_subscription"] = {
            "cce_changes": {
                "channel_id": "${data.huaweicloud_eg_event_channels.official.channels[0].id}",
                "name": eventgrid["name"],
                "sources": [
                    {
                        "id": _stable_id("source", eventgrid["name"]),
                        "provider_type": "OFFICIAL",
                        "name": CCE_EVENT_SOURCE,
                        "filter_rule": go_json(filter_rule),
                    }
                ],
                "targets": [_function_target(eventgrid["name"], urn, agency, "ASYNC")],
            }
        }
    return resources, data


def _function_target(name: str, urn: str, agency: str, invoke_type: str) -> dict[str, Any]:
    """An EventGrid target that invokes the function, through an agency delegated to EventGrid."""
    return {
        "id": _stable_id("target", name),
        "provider_type": "OFFICIAL",
        "name": "HC.FunctionGraph",
        "detail_name": "detail",
        "detail": go_json({"urn": urn, "agency_name": agency, "invoke_type": invoke_type}),
        "transform": go_json({"type": "ORIGINAL"}),
    }


def _declare(names: set[str], function: dict[str, Any], zip_path: str) -> dict[str, Any]:
    """A `variable` block for each variable the configuration references; an unknown one is a TemplateError."""
    unknown = sorted(names - VARIABLES.keys())
    if unknown:
        raise TemplateError(f"template.yaml references Terraform variables deploy-config does not know: {unknown}")
    defaults = {
        "region": function.get("environment", {}).get("HUAWEICLOUD_SDK_REGION"),
        "function_zip": zip_path,
        "node_login_password": "",
        SCOPES_VARIABLE: "",
    }
    declared: dict[str, Any] = {}
    for name in sorted(names):
        description, sensitive = VARIABLES[name]
        variable: dict[str, Any] = {"type": "string", "description": description}
        if sensitive:
            variable["sensitive"] = True
        if defaults.get(name) is not None:
            variable["default"] = defaults[name]
        declared[name] = variable
    return declared


def render_terraform(template: dict[str, Any], zip_path: str = "../dist/nodepool-sync.zip") -> dict[str, Any]:
    """The Terraform JSON configuration (huaweicloud provider) for the function, its credentials and its triggers."""
    function, triggers = template["function"], template["triggers"]
    urn = f"${{huaweicloud_fgs_function.{RESOURCE}.urn}}"
    plain, secret = _function_variables(function)
    agency, iam_resources = _agency_resources(function, "cts" in triggers.get("changes", {}))
    fgs: dict[str, Any] = {
        "name": function["name"],
        "app": function["app"],
        "description": function.get("description", ""),
        "runtime": function["runtime"],
        "handler": function["handler"],
        "memory_size": function["memory_size"],
        "timeout": function["timeout"],
        "code_type": "zip",
        "code_filename": "nodepool-sync.zip",
        "func_code": "${filebase64(var.function_zip)}",
        "user_data": _jsonencode(plain),
    }
    if agency is not None:
        fgs["agency"] = agency  # the function's agency: what its triggers (CTS) need
    if agency is not None and function["credentials"]["mode"] == "agency":
        fgs["app_agency"] = agency  # the execution agency behind getToken() and the temporary AK/SK
    if secret:
        fgs["encrypted_user_data"] = _jsonencode(secret)
    if "initializer" in function:
        fgs["initializer_handler"] = function["initializer"]
        fgs["initializer_timeout"] = function.get("initializer_timeout", 30)
    if "max_instance_num" in function:
        fgs["max_instance_num"] = str(function["max_instance_num"])  # a string in the provider's schema

    timer = triggers["timer"]
    timer_data = {k: timer[k] for k in ("name", "schedule_type", "schedule")}
    timer_data["user_event"] = timer.get("user_event", "")
    change_resources, data = _change_resources(triggers.get("changes", {}), urn, triggers["eventgrid"]["target_agency"])
    data.update(_apig_environment(triggers["apig"]))
    if triggers["apig"].get("gateway") != "shared":  # the group's domain, for the api_url output
        apig = triggers["apig"]
        data["huaweicloud_apig_groups"] = {
            APIG_GROUP: {"instance_id": apig["instance_id"], "group_id": apig["group_id"]}
        }
    if function["credentials"]["mode"] == "agency" and function["credentials"].get("create_agency", False):
        data.update(_scope_projects())
    sync_requests = _eventgrid_resources(triggers["eventgrid"], urn)
    notifications = function.get("notifications", {})
    smn = (
        {"huaweicloud_smn_topic": {SMN_RESOURCE: {"name": notifications["topic"], "display_name": "nodepool-sync"}}}
        if notifications.get("create")
        else {}
    )
    resources: dict[str, Any] = {
        **iam_resources,
        **smn,
        "huaweicloud_fgs_function": {RESOURCE: fgs},
        **_async_configuration(function, urn),
        "huaweicloud_fgs_function_trigger": {
            "timer": {"function_urn": urn, "type": "TIMER", "status": "ACTIVE", "event_data": go_json(timer_data)},
            "apig": _apig_trigger(triggers["apig"], urn),
            **_status_trigger(triggers["apig"], urn),
            **change_resources.pop("huaweicloud_fgs_function_trigger", {}),
        },
        "huaweicloud_eg_custom_event_source": sync_requests["huaweicloud_eg_custom_event_source"],
        "huaweicloud_eg_event_subscription": {
            **sync_requests["huaweicloud_eg_event_subscription"],
            **change_resources.pop("huaweicloud_eg_event_subscription", {}),
        },
    }
    config: dict[str, Any] = {
        "terraform": {
            "required_providers": {"huaweicloud": {"source": "huaweicloud/huaweicloud", "version": ">= 1.60.0"}}
        },
        # The provider's own credentials come from HW_ACCESS_KEY / HW_SECRET_KEY in the shell (see README).
        "provider": {"huaweicloud": {"region": "${var.region}"}},
        **({"data": data} if data else {}),
        "resource": resources,
        "output": _outputs(function, triggers["apig"], urn, agency),
    }
    return {"variable": _declare(_variables_used(config), function, zip_path), **config}


def _outputs(function: dict[str, Any], apig: dict[str, Any], urn: str, agency: str | None) -> dict[str, Any]:
    """What a person needs after `terraform apply`: where to call, what was deployed, where alerts go."""
    path = apig["path"].replace("{cluster_id}", "${var.cluster_id}").replace("{nodepool_id}", "${var.nodepool_id}")
    if apig.get("gateway") == "shared":
        api_url = {"value": path, "description": "The sync route's path, on the shared API group's domain"}
    else:
        domain = f"${{data.huaweicloud_apig_groups.{APIG_GROUP}.groups[0].sl_domain}}"
        api_url = {"value": f"https://{domain}{path}", "description": "POST to sync the pool, GET for its status"}
    notifications = function.get("notifications")
    topic = (
        ""
        if notifications is None
        else notifications.get("topic_urn", f"${{huaweicloud_smn_topic.{SMN_RESOURCE}.topic_urn}}")
    )
    return {
        "api_url": api_url,
        "function_urn": {"value": urn, "description": "URN of the deployed function (FUNCTION_URN is made from it)"},
        "topic_urn": {"value": topic, "description": "SMN topic the alerts go to (subscribe to it); empty: none"},
        "agency_name": {"value": agency or "", "description": "The function's agency; empty when it has none"},
    }


def tfvars_example(config: dict[str, Any], template: dict[str, Any]) -> str:
    """terraform.tfvars.example: every variable the configuration declares, the required ones first with the
    template's values as examples; secrets only as TF_VAR_ names, never a value in a file."""
    environment = template["function"].get("environment", {})
    examples = {
        "cluster_id": environment.get("CCE_CLUSTER_ID", ""),
        "nodepool_id": environment.get("CCE_NODEPOOL_ID", ""),
    }
    lines = [
        "# Written by `python -m local deploy-config`: copy to terraform.tfvars and fill in (terraform.tfvars is",
        "# read by terraform apply). Secrets never go in a file: export them as TF_VAR_<name> in the shell.",
        "",
    ]
    declared = config["variable"]
    required = [name for name, v in declared.items() if "default" not in v and not v.get("sensitive")]
    for name in required:
        lines += [f"# {declared[name]['description']}", f"{name} = {json.dumps(examples.get(name, ''))}", ""]
    optional = [name for name, v in declared.items() if "default" in v and not v.get("sensitive")]
    if optional:
        lines.append("# Optional (the defaults shown):")
        for name in optional:
            lines += [f"# {declared[name]['description']}", f"# {name} = {json.dumps(declared[name]['default'])}"]
        lines.append("")
    for name in [name for name, v in declared.items() if v.get("sensitive")]:
        lines.append(f"# {name}: export TF_VAR_{name}=... ({declared[name]['description']})")
    return "\n".join(lines).rstrip() + "\n"


def required_variables(config: dict[str, Any]) -> list[str]:
    """The variables terraform apply asks for unless given (no default)."""
    return [name for name, v in config["variable"].items() if "default" not in v]
