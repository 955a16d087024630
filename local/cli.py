"""`python -m local`: run, invoke, serve, status, generate-event, validate, package, deploy-config, openapi.

Dev tools, never deployed. Every command prints its answer on stdout, progress and the function's log lines on
stderr (labelled), an error as one line; exit 2 for a usage error, 1 for a failed invocation.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import template as templates
from .emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
DEMO_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEMO_DOMAIN, DEMO_USER, DEMO_PASSWORD = "demo-account", "nodepool-sync-bot", "Demo-IAM-Passw0rd!"
MASKED_HEADERS = {"x-auth-token", "authorization", "x-security-token"}
CREDENTIAL_VARIABLES = ("HUAWEICLOUD_AUTH_TOKEN", "HUAWEICLOUD_IAM_PASSWORD", "HUAWEICLOUD_SDK_AK")


class LocalContext:
    """A FunctionGraph-like context for local runs: a request id and the template's timeout as deadline."""

    def __init__(self, timeout_seconds: float) -> None:
        self._request_id = uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def getRequestID(self) -> str:  # noqa: N802 - the platform's method names
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class UsageError(Exception):
    """Something the user asked that cannot be done as asked: one line on stderr, exit code 2."""


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _print_json(label: str, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    print(f"{label}:\n" + "\n".join("    " + line for line in text.splitlines()))


def _read_input(name: str) -> str:
    """A file's text, or stdin's for "-"; a file that cannot be read is a usage error."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {name}: it is not UTF-8 text") from None


def _json_argument(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from None


def _logs_to_stderr() -> None:
    """The function's JSON log lines go to stderr, labelled, so stdout carries the answer alone."""
    from handler import logs

    for handler in logs.logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
            handler.setFormatter(logging.Formatter("log: %(message)s"))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped; quotes around a value are removed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(_read_input(str(path)).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _apply_environment(template: dict[str, Any], values: Mapping[str, str]) -> None:
    """Set the environment and start the function afresh on it (initializer included)."""
    for key, value in values.items():
        os.environ[key] = value
    _initialize(template)


def _short_path(path: str) -> str:
    """`/api/v3/projects/P/clusters/C/nodepools/N` as `.../nodepools/N`: the project and cluster are the demo's."""
    parts = path.split("/")
    if "/notifications/" in path:  # SMN: the topic URN is printed with the message
        return ".../topics/{topic}/publish"
    if "/fgs/" in path:  # FunctionGraph: the function's own URN
        return ".../functions/{urn}/invocations-async"
    if path.startswith("/api/v3/projects/"):
        return ".../" + "/".join(parts[7 if len(parts) > 7 and parts[5] == "clusters" else 5 :])
    return path


def _show_requests(emulator: Emulator, seen: int, verbose: bool = False) -> None:
    """One line per request the cloud received (`CCE GET .../nodepools/np-1 -> 200`), repeats counted; or
    every request in full, secrets masked."""
    lines: list[list[Any]] = []
    for recorded in emulator.requests[seen:]:
        service = "IAM" if recorded.is_iam else "SMN" if recorded.is_smn else "FGS" if recorded.is_fgs else "CCE"
        service += f" {recorded.region}" if recorded.region else ""
        if verbose:
            _print_json(f"{service} received", masked_request(recorded))
            continue
        query = f"?{recorded.query}" if recorded.query else ""
        line = f"{service} {recorded.method} {_short_path(recorded.path)}{query} -> {recorded.status or 'no answer'}"
        if lines and lines[-1][0] == line:
            lines[-1][1] += 1
        else:
            lines.append([line, 1])
    for line, times in lines:
        print(f"    {line}" + (f" (x{times})" if times > 1 else ""))


@contextmanager
def emulated_cloud(environment: dict[str, str]) -> Iterator[Emulator]:
    """Start the emulator, point the environment at it and teach it the environment's credentials."""
    _say("starting the local CCE + IAM emulator on loopback")
    emulator = Emulator().start()
    _say(f"emulator listening on {emulator.url}")
    environment.update(CCE_ENDPOINT=emulator.url, IAM_ENDPOINT=emulator.url, SMN_ENDPOINT=emulator.url)
    environment.setdefault("HUAWEICLOUD_SDK_PROJECT_ID", DEMO_PROJECT)
    if not any(environment.get(name) for name in CREDENTIAL_VARIABLES):
        environment.update(
            HUAWEICLOUD_IAM_USERNAME=DEMO_USER,
            HUAWEICLOUD_IAM_PASSWORD=DEMO_PASSWORD,
            HUAWEICLOUD_IAM_DOMAIN_NAME=DEMO_DOMAIN,
        )
    if environment.get("HUAWEICLOUD_IAM_PASSWORD"):
        emulator.add_user(
            environment.get("HUAWEICLOUD_IAM_DOMAIN_NAME", ""),
            environment.get("HUAWEICLOUD_IAM_USERNAME", ""),
            environment["HUAWEICLOUD_IAM_PASSWORD"],
        )
    if environment.get("HUAWEICLOUD_AUTH_TOKEN"):
        emulator.add_token(environment["HUAWEICLOUD_AUTH_TOKEN"])
    if environment.get("HUAWEICLOUD_SDK_AK"):
        emulator.add_keys(
            environment["HUAWEICLOUD_SDK_AK"],
            environment.get("HUAWEICLOUD_SDK_SK", ""),
            environment.get("HUAWEICLOUD_SDK_SECURITY_TOKEN") or None,
        )
    try:
        yield emulator
    finally:
        emulator.stop()
        _say("emulator stopped")


def masked_request(recorded: Any) -> dict[str, Any]:
    """A request the emulator received, as shown to a person: credentials and passwords masked."""
    from handler.passwords import mask_body

    headers = {k: ("***" if k in MASKED_HEADERS else v) for k, v in recorded.headers.items()}
    body = recorded.json
    if isinstance(body, dict) and "spec" in body:
        body = mask_body(body)
    elif isinstance(body, dict) and "auth" in body:
        body = json.loads(json.dumps(body))
        user = body["auth"].get("identity", {}).get("password", {}).get("user", {})
        if "password" in user:
            user["password"] = "***"
    target = recorded.path + (f"?{recorded.query}" if recorded.query else "")
    return {"method": recorded.method, "path": target, "headers": headers, "body": body}


def _succeeded(answer: Any) -> bool:
    if isinstance(answer, dict) and "statusCode" in answer:
        return 200 <= int(answer["statusCode"]) < 300
    if isinstance(answer, dict) and answer.get("status") == "batch":
        return all(_succeeded(r) for r in answer["results"])
    succeeded = ("accepted", "dry_run", "succeeded", "all_accepted", "in_sync", "reconciled", "ignored", "dispatched")
    return isinstance(answer, dict) and answer.get("status") in succeeded


def entry_points(template: dict[str, Any]) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The handler and initializer the template names (e.g. index.handler), imported as FunctionGraph would."""
    function = template["function"]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    def resolve(spec: str) -> Callable[..., Any]:
        module_name, _, attribute = spec.rpartition(".")
        handler: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
        return handler

    initializer = function.get("initializer")
    return resolve(function["handler"]), resolve(initializer) if initializer else None


def _invoke_handler(template: dict[str, Any], event: Any) -> tuple[Any, bool]:
    from handler.errors import SyncError

    handler, _ = entry_points(template)
    try:
        answer = handler(event, LocalContext(float(template["function"]["timeout"])))
    except SyncError as error:
        return {"raised": type(error).__name__, "transient": error.transient, "error_msg": error.message}, False
    return answer, _succeeded(answer)


def _initialize(template: dict[str, Any]) -> None:
    """Reset the function's process state to the current environment and run its initializer, as a new instance."""
    from handler import index

    index.reset()
    _, initializer = entry_points(template)
    if initializer is not None:
        initializer(LocalContext(float(template["function"].get("initializer_timeout", 30))))


def _base_environment(template: dict[str, Any]) -> dict[str, str]:
    return dict(template["function"].get("environment", {}))


def _one_line(value: Any, width: int = 150) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def _short_answer(answer: Any) -> list[str]:
    """The answer as a person wants it first: what happened, in a few lines."""
    if isinstance(answer, dict) and "statusCode" in answer:
        body = json.loads(answer["body"]) if isinstance(answer.get("body"), str) else answer.get("body")
        return [f"HTTP {answer['statusCode']} {_one_line(body, 140)}"]
    if isinstance(answer, dict) and answer.get("status") == "reconciled":
        totals = answer["totals"]
        lines = [
            f"reconciled: {totals['started']} started, {totals['deferred']} deferred, "
            f"{totals['backing_off']} backing off, {totals['failed']} failed"
        ]
        for cluster in answer["clusters"]:
            for pool in cluster.get("pools", []):
                action = pool.get("action", "")
                nodes = pool.get("nodes") or "-"
                lines.append(f"  {pool['name']:<10} {pool['class']:<8} {nodes:<5} {action}".rstrip())
        return lines
    if isinstance(answer, dict) and "results" in answer:
        lines = [f"{answer['status']}: {answer.get('accepted', '')}/{answer.get('total', '')}".rstrip(": /")]
        lines += [f"  {_one_line(result, 140)}" for result in answer["results"]]
        return lines
    return [_one_line(answer, 150)]


def _demo_cluster(emulator: Emulator, project: str, cluster: str, nodepool: str) -> None:
    """A cluster with node pools in every class: drifted, in sync, unknown (no counts), syncing."""
    emulator.add_pool(project, cluster, "np-web-0001", "web", nodes=3, synced=1)  # drifted
    emulator.add_pool(project, cluster, "np-batch-0001", "batch", nodes=2, synced=0)  # drifted
    emulator.add_pool(project, cluster, "np-api-0001", "api", nodes=2, synced=2)  # in sync
    emulator.add_pool(project, cluster, "np-jobs-0001", "jobs", nodes=4, synced=2)  # syncing (below)
    emulator.add_job(project, cluster, "np-jobs-0001", "Success", ended_ago=-600, seconds=1200)  # 10 min in
    emulator.add_pool(project, cluster, nodepool, "workers")  # no counts reported: unknown
    emulator.add_pool(project, cluster, "DefaultPool", "DefaultPool", nodes=1, synced=1)
    emulator.add_pool(project, cluster, "np-analytics-0001", "analytics", nodes=2, synced=0)  # drifted, and:
    emulator.add_job(project, cluster, "np-analytics-0001", "Failed", ended_ago=300, reason="drain timed out")


def command_run(args: argparse.Namespace) -> int:
    """The demo: a reconcile pass, a pool change synced at once, a sync from each trigger, a fleet, a waited job."""
    template = templates.load(args.template)
    verbose = args.verbose or os.environ.get("VERBOSE", "") not in ("", "0")
    environment = _base_environment(template)
    environment.setdefault("JOB_POLL_INTERVAL_SECONDS", "0.125")
    environment["SYNC_RECONCILE"] = json.dumps({"max_syncing_per_cluster": 2})
    project = environment.setdefault("HUAWEICLOUD_SDK_PROJECT_ID", DEMO_PROJECT)
    environment["SMN_TOPIC_URN"] = f"urn:smn:{environment['HUAWEICLOUD_SDK_REGION']}:{project}:nodepool-sync-alerts"
    cluster, nodepool = environment["CCE_CLUSTER_ID"], environment["CCE_NODEPOOL_ID"]
    demo_clusters = [c for c, _ in ROLLOUT] + [c for c, _ in HALT]  # the rollout's and the halt's clusters too
    allowed = environment.get("SYNC_ALLOWED_TARGETS", "")
    environment["SYNC_ALLOWED_TARGETS"] = ",".join(filter(None, [allowed, *(f"{c}/*" for c in demo_clusters)]))
    rows: list[tuple[str, str, str, str]] = []
    with emulated_cloud(environment) as emulator:
        initializer = template["function"].get("initializer", "none")
        print(f"--- 0 a new instance: the initializer ({initializer}) reads the settings and fetches the token")
        _apply_environment(template, environment)
        _show_requests(emulator, 0, verbose)
        _demo_cluster(emulator, project, cluster, nodepool)
        doc = templates.document(cluster, nodepool, {"maxUnavailable": 2, "nodeIDs": ["node-0001", "node-0002"]})
        fleet = {"cluster_id": cluster, "nodepools": {"names": ["web", "batch"]}, "spec": {"maxUnavailable": 1}}
        waited = templates.document(cluster, nodepool, {"maxUnavailable": 1})
        steps: list[tuple[str, str, Any]] = [
            (
                "timer",
                "a reconcile pass (2 syncs at most per cluster; jobs is already syncing, analytics failed 5 min ago)",
                templates.timer_event(template),
            ),
            (
                "cts",
                "CCE reports that api's template changed: that pool is reconciled at once",
                lambda: emulator.update_template(project, cluster, "np-api-0001"),
            ),
            (
                "eventgrid",
                "an EventGrid event asks to sync two nodes of workers",
                templates.eventgrid_event(template, doc),
            ),
            (
                "apig",
                "API Gateway: POST " + template["triggers"]["apig"]["path"],
                templates.apig_event(
                    template,
                    json.dumps({"spec": {"maxUnavailable": 3}}).encode(),
                    {"cluster_id": cluster, "nodepool_id": nodepool},
                ),
            ),
            ("direct", "a fleet: the pools named web and batch, one after another (batch is in sync by now)", fleet),
            (
                "eventgrid",
                "with wait: the job takes 1 s; polls at 0.125, 0.25, 0.5 and 1 s (doubling) see it end at the 4th",
                templates.eventgrid_event(template, {**waited, "wait": True}),
            ),
        ]
        shown: list[dict[str, str]] = []
        for number, (trigger, title, step) in enumerate(steps, 1):
            print(f"\n--- {number} {title}")
            event = step() if callable(step) else step  # a change happens when its step comes
            print(f"    event: {_one_line(event, 140)}")
            if "wait" in json.dumps(event):
                emulator.job_seconds = 1.0
            seen, started = len(emulator.requests), time.perf_counter()
            answer, ok = _invoke_handler(template, event)
            elapsed = (time.perf_counter() - started) * 1000
            _show_requests(emulator, seen, verbose)
            for line in _short_answer(answer):
                print(f"    {line}")
            for published in emulator.published[len(shown) :]:
                print(f"    SMN message: {published['subject']}")
                for text in published["message"].strip().splitlines()[2:]:
                    print(f"      {text}")
            shown = list(emulator.published)
            status = answer.get("status") if isinstance(answer, dict) else None
            outcome = status or f"HTTP {answer.get('statusCode')}" if isinstance(answer, dict) else "?"
            rows.append((str(number), trigger, f"{outcome}{'' if ok else ' (FAILED)'}", f"{elapsed:.0f} ms"))
        extra: list[tuple[str, str, Callable[[], tuple[str, bool]]]] = [
            (
                "direct",
                "a rollout in waves: test, then stage, then prod, one pass at a time",
                lambda: _rollout(template, emulator, project),
            ),
            (
                "direct",
                "a halt: two pools' last syncs failed a minute ago, so the pass starts nothing",
                lambda: _halt(template, emulator, project),
            ),
            (
                "timer",
                "fleet scale: the timer's pass over two regions and two projects each, fanned out",
                lambda: _fan_out(template, environment, emulator),
            ),
        ]
        for trigger, title, run_step in extra:
            number = str(len(rows) + 1)
            print(f"\n--- {number} {title}")
            seen, started = len(emulator.requests), time.perf_counter()
            outcome, ok = run_step()
            if trigger == "timer" and verbose:
                _show_requests(emulator, seen, verbose)
            elapsed = f"{(time.perf_counter() - started) * 1000:.0f} ms"
            rows.append((number, trigger, f"{outcome}{'' if ok else ' (FAILED)'}", elapsed))
        iam_calls = len(emulator.iam_requests())
    failures = sum(row[2].endswith("(FAILED)") for row in rows)
    print("\nstep  trigger    outcome            time")
    for row in rows:
        print(f"{row[0]:<5} {row[1]:<10} {row[2]:<18} {row[3]}")
    print(f"\n{len(rows) - failures}/{len(rows)} steps succeeded; IAM token requests: {iam_calls}")
    if not verbose:
        print("(VERBOSE=1 make run, or --verbose, shows every request in full, secrets masked)")
    return 1 if failures else 0


def _pass_line(answer: Any) -> str:
    """A pass in one line: what started, what waits and why."""
    pools = [p for c in answer.get("clusters", []) for p in c.get("pools", [])]
    started = [p["name"] for p in pools if p.get("action") == "started"]
    waiting = [f"{p['name']} ({p['reason']})" for p in pools if p.get("action") in ("deferred", "backing_off")]
    in_sync = [p["name"] for p in pools if p["class"] == "in_sync"]
    parts = [f"started {', '.join(started)}" if started else "started nothing"]
    parts += [f"in sync {', '.join(in_sync)}"] if in_sync else []
    parts += [f"waiting {', '.join(waiting)}"] if waiting else []
    return "; ".join(parts)


ROLLOUT = (("cce-test", "test"), ("cce-stage", "stage"), ("cce-prod", "prod"))
HALT = (("cce-halt-a", "a"), ("cce-halt-b", "b"), ("cce-halt-c", "c"))


def _rollout(template: dict[str, Any], emulator: Emulator, project: str) -> tuple[str, bool]:
    """Three passes over three clusters in waves (test, stage, then the rest): each wave starts only once the
    earlier ones are in sync (the emulator's jobs end at once here)."""
    emulator.job_seconds = 0.0
    for cluster, name in ROLLOUT:
        emulator.add_cluster(project, cluster, f"{name}-cluster")
        emulator.add_pool(project, cluster, f"np-{name}-web", f"{name}-web", nodes=3, synced=0)
    clusters = [cluster for cluster, _ in ROLLOUT]
    document = {
        "reconcile": {"clusters": clusters, "waves": [["cce-test"], ["stage-cluster"]], "max_syncing_per_cluster": 1},
        "spec": {"maxUnavailable": 1},
    }
    print(f"    document: {_one_line(document, 140)}")
    order = []
    for number in (1, 2, 3):
        answer, ok = _invoke_handler(template, document)
        if not ok:
            return "failed", False
        order += [p["name"] for c in answer["clusters"] for p in c["pools"] if p.get("action") == "started"]
        print(f"    pass {number}: wave {answer['waves']['open']} open; {_pass_line(answer)}")
    return "reconciled", order == ["test-web", "stage-web", "prod-web"]


def _halt(template: dict[str, Any], emulator: Emulator, project: str) -> tuple[str, bool]:
    """Two of three drifted pools failed a minute ago: with halt_after_failures 2 the pass starts nothing."""
    for cluster, name in HALT:
        emulator.add_pool(project, cluster, f"np-halt-{name}", f"halt-{name}", nodes=2, synced=0)
    emulator.add_job(project, "cce-halt-a", "np-halt-a", "Failed", ended_ago=60, reason="drain timed out")
    emulator.add_job(project, "cce-halt-b", "np-halt-b", "Failed", ended_ago=60, reason="image pull failed")
    options = {"clusters": ["cce-halt-a", "cce-halt-b", "cce-halt-c"], "halt_after_failures": 2}
    answer, _ = _invoke_handler(template, {"reconcile": options, "spec": {"maxUnavailable": 1}})
    failed = ", ".join(
        f"{f['name']} (job {f['jobid'][:8]}: {f['reason']})" for f in answer.get("halt", {}).get("failed", [])
    )
    print(f"    {answer.get('status')}: failed {failed}; {_pass_line(answer)}")
    return str(answer.get("status")), answer.get("status") == "halted" and answer["totals"]["started"] == 0


DEMO_SCOPES = (  # two regions, two projects each (not the demo's own project): the fan-out step of make run
    ("ap-southeast-1", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    ("ap-southeast-1", "1b2c3d4e5f60718293a4b5c6d7e8f9a0"),
    ("eu-west-101", "2c3d4e5f60718293a4b5c6d7e8f9a0b1"),
    ("eu-west-101", "3d4e5f60718293a4b5c6d7e8f9a0b1c2"),
)


def _fan_out(template: dict[str, Any], environment: dict[str, str], emulator: Emulator) -> tuple[str, bool]:
    """A new instance with SYNC_SCOPES: the timer's tick invokes one worker per scope through the emulator's
    FunctionGraph, which runs each in a thread of its own as FunctionGraph would; their summaries and the totals."""
    import threading

    scopes = [{"region": region, "project_id": project} for region, project in DEMO_SCOPES]
    for index, (region, project) in enumerate(DEMO_SCOPES):
        emulator.regions[project] = region
        cluster = f"cce-{region}-{index}"
        emulator.add_pool(project, cluster, f"np-web-{index}", "web", nodes=3, synced=1)
        emulator.add_pool(project, cluster, f"np-batch-{index}", "batch", nodes=2, synced=0)
        emulator.add_pool(project, cluster, f"np-api-{index}", "api", nodes=2, synced=2)
    regional = emulator.url + "/{region}"
    fleet = {
        **environment,
        "SYNC_SCOPES": json.dumps(scopes),
        "SYNC_RECONCILE": json.dumps({"clusters": "all", "max_syncing_per_cluster": 1}),
        "SYNC_ALLOWED_TARGETS": ",".join(f"{project}/*/*" for _, project in DEMO_SCOPES),
        "CCE_ENDPOINT": regional,
        "IAM_ENDPOINT": regional,
        "FGS_ENDPOINT": regional,
        "SMN_ENDPOINT": regional,
    }
    _apply_environment(template, fleet)
    finished: list[tuple[dict[str, Any], Any]] = []
    all_done = threading.Event()

    def worker(invocation: dict[str, Any]) -> None:
        answer, _ = _invoke_handler(template, invocation["body"])
        finished.append((invocation, answer))
        if len(finished) == len(scopes):
            all_done.set()

    emulator.run_async = worker
    try:
        answer, ok = _invoke_handler(template, templates.timer_event(template))
        if not ok or not isinstance(answer, dict):
            return "failed", False
        print(f"    coordinator: {answer['status']} {len(answer['scopes'])} workers (pass {answer['pass_id']})")
        all_done.wait(60)
    finally:
        emulator.run_async = None
    totals: dict[str, int] = {}
    for invocation, result in sorted(finished, key=lambda item: json.dumps(item[0]["body"]["scope"])):
        scope = invocation["body"]["scope"]
        counts = result.get("totals", {}) if isinstance(result, dict) else {}
        for key in ("started", "deferred", "drifted", "in_sync"):
            totals[key] = totals.get(key, 0) + counts.get(key, 0)
        started, deferred = counts.get("started", 0), counts.get("deferred", 0)
        drifted, in_sync = counts.get("drifted", 0), counts.get("in_sync", 0)
        where = f"{scope['region']}/{scope['project_id'][:8]}"
        print(f"    worker {where}: {started} started, {deferred} deferred ({drifted} drifted, {in_sync} in sync)")
    started, deferred = totals.get("started", 0), totals.get("deferred", 0)
    print(f"    totals: {started} started, {deferred} deferred over {len(finished)} scopes")
    return "dispatched", len(finished) == len(scopes) and totals.get("started") == len(scopes)


def _environment_for(template: dict[str, Any], env_file: str | None) -> dict[str, str]:
    """The function's variables as every command resolves them: the template's, then the shell's, then the
    --env-file's, the later winning."""
    from handler.settings import variable_names

    environment = _base_environment(template)
    environment.update({name: os.environ[name] for name in variable_names() if name in os.environ})
    if env_file:
        environment.update(read_env_file(Path(env_file)))
    return environment


def _invoke_once(template: dict[str, Any], environment: dict[str, str], event: Any, emulator: bool) -> tuple[Any, bool]:
    if not emulator and any(environment.get(name) for name in CREDENTIAL_VARIABLES):
        _say("credentials given and no --emulator: invoking against Huawei Cloud")
        _apply_environment(template, environment)
        return _invoke_handler(template, event)
    with emulated_cloud(environment):
        _apply_environment(template, environment)
        return _invoke_handler(template, event)


def command_invoke(args: argparse.Namespace) -> int:
    """Run the handler once with an event file (or stdin) and print its answer; exit 1 when it failed."""
    template = templates.load(args.template)
    event = _json_argument(_read_input(args.event), f"the event in {args.event}")
    environment = _environment_for(template, args.env_file)
    if args.dry_run:
        environment["SYNC_DRY_RUN"] = "true"
    answer, ok = _invoke_once(template, environment, event, args.emulator)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0 if ok else 1


def command_status(args: argparse.Namespace) -> int:
    """Ask how a node pool's sync is going (GET on the API route): syncing or not, the job, progress."""
    template = templates.load(args.template)
    environment = _environment_for(template, args.env_file)
    event = templates.apig_event(
        template, b"", {"cluster_id": args.cluster, "nodepool_id": args.nodepool}, method="GET", headers={}
    )
    answer, ok = _invoke_once(template, environment, event, args.emulator)
    body = json.loads(answer["body"]) if isinstance(answer, dict) and "body" in answer else answer
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0 if ok else 1


class _GatewayHandler(BaseHTTPRequestHandler):
    """Turns HTTP requests into API Gateway events and the function's answers back into HTTP responses."""

    template: dict[str, Any]
    protocol_version = "HTTP/1.1"
    # One write per answer and no Nagle delay: otherwise delayed ACKs add ~40 ms to every exchange.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} - {format % args}", file=sys.stderr, flush=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        match = templates.route_pattern(self.template).match(parts.path)
        if match is None:
            route = self.template["triggers"]["apig"]["path"]
            self._send(404, {"Content-Type": "application/json"}, json.dumps({"error_msg": f"no route; use {route}"}))
            return
        event = templates.apig_event(
            self.template,
            body,
            match.groupdict(),
            method=self.command,
            headers=dict(self.headers.items()),
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
        )
        answer, _ = _invoke_handler(self.template, event)
        if not isinstance(answer, dict) or "statusCode" not in answer:
            self._send(500, {"Content-Type": "application/json"}, json.dumps(answer))
            return
        payload = answer.get("body", "")
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode()
        self._send(int(answer["statusCode"]), answer.get("headers", {}), data)

    def _send(self, status: int, headers: Mapping[str, str], body: str | bytes) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 - http.server's names


def make_gateway(template: dict[str, Any], host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server on (host, port) that plays API Gateway in front of the handler."""

    class Handler(_GatewayHandler):
        pass

    Handler.template = template
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port (make serve PORT=3001)"
        ) from None
    server.daemon_threads = True
    return server


def command_serve(args: argparse.Namespace) -> int:
    """A local API Gateway: curl it, it invokes the handler, backed by the emulator unless --no-emulator."""
    template = templates.load(args.template)
    environment = _environment_for(template, args.env_file)
    server = make_gateway(template, "127.0.0.1", args.port)
    route = template["triggers"]["apig"]["path"]
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def serve() -> None:
        _apply_environment(template, environment)
        example = url + route.format(
            cluster_id=environment["CCE_CLUSTER_ID"], nodepool_id=environment["CCE_NODEPOOL_ID"]
        )
        body = json.dumps({"spec": {"maxUnavailable": 1}})
        _say(f"API Gateway emulation on {url} (routes: POST and GET {route}; Ctrl-C to stop)")
        _say(f"try: curl -s -X POST {example} -H 'content-type: application/json' -d '{body}'")
        _say(f"and: curl -s {example}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

    if args.no_emulator:
        serve()
    else:
        with emulated_cloud(environment):
            serve()
    return 0


def command_generate_event(args: argparse.Namespace) -> int:
    """Print a realistic event of the given shape, for the template's cluster and pool unless told otherwise."""
    from local.emulator import cloud_event, cts_trace

    template = templates.load(args.template)
    environment = _base_environment(template)
    cluster = args.cluster or environment.get("CCE_CLUSTER_ID", "")
    nodepool = args.nodepool or environment.get("CCE_NODEPOOL_ID", "")
    spec = _json_argument(args.spec, "--spec") if args.spec else None
    if spec is not None and not isinstance(spec, dict):
        raise UsageError("--spec must be a JSON object, such as '{\"maxUnavailable\": 2}'")
    if args.max_unavailable is not None:
        if spec is not None and spec.get("maxUnavailable", args.max_unavailable) != args.max_unavailable:
            raise UsageError("--max-unavailable and --spec's maxUnavailable disagree: give one")
        spec = {**(spec or {}), "maxUnavailable": args.max_unavailable}
    spec = spec if spec is not None else {"maxUnavailable": 1}
    if args.kind in ("cts", "eventgrid-change"):
        if args.spec or args.max_unavailable is not None:
            raise UsageError(f"a {args.kind} event carries a CTS trace, not a spec: drop --spec/--max-unavailable")
        trace = cts_trace(
            environment.get("HUAWEICLOUD_SDK_PROJECT_ID", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
            cluster,
            nodepool,
            nodepool,
        )
        event = trace if args.kind == "cts" else cloud_event(trace)
    elif args.kind == "timer":
        event = templates.timer_event(template, templates.document(args.cluster, args.nodepool, spec))
    elif args.kind == "eventgrid":
        event = templates.eventgrid_event(template, templates.document(cluster, nodepool, spec))
    else:
        body = json.dumps({"spec": spec}).encode()
        event = templates.apig_event(template, body, {"cluster_id": cluster, "nodepool_id": nodepool})
    print(json.dumps(event, indent=2, ensure_ascii=False))
    return 0


def command_validate(args: argparse.Namespace) -> int:
    """Check an event or document exactly as the handler would (defaults, schema, rules, allowlist); send nothing."""
    from .verdict import verdict

    template = templates.load(args.template)
    event = _json_argument(_read_input(args.file), f"{args.file}")
    environment = _environment_for(template, args.env_file)
    environment.setdefault("HUAWEICLOUD_SDK_PROJECT_ID", DEMO_PROJECT)  # as invoke's emulator does
    results = verdict(event, environment)
    for result in results:
        if result.valid:
            applied = f"; defaults applied: {', '.join(result.defaults)}" if result.defaults else ""
            print(f"{args.file}: valid ({result.kind}){applied}")
        for problem in result.problems:
            print(f"{args.file}: {problem}")
    return 0 if all(result.valid for result in results) else 1


FUNCTIONGRAPH_PYTHONS = ("3.9", "3.10", "3.12")  # the runtimes FunctionGraph offers (platform facts)
BUILDABLE_PYTHONS = ("3.10", "3.12")  # the ones the pinned dependencies support


def command_package(args: argparse.Namespace) -> int:
    """Build the FunctionGraph zip for a Python FunctionGraph offers (the template's runtime by default)."""
    from .package import build

    template = templates.load(args.template)
    python = args.python or f"python{templates.python_version(template)}"
    version = python.rsplit("python", 1)[-1]
    if version not in FUNCTIONGRAPH_PYTHONS:
        raise UsageError(f"FunctionGraph has no Python {version} runtime; it offers {', '.join(FUNCTIONGRAPH_PYTHONS)}")
    if version not in BUILDABLE_PYTHONS:
        raise UsageError(
            f"the pinned dependencies (jsonschema 4.26, rpds-py 0.30) do not install on Python {version}; "
            f"build for {' or '.join(BUILDABLE_PYTHONS)}"
        )
    try:
        build(Path(args.output), python, bytecode=not args.no_bytecode)
    except subprocess.CalledProcessError as exc:
        print(f"error: the build failed at: {' '.join(map(str, exc.cmd))[:200]}", file=sys.stderr)
        return 1
    return 0


def command_deploy_config(args: argparse.Namespace) -> int:
    """Render template.yaml into Terraform JSON."""
    template = templates.load(args.template)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    zip_path = os.path.relpath(ROOT / "dist" / "nodepool-sync.zip", output.parent)
    output.write_text(json.dumps(templates.render_terraform(template, zip_path), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}: cd {output.parent} && terraform init && terraform apply")
    return 0


def command_openapi(args: argparse.Namespace) -> int:
    """Write the OpenAPI 3 description of the API Gateway routes, from the same JSON Schemas as the validation."""
    from .openapi import describe

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(describe(templates.load(args.template)), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}: import it in API Gateway (API Management > APIs > Import API)")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m local", description="Local tools for the nodepool-sync function.")
    main.add_argument("--template", type=Path, default=templates.TEMPLATE, help="template.yaml to read")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help=command_run.__doc__, description=command_run.__doc__)
    run.add_argument("--verbose", action="store_true", help="show every request in full (secrets masked)")
    run.set_defaults(func=command_run)

    invoke = commands.add_parser("invoke", help=command_invoke.__doc__, description=command_invoke.__doc__)
    invoke.add_argument("event", help="event JSON file, or - for stdin")
    invoke.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    invoke.add_argument("--dry-run", action="store_true", help="validate and show the request, send nothing")
    invoke.add_argument(
        "--emulator", action="store_true", help="use the local emulator even when credentials are given"
    )
    invoke.set_defaults(func=command_invoke)

    serve = commands.add_parser("serve", help=command_serve.__doc__, description=command_serve.__doc__)
    serve.add_argument("--port", type=int, default=3000, help="port on 127.0.0.1 (default 3000, 0 for any)")
    serve.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    serve.add_argument("--no-emulator", action="store_true", help="talk to Huawei Cloud instead of the emulator")
    serve.set_defaults(func=command_serve)

    status = commands.add_parser("status", help=command_status.__doc__, description=command_status.__doc__)
    status.add_argument("cluster", help="cluster ID")
    status.add_argument("nodepool", help="node pool ID")
    status.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    status.add_argument(
        "--emulator", action="store_true", help="use the local emulator even when credentials are given"
    )
    status.set_defaults(func=command_status)

    generate = commands.add_parser(
        "generate-event", help=command_generate_event.__doc__, description=command_generate_event.__doc__
    )
    generate.add_argument("kind", choices=["timer", "eventgrid", "apig", "cts", "eventgrid-change"])
    generate.add_argument("--cluster", help="cluster ID (default: the template's CCE_CLUSTER_ID)")
    generate.add_argument("--nodepool", help="node pool ID (default: the template's CCE_NODEPOOL_ID)")
    generate.add_argument("--spec", help="the spec as JSON, e.g. '{\"maxUnavailable\": 2}'")
    generate.add_argument("--max-unavailable", type=int, help="the spec's maxUnavailable (default 1)")
    generate.set_defaults(func=command_generate_event)

    validate = commands.add_parser("validate", help=command_validate.__doc__, description=command_validate.__doc__)
    validate.add_argument("file", help="an event or a sync, fleet or reconcile document (JSON), or - for stdin")
    validate.add_argument("--env-file", help="KEY=VALUE file of environment variables (default: the template's)")
    validate.set_defaults(func=command_validate)

    package = commands.add_parser("package", help=command_package.__doc__, description=command_package.__doc__)
    package.add_argument("--python", help="interpreter of the target version (default: the template's runtime)")
    package.add_argument("--output", default=str(ROOT / "dist" / "nodepool-sync.zip"), help="zip to write")
    package.add_argument("--no-bytecode", action="store_true", help="ship sources only")
    package.set_defaults(func=command_package)

    deploy = commands.add_parser(
        "deploy-config", help=command_deploy_config.__doc__, description=command_deploy_config.__doc__
    )
    deploy.add_argument("--output", default=str(ROOT / "deploy" / "main.tf.json"), help="file to write")
    deploy.set_defaults(func=command_deploy_config)

    openapi = commands.add_parser("openapi", help=command_openapi.__doc__, description=command_openapi.__doc__)
    openapi.add_argument("--output", default=str(ROOT / "deploy" / "openapi.json"), help="file to write")
    openapi.set_defaults(func=command_openapi)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # argparse itself answers a usage error with exit code 2
    _logs_to_stderr()
    try:
        code: int = args.func(args)
    except (UsageError, templates.TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
