"""The cold start never imports what a valid invocation does not need: jsonschema only explains invalid documents.

Each case runs in a fresh interpreter (this test process has long imported jsonschema), against the emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from local.emulator import Emulator
from tests.conftest import (
    ACCESS_KEY,
    CLUSTER,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    NODEPOOL,
    PROJECT,
    ROOT,
    SECRET_KEY,
    TOKEN,
    load_event,
)

VALIDATION_ONLY = ("jsonschema", "referencing", "rpds", "attrs", "jsonschema_specifications")
AGENCY_TOKEN = "MIIagency-token-for-the-import-test"
MODES = {
    "token": {"HUAWEICLOUD_AUTH_TOKEN": TOKEN},
    "password": {
        "HUAWEICLOUD_IAM_USERNAME": IAM_USER,
        "HUAWEICLOUD_IAM_PASSWORD": IAM_PASSWORD,
        "HUAWEICLOUD_IAM_DOMAIN_NAME": IAM_DOMAIN,
    },
    "aksk": {"HUAWEICLOUD_SDK_AK": ACCESS_KEY, "HUAWEICLOUD_SDK_SK": SECRET_KEY},
    "agency": {"HUAWEICLOUD_AUTH_MODE": "agency"},
}
VALID_EVENTS = {
    "timer": load_event("timer.json"),
    "eventgrid": load_event("eventgrid.json"),
    "eventgrid batch": {"events": [load_event("eventgrid.json")]},
    "apig": load_event("apig.json"),
    "apig status": {**load_event("apig.json"), "httpMethod": "GET", "body": None},
    "direct": load_event("direct.json"),
    "fleet": {"cluster_id": CLUSTER, "spec": {"maxUnavailable": 1}, "targets": [{"nodepool_id": "np-a"}]},
    "reconcile": {"reconcile": {"clusters": [CLUSTER], "max_syncing_per_cluster": 5}, "spec": {"maxUnavailable": 1}},
}


def _run(
    emulator: Emulator,
    mode: str,
    events: dict[str, Any],
    watched: tuple[str, ...] = VALIDATION_ONLY,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "CCE_ENDPOINT": emulator.url,
        "IAM_ENDPOINT": emulator.url,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "CCE_CLUSTER_ID": CLUSTER,
        "CCE_NODEPOOL_ID": NODEPOOL,
        "EVENT_DEDUP_WINDOW_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        **MODES[mode],
        **(extra or {}),
    }
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})

        class Context:
            def getToken(self):
                return {AGENCY_TOKEN!r}

        import index
        index.initializer(Context())
        statuses = {{}}
        for name, event in json.loads(sys.stdin.read()).items():
            answer = index.handler(event, Context())
            statuses[name] = answer.get("statusCode", answer.get("status"))
        loaded = [m for m in {list(watched)!r} if m in sys.modules]
        print(json.dumps({{"statuses": statuses, "loaded": loaded}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        input=json.dumps(events),
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ran: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return ran


@pytest.fixture
def cloud(emulator: Emulator) -> Emulator:
    emulator.add_keys(ACCESS_KEY, SECRET_KEY)
    emulator.add_token(AGENCY_TOKEN)
    emulator.add_pool(PROJECT, CLUSTER, NODEPOOL, "workers", nodes=2, synced=0)
    return emulator


@pytest.mark.parametrize("mode", MODES)
def test_a_valid_invocation_never_imports_jsonschema(cloud: Emulator, mode: str) -> None:
    ran = _run(cloud, mode, VALID_EVENTS)
    assert ran["loaded"] == [], ran
    assert set(ran["statuses"].values()) <= {200, "accepted", "all_accepted", "reconciled", "batch"}, ran


# The machinery of fleets, passes and change events: their kinds' modules are light, these are not.
PASSES_ONLY = (
    *("handler.plans", "handler.reconcile", "handler.decide", "handler.reports", "handler.changes"),
    *("handler.kinds.fleet", "handler.kinds.passes", "handler.kinds.worker", "handler.kinds.change"),
    "handler.kinds.fanout",
)


def test_a_single_sync_imports_nothing_of_fleets_passes_or_change_events(cloud: Emulator) -> None:
    single = {name: event for name, event in VALID_EVENTS.items() if name not in ("fleet", "reconcile")}
    ran = _run(cloud, "token", single, PASSES_ONLY)
    assert ran["loaded"] == [], ran


def test_a_single_sync_with_cloud_eye_configured_imports_nothing_of_passes(cloud: Emulator) -> None:
    single = {name: event for name, event in VALID_EVENTS.items() if name not in ("fleet", "reconcile")}
    ran = _run(cloud, "token", single, PASSES_ONLY, extra={"CES_NAMESPACE": "NODEPOOL.SYNC"})
    assert ran["loaded"] == [], ran


def test_an_invalid_document_imports_jsonschema_to_explain_itself(cloud: Emulator) -> None:
    ran = _run(cloud, "token", {"invalid": {"spec": {"maxUnavailable": 0}}})
    assert ran["statuses"] == {"invalid": "rejected"} and "jsonschema" in ran["loaded"]


def test_settings_with_a_configured_pass_are_checked_without_jsonschema(cloud: Emulator) -> None:
    configured = {"SYNC_RECONCILE": '{"max_syncing_per_cluster": 2}', "CCE_SYNC_SPEC": '{"maxUnavailable": 1}'}
    ran = _run(cloud, "token", {"direct": load_event("direct.json")}, extra=configured)
    assert ran["loaded"] == [] and ran["statuses"] == {"direct": "accepted"}, ran
