"""Hostile input: the work, the answer and the memory stay bounded, and nothing unencodable gets through."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from handler.errors import MAX_ERRORS_SHOWN
from local.emulator import Emulator
from tests.conftest import CLUSTER, apig_event, load_event, status_body

Invoke = Callable[..., Any]
MAX_ANSWER_BYTES = 16 * 1024  # 20 field errors and their messages fit easily


def _fleet_of_bad_node_ids(items: int, targets: int = 50) -> dict[str, Any]:
    spec = {"maxUnavailable": 1, "nodeIDs": [""] * items}
    return {"spec": spec, "targets": [{"nodepool_id": f"np-{i}"} for i in range(targets)]}


def _measured(call: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        answer = call()
        return answer, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_fleet_of_thousands_of_invalid_items_answers_a_small_400(invoke: Invoke, emulator: Emulator) -> None:
    event = apig_event(_fleet_of_bad_node_ids(15_000), path_parameters={"cluster_id": CLUSTER})
    answer, peak = _measured(lambda: invoke(event))
    status, body = status_body(answer)
    assert status == 400 and len(answer["body"]) < MAX_ANSWER_BYTES
    assert len(body["errors"]) == MAX_ERRORS_SHOWN and body["errors_omitted"] > 0
    assert all(e["path"].startswith("/spec") for e in body["errors"])  # the shared spec, checked once
    assert peak < 32 * 1024 * 1024
    assert emulator.requests == []


def test_a_document_with_more_values_than_the_bound_is_refused_before_validation(invoke: Invoke) -> None:
    status, body = status_body(invoke(apig_event(_fleet_of_bad_node_ids(30_000), {"cluster_id": CLUSTER})))
    assert status == 400 and body["error_code"] == "FUNC.EVENT" and "more than 20000 values" in body["error_msg"]


def test_a_large_single_document_answers_a_small_400(invoke: Invoke, emulator: Emulator) -> None:
    document = {"spec": {"maxUnavailable": 1, "nodeIDs": [""] * 19_000}}
    answer = invoke(apig_event(document))
    status, body = status_body(answer)
    assert status == 400 and len(answer["body"]) < MAX_ANSWER_BYTES
    assert len(body["errors"]) == MAX_ERRORS_SHOWN and body["errors_omitted"] >= 900
    assert "at least 1000 errors" in body["error_msg"]


def test_a_handful_of_errors_are_all_shown(invoke: Invoke) -> None:
    _, body = status_body(invoke(apig_event({"spec": {"maxUnavailable": 1, "nodeIDs": ["", ""]}})))
    assert len(body["errors"]) == 2 and "errors_omitted" not in body and "(2 errors)" in body["error_msg"]


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


BODIES = {
    "a number too large for a float": b'{"spec": {"maxUnavailable": 1, "retryTimes": 1e400}}',
    "an escaped lone surrogate in a key": b'{"spec": {"maxUnavailable": 1}, "metadata": {"\\ud800": 1}}',
    "an escaped lone surrogate in a value": b'{"spec": {"maxUnavailable": 1}, "metadata": {"a": "\\udfff"}}',
    "600 levels inside metadata": b'{"dry_run": true, "spec": {"maxUnavailable": 1}, "metadata": {"a": '
    + b"[" * 600
    + b"]" * 600
    + b"}}",
}


@pytest.mark.parametrize("raw", BODIES.values(), ids=BODIES.keys())
def test_unacceptable_json_gets_a_400_that_can_be_encoded_and_logged(
    invoke: Invoke, emulator: Emulator, logs: Any, raw: bytes
) -> None:
    answer = invoke(apig_event(raw))
    status, body = status_body(answer)
    assert status == 400 and body["error_code"] == "FUNC.EVENT"
    json.dumps(answer, ensure_ascii=False).encode("utf-8")
    assert [line["http_status"] for line in logs.syncs()] == [400]
    assert emulator.requests == []


@pytest.mark.parametrize("raw", BODIES.values(), ids=BODIES.keys())
def test_unacceptable_json_from_eventgrid_is_answered_not_raised(invoke: Invoke, raw: bytes) -> None:
    event = {**load_event("eventgrid.json"), "data": raw.decode("ascii")}
    answer = invoke(event)
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.EVENT"


@pytest.mark.parametrize(
    "document",
    [
        {"spec": {"maxUnavailable": 1, "retryTimes": float("inf")}},
        {"spec": {"maxUnavailable": 1}, "metadata": {"\ud800": 1}},
        {"dry_run": True, "spec": {"maxUnavailable": 1}, "metadata": {"a": _deep(600)}},
    ],
    ids=["infinity", "surrogate", "deep"],
)
def test_an_already_parsed_document_meets_the_same_bounds(invoke: Invoke, emulator: Emulator, document: Any) -> None:
    answer = invoke(document)
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.EVENT"
    assert emulator.requests == []


def test_a_default_spec_with_a_non_finite_number_is_a_configuration_error(invoke: Invoke, env: Any) -> None:
    env(CCE_SYNC_SPEC='{"maxUnavailable": 1e400}')
    answer = invoke(load_event("timer-defaults.json"))
    assert answer["error_code"] == "FUNC.CONFIG" and "CCE_SYNC_SPEC" in answer["error_msg"]
