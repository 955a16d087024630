"""The pieces a Terraform rendering is made of: resource names, the actions granted, the Terraform variables,
Go's JSON, and the trigger resources (API Gateway, EventGrid, CTS) with the function as their target."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, NamedTuple

from handler.changes import TRACES
from handler.triggers import CCE_SOURCE
from handler.variables import secret_names

RESOURCE = "nodepool_sync"
SMN_RESOURCE = "alerts"
APIG_GROUP = "sync_api"
# The IDs template.yaml ships with: rendered into terraform.tfvars.example with a warning, never deployed unnoticed.
SAMPLE_IDS = ("7c3e1b2a-5d4f-11ee-9a3b-0255ac100b04", "np-0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5")
EG_RESOURCE = "sync_requests"
# The Terraform variable behind each encrypted variable of the function.
SECRET_VARIABLES = {name: name.lower() for name in secret_names()}
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
    "lts_alarm_user_name": (
        "IAM user name the LTS alarm on a silent function notifies the SMN topic as (its notification rule's "
        "user_name); empty: that alarm shows in the LTS console only",
        False,
    ),
    "sync_scopes": (
        'SYNC_SCOPES: a JSON list of {"region", "project_id"} a pass fans out over, "accessible" for every '
        "region project the agency reaches; empty for the function's own",
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
# scope. Asynchronous invocation needs functiongraph:function:invokeAsync (FunctionGraph API reference,
# "Permissions and Supported Actions": AsyncInvokeFunction; the otc runtime's guide to invoking a function from a
# function grants invokeAsync and invoke, opentelekomcloud-community/otc-functiongraph-python-runtime
# doc/source/devguide/invoke/invoke_fg.rst). The policy names no resource (the whole account's functions): the
# custom policy of a project-level service cannot name the function's URN before it exists.
FGS_ACTIONS = ("functiongraph:function:invokeAsync", "functiongraph:function:invoke")
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


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "nodepool-sync/" + "/".join(parts)))


class Var(NamedTuple):
    """A reference to a Terraform variable (`var.NAME`), or to a resource's attribute when the name has dots."""

    name: str


def hcl_string(value: str) -> str:
    """An HCL string literal: JSON escapes, and `${`/`%{` escaped so Terraform takes them literally."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def reference(value: Var) -> str:
    """`var.NAME`, or a resource attribute or an expression (a name with dots) as it is."""
    return value.name if "." in value.name else f"var.{value.name}"


def jsonencode_expression(values: dict[str, str | Var]) -> str:
    """`jsonencode({...})`: the JSON text FunctionGraph wants for user_data, with variables filled by Terraform."""
    entries = ", ".join(
        f"{hcl_string(k)} = {reference(v) if isinstance(v, Var) else hcl_string(v)}" for k, v in values.items()
    )
    return f"jsonencode({{{entries}}})"


def jsonencode(values: dict[str, str | Var]) -> str:
    """`${jsonencode({...})}`, an attribute's value."""
    return f"${{{jsonencode_expression(values)}}}"


# FunctionGraph's limit on all of a function's environment variables together (FunctionGraph "Notes and
# Constraints", functiongraph_01_0150): SYNC_SCOPES costs about 76 characters a scope.
ENVIRONMENT_LIMIT = 4096


def environment_precondition(plain: dict[str, str | Var], secret: dict[str, str | Var]) -> dict[str, Any]:
    """A lifecycle precondition on the function: its variables, as the plan fills them, fit FunctionGraph's limit."""
    sizes = " + ".join(f"length({jsonencode_expression(values)})" for values in (plain, secret) if values)
    message = (
        f"FunctionGraph allows at most {ENVIRONMENT_LIMIT} characters of environment variables in all, and these "
        'take more: set sync_scopes to "accessible" (the scopes are then listed at run time, not kept in a '
        "variable), list fewer scopes (about 76 characters each) or shorten the other settings"
    )
    return {"precondition": [{"condition": f"${{{sizes} <= {ENVIRONMENT_LIMIT}}}", "error_message": message}]}


def known_environment_size(plain: dict[str, str | Var], secret: dict[str, str | Var]) -> int:
    """What the rendering can see of the variables' size (a Terraform variable's value counts as empty)."""
    return sum(
        len(json.dumps({k: "" if isinstance(v, Var) else v for k, v in values.items()}, separators=(",", ":")))
        for values in (plain, secret)
        if values
    )


def variables_used(config: Any) -> set[str]:
    text = json.dumps(config)
    return set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", text))


def apig_environment(apig: dict[str, Any]) -> dict[str, Any]:
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


def apig_trigger(apig: dict[str, Any], urn: str) -> dict[str, Any]:
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


def status_trigger(apig: dict[str, Any], urn: str) -> dict[str, Any]:
    """The GET trigger on the sync path that answers how a pool's sync is going, when the template names it."""
    if "status_name" not in apig:
        return {}
    trigger = apig_trigger({**apig, "name": apig["status_name"], "method": "GET"}, urn)
    return {"apig_status": trigger}


def eventgrid_resources(eventgrid: dict[str, Any], urn: str) -> dict[str, Any]:
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
                "id": stable_id("source", eventgrid["name"]),
                "provider_type": "CUSTOM",
                "name": source_name,
                "filter_rule": go_json(filter_rule),
            }
        ],
        "targets": [
            function_target(eventgrid["name"], urn, eventgrid["target_agency"], eventgrid.get("invoke_type", "SYNC"))
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


def cts_check(operations: list[str]) -> dict[str, Any]:
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


def change_resources(changes: dict[str, Any], urn: str, target_agency: str) -> tuple[dict[str, Any], dict[str, Any]]:
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
        data.update(cts_check(cts["operations"]))
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
                        "id": stable_id("source", eventgrid["name"]),
                        "provider_type": "OFFICIAL",
                        "name": CCE_EVENT_SOURCE,
                        "filter_rule": go_json(filter_rule),
                    }
                ],
                "targets": [function_target(eventgrid["name"], urn, agency, "ASYNC")],
            }
        }
    return resources, data


def function_target(name: str, urn: str, agency: str, invoke_type: str) -> dict[str, Any]:
    """An EventGrid target that invokes the function, through an agency delegated to EventGrid."""
    return {
        "id": stable_id("target", name),
        "provider_type": "OFFICIAL",
        "name": "HC.FunctionGraph",
        "detail_name": "detail",
        "detail": go_json({"urn": urn, "agency_name": agency, "invoke_type": invoke_type}),
        "transform": go_json({"type": "ORIGINAL"}),
    }
