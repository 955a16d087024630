"""Hostile input: the work, the answer and the memory stay bounded, and nothing unencodable gets through."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from handler.errors import MAX_ERRORS_SHOWN, SyncError
from handler.function import Instance
from local.emulator import Emulator
from tests.conftest import (
    CLUSTER,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    PROJECT,
    TOKEN,
    FakeContext,
    apig_event,
    load_event,
    status_body,
)

Invoke = Callable[..., Any]
SYNC = "/operation/upgrade"
PASSWORD_VARS = {
    "HUAWEICLOUD_IAM_USERNAME": IAM_USER,
    "HUAWEICLOUD_IAM_PASSWORD": IAM_PASSWORD,
    "HUAWEICLOUD_IAM_DOMAIN_NAME": IAM_DOMAIN,
}
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


# --- slow and flaky clouds -----------------------------------------------------------------------------------


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except SyncError as error:
        return error, time.monotonic() - started


MARGIN_SECONDS = 1.0  # answering after the deadline: one last socket read at most, and the answer itself


def test_cce_acting_only_after_the_read_timeout_gets_one_sync_not_two(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(HTTP_READ_TIMEOUT_SECONDS="0.4")
    emulator.job_seconds = 60.0
    emulator.inject(path_contains=SYNC, method="POST", delay=1.0)  # CCE takes the sync at 1 s, after the timeout
    with pytest.raises(SyncError) as caught:
        invoke(load_event("timer.json"))
    assert caught.value.code == "FUNC.AMBIGUOUS" and caught.value.transient
    time.sleep(1.0)  # let CCE act on the first POST
    assert len(emulator.syncs()) == 1 and len(emulator.jobs) == 1


def test_an_answer_that_drips_in_does_not_outlast_the_remaining_time(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains=SYNC, method="POST", drip=0.4)  # a ~50-byte body: 20 s
    answer, elapsed = _timed(lambda: invoke(apig_event(), FakeContext(remaining_ms=3000)))
    assert elapsed < 3.0 + MARGIN_SECONDS
    status, body = status_body(answer)
    assert status == 502 and body["error_code"] == "FUNC.AMBIGUOUS"
    assert len(emulator.syncs()) == 1


def test_an_iam_answer_that_drips_in_ends_in_a_timeout_not_a_crash(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None, **PASSWORD_VARS)
    emulator.inject(path_contains="/v3/auth/tokens", drip=0.4)
    error, elapsed = _timed(lambda: invoke(load_event("timer.json"), FakeContext(remaining_ms=2000)))
    assert isinstance(error, SyncError) and error.transient and error.code == "FUNC.TIMEOUT"
    assert elapsed < 2.0 + MARGIN_SECONDS and emulator.syncs() == []


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(call())
        except SyncError as error:
            box.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_waiting_for_another_invocations_token_ends_at_the_waiters_deadline(
    invoke: Invoke, emulator: Emulator, env: Any, answers: list[Any], instance: Instance
) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None, **PASSWORD_VARS)
    emulator.inject(path_contains="/v3/auth/tokens", delay=2.0)
    first, first_box = _in_thread(lambda: instance.handle(load_event("timer.json"), FakeContext(remaining_ms=10000)))
    time.sleep(0.3)  # the first invocation is now fetching the token
    error, elapsed = _timed(lambda: invoke(load_event("timer.json"), FakeContext(remaining_ms=800)))
    first.join()
    answers.extend(first_box)
    assert isinstance(error, SyncError) and error.code == "FUNC.TIMEOUT" and elapsed < 0.8 + MARGIN_SECONDS
    assert first_box[0]["status"] == "accepted" and len(emulator.iam_requests()) == 1


def test_a_duplicate_delivery_waits_for_the_first_no_longer_than_its_own_deadline(
    invoke: Invoke, emulator: Emulator, answers: list[Any], instance: Instance
) -> None:
    emulator.inject(path_contains=SYNC, method="POST", delay=1.5)
    event = load_event("eventgrid.json")
    first, first_box = _in_thread(lambda: instance.handle(event, FakeContext(remaining_ms=10000)))
    time.sleep(0.3)
    error, elapsed = _timed(lambda: invoke(event, FakeContext(remaining_ms=600)))
    first.join()
    answers.extend(first_box)
    assert isinstance(error, SyncError) and error.transient and elapsed < 0.6 + MARGIN_SECONDS
    assert first_box[0]["status"] == "accepted" and len(emulator.syncs()) == 1


def test_an_event_with_the_same_id_from_another_source_is_not_a_duplicate(invoke: Invoke, emulator: Emulator) -> None:
    event = load_event("eventgrid.json")
    assert invoke(event)["status"] == "accepted"
    assert invoke(event)["status"] == "accepted"  # the redelivery: the earlier result
    assert invoke({**event, "source": "another-source"})["status"] == "accepted"
    assert len(emulator.syncs()) == 2


# --- crashes that must be answers ------------------------------------------------------------------------------


def test_a_retry_after_that_is_not_ascii_digits_falls_back_to_backoff(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains=SYNC, method="POST", status=429, headers={"Retry-After": "\u00b2"})
    assert invoke(load_event("timer.json"))["status"] == "accepted"
    assert len(emulator.syncs()) == 2


class _Misbehaving:
    """A context whose every attribute lookup raises, or whose clock claims more time than exists."""

    def __init__(self, remaining: Any = None, explode: bool = False) -> None:
        self._remaining, self._explode = remaining, explode

    def __getattr__(self, name: str) -> Any:
        if self._explode:
            raise RuntimeError("the context broke")
        if name == "getRemainingTimeInMilliSeconds":
            return lambda: self._remaining
        raise AttributeError(name)


@pytest.mark.parametrize(
    "context",
    [_Misbehaving(remaining=10**400), _Misbehaving(remaining=-(10**400)), _Misbehaving(explode=True)],
    ids=["10**400 ms left", "-10**400 ms left", "every lookup raises"],
)
def test_a_misbehaving_context_reads_as_no_value(invoke: Invoke, emulator: Emulator, context: Any) -> None:
    assert invoke(load_event("timer.json"), context)["status"] == "accepted"
    assert len(emulator.syncs()) == 1


def test_a_context_claiming_more_time_than_functiongraph_gives_is_capped() -> None:
    from handler.runtime import MAX_REMAINING_MS, RuntimeContext

    assert RuntimeContext(_Misbehaving(remaining=1e300)).remaining_ms() == MAX_REMAINING_MS
    assert RuntimeContext(_Misbehaving(remaining=-5)).remaining_ms() == 0.0


def test_an_agency_token_that_cannot_travel_in_a_header_reads_as_none(invoke: Invoke, env: Any) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None, HUAWEICLOUD_AUTH_MODE="agency")
    answer = invoke(load_event("timer.json"), FakeContext(token="MIItoken-\u00e9\u4e2d"))
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.CONFIG"
    assert "agency" in answer["error_msg"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUAWEICLOUD_AUTH_TOKEN", TOKEN + "\n"),
        ("HUAWEICLOUD_AUTH_TOKEN", "MIItoken with spaces"),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "token\r\nX-Injected: 1"),
        ("HUAWEICLOUD_SDK_AK", "AK\u00e9"),
    ],
    ids=["trailing newline", "spaces", "header injection", "non-ASCII access key"],
)
def test_a_malformed_credential_variable_is_a_configuration_error_naming_it(
    invoke: Invoke, env: Any, name: str, value: str
) -> None:
    env(**{name: value, **({"HUAWEICLOUD_SDK_SK": "sk"} if name != "HUAWEICLOUD_AUTH_TOKEN" else {})})
    answer = invoke(load_event("timer.json"))
    assert answer["status"] == "rejected" and answer["error_code"] == "FUNC.CONFIG" and name in answer["error_msg"]


# --- secrets on every path -------------------------------------------------------------------------------------


def test_a_transient_error_is_raised_with_the_token_scrubbed(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains=SYNC, method="POST", status=503, times=9, echo_token=True)
    with pytest.raises(SyncError) as caught:
        invoke(load_event("timer.json"))
    assert caught.value.transient and "token *** was not accepted" in caught.value.message
    assert TOKEN not in str(caught.value) and TOKEN not in caught.value.message


def test_an_iam_issued_token_longer_than_the_kept_message_is_scrubbed_before_the_cut(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None, **PASSWORD_VARS)
    emulator.inject(path_contains=SYNC, method="POST", status=403, echo_token=True)
    answer = invoke(load_event("timer.json"))
    [issued] = [t for t in emulator.tokens if t.startswith("MIIemu")]
    assert len(issued) > 500 and answer["error_msg"] == "token *** was not accepted"
    assert issued[:40] not in json.dumps(answer)


def test_a_fleet_by_name_with_agency_credentials_keeps_the_agency_token_out(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None)
    agency_token = "MIIagency-token-for-a-fleet-" + "y" * 600
    emulator.add_token(agency_token)
    emulator.inject(path_contains="/nodepools", method="GET", status=403, echo_token=True)
    answer = invoke({"spec": {"maxUnavailable": 1}, "nodepools": {"names": ["web"]}}, FakeContext(token=agency_token))
    assert answer["status"] == "rejected" and "***" in answer["error_msg"]
    assert agency_token[:40] not in json.dumps(answer)


# --- trust boundaries ------------------------------------------------------------------------------------------


def test_a_fleet_sent_to_a_single_pools_path_is_a_400(invoke: Invoke, emulator: Emulator) -> None:
    status, body = status_body(invoke(apig_event({"spec": {"maxUnavailable": 1}, "targets": [{"nodepool_id": "a"}]})))
    assert status == 400 and "names one node pool" in body["error_msg"] and emulator.requests == []


def test_a_fleet_target_in_another_cluster_than_the_path_is_a_400(invoke: Invoke, emulator: Emulator) -> None:
    targets = [{"nodepool_id": "np-a"}, {"cluster_id": "other-cluster", "nodepool_id": "np-b"}]
    event = apig_event({"spec": {"maxUnavailable": 1}, "targets": targets}, {"cluster_id": CLUSTER})
    status, body = status_body(invoke(event))
    assert status == 400 and body["errors"][0]["path"] == "/targets/1/cluster_id" and emulator.requests == []


def test_fleet_targets_take_the_paths_cluster(invoke: Invoke, emulator: Emulator) -> None:
    document = {"spec": {"maxUnavailable": 1}, "cluster_id": "body-cluster", "targets": [{"nodepool_id": "np-a"}]}
    status, _ = status_body(invoke(apig_event(document, {"cluster_id": CLUSTER})))
    assert status == 200 and f"/clusters/{CLUSTER}/nodepools/np-a/" in emulator.syncs()[0].path


@pytest.mark.parametrize(
    ("allowed", "project", "allowed_through"),
    [
        (f"{CLUSTER}/*", "another-project", False),
        (f"{CLUSTER}/*", PROJECT, True),
        (f"another-project/{CLUSTER}/*", "another-project", True),
        (f"another-project/{CLUSTER}/*", PROJECT, False),
        (f"*/{CLUSTER}/*", "another-project", True),
    ],
)
def test_the_allowlist_pins_projects_before_any_credential_work(
    invoke: Invoke, emulator: Emulator, env: Any, allowed: str, project: str, allowed_through: bool
) -> None:
    env(HUAWEICLOUD_AUTH_TOKEN=None, SYNC_ALLOWED_TARGETS=allowed, **PASSWORD_VARS)
    answer = invoke({"project_id": project, "spec": {"maxUnavailable": 1}})
    if allowed_through:
        assert answer["status"] == "accepted" and len(emulator.iam_requests()) == 1
    else:
        assert answer["http_status"] == 403 and emulator.requests == []


def test_a_name_selection_outside_the_allowlist_is_refused_before_listing(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(SYNC_ALLOWED_TARGETS="other-cluster/*")
    answer = invoke({"spec": {"maxUnavailable": 1}, "nodepools": {"all": True}})
    assert answer["http_status"] == 403 and emulator.requests == []


def test_the_token_cache_keeps_a_bounded_number_of_tokens() -> None:
    from handler.credentials import TokenCache
    from handler.environment import Secret
    from handler.runtime import Deadline

    cache, fetched = TokenCache(), []

    def get(project: int) -> str:
        def fetch() -> tuple[Secret, float]:
            fetched.append(project)
            return Secret(f"token-{project}"), time.time() + 3600

        return cache.get(("https://iam", "user", "domain", f"project-{project}"), 0.0, fetch, Deadline(None)).reveal()

    for project in range(3 * TokenCache.MAX_TOKENS):
        get(project)
    fetched.clear()
    newest = range(2 * TokenCache.MAX_TOKENS, 3 * TokenCache.MAX_TOKENS)
    assert [get(p) for p in newest] == [f"token-{p}" for p in newest] and fetched == []  # kept: no fetch
    get(0)
    assert fetched == [0]  # the oldest went first


def test_a_direct_event_with_megabytes_of_metadata_is_refused_before_a_dry_run_echoes_it(invoke: Invoke) -> None:
    answer = invoke({"dry_run": True, "spec": {"maxUnavailable": 1}, "metadata": {"note": "x" * 3_000_000}})
    assert answer["status"] == "rejected" and "characters of text" in answer["error_msg"]
    assert len(json.dumps(answer)) < MAX_ANSWER_BYTES


def test_an_eventgrid_batch_of_too_many_events_is_refused_whole(invoke: Invoke, emulator: Emulator) -> None:
    event = {"events": [load_event("eventgrid.json")] * 3000}
    answer = invoke(event)
    assert answer["status"] == "rejected" and "at most 10" in answer["error_msg"]
    assert len(json.dumps(answer)) < MAX_ANSWER_BYTES and emulator.requests == []


@pytest.mark.parametrize(
    "event",
    [
        {**load_event("eventgrid.json"), "id": "\ud800"},
        {**load_event("timer.json"), "trigger_name": "nightly-\udfff"},
        apig_event(requestContext={"requestId": "\ud800"}),
        {"events": [{**load_event("eventgrid.json"), "id": "\ud800"}]},
    ],
    ids=["eventgrid id", "timer name", "apig request id", "batch event id"],
)
def test_an_identifier_with_a_lone_surrogate_is_echoed_encodable(invoke: Invoke, logs: Any, event: Any) -> None:
    answer = invoke(event, FakeContext(request_id="fg-\ud800"))
    json.dumps(answer, ensure_ascii=False).encode("utf-8")
    assert logs.syncs() and all(line.encode("utf-8") for line in logs.lines)
