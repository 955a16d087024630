"""`python -m local`: run, invoke, serve, generate-event, validate, package, deploy-config (never deployed)."""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
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


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _print_json(label: str, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    print(f"{label}:\n" + "\n".join("    " + line for line in text.splitlines()))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped; quotes around a value are removed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"{path}:{number}: expected KEY=VALUE")
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


def _show_requests(emulator: Emulator, seen: int) -> None:
    for recorded in emulator.requests[seen:]:
        _print_json(f"{'IAM' if recorded.is_iam else 'CCE'} received", masked_request(recorded))


@contextmanager
def emulated_cloud(environment: dict[str, str]) -> Iterator[Emulator]:
    """Start the emulator, point the environment at it and teach it the environment's credentials."""
    _say("starting the local CCE + IAM emulator on loopback")
    emulator = Emulator().start()
    _say(f"emulator listening on {emulator.url}")
    environment.update(CCE_ENDPOINT=emulator.url, IAM_ENDPOINT=emulator.url)
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
        return all(r.get("status") in ("accepted", "dry_run") for r in answer["results"])
    succeeded = ("accepted", "dry_run", "succeeded", "all_accepted", "in_sync", "reconciled", "ignored")
    return isinstance(answer, dict) and answer.get("status") in succeeded


def entry_points(template: dict[str, Any]) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The handler and initializer the template names (e.g. index.handler), imported as FunctionGraph would."""

    def resolve(spec: str) -> Callable[..., Any]:
        module, _, name = spec.rpartition(".")
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return function

    function = template["function"]
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


def _demo_cluster(emulator: Emulator, project: str, cluster: str, nodepool: str) -> None:
    """A cluster with node pools in every class: drifted, in sync, unknown (no counts), syncing."""
    emulator.add_pool(project, cluster, "np-web-0001", "web", nodes=3, synced=1)  # drifted
    emulator.add_pool(project, cluster, "np-batch-0001", "batch", nodes=2, synced=0)  # drifted
    emulator.add_pool(project, cluster, "np-api-0001", "api", nodes=2, synced=2)  # in sync
    emulator.add_pool(project, cluster, "np-jobs-0001", "jobs", nodes=4, synced=2)  # syncing (below)
    emulator.set_busy(project, cluster, "np-jobs-0001", "job-jobs-0001")
    emulator.add_pool(project, cluster, nodepool, "workers")  # no counts reported: unknown
    emulator.add_pool(project, cluster, "DefaultPool", "DefaultPool", nodes=1, synced=1)


def command_run(args: argparse.Namespace) -> int:
    """The function doing its job against the emulator: a reconcile pass, a change event, the three triggers."""
    template = templates.load(args.template)
    environment = _base_environment(template)
    environment.setdefault("JOB_POLL_INTERVAL_SECONDS", "0.25")
    environment["SYNC_RECONCILE"] = json.dumps({"max_syncing_per_cluster": 2})
    cluster, nodepool = environment["CCE_CLUSTER_ID"], environment["CCE_NODEPOOL_ID"]
    with emulated_cloud(environment) as emulator:
        initializer = template["function"].get("initializer", "none")
        print(f"--- 0: a new instance: the initializer {initializer} reads the settings and fetches the token")
        _apply_environment(template, environment)
        _show_requests(emulator, 0)
        project = environment["HUAWEICLOUD_SDK_PROJECT_ID"]
        _demo_cluster(emulator, project, cluster, nodepool)
        doc = templates.document(cluster, nodepool, {"maxUnavailable": 2, "nodeIDs": ["node-0001", "node-0002"]})
        fleet = {"cluster_id": cluster, "nodepools": {"names": ["web", "batch"]}, "spec": {"maxUnavailable": 1}}
        waited = templates.document(cluster, nodepool, {"maxUnavailable": 1})
        steps = [
            (
                "timer trigger: a reconcile pass over a cluster with pools in every class "
                "(SYNC_RECONCILE max_syncing_per_cluster 2; jobs is already syncing)",
                templates.timer_event(template),
            ),
            (
                "a pool update arrives: CCE's CTS trace of updateNodePool on api, now drifted",
                lambda: emulator.update_template(project, cluster, "np-api-0001"),
            ),
            ("EventGrid CloudEvent", templates.eventgrid_event(template, doc)),
            (
                "API Gateway request (POST " + template["triggers"]["apig"]["path"] + ")",
                templates.apig_event(
                    template,
                    json.dumps({"spec": {"maxUnavailable": 3}}).encode(),
                    {"cluster_id": cluster, "nodepool_id": nodepool},
                ),
            ),
            (
                "fleet sync: the pools named web and batch, one after another (batch is in sync by now)",
                fleet,
            ),
            ("EventGrid CloudEvent with wait: follow the job until it ends", templates.eventgrid_event(
                template, {**waited, "wait": True})),
        ]  # fmt: skip
        failures = 0
        for number, (title, step) in enumerate(steps, 1):
            print(f"\n--- {number}/{len(steps)}: {title}")
            event = step() if callable(step) else step  # a change happens when its step comes
            _print_json("event", event)
            if "wait" in json.dumps(event):
                emulator.job_seconds = 2.0
                _say("the emulator's job takes 2 s: the function polls it (JOB_POLL_INTERVAL_SECONDS=0.25)")
            seen = len(emulator.requests)
            answer, ok = _invoke_handler(template, event)
            _show_requests(emulator, seen)
            _print_json("answer", answer)
            print(f"result: {'OK' if ok else 'FAILED'}")
            failures += not ok
        iam_calls = len(emulator.iam_requests())
    print(f"\n{len(steps) - failures}/{len(steps)} steps succeeded; IAM token requests: {iam_calls}")
    return 1 if failures else 0


def command_invoke(args: argparse.Namespace) -> int:
    """Run the handler once with an event file (or stdin) and print the answer."""
    template = templates.load(args.template)
    text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
    try:
        event = json.loads(text)
    except ValueError as exc:
        print(f"error: the event is not JSON: {exc}", file=sys.stderr)
        return 2
    environment = _base_environment(template)
    environment.update({k: v for k, v in os.environ.items() if k.startswith(("HUAWEICLOUD_", "CCE_", "SYNC_", "IAM_"))})
    if args.env_file:
        environment.update(read_env_file(Path(args.env_file)))
    real_cloud = not args.emulator and any(environment.get(name) for name in CREDENTIAL_VARIABLES)
    if real_cloud:
        _say("credentials given and no --emulator: invoking against Huawei Cloud")
        _apply_environment(template, environment)
        answer, ok = _invoke_handler(template, event)
    else:
        with emulated_cloud(environment):
            _apply_environment(template, environment)
            answer, ok = _invoke_handler(template, event)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
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
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def command_serve(args: argparse.Namespace) -> int:
    """A local API Gateway: curl it, it invokes the handler, backed by the emulator unless --no-emulator."""
    template = templates.load(args.template)
    environment = _base_environment(template)
    if args.env_file:
        environment.update(read_env_file(Path(args.env_file)))
    server = make_gateway(template, "127.0.0.1", args.port)
    route = template["triggers"]["apig"]["path"]
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def serve() -> None:
        _apply_environment(template, environment)
        _say(f"API Gateway emulation on {url}  (route: POST {route}; Ctrl-C to stop)")
        example = route.format(cluster_id=environment.get("CCE_CLUSTER_ID", "CLUSTER"), nodepool_id="NODEPOOL")
        body = json.dumps({"spec": {"maxUnavailable": 1}})
        _say(f"try: curl -s -X POST {url}{example} -H 'content-type: application/json' -d '{body}'")
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
    """Print a realistic event of the given trigger kind."""
    template = templates.load(args.template)
    spec = (
        json.loads(args.spec)
        if args.spec
        else ({"maxUnavailable": args.max_unavailable} if args.max_unavailable else None)
    )
    if args.kind == "timer":
        event = templates.timer_event(template, templates.document(args.cluster, args.nodepool, spec) or None)
    elif args.kind == "eventgrid":
        event = templates.eventgrid_event(template, templates.document(args.cluster, args.nodepool, spec))
    else:
        environment = _base_environment(template)
        params = {
            "cluster_id": args.cluster or environment.get("CCE_CLUSTER_ID", ""),
            "nodepool_id": args.nodepool or environment.get("CCE_NODEPOOL_ID", ""),
        }
        body = json.dumps({"spec": spec} if spec is not None else {}).encode()
        event = templates.apig_event(template, body, params)
    print(json.dumps(event, indent=2))
    return 0


def command_validate(args: argparse.Namespace) -> int:
    """Validate a sync request document and print every error with its JSON Pointer."""
    from handler.triggers import parse_json
    from handler.validation import check_document

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        document = parse_json(text, args.file)
    except Exception as exc:
        print(f"{args.file}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    errors = check_document(document)
    for error in errors:
        print(f"{args.file}: {error}")
    if not errors:
        print(f"{args.file}: valid")
    return 1 if errors else 0


def command_package(args: argparse.Namespace) -> int:
    """Build the FunctionGraph zip."""
    from .package import build

    template = templates.load(args.template)
    python = args.python or f"python{templates.python_version(template)}"
    build(Path(args.output), python, bytecode=not args.no_bytecode)
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


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m local", description="Local tools for the nodepool-sync function.")
    main.add_argument("--template", type=Path, default=templates.TEMPLATE, help="template.yaml to read")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help=command_run.__doc__, description=command_run.__doc__)
    run.set_defaults(func=command_run)

    invoke = commands.add_parser("invoke", help=command_invoke.__doc__, description=command_invoke.__doc__)
    invoke.add_argument("event", help="event JSON file, or - for stdin")
    invoke.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    invoke.add_argument(
        "--emulator", action="store_true", help="use the local emulator even when credentials are given"
    )
    invoke.set_defaults(func=command_invoke)

    serve = commands.add_parser("serve", help=command_serve.__doc__, description=command_serve.__doc__)
    serve.add_argument("--port", type=int, default=3000, help="port on 127.0.0.1 (default 3000, 0 for any)")
    serve.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    serve.add_argument("--no-emulator", action="store_true", help="talk to Huawei Cloud instead of the emulator")
    serve.set_defaults(func=command_serve)

    generate = commands.add_parser(
        "generate-event", help=command_generate_event.__doc__, description=command_generate_event.__doc__
    )
    generate.add_argument("kind", choices=["timer", "eventgrid", "apig"])
    generate.add_argument("--cluster", help="cluster ID")
    generate.add_argument("--nodepool", help="node pool ID")
    generate.add_argument("--spec", help="the spec as JSON, e.g. '{\"maxUnavailable\": 2}'")
    generate.add_argument("--max-unavailable", type=int, help="shorthand for a spec with only maxUnavailable")
    generate.set_defaults(func=command_generate_event)

    validate = commands.add_parser("validate", help=command_validate.__doc__, description=command_validate.__doc__)
    validate.add_argument("file", help="sync request document (JSON), or - for stdin")
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
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except templates.TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
