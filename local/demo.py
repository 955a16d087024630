"""`make run`: the function doing its job against an emulator of its own, step by step.

Its story needs a fresh layout and jobs of known length (one step waits for a job of 1 s, another changes a
pool's template), so it never uses, nor changes, the emulator `make emulator` keeps running.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from handler.decide import Action
from handler.model import PoolClass
from handler.rendering import Status

from . import events, layout
from . import template as templates
from .clouds import point_at
from .clouds import say as _say
from .emulator import Emulator
from .host import Host, base_environment, log_lines_to, one_line, print_json
from .metrics import scope_table
from .workers import run_worker

MASKED_HEADERS = {"x-auth-token", "authorization", "x-security-token"}


class _StepLogs:
    """The function's log lines, held while a step runs and shown after its requests: one line each, shortened
    to the fields a person reads first unless verbose."""

    FIRST = (
        "trigger", "outcome", "http_status", "error_code", "name", "class", "action", "reason",
        "started", "deferred", "failed", "latency_ms", "duration_ms",
    )  # fmt: skip

    def __init__(self, verbose: bool) -> None:
        import io

        self.verbose, self.buffer = verbose, io.StringIO()
        log_lines_to(self.buffer, "%(message)s")

    def show(self) -> None:
        lines = self.buffer.getvalue().splitlines()
        self.buffer.seek(0)
        self.buffer.truncate()
        for line in lines:
            print(f"    log: {line if self.verbose else self._short(line)}")

    def _short(self, line: str) -> str:
        try:
            record = json.loads(line)
        except ValueError:
            return line[:140]
        if not isinstance(record, dict):
            return line[:140]
        fields = " ".join(f"{key}={record[key]}" for key in self.FIRST if key in record)
        text = f"{record.get('message', '')} {fields}".strip()
        return text if len(text) <= 140 else text[:137] + "..."


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
        service = "CES" if recorded.is_ces else service
        service += f" {recorded.region}" if recorded.region else ""
        if verbose:
            print_json(f"{service} received", masked_request(recorded))
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
    """Start an emulator of the demo's own, with the demo's IAM user, and point the environment at it."""
    _say("starting the local CCE + IAM emulator on loopback")
    emulator = Emulator().start()
    _say(f"emulator listening on {emulator.url}")
    emulator.add_user(layout.DEMO_DOMAIN, layout.DEMO_USER, layout.DEMO_PASSWORD)
    point_at(environment, emulator.url)
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


def _short_answer(answer: Any) -> list[str]:
    """The answer as a person wants it first: what happened, in a few lines."""
    if isinstance(answer, dict) and "statusCode" in answer:
        body = json.loads(answer["body"]) if isinstance(answer.get("body"), str) else answer.get("body")
        return [f"HTTP {answer['statusCode']} {one_line(body, 140)}"]
    if isinstance(answer, dict) and answer.get("status") == Status.RECONCILED:
        totals = answer["totals"]
        lines = [
            f"reconciled: {totals['started']} started, {totals['deferred']} deferred, "
            f"{totals['backing_off']} backing off, {totals['failed']} failed"
        ]
        if "metrics" in answer:
            lines.append(f"Cloud Eye: {one_line(answer['metrics'], 120)}")
        for cluster in answer["clusters"]:
            for pool in cluster.get("pools", []):
                action = pool.get("action", "")
                nodes = pool.get("nodes") or "-"
                lines.append(f"  {pool['name']:<10} {pool['class']:<8} {nodes:<5} {action}".rstrip())
        return lines
    if isinstance(answer, dict) and "results" in answer:
        lines = [f"{answer['status']}: {answer.get('accepted', '')}/{answer.get('total', '')}".rstrip(": /")]
        lines += [f"  {one_line(result, 140)}" for result in answer["results"]]
        return lines
    return [one_line(answer, 150)]


def command_run(args: argparse.Namespace) -> int:
    """The demo, ten steps: a reconcile pass, a pool change synced at once, syncs from EventGrid and API Gateway, a
    fleet, a waited job, a rollout in waves, a halt, an API sync the halt refuses (and ignore_halt sends), and a
    pass fanned out over the projects IAM lists (SYNC_SCOPES=accessible)."""
    template = templates.load(args.template)
    verbose = args.verbose or os.environ.get("VERBOSE", "") not in ("", "0")
    environment = base_environment(template)
    environment.setdefault("JOB_POLL_INTERVAL_SECONDS", "0.125")
    environment["SYNC_RECONCILE"] = json.dumps({"max_syncing_per_cluster": 2})
    project = layout.DEMO_PROJECT  # the emulator's (point_at)
    environment["SMN_TOPIC_URN"] = f"urn:smn:{environment['HUAWEICLOUD_SDK_REGION']}:{project}:nodepool-sync-alerts"
    cluster, nodepool = environment["CCE_CLUSTER_ID"], environment["CCE_NODEPOOL_ID"]
    demo_clusters = layout.demo_clusters()  # the rollout's and the halt's clusters too
    allowed = environment.get("SYNC_ALLOWED_TARGETS", "")
    environment["SYNC_ALLOWED_TARGETS"] = ",".join(filter(None, [allowed, *(f"{c}/*" for c in demo_clusters)]))
    rows: list[tuple[str, str, str, str]] = []
    logs = _StepLogs(verbose)
    with emulated_cloud(environment) as emulator:
        initializer = template["function"].get("initializer", "none")
        print(f"--- 0 a new instance: the initializer ({initializer}) reads the settings and fetches the token")
        host = Host(template, environment)
        _show_requests(emulator, 0, verbose)
        logs.show()
        layout.demo_cluster(emulator, project, cluster, nodepool)
        doc = events.document(cluster, nodepool, {"maxUnavailable": 2, "nodeIDs": ["node-0001", "node-0002"]})
        fleet = {"cluster_id": cluster, "nodepools": {"names": ["web", "batch"]}, "spec": {"maxUnavailable": 1}}
        waited = events.document(cluster, nodepool, {"maxUnavailable": 1})
        steps: list[tuple[str, str, Any]] = [
            (
                "timer",
                "a reconcile pass (2 syncs at most per cluster; jobs is already syncing, analytics failed 5 min ago)",
                events.timer_event(template),
            ),
            (
                "cts",
                "CCE reports that api's template changed: that pool is reconciled at once",
                lambda: emulator.update_template(project, cluster, "np-api-0001"),
            ),
            (
                "eventgrid",
                "an EventGrid event asks to sync two nodes of workers",
                events.eventgrid_event(template, doc),
            ),
            (
                "apig",
                "API Gateway: POST " + template["triggers"]["apig"]["path"],
                events.apig_event(
                    template,
                    json.dumps({"spec": {"maxUnavailable": 3}}).encode(),
                    {"cluster_id": cluster, "nodepool_id": nodepool},
                ),
            ),
            ("direct", "a fleet: the pools named web and batch, one after another (batch is in sync by now)", fleet),
            (
                "eventgrid",
                "with wait: the job takes 1 s; polls at 0.125, 0.25, 0.5 and 1 s (doubling) see it end at the 4th",
                events.eventgrid_event(template, {**waited, "wait": True}),
            ),
        ]
        shown: list[dict[str, str]] = []
        for number, (trigger, title, step) in enumerate(steps, 1):
            print(f"\n--- {number} {title}")
            event = step() if callable(step) else step  # a change happens when its step comes
            print(f"    event: {json.dumps(event, ensure_ascii=False) if verbose else one_line(event, 140)}")
            if "wait" in json.dumps(event):
                emulator.job_seconds = 1.0
            seen, started = len(emulator.requests), time.perf_counter()
            answer, ok = host.invoke(event)
            elapsed = (time.perf_counter() - started) * 1000
            _show_requests(emulator, seen, verbose)
            logs.show()
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
                lambda: _rollout(host, emulator, project),
            ),
            (
                "direct",
                "a halt: two pools' last syncs failed a minute ago, so the pass starts nothing",
                lambda: _halt(host, emulator, project),
            ),
            (
                "apig",
                "one gate for every start: an API sync meets the configured pass's halt; ignore_halt sends it",
                lambda: _gated(template, environment, project),
            ),
            (
                "timer",
                "fleet scale: the timer's pass over the projects IAM lists (SYNC_SCOPES=accessible), fanned out",
                lambda: _fan_out(template, environment, emulator),
            ),
        ]
        for kind, heading, run_step in extra:
            label = str(len(rows) + 1)
            print(f"\n--- {label} {heading}")
            seen, began = len(emulator.requests), time.perf_counter()
            outcome, ok = run_step()
            if kind == "timer" and verbose:
                _show_requests(emulator, seen, verbose)
            logs.show()
            took = f"{(time.perf_counter() - began) * 1000:.0f} ms"
            rows.append((label, kind, f"{outcome}{'' if ok else ' (FAILED)'}", took))
        iam_calls = sum(r.path == "/v3/auth/tokens" for r in emulator.iam_requests())
        host.close()
        points = list(emulator.metric_data)
    if points:
        print(f"\nCloud Eye ({points[0]['metric']['namespace']}, the home project): each scope's latest pass")
        for line in scope_table(points):
            print(f"  {line}")
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
    started = [p["name"] for p in pools if p.get("action") == Action.STARTED]
    waiting = [
        f"{p['name']} ({p['reason']})" for p in pools if p.get("action") in (Action.DEFERRED, Action.BACKING_OFF)
    ]
    in_sync = [p["name"] for p in pools if p["class"] == PoolClass.IN_SYNC]
    parts = [f"started {', '.join(started)}" if started else "started nothing"]
    parts += [f"in sync {', '.join(in_sync)}"] if in_sync else []
    parts += [f"waiting {', '.join(waiting)}"] if waiting else []
    return "; ".join(parts)


def _rollout(host: Host, emulator: Emulator, project: str) -> tuple[str, bool]:
    """Three passes over three clusters in waves (test, stage, then the rest): each wave starts only once the
    earlier ones are in sync (the emulator's jobs end at once here)."""
    emulator.job_seconds = 0.0
    layout.rollout(emulator, project)
    clusters = [cluster for cluster, _ in layout.ROLLOUT]
    document = {
        "reconcile": {"clusters": clusters, "waves": [["cce-test"], ["stage-cluster"]], "max_syncing_per_cluster": 1},
        "spec": {"maxUnavailable": 1},
    }
    print(f"    document: {one_line(document, 140)}")
    order = []
    for number in (1, 2, 3):
        answer, ok = host.invoke(document)
        if not ok:
            return "failed", False
        order += [p["name"] for c in answer["clusters"] for p in c["pools"] if p.get("action") == Action.STARTED]
        print(f"    pass {number}: wave {answer['waves']['open']} open; {_pass_line(answer)}")
    return "reconciled", order == ["test-web", "stage-web", "prod-web"]


def _halt(host: Host, emulator: Emulator, project: str) -> tuple[str, bool]:
    """Two of three drifted pools failed a minute ago: with halt_after_failures 2 the pass starts nothing."""
    layout.halt(emulator, project)
    options = {"clusters": ["cce-halt-a", "cce-halt-b", "cce-halt-c"], "halt_after_failures": 2}
    answer, _ = host.invoke({"reconcile": options, "spec": {"maxUnavailable": 1}})
    failed = ", ".join(
        f"{f['name']} (job {f['jobid'][:8]}: {f['reason']})" for f in answer.get("halt", {}).get("failed", [])
    )
    print(f"    {answer.get('status')}: failed {failed}; {_pass_line(answer)}")
    return str(answer.get("status")), answer.get("status") == Status.HALTED and answer["totals"]["started"] == 0


def _gated(template: dict[str, Any], environment: dict[str, str], project: str) -> tuple[str, bool]:
    """A new instance whose configured pass (SYNC_RECONCILE) has the halt: an API Gateway sync of a pool of it
    meets the same halt as the pass (409 FUNC.HALTED, nothing sent), and goes with ignore_halt."""
    clusters = [cluster for cluster, _ in layout.HALT]
    configured = {**environment, "SYNC_RECONCILE": json.dumps({"clusters": clusters, "halt_after_failures": 2})}
    host = Host(template, configured)
    print(f"    SYNC_RECONCILE={configured['SYNC_RECONCILE']}")
    target = {"cluster_id": "cce-halt-c", "nodepool_id": "np-halt-c"}
    codes = []
    try:
        for document in ({"spec": {"maxUnavailable": 1}}, {"spec": {"maxUnavailable": 1}, "ignore_halt": True}):
            answer, _ = host.invoke(events.apig_event(template, json.dumps(document).encode(), target))
            body = json.loads(answer["body"])
            codes.append(answer["statusCode"])
            said = body.get("error_code") or body.get("status")
            print(f"    POST {one_line(document, 80)}: HTTP {answer['statusCode']} {said} {body.get('error_msg', '')}")
    finally:
        host.close()
    return f"HTTP {codes[0]}, then {codes[-1]}", codes == [409, 200]


def _fan_out(template: dict[str, Any], environment: dict[str, str], emulator: Emulator) -> tuple[str, bool]:
    """A new instance with SYNC_SCOPES=accessible: the timer's tick lists the projects IAM says it reaches and
    invokes one worker per region-named project the allowlist reaches, through the emulator's FunctionGraph, which
    runs each in a thread of its own as FunctionGraph would; their summaries and the totals."""
    scopes = layout.fleet(emulator)
    regional = emulator.url + "/{region}"
    fleet = {
        **environment,
        "SYNC_SCOPES": "accessible",
        "SYNC_RECONCILE": json.dumps({"clusters": "all", "max_syncing_per_cluster": 1}),
        "SYNC_ALLOWED_TARGETS": ",".join(f"{project}/*/*" for _, project in layout.DEMO_SCOPES),
        "CCE_ENDPOINT": regional,
        "IAM_ENDPOINT": regional,
        "FGS_ENDPOINT": regional,
        "SMN_ENDPOINT": regional,
    }
    host = Host(template, fleet)  # a new instance, with SYNC_SCOPES=accessible
    finished: list[tuple[dict[str, Any], Any]] = []
    all_done = threading.Event()

    def worker(invocation: dict[str, Any]) -> None:  # the one worker runner, in this process: its logs show
        finished.append((invocation, run_worker(fleet, invocation["body"], threads=True).answer))
        if len(finished) == len(scopes):
            all_done.set()

    emulator.run_async = worker
    try:
        answer, _ = host.invoke(events.timer_event(template))  # 207: the own project is refused, as meant
        if not isinstance(answer, dict) or answer.get("status") != Status.DISPATCHED:
            return "failed", False
        sent = [s for s in answer["scopes"] if "request_id" in s]
        skipped = [s["project_id"][:8] for s in answer["scopes"] if "request_id" not in s]
        print(f"    SYNC_SCOPES=accessible: IAM lists {len(answer['scopes'])} region projects the function reaches")
        print(f"    coordinator: {answer['status']} {len(sent)} workers (pass {answer['pass_id']})")
        print(f"    not dispatched (outside SYNC_ALLOWED_TARGETS): {', '.join(skipped) or 'none'}")
        all_done.wait(60)
    finally:
        emulator.run_async = None
        host.close()
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
