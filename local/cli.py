"""`python -m local`: run, invoke, serve, status, generate-event, validate, package, deploy-config, openapi.

Dev tools, never deployed. Every command prints its answer on stdout, progress and the function's log lines on
stderr (labelled), an error as one line; exit 2 for a usage error, 1 for a failed invocation.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler.logs import LOGGER_NAME

from . import events, terraform
from . import template as templates
from .clouds import UsageError, chosen_cloud
from .clouds import say as _say
from .gateway import make_gateway, saying_when_gone
from .host import Host, JobWatch, base_environment, environment_for, json_argument, log_lines_to, read_input
from .layout import DEMO_AK, DEMO_PROJECT, DEMO_SCOPES, DEMO_SK
from .names import resolve

ROOT = Path(__file__).resolve().parent.parent


def _invoke_once(
    template: dict[str, Any], environment: dict[str, str], event: Any, args: argparse.Namespace
) -> tuple[Any, bool]:
    with chosen_cloud(environment, args.cloud, args.emulator), Host(template, environment) as host:
        return host.invoke(event)


def command_invoke(args: argparse.Namespace) -> int:
    """Run the handler once with an event file (or stdin) and print its answer; exit 1 when it failed."""
    template = templates.load(args.template)
    event = json_argument(read_input(args.event), f"the event in {args.event}")
    environment = environment_for(template, args.env_file, os.environ)
    if args.dry_run:
        environment["SYNC_DRY_RUN"] = "true"
    watch = JobWatch()
    # First among the handlers: it has the job ID before the line reaches stderr, where a person sees it.
    logging.getLogger(LOGGER_NAME).handlers.insert(0, watch)
    try:
        answer, ok = _invoke_once(template, environment, event, args)
    except KeyboardInterrupt:  # a sync it started goes on in CCE: say so, and how to follow it
        document = event if isinstance(event, dict) else {}
        cluster = document.get("cluster_id") or environment.get("CCE_CLUSTER_ID", "CLUSTER")
        pool = document.get("nodepool_id") or environment.get("CCE_NODEPOOL_ID", "NODEPOOL")
        job = f"job {watch.jobid}" if watch.jobid else "no job ID seen yet"
        print(
            f"interrupted: a sync may have been started ({job}) and goes on in CCE; "
            f"follow it with: nodepool-sync status {cluster} {pool}",
            file=sys.stderr,
        )
        return 130
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(watch)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0 if ok else 1


def command_status(args: argparse.Namespace) -> int:
    """Ask how a node pool's sync is going (GET on the API route): syncing or not, the job, progress; the cluster
    and the pool by ID or by name."""
    template = templates.load(args.template)
    environment = environment_for(template, args.env_file, os.environ)
    with chosen_cloud(environment, args.cloud, args.emulator), Host(template, environment) as host:
        cluster, pool = resolve(host.function, args.cluster, args.nodepool)  # a name typed: its ID
        path = {"cluster_id": cluster, "nodepool_id": pool}
        answer, ok = host.invoke(events.apig_event(template, b"", path, method="GET", headers={}))
    body = json.loads(answer["body"]) if isinstance(answer, dict) and "body" in answer else answer
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0 if ok else 1


def command_serve(args: argparse.Namespace) -> int:
    """A local API Gateway: curl it, it invokes the handler, backed by an emulator unless --cloud."""
    from handler.errors import SyncError

    template = templates.load(args.template)
    environment = environment_for(template, args.env_file, os.environ)
    route = template["triggers"]["apig"]["path"]

    if args.cloud:
        _require_credentials(environment)

    def serve(cloud: str) -> None:
        try:
            host = Host(template, environment)  # the initializer: an IAM password fetches its token here
        except SyncError as error:
            raise UsageError(f"the credentials were not accepted: {error.message}") from None
        invoke = host.invoke if args.cloud else saying_when_gone(host.invoke, cloud)
        server = make_gateway(template, invoke, "127.0.0.1", args.port)
        url = f"http://127.0.0.1:{server.server_address[1]}"
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

    with chosen_cloud(environment, args.cloud, args.emulator) as cloud:
        serve(cloud)
    return 0


def _require_credentials(environment: dict[str, str]) -> None:
    """Before `serve --cloud` listens: credentials and a project given, else a usage error naming what is missing."""
    from handler.credentials import SOURCES
    from handler.variables import AUTH_SOURCES

    given = [names for source, names in SOURCES if source in AUTH_SOURCES]
    if not any(all(environment.get(name) for name in names) for names in given):
        wanted = "; or ".join(", ".join(names) for names in given)
        raise UsageError(f"--cloud needs credentials: set {wanted} (in the shell or an --env-file)")
    if not environment.get("HUAWEICLOUD_SDK_PROJECT_ID"):
        raise UsageError("--cloud needs HUAWEICLOUD_SDK_PROJECT_ID (in the shell or an --env-file)")


def command_emulator(args: argparse.Namespace) -> int:
    """Run one long-lived emulator on loopback holding the demo layout, until Ctrl-C; the other commands find it."""
    from .clouds import job_seconds, reset_running, running, serve_until_stopped, start_emulator
    from .workers import run_sent_workers

    if args.reset:  # the emulator --url names, else the one on --port, else the one .emulator.json names
        url = args.url or (f"http://127.0.0.1:{args.port}" if args.port else None)
        print(f"reset the emulator at {reset_running(url)}: layout restored, jobs ended")
        return 0
    if not args.empty and (other := running()) is not None:
        raise UsageError(f"an emulator already runs at {other}; python -m local emulator --reset restores its layout")
    # --empty: a bare one, for the bench (no layout, jobs that end at once), not found by the other commands.
    environment = None if args.empty else base_environment(templates.load(args.template))
    emulator = start_emulator(environment, args.port, None if environment is None else job_seconds(args.jobs))
    for token in args.token:
        emulator.add_token(token)
    for pair in args.access_key:
        access_key, _, secret_key = pair.partition(":")
        if not (access_key and secret_key):
            raise UsageError(f"--access-key takes AK:SK, not {pair[:40]!r}")
        emulator.add_keys(access_key, secret_key)
    if not args.quiet:  # a line per request it receives, as a person watching its terminal wants
        emulator.log = lambda line: print(f"  {time.strftime('%H:%M:%S')} {line}", flush=True)
    run_sent_workers(emulator)  # a fanned-out pass's workers run, as FunctionGraph runs them
    print(f"emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
    if environment is None:
        serve_until_stopped(emulator, discoverable=False)
        return 0
    cluster, nodepool = environment["CCE_CLUSTER_ID"], environment["CCE_NODEPOOL_ID"]
    print(f"  CCE, IAM, SMN and FunctionGraph of project {DEMO_PROJECT}; the syncs you start take {args.jobs} s")
    print("  (the jobs pool's sync, there from the start to show a syncing pool, runs for 20 minutes)")
    print(f"  cluster {cluster}: pools web, batch, analytics (drifted), api (in sync), jobs (syncing),")
    print(f"  {nodepool} (workers, no counts); clusters cce-test, cce-stage, cce-prod, cce-halt-a/b/c")
    print("  unknown clusters, pools and jobs answer 404 CCE.01404001, as CCE does")
    print(f"  for the official SDK's clients (endpoint {emulator.url}): AK {DEMO_AK}, SK {DEMO_SK}")
    scopes = ", ".join(f"{region}/{project[:8]}" for region, project in DEMO_SCOPES)
    print(f"  SYNC_SCOPES=accessible lists the region projects {scopes} (and the own project)")
    print("try, in another terminal:")
    print("  python -m local generate-event apig > sync.json && python -m local invoke sync.json")
    print(f"  python -m local status {cluster} {nodepool}")
    print("  python -m local generate-event reconcile | python -m local invoke -")
    print("  python -m local emulator --reset      # the layout back, jobs ended", flush=True)
    listed = [{"region": region, "project_id": project} for region, project in DEMO_SCOPES]
    facts = {"project_id": DEMO_PROJECT, "access_key": {"ak": DEMO_AK, "sk": DEMO_SK}, "scopes": listed}
    serve_until_stopped(emulator, discoverable=True, facts=facts)
    return 0


EVENT_KINDS = ("apig", "status", "eventgrid", "batch", "timer", "fleet", "reconcile", "cts", "eventgrid-change")


def command_generate_event(args: argparse.Namespace) -> int:
    """Print an event of the given shape (the template's cluster and pool unless told): apig (POST sync), status
    (GET), eventgrid, batch (an EventGrid delivery of two), timer (the template's own: a reconcile pass), fleet
    and reconcile (documents, as a direct invocation), cts and eventgrid-change (a pool's template changed)."""
    from local.emulator import cloud_event, cts_trace

    template = templates.load(args.template)
    environment = base_environment(template)
    cluster = args.cluster or environment.get("CCE_CLUSTER_ID", "")
    nodepool = args.nodepool or environment.get("CCE_NODEPOOL_ID", "")
    spec = _spec_option(args)
    carries_spec = args.kind not in ("cts", "eventgrid-change", "timer", "status")
    if not carries_spec and (args.spec or args.max_unavailable is not None):
        raise UsageError(f"a {args.kind} event carries no spec: drop --spec/--max-unavailable")
    spec = spec if spec is not None else {"maxUnavailable": 1}
    paths = {"cluster_id": cluster, "nodepool_id": nodepool}
    event: Any
    if args.kind in ("cts", "eventgrid-change"):
        trace = cts_trace(environment.get("HUAWEICLOUD_SDK_PROJECT_ID", DEMO_PROJECT), cluster, nodepool, nodepool)
        event = trace if args.kind == "cts" else cloud_event(trace)
    elif args.kind == "timer":
        if args.cluster or args.nodepool:
            raise UsageError("the timer event is the template's own (a reconcile pass): drop --cluster/--nodepool")
        event = events.timer_event(template)
    elif args.kind == "eventgrid":
        event = events.eventgrid_event(template, events.document(cluster, nodepool, spec))
    elif args.kind == "batch":
        other = "np-web-0001" if nodepool != "np-web-0001" else "np-batch-0001"
        event = {
            "events": [
                events.eventgrid_event(template, events.document(cluster, pool, spec)) for pool in (nodepool, other)
            ]
        }
    elif args.kind == "fleet":
        event = {"cluster_id": cluster, "nodepools": {"names": ["web", "batch"]}, "spec": spec}
    elif args.kind == "reconcile":
        event = {"reconcile": {"clusters": [cluster], "max_syncing_per_cluster": 2}, "spec": spec}
    elif args.kind == "status":
        event = events.apig_event(template, b"", paths, method="GET", headers={})
    else:
        event = events.apig_event(template, json.dumps({"spec": spec}).encode(), paths)
    print(json.dumps(event, indent=2, ensure_ascii=False))
    return 0


def _spec_option(args: argparse.Namespace) -> dict[str, Any] | None:
    """--spec and --max-unavailable as one spec, or None when neither is given."""
    spec = json_argument(args.spec, "--spec") if args.spec else None
    if spec is not None and not isinstance(spec, dict):
        raise UsageError("--spec must be a JSON object, such as '{\"maxUnavailable\": 2}'")
    if args.max_unavailable is not None:
        if spec is not None and spec.get("maxUnavailable", args.max_unavailable) != args.max_unavailable:
            raise UsageError("--max-unavailable and --spec's maxUnavailable disagree: give one")
        spec = {**(spec or {}), "maxUnavailable": args.max_unavailable}
    return spec


def command_validate(args: argparse.Namespace) -> int:
    """Check an event or document exactly as the handler would (defaults, schema, rules, allowlist); send nothing."""
    from .verdict import verdict

    template = templates.load(args.template)
    event = json_argument(read_input(args.file), f"{args.file}")
    environment = environment_for(template, args.env_file, os.environ)
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
    # The template's runtime's zip is dist/nodepool-sync.zip, what deploy-config points at; another Python's has
    # its own name, so building one never overwrites the other.
    runtime = templates.python_version(template)
    default = ROOT / "dist" / ("nodepool-sync.zip" if version == runtime else f"nodepool-sync-python{version}.zip")
    try:
        build(Path(args.output) if args.output else default, python, bytecode=not args.no_bytecode)
    except subprocess.CalledProcessError as exc:
        print(f"error: the build failed at: {' '.join(map(str, exc.cmd))[:200]}", file=sys.stderr)
        return 1
    return 0


def command_deploy_config(args: argparse.Namespace) -> int:
    """Render template.yaml into Terraform JSON, with a terraform.tfvars.example beside it."""
    from .package import built_for

    template = templates.load(args.template)
    environment_for(template, None, {})  # the settings checked as the function will: a bad one stops here
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    zip_file = Path(args.zip).resolve()
    config = terraform.render_terraform(template, os.path.relpath(zip_file, output.parent))
    output.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    example = output.parent / "terraform.tfvars.example"
    example.write_text(terraform.tfvars_example(config, template), encoding="utf-8")
    environment = template["function"].get("environment", {})
    if {environment.get("CCE_CLUSTER_ID"), environment.get("CCE_NODEPOOL_ID")} & set(terraform.SAMPLE_IDS):
        _say(
            "warning: template.yaml holds the sample cluster and pool IDs; give yours as cluster_id and nodepool_id "
            "in terraform.tfvars (a sync resets the nodes of the pool it names)"
        )
    if not zip_file.exists():
        _say(f"warning: {os.path.relpath(zip_file, ROOT)} does not exist yet: make package builds it before apply")
    elif (built := built_for(zip_file)) and built != templates.python_version(template):
        runtime = template["function"]["runtime"]
        _say(
            f"warning: {zip_file.name} was built for Python {built}, the template's runtime is {runtime}: make package"
        )
    required = " ".join(f"-var {name}=..." for name in terraform.required_variables(config))
    print(f"wrote {output} and {example}")
    print(f"next: cd {output.parent} && cp terraform.tfvars.example terraform.tfvars (fill it in), then")
    print(f"      terraform init && terraform apply      (or without the file: terraform apply {required})")
    return 0


def command_openapi(args: argparse.Namespace) -> int:
    """Write the OpenAPI 3 description of the API Gateway routes, from the same JSON Schemas as the validation."""
    from .openapi import describe

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(describe(templates.load(args.template)), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}: import it in API Gateway (API Management > APIs > Import API)")
    return 0


def _cloud_options(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group()
    where.add_argument(
        "--cloud", action="store_true", help="talk to Huawei Cloud (whose sync resets nodes); without it, loopback only"
    )
    where.add_argument(
        "--emulator",
        metavar="URL",
        help="the emulator at URL (default: the one make emulator runs, else one of its own)",
    )


EXAMPLES = {
    "run": "python -m local run --verbose   (make run is the same, VERBOSE=1 make run too)",
    "emulator": "python -m local emulator --jobs 5-20   (then, elsewhere: python -m local emulator --reset)",
    "invoke": "python -m local generate-event apig | python -m local invoke -",
    "serve": "python -m local serve --port 3000",
    "status": "python -m local status 7c3e1b2a-5d4f-11ee-9a3b-0255ac100b04 np-web-0001",
    "generate-event": "python -m local generate-event reconcile > pass.json",
    "validate": "python -m local generate-event fleet | python -m local validate -",
    "package": "python -m local package --python python3.12",
    "deploy-config": "python -m local deploy-config --output deploy/main.tf.json",
    "openapi": "python -m local openapi --output deploy/openapi.json",
    "metrics": "python -m local metrics --chart pools_drifted",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, and where to read more) and exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a port; expected a number from 0 to 65535 (0: any)")
    return port


def _command(commands: Any, name: str, function: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    doc = inspect.cleandoc(function.__doc__ or "")
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=" ".join(doc.split()),
        description=doc,
        epilog=f"example: {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=function)
    return parser


EXIT_CODES = """exit codes:
  0    everything asked was done or rightly left alone: accepted, running, succeeded, in sync, a dry run,
       skipped because a sync already runs, ignored
  1    anything failed or was refused: a guard's 409, a 207 (a pass's failed or refused pool, an unread cluster,
       a scope not dispatched), a failed job, an invalid document in validate
  2    a usage or settings error
  130  Ctrl-C"""


def parser() -> argparse.ArgumentParser:
    from handler import __version__

    from .demo import command_run  # the demo imports this module's helpers
    from .metrics import add_command, command_metrics

    main = _Parser(
        prog="python -m local",
        description="Local tools for the nodepool-sync function.",
        epilog=EXIT_CODES
        + "\n\nexample: make emulator, then: python -m local generate-event apig | python -m local invoke -",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument("--version", action="version", version=f"nodepool-sync {__version__}")
    main.add_argument("--template", type=Path, default=templates.TEMPLATE, help="template.yaml to read")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = _command(commands, "run", command_run)
    run.add_argument("--verbose", action="store_true", help="show every request and log line in full (secrets masked)")

    emulator = _command(commands, "emulator", command_emulator)
    emulator.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: a free one)")
    emulator.add_argument(
        "--jobs", default="5-20", metavar="MIN-MAX", help="seconds each sync job takes (default 5-20)"
    )
    emulator.add_argument("--reset", action="store_true", help="restore the running emulator's layout and exit")
    emulator.add_argument("--url", help=argparse.SUPPRESS)  # --reset of an emulator not found by .emulator.json
    emulator.add_argument("--empty", action="store_true", help="no layout, not found by other commands (the bench)")
    emulator.add_argument("--token", action="append", default=[], help="a token accepted as is (repeatable)")
    emulator.add_argument("--quiet", action="store_true", help="no line per request received")
    emulator.add_argument("--access-key", action="append", default=[], help="AK:SK accepted for signed requests")

    invoke = _command(commands, "invoke", command_invoke)
    invoke.add_argument("event", help="event JSON file, or - for stdin")
    invoke.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    invoke.add_argument("--dry-run", action="store_true", help="validate and show the request, send nothing")
    _cloud_options(invoke)

    serve = _command(commands, "serve", command_serve)
    serve.add_argument("--port", type=_port, default=3000, help="port on 127.0.0.1 (default 3000, 0 for any)")
    serve.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    _cloud_options(serve)

    status = _command(commands, "status", command_status)
    status.add_argument("cluster", help="cluster ID or name")
    status.add_argument("nodepool", help="node pool ID or name")
    status.add_argument("--env-file", help="KEY=VALUE file of environment variables")
    _cloud_options(status)

    generate = _command(commands, "generate-event", command_generate_event)
    generate.add_argument("kind", choices=EVENT_KINDS, help=", ".join(EVENT_KINDS))
    generate.add_argument("--cluster", help="cluster ID (default: the template's CCE_CLUSTER_ID)")
    generate.add_argument("--nodepool", help="node pool ID (default: the template's CCE_NODEPOOL_ID)")
    generate.add_argument("--spec", help="the spec as JSON, e.g. '{\"maxUnavailable\": 2}'")
    generate.add_argument("--max-unavailable", type=int, help="the spec's maxUnavailable (default 1)")

    validate = _command(commands, "validate", command_validate)
    validate.add_argument("file", help="an event or a sync, fleet or reconcile document (JSON), or - for stdin")
    validate.add_argument("--env-file", help="KEY=VALUE file of environment variables (default: the template's)")

    package = _command(commands, "package", command_package)
    package.add_argument("--python", help="interpreter of the target version (default: the template's runtime)")
    package.add_argument(
        "--output", help="zip to write (default: dist/nodepool-sync.zip, dist/nodepool-sync-pythonX.Y.zip for another)"
    )
    package.add_argument("--no-bytecode", action="store_true", help="ship sources only")

    deploy = _command(commands, "deploy-config", command_deploy_config)
    deploy.add_argument("--output", default=str(ROOT / "deploy" / "main.tf.json"), help="file to write")
    deploy.add_argument("--zip", default=str(ROOT / "dist" / "nodepool-sync.zip"), help="the zip to deploy")

    add_command(_command(commands, "metrics", command_metrics))

    openapi = _command(commands, "openapi", command_openapi)
    openapi.add_argument("--output", default=str(ROOT / "deploy" / "openapi.json"), help="file to write")
    return main


def main(argv: list[str] | None = None) -> int:
    from handler.errors import SyncError

    args = parser().parse_args(argv)  # argparse itself answers a usage error with exit code 2
    log_lines_to(sys.stderr)
    try:
        code: int = args.func(args)
    except (UsageError, templates.TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SyncError as error:  # the function's initializer failed: as FunctionGraph would report it, one line
        print(f"error: {type(error).__name__}: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
