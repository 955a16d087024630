"""The composition root: `handler(event, context)` runs the pipeline, `initializer(context)` warms it.

event -> triggers (recognise, unwrap) -> intents.interpret (pure: one Intent) -> executors.execute (through a
cloud.Cloud bound to the allowlist) -> answers.render -> answers.conclude (one Outcome) -> log line, deliver
"""

import logging
import os
import threading
import time
from typing import Any, NamedTuple

from . import __version__, answers, intents, logs, triggers, validation
from .answers import Outcome, Rendered
from .cce import Clients
from .cloud import Cloud
from .credentials import TokenCache, warm_token
from .errors import SyncError, UpstreamTimeout
from .executors import execute
from .model import Trigger
from .recent import RecentEvents
from .runtime import RuntimeContext
from .settings import Environment, Settings
from .transport import Transport, new_session

__all__ = ["handler", "initializer", "reset"]


class _Process(NamedTuple):
    """What one function instance builds once and reuses across invocations."""

    settings: Settings
    transport: Transport
    clients: Clients  # one CCE client per region
    tokens: TokenCache
    recent: RecentEvents[Rendered | SyncError]


_lock = threading.Lock()
_process: _Process | None = None


def _current(context: RuntimeContext) -> _Process:
    """The instance's state, built on first use from the environment and the first context's user data."""
    global _process  # noqa: PLW0603 - the per-instance state of a serverless function
    if _process is None:
        with _lock:
            if _process is None:
                settings = Settings.from_environ(Environment(os.environ, context.user_data))
                logs.logger().setLevel(settings.log_level)
                user_agent = f"nodepool-sync/{__version__} ({settings.function_name})"
                transport = Transport(
                    new_session(user_agent), settings.connect_timeout_seconds, settings.read_timeout_seconds
                )
                clients = Clients(settings, transport, user_agent)
                recent = RecentEvents[Rendered | SyncError](settings.dedup_window_seconds)
                _process = _Process(settings, transport, clients, TokenCache(), recent)
    return _process


def reset() -> None:
    """Forget the per-process state, so the next invocation reads the environment again (tests, local CLI)."""
    global _process  # noqa: PLW0603
    with _lock:
        if _process is not None:
            _process.transport.session.close()
        _process = None


def _run(intent: intents.Intent, cloud: Cloud, judge: intents.Judge) -> Rendered | SyncError:
    """Execute and render; the result kept for a duplicate delivery is scrubbed of this invocation's secrets."""
    try:
        rendered = answers.render(execute(intent, cloud, judge))
    except SyncError as error:
        return error
    secrets = cloud.secrets()  # every credential the execution used is known by now
    for line in rendered.log_lines:
        logs.write(logging.INFO, line, secrets)
    return rendered._replace(document=logs.scrub(rendered.document, secrets))


def _one(process: _Process, event: Any, trigger: Trigger, view: RuntimeContext, started: float) -> Outcome:
    """Unwrap, interpret and execute one (non-batch) event into its outcome."""
    settings = process.settings
    try:
        unwrapped = triggers.unwrap(event, trigger, settings.max_body_bytes)
    except SyncError as error:
        correlation_id = triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
        return answers.conclude(trigger, error, None, settings.secrets(), correlation_id, view.request_id, started)
    judge = intents.judge(settings, view.project_id, time.time())
    intent = intents.interpret(unwrapped, judge)
    deadline, own_project = view.deadline(settings.answer_reserve_ms), judge.defaults.project_id
    client = process.clients.get(intents.intent_region(intent) or settings.region)
    cloud = Cloud(settings, client, process.transport, process.tokens, view, deadline, own_project)

    def run() -> Rendered | SyncError:
        return _run(intent, cloud, judge)

    result: Rendered | SyncError
    try:  # a redelivery within the window gets the first delivery's result; a transient failure is not kept
        key = unwrapped.event_id
        result = run() if key is None else process.recent.once(key, run, cloud.deadline, keep=answers.lasting)
    except UpstreamTimeout as timeout:
        result = timeout
    target, correlation_id = intents.intent_target(intent), unwrapped.correlation_id
    return answers.conclude(trigger, result, target, cloud.secrets(), correlation_id, view.request_id, started)


def handler(event: Any, context: Any = None) -> Any:
    """FunctionGraph entry point: do what the event asks and answer as its trigger expects."""
    try:
        return _handle(event, context)
    except SyncError:
        raise
    except Exception as exc:
        # A bug must still give API Gateway a well-formed answer; other triggers see it raised and retry.
        logs.write(logging.ERROR, {"message": "internal error", "error": type(exc).__name__}, [])
        if isinstance(event, dict) and "httpMethod" in event:
            body = {"error_code": "FUNC.INTERNAL", "error_msg": "internal error", "request_id": ""}
            return answers.apig_response(500, body, triggers.apig_request_id(event))
        raise


def _handle(event: Any, context: Any) -> Any:
    started, view, trigger = time.perf_counter(), RuntimeContext(context), Trigger.DIRECT
    try:
        trigger = triggers.recognize(event)
        process = _current(view)
        batch = triggers.unwrap_batch(event) if trigger is Trigger.EVENTGRID_BATCH else None
    except SyncError as error:
        correlation_id = triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
        outcome = answers.conclude(trigger, error, None, (), correlation_id, view.request_id, started)
        logs.write(logging.WARNING, answers.log_fields(outcome), ())
        return answers.deliver(outcome)
    outcomes = []
    for item in batch if batch is not None else [event]:
        outcome = _one(process, item, Trigger.EVENTGRID if batch is not None else trigger, view, started)
        level = logging.WARNING if outcome.error is not None else logging.INFO
        logs.write(level, answers.log_fields(outcome), process.settings.secrets())
        outcomes.append(outcome)
    return answers.deliver_batch(outcomes) if batch is not None else answers.deliver(outcomes[0])


def initializer(context: Any = None) -> None:
    """FunctionGraph initializer: read the settings, compile the schema and, for IAM passwords, fetch the token."""
    view = RuntimeContext(context)
    process = _current(view)
    validation.warm()
    project_id = process.settings.defaults(view.project_id).project_id
    if project_id:
        warm_token(process.settings, view, project_id, process.transport, process.tokens)
