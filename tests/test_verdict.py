"""`validate` is the handler's own judgement: it and `invoke --dry-run` give the same verdict (valid, or the same
error codes) for every sample event, fleets, passes and change events, whatever the settings and wherever they
come from (the template, the shell, --env-file)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from local.emulator import cloud_event, cts_trace
from tests.conftest import CLUSTER, EVENTS, NODEPOOL, PROJECT, run_cli

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CLOSED = f"{DAYS[(datetime.now(timezone.utc).weekday() + 3) % 7]} 01:00-02:00+00:00"  # never open today
SPEC = {"maxUnavailable": 1}
DOCUMENTS: dict[str, Any] = {
    **{path.name: json.loads(path.read_text()) for path in sorted(EVENTS.glob("*.json"))},
    "control fields only": {"force": True},
    "fleet of targets": {"spec": SPEC, "targets": [{"nodepool_id": NODEPOOL}, {"nodepool_id": "np-other"}]},
    "fleet in another cluster": {"spec": SPEC, "cluster_id": "c-other", "nodepools": {"names": ["web"]}},
    "reconcile pass": {"reconcile": {"max_syncing_per_cluster": 2}},
    "reconcile pass of another project": {"reconcile": {}, "project_id": "p-other"},
    "cts change": cts_trace(PROJECT, CLUSTER, NODEPOOL, "workers"),
    "eventgrid change": cloud_event(cts_trace(PROJECT, CLUSTER, NODEPOOL, "workers")),
}
SETTINGS = {
    "the template's": {},
    "an allowlist": {"SYNC_ALLOWED_TARGETS": f"{CLUSTER}/{NODEPOOL}"},
    "a closed window": {"SYNC_WINDOWS": CLOSED},
    "no default spec": {"CCE_SYNC_SPEC": ""},
    "another default cluster": {"CCE_CLUSTER_ID": "c-other"},
}


def _codes(text: str) -> set[str]:
    return set(re.findall(r"\[([A-Z]+\.[A-Z0-9_]+)\]", text))


def _answer_codes(answer: Any) -> set[str]:
    if isinstance(answer, dict) and "statusCode" in answer:
        answer = json.loads(answer["body"])
    found: set[str] = set()
    if isinstance(answer, dict):
        if isinstance(answer.get("error_code"), str):
            found.add(answer["error_code"])
        for result in answer.get("results", ()):
            found |= _answer_codes(result)
    return found


def _agree(
    document: Any, tmp_path: Path, settings: dict[str, str], monkeypatch: pytest.MonkeyPatch, from_shell: bool
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(document))
    options: list[str] = []
    if from_shell:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
    else:
        (tmp_path / "env").write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
        options = ["--env-file", str(tmp_path / "env")]
    validated = run_cli("validate", str(path), *options)
    invoked = run_cli("invoke", str(path), "--dry-run", *options)
    assert "Traceback" not in validated.stderr + invoked.stderr, validated.stderr + invoked.stderr
    answer = json.loads(invoked.stdout)
    # Valid is what the handler takes as it is: no error code of the request's own (a pass may still find a cluster
    # it cannot read, which makes invoke exit 1 but is no fault of the document).
    assert (validated.returncode == 0) is not _answer_codes(answer), (validated.stdout, answer)
    assert _codes(validated.stdout) == _answer_codes(answer), (validated.stdout, answer)


@pytest.mark.parametrize("settings", list(SETTINGS))
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_validate_and_invoke_dry_run_agree(
    name: str, settings: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _agree(DOCUMENTS[name], tmp_path, SETTINGS[settings], monkeypatch, from_shell=False)


@pytest.mark.parametrize("settings", ["an allowlist", "another default cluster", "a closed window"])
def test_settings_from_the_shell_count_as_from_an_env_file(
    settings: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _agree(DOCUMENTS["direct.json"], tmp_path, SETTINGS[settings], monkeypatch, from_shell=True)


def test_the_env_file_wins_over_the_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_ALLOWED_TARGETS", "c-other/*")
    (tmp_path / "env").write_text(f"SYNC_ALLOWED_TARGETS={CLUSTER}/*\n")
    (tmp_path / "event.json").write_text(json.dumps({"spec": SPEC}))
    result = run_cli("validate", str(tmp_path / "event.json"), "--env-file", str(tmp_path / "env"))
    assert result.returncode == 0, result.stdout


def test_validate_names_the_error_code_of_each_problem(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_text(json.dumps({"spec": {"maxUnavailable": 0}, "cluster_id": "../x"}))
    result = run_cli("validate", str(tmp_path / "doc.json"))
    lines = [line for line in result.stdout.splitlines() if "doc.json: /" in line]
    assert result.returncode == 1 and len(lines) == 2 and all(line.endswith("[FUNC.INVALID]") for line in lines)


def test_validate_runs_as_a_process_with_no_traceback() -> None:
    result = run_cli("validate", "-", stdin=json.dumps({"spec": SPEC, "cluster_id": "../x"}), process=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "[FUNC.INVALID]" in result.stdout


# Every kind of request, under settings that make each a different kind (a fan-out pass under SYNC_SCOPES, a
# tick that runs the configured pass), with the words `validate` uses for the kind it found.
SCOPES = [{"region": "ap-southeast-1", "project_id": "p-scope-one"}, {"region": "eu-west-101", "project_id": PROJECT}]
FANNED_OUT = {
    "SYNC_SCOPES": json.dumps(SCOPES),
    "SYNC_ALLOWED_TARGETS": "*/*/*",
    "FUNCTION_URN": "urn:fss:ap-southeast-1:p:function:default:nodepool-sync:latest",
}
KIND_SETTINGS = {
    "its own project": {"SYNC_ALLOWED_TARGETS": f"{CLUSTER}/*"},
    "fanned out over SYNC_SCOPES": FANNED_OUT,
    "an allowlist": {"SYNC_ALLOWED_TARGETS": f"{CLUSTER}/{NODEPOOL}"},
    "a closed window": {"SYNC_WINDOWS": CLOSED},
}
WORKER = {
    "reconcile": {"clusters": "all"},
    "scope": SCOPES[1],
    "pass_id": "timer-nodepool-sync-20261208T020000Z",
}
STATUS = {**json.loads((EVENTS / "apig.json").read_text()), "httpMethod": "GET", "body": None}
KINDS: dict[str, tuple[Any, tuple[str, ...]]] = {  # the event, and what validate may call it
    "single sync": (json.loads((EVENTS / "direct.json").read_text()), ("single sync",)),
    "status": (STATUS, ("status question",)),
    "fleet": (DOCUMENTS["fleet of targets"], ("fleet",)),
    "timer tick": (json.loads((EVENTS / "timer-defaults.json").read_text()), ("reconcile pass", "fan-out pass")),
    "reconcile pass": (DOCUMENTS["reconcile pass"], ("reconcile pass", "fan-out pass")),
    "worker": (WORKER, ("worker pass",)),
    "change": (DOCUMENTS["cts change"], ("change event",)),
}


@pytest.mark.parametrize("settings", list(KIND_SETTINGS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_gets_a_verdict_that_agrees_with_the_handler(
    kind: str, settings: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, names = KINDS[kind]
    _agree(event, tmp_path, KIND_SETTINGS[settings], monkeypatch, from_shell=False)
    validated = run_cli("validate", str(tmp_path / "event.json"), "--env-file", str(tmp_path / "env"))
    kinds = re.findall(r": valid \(([^)]*)\)", validated.stdout)
    assert all(any(name in found for name in names) for found in kinds), validated.stdout


def test_a_pass_under_sync_scopes_is_described_as_a_fan_out(tmp_path: Path) -> None:
    path, env = tmp_path / "event.json", tmp_path / "env"
    path.write_text(json.dumps(DOCUMENTS["reconcile pass"]))
    env.write_text("".join(f"{name}={value}\n" for name, value in FANNED_OUT.items()))
    validated = run_cli("validate", str(path), "--env-file", str(env))
    assert validated.returncode == 0 and "fan-out pass: 2 worker(s)" in validated.stdout, validated
