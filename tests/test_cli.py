"""The CLI as a tool: answers on stdout, logs on stderr, one-line errors, exit codes, never a traceback; the
status route; one verdict for validate and invoke; the OpenAPI description."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from handler.model import Trigger
from handler.triggers import recognize
from local import openapi, terraform
from local import template as templates
from local.emulator import Emulator
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, ROOT, apig_event, run_cli, status_body

EVENTS = sorted((ROOT / "tests" / "events").glob("*.json"))


def _fails_like_a_tool(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and words in line


@pytest.mark.parametrize("command", ["invoke", "validate"])
def test_a_missing_file_is_a_one_line_usage_error(command: str) -> None:
    _fails_like_a_tool(run_cli(command, "no-such-event.json"), 2, "cannot read no-such-event.json")


def test_an_event_that_is_not_json_is_a_one_line_usage_error() -> None:
    _fails_like_a_tool(run_cli("invoke", "-", stdin="{bad"), 2, "is not JSON")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--spec", "{bad"], "--spec is not JSON"),
        (["--spec", "[1]"], "--spec must be a JSON object"),
        (["--max-unavailable", "2", "--spec", '{"maxUnavailable": 5}'], "disagree"),
    ],
)
def test_generate_event_refuses_bad_or_conflicting_options(args: list[str], words: str) -> None:
    _fails_like_a_tool(run_cli("generate-event", "eventgrid", *args), 2, words)


def test_generate_event_defaults_to_the_templates_cluster_and_pool() -> None:
    result = run_cli("generate-event", "eventgrid")
    assert result.returncode == 0
    data = json.loads(result.stdout)["data"]
    assert data == {"cluster_id": CLUSTER, "nodepool_id": NODEPOOL, "spec": {"maxUnavailable": 1}}


@pytest.mark.parametrize(
    ("kind", "trigger"),
    [
        ("timer", Trigger.TIMER),
        ("eventgrid", Trigger.EVENTGRID),
        ("apig", Trigger.APIG),
        ("cts", Trigger.CTS),
        ("eventgrid-change", Trigger.EVENTGRID),
    ],
)
def test_generate_event_makes_every_shape_the_function_takes(kind: str, trigger: Trigger) -> None:
    result = run_cli("generate-event", kind)
    assert result.returncode == 0, result.stderr
    assert recognize(json.loads(result.stdout)) is trigger


def test_a_change_event_takes_no_spec() -> None:
    _fails_like_a_tool(run_cli("generate-event", "cts", "--max-unavailable", "2"), 2, "carries no spec")


def test_serve_on_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _fails_like_a_tool(run_cli("serve", "--port", str(port)), 2, f"cannot listen on 127.0.0.1:{port}")


def test_make_serve_takes_a_port() -> None:
    result = subprocess.run(["make", "-n", "serve", "PORT=3999"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert "-m local serve --port 3999" in result.stdout


@pytest.mark.parametrize(
    ("python", "words"),
    [("python3.14", "FunctionGraph has no Python 3.14"), ("python3.9", "do not install on Python 3.9")],
)
def test_package_refuses_a_python_it_cannot_build_for(python: str, words: str) -> None:
    _fails_like_a_tool(run_cli("package", "--python", python), 2, words)


def test_make_install_refuses_a_python_that_is_too_old(tmp_path: Path) -> None:
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    result = subprocess.run(
        ["make", "install", f"PYTHON={old}"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "not Python 3.10 or newer" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_top_level_help_describes_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("run", "invoke", "serve", "status", "generate-event", "validate", "openapi"):
        assert command in result.stdout
    assert "reconcile pass" in result.stdout


# --- one verdict ---------------------------------------------------------------------------------------------

INVALID = [
    {"spec": {"maxUnavailable": 0}},
    {"spec": {"maxUnavailable": 1}, "cluster_id": "../x"},
    {"spec": {"maxUnavailable": 1}, "cluster_id": "not-allowed-cluster"},
    {"spec": {"maxUnavailable": 1}, "nodepools": {"names": ["a"], "all": True}},
    {"reconcile": {"max_syncing_per_cluster": 0}, "spec": {"maxUnavailable": 1}},
    {"spec": {"maxUnavailable": 1, "nodePoolID": "another-pool"}},
]


def _agree(path: Path) -> None:
    validated = run_cli("validate", str(path))
    invoked = run_cli("invoke", str(path), "--dry-run")
    assert "Traceback" not in validated.stderr + invoked.stderr
    assert (validated.returncode == 0) is (invoked.returncode == 0), (path.name, validated.stdout, invoked.stdout)


@pytest.mark.parametrize("document", INVALID, ids=[json.dumps(d)[:60] for d in INVALID])
def test_validate_and_invoke_dry_run_agree_on_invalid_documents(document: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document))
    assert run_cli("validate", str(path)).returncode == 1
    _agree(path)


def test_validate_checks_fleets_and_reconcile_documents() -> None:
    fleet = {"cluster_id": CLUSTER, "spec": {"maxUnavailable": 1}, "nodepools": {"names": ["web"]}}
    reconcile = {"reconcile": {"max_syncing_per_cluster": 2}}
    assert "valid (fleet (names))" in run_cli("validate", "-", stdin=json.dumps(fleet)).stdout
    result = run_cli("validate", "-", stdin=json.dumps(reconcile))
    assert (
        result.returncode == 0
        and "valid (reconcile pass" in result.stdout
        and "spec from CCE_SYNC_SPEC" in result.stdout
    )


# --- asking how a sync is going ------------------------------------------------------------------------------


@pytest.fixture
def syncing_pool(emulator: Emulator, env: Any) -> Emulator:
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "workers", nodes=4, synced=1)
    emulator.set_busy(PROJECT, CLUSTER, NODEPOOL, "job-0042")
    return emulator


def test_get_on_the_sync_route_answers_the_pools_sync_state(invoke: Any, syncing_pool: Emulator) -> None:
    status, body = status_body(invoke(apig_event(httpMethod="GET", body=None)))
    assert status == 200 and body["status"] == "syncing" and body["class"] == "syncing"
    assert body["progress"] == {"synced": 1, "current": 4} and body["nodes"] == "1/4"
    assert body["job"]["id"] == "job-0042" and syncing_pool.syncs() == []


def test_get_reads_the_job_when_the_pool_names_one(invoke: Any, syncing_pool: Emulator, env: Any) -> None:
    env(SYNC_SKIP_IF_BUSY="false")
    syncing_pool.busy.clear()
    invoke({"spec": {"maxUnavailable": 1}})
    syncing_pool.job_seconds = 60.0
    _, body = status_body(invoke(apig_event(httpMethod="GET", body=None)))
    assert body["job"]["phase"] in ("Success", "Running", "Initializing")


def test_get_respects_the_allowlist(invoke: Any, syncing_pool: Emulator, env: Any) -> None:
    env(SYNC_ALLOWED_TARGETS="another-cluster/*")
    status, _ = status_body(invoke(apig_event(httpMethod="GET", body=None)))
    assert status == 403 and syncing_pool.requests == []


def test_local_status_asks_from_a_terminal() -> None:
    result = run_cli("status", CLUSTER, NODEPOOL)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "idle" and answer["nodepool_id"] == NODEPOOL


def test_the_template_renders_a_get_trigger_on_the_sync_path() -> None:
    rendered = terraform.render_terraform(templates.load())["resource"]["huaweicloud_fgs_function_trigger"]
    status = json.loads(rendered["apig_status"]["event_data"])
    assert status["req_method"] == "GET" and status["path"] == json.loads(rendered["apig"]["event_data"])["path"]


def test_an_api_gateway_error_body_carries_the_gateways_request_id(invoke: Any, env: Any) -> None:
    answer = invoke(apig_event({"spec": {"maxUnavailable": 0}}))
    status, body = status_body(answer)
    assert status == 400 and body["request_id"] == answer["headers"]["X-Correlation-Id"] != ""


# --- OpenAPI -----------------------------------------------------------------------------------------------


def test_the_openapi_document_validates() -> None:
    from openapi_spec_validator import validate

    validate(openapi.describe(templates.load()))  # type: ignore[arg-type]


def test_the_request_body_schema_is_the_generated_one() -> None:
    document = openapi.describe(templates.load())
    schemas = document["components"]["schemas"]
    route = document["paths"][templates.load()["triggers"]["apig"]["path"]]
    ref = route["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/SyncRequestDocument"
    generated = json.loads((ROOT / "schemas" / "sync-request.schema.json").read_text())
    defs = {name: schemas[name] for name in generated["$defs"]}
    assert openapi.from_openapi(schemas["SyncRequestDocument"], defs, "sync-request.schema.json") == generated


def test_make_openapi_writes_the_document(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"
    result = run_cli("openapi", "--output", str(output))
    assert result.returncode == 0 and json.loads(output.read_text())["openapi"].startswith("3.0")


def test_requests_reach_the_status_route_through_the_local_gateway(syncing_pool: Emulator, invoke: Any) -> None:
    from local.gateway import make_gateway

    server = make_gateway(templates.load(), lambda event: (invoke(event), True), "127.0.0.1", 0)
    import threading

    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clusters/{CLUSTER}/nodepools/{NODEPOOL}/sync"
        assert requests.get(url, timeout=10).json()["status"] == "syncing"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_hints_a_working_example_for_the_templates_pool() -> None:
    import sys

    server = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", "0"], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    hints = []
    try:
        assert server.stderr is not None
        for _ in range(20):  # the emulator's and the gateway's start-up lines, then the hints
            line = server.stderr.readline()
            if "curl" in line:
                hints.append(line)
                break
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert hints and f"/clusters/{CLUSTER}/nodepools/{NODEPOOL}/sync" in hints[0] and "NODEPOOL" not in hints[0]


def test_bench_writes_its_results_outside_git() -> None:
    from bench.__main__ import parser

    output = Path(parser().parse_args([]).output)
    assert output.is_relative_to(ROOT / "dist")  # dist/ is in .gitignore
    assert "dist/" in (ROOT / ".gitignore").read_text().splitlines()


def test_invoke_counts_an_accepted_sync_still_running_as_a_success(emulator: Emulator, tmp_path: Path) -> None:
    """The CLI's exit code follows the answers' own success set: `running` is accepted, not failed."""
    template = templates.load(templates.TEMPLATE)
    template["function"]["timeout"] = 3  # the job outlives the invocation: the answer is `running`
    (tmp_path / "template.yaml").write_text(json.dumps(template))
    (tmp_path / "env").write_text("SYNC_WAIT=true\nJOB_POLL_INTERVAL_SECONDS=0.2\n")
    (tmp_path / "event.json").write_text(json.dumps({"spec": {"maxUnavailable": 1}}))
    from local.layout import DEMO_DOMAIN, DEMO_PASSWORD, DEMO_PROJECT, DEMO_USER

    emulator.users[(DEMO_DOMAIN, DEMO_USER)] = DEMO_PASSWORD  # whom --emulator signs in as
    variables = template["function"]["environment"]
    emulator.add_pool(DEMO_PROJECT, variables["CCE_CLUSTER_ID"], variables["CCE_NODEPOOL_ID"], "w", nodes=2, synced=0)
    emulator.job_seconds = 60.0
    args = ["--template", str(tmp_path / "template.yaml"), "invoke", str(tmp_path / "event.json")]
    result = run_cli(*args, "--env-file", str(tmp_path / "env"), "--emulator", emulator.url)
    assert json.loads(result.stdout)["status"] == "running", result.stderr
    assert result.returncode == 0, result.stderr
