"""Hostile input: thousands of generated events thrown at `handler` (Hypothesis, seeded).

Properties: no exception escapes but the documented transient ones; every API Gateway answer is well formed,
errors with a 4xx/5xx code and a JSON error body; every answer stays small whatever came in (MAX_ANSWER_BYTES);
nothing reaches the emulator unless the document was valid; no planted secret shows up in answers or logs (the
autouse leak guard). `make test` runs 500 seeded examples; `make fuzz` (FUZZ_EXAMPLES=50000) a long run.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from handler.errors import SyncError
from handler.function import Instance
from local.emulator import Emulator
from tests.conftest import NODE_PASSWORD, load_event

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
MAX_ANSWER_BYTES = 64 * 1024  # 20 field errors, or a dry run of the largest valid document, fit in far less
CCE_BODY = Draft202012Validator(
    json.loads((Path(__file__).resolve().parent.parent / "schemas" / "cce-upgrade-request.schema.json").read_text())
)
BASES = [
    load_event(name)
    for name in (
        "timer.json",
        "timer-defaults.json",
        "eventgrid.json",
        "eventgrid-data-string.json",
        "eventgrid-batch.json",
        "apig.json",
        "apig-plain-body.json",
        "direct.json",
    )
]
TEMPLATE_DOC = {
    "spec": {
        "maxUnavailable": 1,
        "nodeTemplate": {
            "lifecycle": {"preInstall": "ZWNobyAx"},
            "login": {"userPassword": {"username": "root", "password": NODE_PASSWORD}},
        },
    }
}
BASES.append(TEMPLATE_DOC)

NASTY_TEXT = st.sampled_from(
    ["", " ", "\x00", "\n", "../..", "%2e%2e%2f", "a/b", "é", "\u202e", "\ud800", "DefaultPool\n", "x" * 70,
     "NaN", "null", "{}", "[]", "\t", "?a=b", "#frag", "ZWNobyAx\n", "=="]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 0, 1, 20, 21, 1.5, math.nan, math.inf, -math.inf]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    NASTY_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _deep(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": [value]}
    return value


# What an attacker puts where free-form data goes: deep nesting, non-finite numbers, lone surrogates (as keys
# and values), arrays of thousands of invalid items, megabytes of text.
HOSTILE = st.sampled_from(
    [
        lambda: _deep(20),
        lambda: _deep(200),
        lambda: {"\ud800": 1},
        lambda: {"a": "\udfff"},
        lambda: math.inf,
        lambda: -math.inf,
        lambda: math.nan,
        lambda: [""] * 5000,
        lambda: [{"nodepool_id": "../x"} for _ in range(60)],
        lambda: "x" * 700_000,
        lambda: {f"k{i}": i for i in range(100)},
    ]
).map(lambda make: make())  # made afresh: later mutations must not change what an earlier example drew


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A valid event of some trigger kind with a few mutations (or, sometimes, random JSON)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    event = copy.deepcopy(draw(st.sampled_from(BASES)))
    # Decode APIG bodies and timer/EventGrid JSON strings so the mutations reach the document inside.
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(event) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(event, path), path[-1]
        operation = draw(
            st.sampled_from(["drop", "retype", "nasty", "oversize", "duplicate", "apig", "number", "hostile"])
        )
        if operation == "drop" and isinstance(parent, dict):
            del parent[key]
        elif operation == "retype":
            parent[key] = draw(JSON_VALUES)
        elif operation == "nasty":
            parent[key] = draw(NASTY_TEXT)
        elif operation == "oversize":
            parent[key] = draw(st.sampled_from(["A" * 300_000, ["n"] * 3000, "QUFB" * 2600]))
        elif operation == "hostile":
            parent[key] = draw(HOSTILE)
        elif operation == "number":
            parent[key] = draw(st.sampled_from([10**400, math.nan, math.inf, -1, 0, 2**63]))
        elif operation == "duplicate" and isinstance(parent, dict):
            parent[f"{key}"[:1].upper() + f"{key}"[1:]] = parent[key]
        elif operation == "apig" and "httpMethod" in event:
            event["body"] = draw(
                st.sampled_from(
                    [
                        "%%%",
                        base64.b64encode(b"\xff\xfe\xfd").decode(),
                        base64.b64encode(b'{"spec": {"maxUnavailable": 1}, "spec": 2}').decode(),
                        base64.b64encode(b'{"spec": {"maxUnavailable": NaN}}').decode(),
                        base64.b64encode(b'{"spec": {"maxUnavailable": 1e999}}').decode(),
                        base64.b64encode(json.dumps(draw(JSON_VALUES)).encode()).decode(),
                    ]
                )
            )
            event["headers"] = draw(
                st.sampled_from(
                    [event.get("headers"), {"content-type": "text/x\u0000"}, {"Content-Type": "\u00e9"}, None]
                )
            )
            event["httpMethod"] = draw(st.sampled_from(["POST", "GET", "post", "", None]))
    return event


def _check_apig_answer(answer: Any) -> None:
    assert isinstance(answer, dict) and set(answer) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert isinstance(answer["statusCode"], int) and answer["isBase64Encoded"] is False
    assert answer["headers"]["Content-Type"] == "application/json"
    body = json.loads(answer["body"])
    if answer["statusCode"] >= 400:
        assert answer["statusCode"] < 600 and isinstance(body["error_code"], str) and body["error_msg"]
    else:
        assert answer["statusCode"] == 200 and body["status"] in ("accepted", "dry_run", "in_sync", "idle", "syncing")


def _check_sent(emulator: Emulator, seen: int) -> None:
    for request in emulator.requests[seen:]:
        if request.path.endswith("/operation/upgrade"):
            body = request.json
            assert list(CCE_BODY.iter_errors(body)) == [], body
            assert request.path.split("/")[-3] == body["spec"]["nodePoolID"]


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(event=mutated_events())
def test_handler_survives_hostile_events(
    event: Any, emulator: Emulator, env: Any, instance: Instance, answers: list[Any]
) -> None:
    if not answers:  # Hypothesis shares the fixtures among all examples: set up once
        env(NODE_LOGIN_PASSWORD=NODE_PASSWORD, EVENT_DEDUP_WINDOW_SECONDS="0")
    seen = len(emulator.requests)
    try:
        answer = instance.handle(event, None)
    except SyncError as error:
        assert error.transient, error
        answers.append(str(error))
        return
    answers.append(answer)
    assert len(json.dumps(answer, ensure_ascii=False).encode("utf-8")) < MAX_ANSWER_BYTES
    if isinstance(event, dict) and "httpMethod" in event:
        _check_apig_answer(answer)
    else:
        assert isinstance(answer, dict) and answer["status"] in ("accepted", "dry_run", "in_sync", "rejected", "batch")
    _check_sent(emulator, seen)
    if len(emulator.requests) > 2000:
        emulator.clear()
