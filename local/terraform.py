"""template.yaml rendered into Terraform JSON for the huaweicloud provider (`make deploy-config`): the function, its
agency and policy, its triggers (resources.py), the topic, the fan-out; with the variables it references, an
example tfvars file and the outputs."""

from __future__ import annotations

import json
from typing import Any

from .observability import CES_ACTIONS, observability_resources
from .resources import (
    APIG_GROUP,
    ASYNC_RESOURCE,
    CCE_ACTIONS,
    CTS_AGENCY_RESOURCE,
    CTS_ROLE,
    ENVIRONMENT_LIMIT,
    FGS_ACTIONS,
    FUNCTIONGRAPH_SERVICE,
    RESOURCE,
    SAMPLE_IDS,
    SCOPE_PROJECTS,
    SCOPES_VARIABLE,
    SECRET_VARIABLES,
    SMN_ACTIONS,
    SMN_RESOURCE,
    VARIABLES,
    Var,
    apig_environment,
    apig_trigger,
    change_resources,
    environment_precondition,
    eventgrid_resources,
    go_json,
    hcl_string,
    jsonencode,
    known_environment_size,
    status_trigger,
    variables_used,
)
from .template import TemplateError

__all__ = ["SAMPLE_IDS", "VARIABLES", "go_json", "render_terraform", "required_variables", "tfvars_example"]


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
        plain["SYNC_ALLOWED_TARGETS"] = Var(hcl_string(targets).replace(cluster, "${var.cluster_id}"))
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
    reports = bool(function.get("environment", {}).get("CES_NAMESPACE"))
    actions = [*CCE_ACTIONS, *(SMN_ACTIONS if "notifications" in function else ()), *FGS_ACTIONS]
    actions += CES_ACTIONS if reports else ()
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
    # SYNC_SCOPES=accessible lists the projects at run time: the CCE role then covers every project, present and
    # future (the provider's all_resources_roles), as no list can be looked up at plan time.
    role_name = f"huaweicloud_identity_role.{RESOURCE}.name"
    agency["all_resources_roles"] = f'${{var.{SCOPES_VARIABLE} == "accessible" ? [{role_name}] : []}}'
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
    listed = f'jsondecode(contains(["", "accessible"], var.{SCOPES_VARIABLE}) ? "[]" : var.{SCOPES_VARIABLE})'
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
    topic = _topic(function)
    if topic is not None:
        configuration["on_failure"] = [{"destination": "SMN", "param": go_json({"topic_urn": topic[0]})}]
    return {"huaweicloud_fgs_async_invoke_configuration": {ASYNC_RESOURCE: configuration}}


def _declare(names: set[str], function: dict[str, Any], zip_path: str) -> dict[str, Any]:
    """A `variable` block for each variable the configuration references; an unknown one is a TemplateError."""
    unknown = sorted(names - VARIABLES.keys())
    if unknown:
        raise TemplateError(f"template.yaml references Terraform variables deploy-config does not know: {unknown}")
    defaults = {
        "region": function.get("environment", {}).get("HUAWEICLOUD_SDK_REGION"),
        "function_zip": zip_path,
        "node_login_password": "",
        "lts_alarm_user_name": "",
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
        "user_data": jsonencode(plain),
        "lifecycle": environment_precondition(plain, secret),
    }
    if known_environment_size(plain, secret) > ENVIRONMENT_LIMIT:
        raise TemplateError(
            f"the function's environment variables take more than FunctionGraph's {ENVIRONMENT_LIMIT} characters "
            "already in template.yaml: shorten them"
        )
    if agency is not None:
        fgs["agency"] = agency  # the function's agency: what its triggers (CTS) need
    if agency is not None and function["credentials"]["mode"] == "agency":
        fgs["app_agency"] = agency  # the execution agency behind getToken() and the temporary AK/SK
    if secret:
        fgs["encrypted_user_data"] = jsonencode(secret)
    if "initializer" in function:
        fgs["initializer_handler"] = function["initializer"]
        fgs["initializer_timeout"] = function.get("initializer_timeout", 30)
    if "max_instance_num" in function:
        fgs["max_instance_num"] = str(function["max_instance_num"])  # a string in the provider's schema

    timer = triggers["timer"]
    timer_data = {k: timer[k] for k in ("name", "schedule_type", "schedule")}
    timer_data["user_event"] = timer.get("user_event", "")
    on_change, data = change_resources(triggers.get("changes", {}), urn, triggers["eventgrid"]["target_agency"])
    data.update(apig_environment(triggers["apig"]))
    if triggers["apig"].get("gateway") != "shared":  # the group's domain, for the api_url output
        apig = triggers["apig"]
        data["huaweicloud_apig_groups"] = {
            APIG_GROUP: {"instance_id": apig["instance_id"], "group_id": apig["group_id"]}
        }
    if function["credentials"]["mode"] == "agency" and function["credentials"].get("create_agency", False):
        data.update(_scope_projects())
    sync_requests = eventgrid_resources(triggers["eventgrid"], urn)
    notifications = function.get("notifications", {})
    smn = (
        {"huaweicloud_smn_topic": {SMN_RESOURCE: {"name": notifications["topic"], "display_name": "nodepool-sync"}}}
        if notifications.get("create")
        else {}
    )
    topic = _topic(function)
    namespace = function.get("environment", {}).get("CES_NAMESPACE", "")
    watched, logging = observability_resources(function.get("observability"), namespace, topic)
    fgs.update(logging)
    resources: dict[str, Any] = {
        **iam_resources,
        **smn,
        **watched,
        "huaweicloud_fgs_function": {RESOURCE: fgs},
        **_async_configuration(function, urn),
        "huaweicloud_fgs_function_trigger": {
            "timer": {"function_urn": urn, "type": "TIMER", "status": "ACTIVE", "event_data": go_json(timer_data)},
            "apig": apig_trigger(triggers["apig"], urn),
            **status_trigger(triggers["apig"], urn),
            **on_change.pop("huaweicloud_fgs_function_trigger", {}),
        },
        "huaweicloud_eg_custom_event_source": sync_requests["huaweicloud_eg_custom_event_source"],
        "huaweicloud_eg_event_subscription": {
            **sync_requests["huaweicloud_eg_event_subscription"],
            **on_change.pop("huaweicloud_eg_event_subscription", {}),
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
    return {"variable": _declare(variables_used(config), function, zip_path), **config}


def _topic(function: dict[str, Any]) -> tuple[str, str] | None:
    """The SMN topic passes publish to, as (its URN, an expression when the rendering creates it; its name)."""
    notifications = function.get("notifications")
    if notifications is None:
        return None
    if "topic_urn" in notifications:
        return notifications["topic_urn"], notifications["topic_urn"].split(":")[4]
    return f"${{huaweicloud_smn_topic.{SMN_RESOURCE}.topic_urn}}", notifications["topic"]


def _outputs(function: dict[str, Any], apig: dict[str, Any], urn: str, agency: str | None) -> dict[str, Any]:
    """What a person needs after `terraform apply`: where to call, what was deployed, where alerts go."""
    path = apig["path"].replace("{cluster_id}", "${var.cluster_id}").replace("{nodepool_id}", "${var.nodepool_id}")
    if apig.get("gateway") == "shared":
        api_url = {"value": path, "description": "The sync route's path, on the shared API group's domain"}
    else:
        domain = f"${{data.huaweicloud_apig_groups.{APIG_GROUP}.groups[0].sl_domain}}"
        api_url = {"value": f"https://{domain}{path}", "description": "POST to sync the pool, GET for its status"}
    found = _topic(function)
    topic = found[0] if found is not None else ""
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
