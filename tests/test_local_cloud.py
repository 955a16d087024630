"""The local cloud: `make emulator` keeps state, the commands find it, never leave loopback without --cloud, and
answer every bad setting, port, file or option with one line and exit code 2."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from handler.variables import VARIABLES
from local import clouds
from local import template as templates
from local.emulator import Emulator
from tests.conftest import CLUSTER, ROOT, run_cli

WEB = "np-web-0001"  # a drifted pool of the demo layout: 1 of 3 nodes synced
FAN_OUT_ENV = "SYNC_SCOPES=accessible\nSYNC_ALLOWED_TARGETS=*/*/*\n"
FAN_OUT_DOCUMENT = '{"reconcile": {"clusters": "all"}, "spec": {"maxUnavailable": 1}}'


@pytest.fixture
def local_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """`make emulator` as the commands find it (its discovery file), with jobs of half a second."""
    emulator = clouds.start_emulator(dict(templates.load()["function"]["environment"]), jobs=(0.5, 0.5))
    discovery = tmp_path / ".emulator.json"
    discovery.write_text(json.dumps({"url": emulator.url, "pid": 0}))
    monkeypatch.setattr(clouds, "DISCOVERY", discovery)
    monkeypatch.delenv("NODEPOOL_SYNC_DISCOVERY")
    yield emulator
    emulator.stop()


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    answer = json.loads(result.stdout)
    return json.loads(answer["body"]) if "body" in answer else answer


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and all(word in line for word in words), line


@contextmanager
def _emulator_command(*args: str, discovery: Path | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m local emulator ARGS` in a process of its own (writing its discovery file where told) and the first
    line it printed (its URL); stopped on leaving, its remaining output still readable."""
    environment = {**os.environ, **({"NODEPOOL_SYNC_DISCOVERY": str(discovery)} if discovery else {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "emulator", *args], cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline()
    finally:
        process.terminate()
        process.wait(10)


def test_a_sync_invoked_shows_syncing_then_synced_in_status(local_cloud: Emulator) -> None:
    event = run_cli("generate-event", "apig", "--nodepool", WEB).stdout
    invoked = run_cli("invoke", "-", stdin=event)
    assert invoked.returncode == 0 and _json(invoked)["status"] == "accepted", invoked.stderr
    assert f"using the local emulator at {local_cloud.url}" in invoked.stderr
    syncing = _json(run_cli("status", CLUSTER, WEB))
    assert (syncing["status"], syncing["job"]["phase"]) == ("syncing", "Initializing")
    time.sleep(0.6)
    synced = _json(run_cli("status", CLUSTER, WEB))
    assert (synced["status"], synced["class"], synced["job"]["phase"]) == ("idle", "in_sync", "Success")


def test_a_sync_to_an_unknown_pool_answers_ccees_404(local_cloud: Emulator) -> None:
    event = run_cli("generate-event", "apig", "--nodepool", "np-nonexistent").stdout
    result = run_cli("invoke", "-", stdin=event)
    answer = json.loads(result.stdout)
    assert result.returncode == 1 and answer["statusCode"] == 404
    assert json.loads(answer["body"])["error_code"] == "CCE.01404001"


def test_a_reconcile_pass_over_the_demo_layout_starts_a_drifted_pool(local_cloud: Emulator) -> None:
    result = run_cli("invoke", "-", stdin=run_cli("generate-event", "reconcile").stdout)
    answer = json.loads(result.stdout)
    assert answer["status"] == "reconciled" and answer["totals"]["started"] == 1
    assert len(local_cloud.syncs()) == 1


def test_reset_restores_the_layout_and_ends_the_jobs(local_cloud: Emulator) -> None:
    run_cli("invoke", "-", stdin=run_cli("generate-event", "apig", "--nodepool", WEB).stdout)
    local_cloud.job_seconds_range = (60.0, 60.0)  # a long one, still running at the reset
    reset = run_cli("emulator", "--reset")
    assert reset.returncode == 0 and "layout restored" in reset.stdout
    status = _json(run_cli("status", CLUSTER, WEB))
    assert (status["status"], status["class"], status["job"]) == ("idle", "drifted", None)


def test_the_emulator_command_is_found_by_invoke_and_forgotten_when_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    discovery = tmp_path / "emulator.json"
    with _emulator_command("--jobs", "1", discovery=discovery) as (process, first):
        assert first.startswith("emulator listening on http://127.0.0.1:")
        url = first.split()[3]
        monkeypatch.setenv("NODEPOOL_SYNC_DISCOVERY", str(discovery))
        result = run_cli("invoke", "-", stdin=run_cli("generate-event", "apig", "--nodepool", WEB).stdout)
        assert _json(result)["status"] == "accepted" and f"at {url}" in result.stderr
    assert process.returncode == 0 and not discovery.exists()
    assert process.stdout is not None
    said = process.stdout.read().splitlines()
    requests = [line for line in said if re.search(r"\d\d:\d\d:\d\d (GET|POST) /\S+ -> \d{3} [\d.]+ ms$", line)]
    assert any("/operation/upgrade -> 200" in line for line in requests), said  # a line per request it received
    assert said[-1].endswith(" stopped"), said


def test_the_emulator_command_is_quiet_when_asked(tmp_path: Path) -> None:
    with _emulator_command("--empty", "--quiet", "--token", "t0ken") as (process, first):
        requests.get(f"{first.split()[3]}/_emulator/health", timeout=5)
    assert process.stdout is not None and process.stdout.read() == ""


def test_without_cloud_the_shells_credentials_and_endpoints_never_leave_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKSHELL0123456789")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SK-from-the-shell")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "9f8e7d6c5b4a39281706f5e4d3c2b1a0")
    env_file = tmp_path / "real.env"
    env_file.write_text("CCE_ENDPOINT=https://cce.ap-southeast-1.myhuaweicloud.com\nHUAWEICLOUD_AUTH_TOKEN=realtoken\n")
    reached: list[Any] = []
    connect = socket.socket.connect

    def recording(self: socket.socket, address: Any) -> Any:
        reached.append(address)
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    event = run_cli("generate-event", "apig", "--nodepool", WEB).stdout
    invoked = run_cli("invoke", "-", "--env-file", str(env_file), stdin=event)
    status = run_cli("status", CLUSTER, WEB, "--env-file", str(env_file))
    assert _json(invoked)["status"] == "accepted" and _json(status)["class"] == "drifted"  # an emulator each
    assert reached and all(address[0] == "127.0.0.1" for address in reached), reached
    assert "AKSHELL" not in invoked.stdout + invoked.stderr


# A malformed value of every setting the function checks (the README's "Environment variables" table).
MALFORMED = {
    "region": "Mars 1",
    "endpoint": "ftp://cce.example.com",
    "json_object": "{not json",
    "sync_spec": '{"maxUnavailable": 0}',
    "reconcile_options": '{"max_syncing_per_cluster": 0}',
    "boolean": "maybe",
    "choice": "LOUD",
    "header_text": "AK with spaces",
    "number": "soon",
    "integer": "1.5",
    "targets": "a/b/c/d",
    "windows": "Mon-Fri 25:00-05:00+08:00",
    "smn_topic": "not-a-urn",
    "scopes": "[1]",
    "regions": '["Mars 1"]',
    "function_urn": "urn:nothing",
    "ces_namespace": "SYS.NODEPOOL",
}
CHECKED = [v for v in VARIABLES if v.read in MALFORMED or (v.read == "secret" and v.args)]


def test_every_checked_setting_has_a_malformed_example() -> None:
    unchecked = {v.read for v in VARIABLES} - set(MALFORMED) - {"text", "secret"}
    assert not unchecked  # a new kind of setting needs a malformed value here


@pytest.mark.parametrize("variable", CHECKED, ids=lambda v: v.name)
def test_a_malformed_setting_is_one_line_naming_it_and_exit_2(variable: Any, tmp_path: Path) -> None:
    value = MALFORMED.get(variable.read, "token with spaces")
    env_file = tmp_path / "bad.env"
    env_file.write_text(f"{variable.name}={value}\n")
    for command in (["invoke", "-"], ["status", CLUSTER, WEB], ["serve", "--port", "0"]):
        _one_line_error(run_cli(*command, "--env-file", str(env_file), stdin="{}"), f"error: {variable.name}")


def test_the_windows_error_says_what_why_and_the_expected_form(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("SYNC_WINDOWS=Mon-Fri 25:00-05:00+08:00\n")
    result = run_cli("invoke", "-", "--env-file", str(env_file), stdin="{}")
    _one_line_error(result, "SYNC_WINDOWS", "hour 25", 'expected "<days> HH:MM-HH:MM±HH:MM"')


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serve", "--port", "99999"], ["--port", "0 to 65535"]),
        (["emulator", "--port", "http"], ["--port", "0 to 65535"]),
        (["emulator", "--jobs", "soon"], ["--jobs", "MIN-MAX"]),
        (["invoke", "/nonexistent/event.json"], ["cannot read /nonexistent/event.json"]),
        (["invoke", "-", "--env-file", "/nonexistent/.env"], ["cannot read /nonexistent/.env"]),
        (["status", CLUSTER], ["required", "nodepool"]),
        (["invoke", "-", "--cloud", "--emulator", "http://127.0.0.1:1"], ["not allowed with"]),
        (["status", CLUSTER, WEB, "--emulator", "http://example.com"], ["loopback"]),
        (["status", CLUSTER, WEB, "--emulator", "http://127.example.com:1"], ["loopback"]),
        (["status", CLUSTER, WEB, "--emulator", "ftp://127.0.0.1:1"], ["loopback"]),
        (["generate-event", "weather"], ["invalid choice"]),
        (["--templte", "x.yaml"], ["invalid choice: 'x.yaml'"]),
    ],
)
def test_a_bad_option_port_or_file_is_one_line_and_exit_2(argv: list[str], words: list[str]) -> None:
    _one_line_error(run_cli(*argv, stdin="{}"), *words)


def test_serve_cloud_without_credentials_refuses_before_it_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in clouds.CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    _one_line_error(run_cli("serve", "--cloud", "--port", "0"), "--cloud needs credentials")


def test_reset_without_a_running_emulator_says_how_to_start_one() -> None:
    _one_line_error(run_cli("emulator", "--reset"), "make emulator")


def test_version_names_the_functions_version() -> None:
    from handler import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"nodepool-sync {__version__}"
    assert f"## {__version__}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_the_emulator_command_runs_a_fanned_out_passs_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from local.layout import DEMO_SCOPES

    discovery = tmp_path / "emulator.json"
    env_file = tmp_path / "fleet.env"
    env_file.write_text(FAN_OUT_ENV)  # as the README and docs/local-tools.md show it
    workers: list[str] = []
    with _emulator_command("--jobs", "1", discovery=discovery) as (process, _):
        assert process.stdout is not None
        monkeypatch.setenv("NODEPOOL_SYNC_DISCOVERY", str(discovery))
        result = run_cli("invoke", "-", "--env-file", str(env_file), stdin=FAN_OUT_DOCUMENT)
        assert _json(result)["status"] == "dispatched" and result.returncode == 0, result.stdout + result.stderr
        while len(workers) < len(DEMO_SCOPES) + 1:  # each scope a worker process: a line each when it ends
            line = process.stdout.readline()
            assert line, workers
            workers += [line] if " worker " in line else []
    assert all("reconciled, " in line and " started" in line for line in workers), workers


@pytest.mark.parametrize("page", ["README.md", "docs/local-tools.md"])
def test_the_fan_out_shown_in_the_docs_is_the_one_tested(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    assert f"printf '{FAN_OUT_ENV}'".replace("\n", "\\n") in text and f"echo '{FAN_OUT_DOCUMENT}'" in text
    assert " worker ap-southeast-1/" in text


def test_make_help_shows_no_unexpanded_make_variable() -> None:
    shown = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert shown.returncode == 0 and "make serve" in shown.stdout and "$(" not in shown.stdout


def test_emulator_reset_takes_the_port_it_is_given(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _emulator_command("--port", str(port), "--quiet", discovery=tmp_path / "none.json"):
        reset = subprocess.run(
            [sys.executable, "-m", "local", "emulator", "--reset", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "NODEPOOL_SYNC_DISCOVERY": str(tmp_path / "other.json")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert reset.returncode == 0 and f"127.0.0.1:{port}" in reset.stdout, reset.stdout + reset.stderr


def test_the_installed_command_works_from_any_directory(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "nodepool-sync"  # make install puts it beside .venv's python
    ran = subprocess.run(
        [str(command), "generate-event", "apig"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0 and json.loads(ran.stdout)["httpMethod"] == "POST", ran.stderr


def test_a_python_without_the_dependencies_gets_one_line_saying_how_to_install_them() -> None:
    ran = subprocess.run(
        [sys.executable, "-S", "-m", "local", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = ran.stderr.strip().splitlines()
    assert ran.returncode == 2 and len(lines) == 1 and "make install" in lines[0] and "Traceback" not in ran.stderr


def test_run_help_names_each_of_its_ten_steps() -> None:
    shown = run_cli("run", "--help").stdout
    for step in ("reconcile pass", "EventGrid", "fleet", "waited job", "waves", "halt", "ignore_halt", "accessible"):
        assert step in " ".join(shown.split()), step


def test_verbose_run_shows_each_event_in_full() -> None:
    result = run_cli("run", "--verbose")
    events = [line for line in result.stdout.splitlines() if line.startswith("    event: ")]
    assert events and not any(line.endswith("...") for line in events)


def test_the_official_sdk_works_against_make_emulator_with_its_demo_keys(tmp_path: Path) -> None:
    from huaweicloudsdkcce.v3 import CceClient, ListNodePoolsRequest
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    from local.layout import DEMO_PROJECT

    own_key = ("--access-key", "AKMINE0001:my-own-secret")
    with _emulator_command("--quiet", *own_key, discovery=tmp_path / "emulator.json") as (process, first):
        assert process.stdout is not None
        url = first.split()[3]
        banner = "".join(process.stdout.readline() for _ in range(6))
        access_key, secret_key = re.search(r"AK (\S+), SK (\S+)", banner).groups()  # type: ignore[union-attr]
        pools = []
        for ak, sk in ((access_key, secret_key), ("AKMINE0001", "my-own-secret")):
            client = CceClient.new_builder().with_credentials(BasicCredentials(ak, sk, DEMO_PROJECT))
            listed = client.with_endpoints([url]).build().list_node_pools(ListNodePoolsRequest(cluster_id=CLUSTER))
            pools.append(sorted(p.metadata.name for p in listed.items))
    assert pools[0] == pools[1] and "web" in pools[0], pools


HALT_CLUSTERS = '{"clusters": ["cce-halt-a", "cce-halt-b", "cce-halt-c"], "halt_after_failures": 2}'


@pytest.mark.parametrize(
    ("document", "settings", "code"),
    [
        ({"cluster_id": "cce-halt-c", "nodepool_id": "np-halt-c", "spec": {"maxUnavailable": 1}}, "", 0),
        (
            {"cluster_id": "cce-halt-c", "nodepool_id": "np-halt-c", "spec": {"maxUnavailable": 1}},
            f"SYNC_RECONCILE={HALT_CLUSTERS}\n",
            1,
        ),
        ({"nodepool_id": "np-jobs-0001", "spec": {"maxUnavailable": 1}}, "SYNC_SKIP_IF_BUSY=true\n", 0),
        ({"reconcile": {"clusters": [CLUSTER, "cce-test"]}, "spec": {"maxUnavailable": 1}}, "", 1),
    ],
    ids=["accepted", "a guard's 409", "skipped: already syncing", "a 207: a cluster outside the allowlist"],
)
def test_invoke_exit_codes_a_script_can_trust(document: Any, settings: str, code: int, tmp_path: Path) -> None:
    allowed = ",".join(f"{cluster}/*" for cluster in (CLUSTER, "cce-halt-a", "cce-halt-b", "cce-halt-c"))
    (tmp_path / "env").write_text(settings + f"SYNC_ALLOWED_TARGETS={allowed}\n")
    result = run_cli("invoke", "-", "--env-file", str(tmp_path / "env"), stdin=json.dumps(document))
    assert result.returncode == code, result.stdout + result.stderr


def test_ctrl_c_while_invoke_follows_a_job_says_it_goes_on_and_how_to_follow_it(tmp_path: Path) -> None:
    import signal

    environment = {**os.environ, "NODEPOOL_SYNC_DISCOVERY": str(tmp_path / "emulator.json")}
    with _emulator_command("--jobs", "60-60", "--quiet", discovery=tmp_path / "emulator.json"):
        invoke = subprocess.Popen(
            [sys.executable, "-m", "local", "invoke", "-"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert invoke.stdin is not None and invoke.stderr is not None
        invoke.stdin.write(json.dumps({"nodepool_id": WEB, "spec": {"maxUnavailable": 1}, "wait": True}))
        invoke.stdin.close()
        seen = ""
        while '"message": "job"' not in seen:  # progress: a line per change of the job's state
            line = invoke.stderr.readline()
            assert line, seen
            seen += line
        invoke.send_signal(signal.SIGINT)
        rest = invoke.stderr.read()
        invoke.wait(30)
    assert invoke.returncode == 130, rest
    assert "interrupted: a sync may have been started (job " in rest and f"status {CLUSTER} {WEB}" in rest, rest


def test_serve_says_its_emulator_has_gone_instead_of_a_502(tmp_path: Path) -> None:
    environment = {**os.environ, "NODEPOOL_SYNC_DISCOVERY": str(tmp_path / "none.json")}
    with _emulator_command("--port", "0", "--quiet", discovery=tmp_path / "none.json") as (emulator, first):
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url is not None
        serve = subprocess.Popen(
            [sys.executable, "-m", "local", "serve", "--port", "0", "--emulator", url.group(0)],
            cwd=ROOT,
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert serve.stderr is not None
            example = None
            while example is None:
                line = serve.stderr.readline()
                assert line, "serve ended before it listened"
                example = re.search(r"curl -s (http://\S+)", line)
            emulator.terminate()
            emulator.wait(10)
            answer = requests.post(example.group(1), json={"spec": {"maxUnavailable": 1}}, timeout=60)
        finally:
            serve.terminate()
            serve.wait(10)
    assert answer.status_code == 503 and "emulator" in answer.json()["error_msg"], answer.text


def test_invoke_waiting_shows_each_change_of_the_jobs_state_with_the_nodes(local_cloud: Emulator) -> None:
    document = json.dumps({"nodepool_id": WEB, "spec": {"maxUnavailable": 1}, "wait": True})
    result = run_cli("invoke", "-", stdin=document)
    progress = [json.loads(line[len("log: ") :]) for line in result.stderr.splitlines() if '"message": "job"' in line]
    assert [line["phase"] for line in progress][-1] == "Success", result.stderr
    assert progress[-1]["nodes"] == "3/3" and all("nodes" in line for line in progress), progress


def test_status_takes_a_pools_name_and_shows_its_id(local_cloud: Emulator) -> None:
    result = run_cli("status", CLUSTER, "web")
    assert result.returncode == 0 and _json(result)["nodepool_id"] == WEB, result.stdout + result.stderr
    assert f"pool web is {WEB}" in result.stderr


def test_status_refuses_an_ambiguous_name_listing_the_candidates(local_cloud: Emulator) -> None:
    from local.layout import DEMO_PROJECT

    local_cloud.add_pool(DEMO_PROJECT, CLUSTER, "np-web-0002", "web", nodes=1, synced=1)
    result = run_cli("status", CLUSTER, "web")
    assert result.returncode == 2 and not result.stdout, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]  # after the line naming the emulator used
    assert error.startswith("error: 2 pools are named 'web'") and WEB in error and "np-web-0002" in error, error


def test_the_emulators_discovery_file_gives_the_demo_scopes_and_access_key(tmp_path: Path) -> None:
    from local.layout import DEMO_AK, DEMO_SCOPES, DEMO_SK

    discovery = tmp_path / "emulator.json"
    with _emulator_command("--quiet", discovery=discovery):
        for _ in range(200):  # written after the banner
            if discovery.exists() and discovery.read_text():
                break
            time.sleep(0.05)
        found = json.loads(discovery.read_text())
    assert found["access_key"] == {"ak": DEMO_AK, "sk": DEMO_SK}
    assert [(scope["region"], scope["project_id"]) for scope in found["scopes"]] == list(DEMO_SCOPES)
