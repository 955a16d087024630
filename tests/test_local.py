"""The local tools: template.yaml, the Terraform rendering, the CLI commands, the local gateway, the zip."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from handler.model import Trigger
from handler.triggers import recognize
from local import template as templates
from local.emulator import Emulator
from local.gateway import make_gateway
from local.package import build, find_interpreter
from tests.conftest import CLUSTER, NODEPOOL, PROJECT, TOKEN, readme_code, run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_template_validates() -> None:
    template = templates.load()
    assert template["function"]["handler"] == "index.handler"
    assert template["triggers"]["apig"]["auth"] in ("IAM", "App")


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("triggers", "apig", "auth"), "NONE", "auth"),
        (("function", "runtime"), "Python3.11", "runtime"),
        (("function", "timeout"), 901, "timeout"),
        (("triggers", "timer", "schedule_type"), "Hourly", "schedule_type"),
    ],
)
def test_an_invalid_template_is_refused(tmp_path: Path, path: tuple[str, ...], value: Any, words: str) -> None:
    data = yaml.safe_load((ROOT / "template.yaml").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    bad = tmp_path / "template.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(templates.TemplateError, match=words):
        templates.load(bad)


def test_deploy_config_writes_terraform_json(tmp_path: Path) -> None:
    output = tmp_path / "main.tf.json"
    result = run_cli("deploy-config", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "huaweicloud_fgs_function" in json.loads(output.read_text())["resource"]


@pytest.mark.parametrize(
    ("kind", "trigger", "verdict"),
    [
        ("apig", Trigger.APIG, "valid (single sync)"),
        ("status", Trigger.APIG, "valid (status question)"),
        ("eventgrid", Trigger.EVENTGRID, "valid (single sync)"),
        ("batch", Trigger.EVENTGRID_BATCH, "valid (single sync)"),
        ("fleet", Trigger.DIRECT, "valid (fleet (names))"),
        ("reconcile", Trigger.DIRECT, "valid (reconcile pass over 1 cluster(s))"),
        ("cts", Trigger.CTS, "valid (change event"),
        ("eventgrid-change", Trigger.EVENTGRID, "valid (change event"),
    ],
)
def test_generate_event_prints_a_valid_event_of_that_kind(kind: str, trigger: Trigger, verdict: str) -> None:
    result = run_cli("generate-event", kind, "--cluster", CLUSTER, "--nodepool", "np-web-0001")
    assert result.returncode == 0, result.stderr
    assert recognize(json.loads(result.stdout)) is trigger
    assert verdict in run_cli("validate", "-", stdin=result.stdout).stdout


def test_the_generated_timer_event_is_the_templates_own_a_reconcile_pass() -> None:
    event = json.loads(run_cli("generate-event", "timer").stdout)
    timer = templates.load()["triggers"]["timer"]
    assert recognize(event) is Trigger.TIMER
    assert (event["trigger_name"], event["user_event"]) == (timer["name"], timer.get("user_event", ""))
    assert "valid (reconcile pass" in run_cli("validate", "-", stdin=json.dumps(event)).stdout


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "emulator",
        "invoke",
        "serve",
        "status",
        "generate-event",
        "validate",
        "package",
        "deploy-config",
        "openapi",
    ],
)
def test_every_commands_help_ends_with_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0 and "usage: python -m local" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("example: python -m local ")


def test_validate_prints_every_error_with_its_path(tmp_path: Path) -> None:
    document = tmp_path / "doc.json"
    document.write_text(json.dumps({"spec": {"maxUnavailable": 25, "maxUnavailble": 1, "nodePoolID": "x"}}))
    result = run_cli("validate", str(document))
    assert result.returncode == 1
    assert f"{document}: /spec/maxUnavailable: 25 is greater than the maximum of 20" in result.stdout
    assert "/spec/maxUnavailble: unknown field" in result.stdout


def test_validate_accepts_a_valid_document_and_names_the_defaults_it_applied() -> None:
    result = run_cli("validate", "-", stdin=json.dumps({"spec": {"maxUnavailable": 1}}))
    assert result.returncode == 0, result.stdout
    assert "-: valid (single sync); defaults applied: " in result.stdout
    assert "cluster_id from CCE_CLUSTER_ID" in result.stdout and "nodepool_id from CCE_NODEPOOL_ID" in result.stdout


def test_invoke_runs_an_event_file_against_the_emulator(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(f"# demo\nCCE_CLUSTER_ID={CLUSTER}\nCCE_NODEPOOL_ID='{NODEPOOL}'\n")
    result = run_cli("invoke", str(ROOT / "tests" / "events" / "timer.json"), "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)  # stdout carries the answer alone
    assert answer["status"] == "accepted" and answer["nodepool_id"] == NODEPOOL
    assert "log: {" in result.stderr


def test_invoke_exit_code_reflects_failure() -> None:
    result = run_cli("invoke", "-", stdin=json.dumps({"spec": {"maxUnavailable": 0}}))
    assert result.returncode == 1 and '"status": "rejected"' in result.stdout


def test_make_run_drives_a_reconcile_pass_a_change_event_the_triggers_a_fleet_and_a_waited_job() -> None:
    result = run_cli("run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # One token for the first eight steps, one for the gated step's new instance; the fan-out's new instance
    # fetches one for its own project (to invoke its workers) and one per project the workers reach (4).
    assert "10/10 steps succeeded; IAM token requests: 11" in lines and len(lines) < 170
    assert "    totals: 4 started, 4 deferred over 4 scopes" in lines  # one worker per scope, two regions
    # SYNC_SCOPES=accessible: the four region projects the allowlist reaches, of the five IAM lists
    assert any(line.startswith("    coordinator: dispatched 4 workers") for line in lines)
    gated = [line for line in lines if line.startswith("    POST ")]
    assert "HTTP 409 FUNC.HALTED" in gated[0] and "HTTP 200 accepted" in gated[1]  # the one gate, then ignore_halt
    rollout = [line for line in lines if line.startswith("    pass ")]
    assert [line.split(";")[0] for line in rollout] == [
        "    pass 1: wave 1 open",
        "    pass 2: wave 2 open",
        "    pass 3: wave 3 open",
    ]
    assert "started test-web" in rollout[0] and "started stage-web" in rollout[1] and "started prod-web" in rollout[2]
    assert any(line.startswith("    halted: failed halt-a") for line in lines)
    assert "reconciled: 1 started, 1 deferred, 1 backing off, 0 failed" in result.stdout
    assert "    SMN message: nodepool-sync needs attention: 1 sync job failed" in result.stdout
    for pool_class in ("drifted", "in_sync", "unknown", "syncing"):
        assert f" {pool_class} " in result.stdout
    assert "    IAM POST /v3/auth/tokens?nocatalog=true -> 201" in lines
    assert "    CCE POST .../nodepools/np-api-0001/operation/upgrade -> 200" in lines  # the change, synced
    assert any(line.startswith("    CCE GET .../jobs/") and line.endswith(")") for line in lines)  # repeats counted
    assert "all_accepted" in result.stdout and "succeeded" in result.stdout
    # Each step's log lines follow its requests, shortened to what a person reads first (VERBOSE=1: whole).
    assert '"message": "sync"' not in result.stdout
    assert any(line.startswith("    log: sync trigger=timer outcome=reconciled http_status=200") for line in lines)
    assert "Demo-IAM-Passw0rd!" not in result.stdout + result.stderr


def test_make_run_verbose_shows_every_request_masked() -> None:
    result = run_cli("run", "--verbose")
    assert result.returncode == 0 and "IAM received" in result.stdout and "CCE received" in result.stdout
    assert "FGS ap-southeast-1 received" in result.stdout  # the fan-out's worker invocations
    assert '"x-auth-token": "***"' in result.stdout and "Demo-IAM-Passw0rd!" not in result.stdout


@pytest.fixture
def gateway(invoke: Any, emulator: Emulator) -> Any:
    server = make_gateway(templates.load(), lambda event: (invoke(event), True), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_gateway_turns_http_into_api_gateway_events(gateway: str, emulator: Emulator) -> None:
    response = requests.post(
        f"{gateway}/clusters/{CLUSTER}/nodepools/{NODEPOOL}/sync", json={"spec": {"maxUnavailable": 4}}, timeout=10
    )
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert response.headers["Content-Type"] == "application/json" and response.headers["X-Correlation-Id"]
    [sync] = emulator.syncs()
    assert sync.path == f"/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/nodepools/{NODEPOOL}/operation/upgrade"
    assert sync.json == {"spec": {"maxUnavailable": 4, "nodePoolID": NODEPOOL}}
    assert sync.headers["x-auth-token"] == TOKEN


def test_local_gateway_answers_405_and_404(gateway: str, emulator: Emulator) -> None:
    wrong_method = requests.put(f"{gateway}/clusters/{CLUSTER}/nodepools/{NODEPOOL}/sync", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET, POST"
    assert requests.post(f"{gateway}/elsewhere", json={}, timeout=10).status_code == 404
    assert emulator.syncs() == []


def _readme_local_commands() -> list[list[str]]:
    """The README's "Local tools" example, one argv per command (continuation lines joined)."""
    joined = readme_code("Local tools").replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def test_the_readme_api_example_syncs_through_the_local_gateway(gateway: str, emulator: Emulator) -> None:
    [curl] = [argv for argv in _readme_local_commands() if argv[0] == "curl"]
    url = next(a for a in curl if a.startswith("http://127.0.0.1:3000/"))
    response = requests.post(
        url.replace("http://127.0.0.1:3000", gateway),
        data=curl[curl.index("-d") + 1],
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert len(emulator.syncs()) == 1


def test_the_readme_event_example_syncs(tmp_path: Path) -> None:
    generate, invoke = [
        argv[3:] for argv in _readme_local_commands() if argv[:3] == [".venv/bin/python", "-m", "local"]
    ]
    assert generate[-2] == ">" and invoke == ["invoke", generate[-1]]
    event = run_cli(*generate[:-2])
    assert event.returncode == 0, event.stderr
    (tmp_path / generate[-1]).write_text(event.stdout)
    result = run_cli("invoke", str(tmp_path / generate[-1]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout[result.stdout.index("{\n") :])["status"] == "accepted"


def _interpreters() -> list[Any]:
    """This interpreter, and the template's runtime when this machine has it (the zip users deploy)."""
    runtime = f"python{templates.python_version(templates.load())}"
    found = find_interpreter(runtime)
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    targets = [pytest.param(sys.executable, id=f"local-{mine}")]
    if found is not None and found[1] != mine:
        targets.append(pytest.param(found[0], id=f"template-{found[1]}"))
    return targets


@pytest.fixture(scope="module", params=_interpreters())
def built_zip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    output = tmp_path_factory.mktemp("dist") / "nodepool-sync.zip"
    return build(output, request.param), request.param


def test_zip_holds_what_functiongraph_needs_and_nothing_else(built_zip: tuple[Path, str]) -> None:
    names = zipfile.ZipFile(built_zip[0]).namelist()
    assert "index.py" in names and "handler/index.py" in names
    assert "schemas/sync-request.schema.json" in names and "schemas/sync-fleet.schema.json" in names
    assert any(n.startswith("requests/") for n in names) and any(n.startswith("jsonschema/") for n in names)
    assert any(n.endswith(".pyc") for n in names)
    for unwanted in (
        "tests/",
        "local/",
        "bench/",
        "yaml/",
        "_yaml/",
        "pytest",
        "schemas/generate.py",
        "schemas/source",
    ):
        assert not any(n.startswith(unwanted) for n in names), unwanted


def test_the_unpacked_zip_runs_one_invocation_in_isolation(
    built_zip: tuple[Path, str], tmp_path: Path, emulator: Emulator
) -> None:
    zip_path, python = built_zip
    zipfile.ZipFile(zip_path).extractall(tmp_path / "code")
    script = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(tmp_path / "code")!r})
        os.environ.update(CCE_ENDPOINT={emulator.url!r}, HUAWEICLOUD_AUTH_TOKEN={TOKEN!r},
                          HUAWEICLOUD_SDK_PROJECT_ID={PROJECT!r}, CCE_CLUSTER_ID={CLUSTER!r},
                          CCE_NODEPOOL_ID={NODEPOOL!r})
        import index
        import requests, jsonschema
        for module in (index, requests, jsonschema):
            assert module.__file__.startswith({str(tmp_path / "code")!r}), module.__file__
        index.initializer(None)
        print(json.dumps(index.handler({{"spec": {{"maxUnavailable": 1}}}}, None)))
        """
    )
    result = subprocess.run([python, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "accepted"
    assert len(emulator.syncs()) == 1


def test_a_zip_says_which_python_it_was_built_for(built_zip: tuple[Path, str]) -> None:
    from local.package import built_for

    zip_path, python = built_zip
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert built_for(zip_path) == version


def test_deploy_config_warns_when_the_zips_python_is_not_the_templates_runtime(tmp_path: Path) -> None:
    zip_path = tmp_path / "nodepool-sync.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("nodepool-sync-build.json", json.dumps({"python": "3.10", "bytecode": True}))
    result = run_cli("deploy-config", "--output", str(tmp_path / "main.tf.json"), "--zip", str(zip_path))
    assert result.returncode == 0 and "built for Python 3.10" in result.stderr and "Python3.12" in result.stderr
