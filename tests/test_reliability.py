"""Reliability: the retry table, one test per fault, deadlines, duplicate deliveries, limits, concurrency."""

from __future__ import annotations

import base64
import email.utils
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from handler.errors import SyncError
from handler.function import Instance
from handler.retry import Kind, classify, parse_retry_after
from handler.transport import Failure, Reply, TransportError, failure_of
from local.emulator import Emulator
from tests.conftest import (
    CLUSTER,
    IAM_DOMAIN,
    IAM_PASSWORD,
    IAM_USER,
    NODEPOOL,
    PROJECT,
    FakeContext,
    LogCapture,
    load_event,
    status_body,
)

Invoke = Callable[..., Any]
SYNC = "/operation/upgrade"


def _refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


# How the transport names a request that raised: did it reach the server? Whether the request had begun to be
# written decides; a connect timeout never comes after.
TRANSPORT_TABLE = [
    (_refused(), False, Failure.NOT_SENT),
    (requests.ConnectTimeout(), False, Failure.NOT_SENT),
    (requests.exceptions.SSLError(), False, Failure.NOT_SENT),
    (requests.exceptions.InvalidHeader(), False, Failure.NOT_SENT),
    (requests.exceptions.SSLError(), True, Failure.NO_ANSWER),
    (requests.exceptions.InvalidHeader(), True, Failure.NO_ANSWER),
    (requests.ReadTimeout(), True, Failure.NO_ANSWER),
    (requests.ConnectionError(ProtocolError("Connection aborted", ConnectionResetError())), True, Failure.NO_ANSWER),
]


@pytest.mark.parametrize(
    ("exc", "written", "failure"),
    TRANSPORT_TABLE,
    ids=[f"{type(e).__name__}{' after writing' if w else ''}" for e, w, _ in TRANSPORT_TABLE],
)
def test_transport_failure_table(exc: requests.RequestException, written: bool, failure: Failure) -> None:
    assert failure_of(exc, written) is failure


RETRY_TABLE = [
    # (outcome, kind): not-acted retries with backoff; ambiguous reads the pool and is never resent; final reports.
    (TransportError(Failure.NOT_SENT, "ConnectTimeout"), Kind.NOT_ACTED),
    (TransportError(Failure.NO_ANSWER, "ReadTimeout"), Kind.AMBIGUOUS),
    (TransportError(Failure.TOO_LARGE, "an answer larger than 1048576 bytes"), Kind.AMBIGUOUS),
    (TransportError(Failure.REDIRECT, "HTTP 307"), Kind.FINAL),
    (Reply(429), Kind.NOT_ACTED),
    (Reply(503), Kind.NOT_ACTED),
    (Reply(500), Kind.AMBIGUOUS),
    (Reply(502), Kind.AMBIGUOUS),
    (Reply(504), Kind.AMBIGUOUS),
    (Reply(400), Kind.FINAL),
    (Reply(404), Kind.FINAL),
    (Reply(409), Kind.FINAL),
    (Reply(403), Kind.FINAL),
    (Reply(429, b'{"error_code": "FSS.0429", "error_msg": "Function Disabled"}'), Kind.FINAL),
    (Reply(429, b'{"error_code": "FSS.0429", "error_msg": "Too many requests"}'), Kind.NOT_ACTED),
    (Reply(404, b'{"error_code": "FSS.1051", "error_msg": "function not found"}'), Kind.FINAL),
]


def _row_id(outcome: Any) -> str:
    if isinstance(outcome, Reply):
        return f"HTTP {outcome.status}{' ' + outcome.content.decode()[15:62] if outcome.content else ''}"
    return outcome.failure.value


@pytest.mark.parametrize(("outcome", "kind"), RETRY_TABLE, ids=[_row_id(o) for o, _ in RETRY_TABLE])
def test_retry_table(outcome: Any, kind: Kind) -> None:
    assert classify(outcome, time.time()).kind is kind


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("soon", None),
        ("\u00b2", None),
        ("\u0663", None),
        ("-1", None),
        ("1.5", None),
        ("", None),
    ],
    ids=["digits", "zero", "a word", "superscript two", "arabic-indic three", "negative", "fraction", "empty"],
)
def test_retry_after_is_ascii_seconds_or_nothing(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, time.time()) == seconds


def test_retry_after_as_an_http_date() -> None:
    waited = parse_retry_after(email.utils.formatdate(time.time() + 4, usegmt=True), time.time())
    assert waited is not None and 2.5 <= waited <= 4.0


def _syncs_and_jobs(emulator: Emulator) -> tuple[int, int]:
    return len(emulator.syncs()), len(emulator.jobs)


# One row per fault: the fault, the expected outcome, POSTs CCE received, syncs CCE accepted (never 2).
FAULTS = [
    ("400", {"status": 400}, ("rejected", 400), 1, 0),
    ("403", {"status": 403}, ("rejected", 502), 1, 0),
    ("404", {"status": 404}, ("rejected", 404), 1, 0),
    ("409", {"status": 409}, ("rejected", 409), 1, 0),
    ("429 then success", {"status": 429}, ("accepted", 200), 2, 1),
    ("429 Retry-After then success", {"status": 429, "headers": {"Retry-After": "1"}}, ("accepted", 200), 2, 1),
    ("429 always", {"status": 429, "times": 9}, ("raised", 429), 3, 0),
    ("503 then success", {"status": 503}, ("accepted", 200), 2, 1),
    ("500, pool shows the sync accepted", {"status": 500, "process_first": True}, ("confirmed", 200), 1, 1),
    ("502, pool shows the sync accepted", {"status": 502, "process_first": True}, ("confirmed", 200), 1, 1),
    ("504, pool shows the sync accepted", {"status": 504, "process_first": True}, ("confirmed", 200), 1, 1),
    ("500, pool idle: ambiguous, not resent", {"status": 500}, ("raised", 502), 1, 0),
    ("502, pool idle: ambiguous, not resent", {"status": 502}, ("raised", 502), 1, 0),
    ("504, pool idle: ambiguous, not resent", {"status": 504}, ("raised", 502), 1, 0),
    ("read timeout, sync accepted", {"delay": 1.0, "status": 200, "process_first": True}, ("confirmed", 200), 1, 1),
    ("read timeout, not accepted", {"delay": 1.0, "status": 500}, ("raised", 502), 1, 0),
    ("reset after sending, accepted", {"drop": True, "process_first": True}, ("confirmed", 200), 1, 1),
    ("reset after sending, not accepted", {"drop": True}, ("raised", 502), 1, 0),
    ("non-JSON 200 body", {"malformed": True}, ("accepted", 200), 1, 0),
]


@pytest.mark.parametrize(
    ("fault", "expected", "posts", "accepted"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
def test_cce_faults(
    fault: dict[str, Any],
    expected: tuple[str, int],
    posts: int,
    accepted: int,
    invoke: Invoke,
    emulator: Emulator,
    env: Any,
    logs: LogCapture,
) -> None:
    env(HTTP_READ_TIMEOUT_SECONDS="0.4", RETRY_AFTER_CAP_SECONDS="0.1")
    emulator.job_seconds = 60.0  # an accepted sync keeps the pool synchronizing: a resend would stack
    emulator.inject(path_contains=SYNC, method="POST", **fault)
    outcome, status = expected
    if outcome == "raised":
        with pytest.raises(SyncError) as caught:
            invoke(load_event("timer.json"))
        assert caught.value.transient and caught.value.status == status
    else:
        answer = invoke(load_event("timer.json"))
        assert answer["status"] == ("accepted" if outcome == "confirmed" else outcome)
        assert answer.get("http_status", 200) == status
        assert (answer.get("detail") == "accepted (confirmed after an ambiguous failure)") is (outcome == "confirmed")
    assert _syncs_and_jobs(emulator) == (posts, accepted)
    retries = [r for r in logs.records() if r.get("message") == "retry"]
    assert len(retries) == max(0, posts - 1) and all(r["reason"] for r in retries)


def test_retry_after_is_honoured_up_to_the_cap(invoke: Invoke, emulator: Emulator, env: Any, logs: LogCapture) -> None:
    env(RETRY_AFTER_CAP_SECONDS="0.25")
    emulator.inject(path_contains=SYNC, status=429, headers={"Retry-After": "7"})
    emulator.inject(path_contains=SYNC, status=429, headers={"Retry-After": "0"})
    assert invoke(load_event("timer.json"))["status"] == "accepted"
    assert [r["wait_s"] for r in logs.records() if r.get("message") == "retry"] == [0.25, 0.0]


def test_the_ambiguity_check_failing_is_transient_without_resending(
    invoke: Invoke, emulator: Emulator, env: Any
) -> None:
    env(SYNC_SKIP_IF_BUSY="false")  # the GET fault is meant for the check after the POST
    emulator.inject(path_contains=SYNC, status=502)
    emulator.inject(path_contains=NODEPOOL, method="GET", status=500, times=9)
    with pytest.raises(SyncError) as caught:
        invoke(load_event("timer.json"))
    assert caught.value.code == "FUNC.AMBIGUOUS" and caught.value.transient
    assert len(emulator.syncs()) == 1


def test_no_retry_is_started_that_cannot_finish(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(RETRY_BASE_SECONDS="5", RETRY_CAP_SECONDS="5", RETRY_AFTER_CAP_SECONDS="5")
    emulator.inject(path_contains=SYNC, status=503, headers={"Retry-After": "4"}, times=9)
    status, _ = status_body(invoke(load_event("apig.json"), FakeContext(remaining_ms=2500)))
    assert status == 502 and len(emulator.syncs()) == 1


def test_requests_fit_in_the_remaining_time(invoke: Invoke, emulator: Emulator) -> None:
    """With 1.5 s left (0.5 s reserved) a CCE that answers 200 after 5 s is cut off: had the 30 s read timeout
    applied, the late 200 would read as accepted; cut off, the node pool check has no time left either."""
    emulator.inject(path_contains=SYNC, delay=5.0, status=200)
    status, body = status_body(invoke(load_event("apig.json"), FakeContext(remaining_ms=1500)))
    assert (status, body["error_code"]) == (502, "FUNC.AMBIGUOUS")
    assert len(emulator.syncs()) == 1


def test_the_attempt_limit_applies(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(RETRY_MAX_ATTEMPTS="2")
    emulator.inject(path_contains=SYNC, status=503, times=9)
    with pytest.raises(SyncError):
        invoke(load_event("timer.json"))
    assert len(emulator.syncs()) == 2


def test_a_redelivered_eventgrid_event_gets_the_earlier_result(invoke: Invoke, emulator: Emulator) -> None:
    event = load_event("eventgrid.json")
    first, second = invoke(event), invoke(event)
    assert first == second and first["status"] == "accepted"
    assert len(emulator.syncs()) == 1


def test_the_duplicate_window_can_be_turned_off(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(EVENT_DEDUP_WINDOW_SECONDS="0")
    event = load_event("eventgrid.json")
    invoke(event), invoke(event)
    assert len(emulator.syncs()) == 2


def test_a_transient_failure_is_not_remembered(invoke: Invoke, emulator: Emulator) -> None:
    emulator.inject(path_contains=SYNC, status=503, times=3)
    event = load_event("eventgrid.json")
    with pytest.raises(SyncError):
        invoke(event)
    assert invoke(event)["status"] == "accepted"


def test_an_oversized_body_gets_413_before_parsing(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(APIG_MAX_BODY_BYTES="1024")
    event = load_event("apig.json")
    event["body"] = base64.b64encode(b"{" + b" " * 2000 + b"}").decode()
    assert status_body(invoke(event))[0] == 413
    event["body"], event["isBase64Encoded"] = "[" * 5000, False
    assert status_body(invoke(event))[0] == 413
    assert emulator.requests == []


@pytest.mark.parametrize("field", ["nodeIDs", "skippedNodes"])
def test_array_sizes_are_bounded_by_the_schema(field: str, invoke: Invoke, emulator: Emulator) -> None:
    answer = invoke({"spec": {"maxUnavailable": 1, field: ["n"] * 2001}})
    assert answer["status"] == "rejected" and answer["errors"][0]["path"] == f"/spec/{field}"


def test_deep_nesting_is_an_input_error(invoke: Invoke, emulator: Emulator) -> None:
    event = load_event("apig.json")
    event["body"], event["isBase64Encoded"] = '{"metadata":' * 15_000 + "1" + "}" * 15_000, False
    event["headers"]["content-type"] = "application/json"
    status, body = status_body(invoke(event))
    assert (status, body["error_code"]) == (400, "FUNC.EVENT") and emulator.requests == []


def test_concurrent_invocations_in_one_process(
    emulator: Emulator, env: Any, instance: Instance, answers: list[Any]
) -> None:
    """8 threads x 50 invocations: all answered for their own target and correlation id, one IAM request."""
    env(
        HUAWEICLOUD_AUTH_TOKEN=None,
        HUAWEICLOUD_IAM_USERNAME=IAM_USER,
        HUAWEICLOUD_IAM_PASSWORD=IAM_PASSWORD,
        HUAWEICLOUD_IAM_DOMAIN_NAME=IAM_DOMAIN,
        EVENT_DEDUP_WINDOW_SECONDS="0",
    )
    base = load_event("apig.json")
    problems: list[str] = []

    def worker(thread: int) -> None:
        for i in range(50):
            pool = f"np-{thread}-{i}"
            event = {
                **base,
                "pathParameters": {"cluster_id": CLUSTER, "nodepool_id": pool},
                "requestContext": {**base["requestContext"], "requestId": f"corr-{thread}-{i}"},
            }
            answer = instance.handle(event, FakeContext(request_id=f"fg-{thread}-{i}"))
            body = json.loads(answer["body"])
            if answer["statusCode"] != 200 or body["nodepool_id"] != pool:
                problems.append(f"{thread}/{i}: {answer['statusCode']} {body}")
            if answer["headers"]["X-Correlation-Id"] != f"corr-{thread}-{i}":
                problems.append(f"{thread}/{i}: correlation {answer['headers']['X-Correlation-Id']}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert len(emulator.syncs()) == 400 and len(emulator.iam_requests()) == 1
    sent_pools = {s.json["spec"]["nodePoolID"] for s in emulator.syncs()}
    assert len(sent_pools) == 400


def test_remembered_results_expire_after_the_window() -> None:
    from handler.recent import RecentEvents
    from handler.runtime import Deadline

    now, no_deadline = [0.0], Deadline(None)
    recent: RecentEvents[str] = RecentEvents(10.0, clock=lambda: now[0])
    runs: list[str] = []

    def run(name: str) -> Callable[[], str]:
        return lambda: runs.append(name) or name

    assert recent.once(("src", "a"), run("a1"), no_deadline) == "a1"
    now[0] = 5.0
    assert recent.once(("src", "b"), run("b1"), no_deadline) == "b1"
    assert recent.once(("src", "a"), run("a2"), no_deadline) == "a1"  # within the window: the earlier result
    now[0] = 12.0
    assert recent.once(("src", "a"), run("a3"), no_deadline) == "a3"  # a expired, b (stored at 5) not yet
    assert recent.once(("src", "b"), run("b2"), no_deadline) == "b1"
    assert runs == ["a1", "b1", "a3"]


def test_a_lasting_throttle_stops_the_pass_from_starting_more(invoke: Invoke, emulator: Emulator, env: Any) -> None:
    env(CCE_SYNC_SPEC='{"maxUnavailable": 1}', RETRY_AFTER_CAP_SECONDS="30")
    for cluster in ("c-1", "c-2", "c-3"):
        emulator.add_pool(PROJECT, cluster, f"np-{cluster}", "web", nodes=2, synced=0)
    throttled = {"errorCode": "CCE.02429001", "errorMessage": "too many requests"}
    emulator.inject(path_endswith="/operation/upgrade", status=429, body=throttled, headers={"Retry-After": "600"})
    document = {"reconcile": {"clusters": ["c-1", "c-2", "c-3"], "concurrency": 1}}
    answer = invoke(document, FakeContext(remaining_ms=5000))
    reasons = [p["reason"] for c in answer["clusters"] for p in c["pools"]]
    assert len(emulator.syncs()) == 1 and all(r.startswith("throttled: CCE answered CCE.02429001") for r in reasons)


def test_a_retry_wait_gives_up_its_slot_in_the_pass() -> None:
    from handler.pacing import Pacer, wait

    pacer, order = Pacer(1), []

    def first(_: int) -> None:
        order.append("first waits")
        wait(time.sleep, 0.3)  # another call may take the only slot meanwhile
        order.append("first again")

    def second(_: int) -> None:
        time.sleep(0.05)
        order.append("second")

    threads = [threading.Thread(target=lambda f=f: pacer.map(f, [0])) for f in (first, second)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)  # the first takes the slot first
    for thread in threads:
        thread.join()
    assert order == ["first waits", "second", "first again"] and pacer.peak == 1
