"""The function as an object: `Function(settings, transport, clock)` interprets and handles events.

event -> triggers (recognise, unwrap) -> intents.interpret (pure: one Intent of the table of kinds) ->
intent.perform (executor and renderer, through a cloud.Cloud bound to the allowlist) -> answers.conclude (one
Outcome) -> log line, deliver

index.py holds one lazily built from the environment; the CLI, the demo, the bench and the tests build their own
from a mapping. `interpret` is what `python -m local validate` calls: the same code as `handle`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import __version__, answers, logs, triggers, validation
from .answers import Outcome
from .cce import Clients
from .cloud import Cloud
from .credentials import TokenCache, warm_token
from .environment import Environment
from .errors import InternalError, SyncError, UpstreamTimeout
from .intents import interpret
from .judge import Judge, judge
from .kinds.base import kind_of
from .model import Trigger, Unwrapped
from .recent import RecentEvents
from .rendering import Answer
from .runtime import RuntimeContext
from .settings import Settings
from .transport import Transport, new_session
from .validation import requested_overrides
from .variables import misspelt

if TYPE_CHECKING:
    from .kinds.table import Intent

__all__ = ["Function", "Instance", "refuse_event"]


def unusable(event: Any, trigger: Trigger, error: SyncError, view: RuntimeContext, started: float) -> Any:
    """The answer to an event that cannot be taken apart (or meets settings that cannot be read), and its log line."""
    correlation_id = triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
    outcome = answers.conclude(trigger, error, None, (), correlation_id, view.request_id, started)
    logs.write(logging.WARNING, answers.log_fields(outcome), ())
    return answers.deliver(outcome)


def refuse_event(event: Any, context: Any, error: SyncError) -> Any:
    """How an event is answered when the function cannot be built (its settings are wrong): the event's own
    faults first, as the function would find them, then the settings' error."""
    started, view, trigger = time.perf_counter(), RuntimeContext(context), Trigger.DIRECT
    try:
        trigger = triggers.recognize(event)
    except SyncError as unrecognised:
        error = unrecognised
    return unusable(event, trigger, error, view, started)


class Function:
    """One function instance: its settings, transport, clients and token cache, and the recent events'
    results (a redelivery within the window gets the first delivery's)."""

    def __init__(
        self, settings: Settings, transport: Transport | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings, self.clock = settings, clock
        user_agent = f"nodepool-sync/{__version__} ({settings.function_name})"
        self.transport = transport or Transport(
            new_session(user_agent), settings.connect_timeout_seconds, settings.read_timeout_seconds
        )
        self.clients = Clients(settings, self.transport, user_agent)
        self.tokens = TokenCache()
        self.recent = RecentEvents[Answer | SyncError](settings.dedup_window_seconds)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Function:
        """A function whose settings are read from `environ`; raises ConfigurationError naming a bad variable."""
        settings = Settings.from_environ(environ)
        logs.logger().setLevel(settings.log_level)
        function = cls(settings)
        function.clients.get(settings.region)  # the function's own region: a missing endpoint is an error now
        return function

    def close(self) -> None:
        self.transport.session.close()

    # --- what validate shares -------------------------------------------------------------------------------

    @staticmethod
    def items(event: Any, trigger: Trigger) -> list[tuple[Any, Trigger]]:
        """The requests an event holds (one, or each event of an EventGrid batch) and their triggers."""
        if trigger is Trigger.EVENTGRID_BATCH:
            return [(item, Trigger.EVENTGRID) for item in triggers.unwrap_batch(event)]
        return [(event, trigger)]

    def unwrap(self, item: Any, trigger: Trigger) -> Unwrapped:
        return triggers.unwrap(item, trigger, self.settings.max_body_bytes)

    def interpret(self, unwrapped: Unwrapped, context_project: str = "") -> tuple[Intent, Judge]:
        """The request's intent (pure) and what it was judged against."""
        judged = judge(self.settings, context_project, self.clock(), self.clock)
        return interpret(unwrapped, judged), judged

    # --- handling -------------------------------------------------------------------------------------------

    def warm(self, context: Any = None) -> None:
        """The initializer's work: compile the schema and, for IAM passwords, fetch the token."""
        view = RuntimeContext(context)
        validation.warm()
        project_id = self.settings.defaults(view.project_id).project_id
        if project_id:
            warm_token(self.settings, view, project_id, self.transport, self.tokens)

    def handle(self, event: Any, context: Any = None) -> Any:
        """Do what the event asks and answer as its trigger expects."""
        try:
            return self._handle(event, RuntimeContext(context))
        except SyncError:
            raise
        except Exception as exc:
            # A bug must still give API Gateway a well-formed answer; other triggers see it raised and retry.
            logs.write(logging.ERROR, {"message": "internal error", "error": type(exc).__name__}, [])
            if isinstance(event, dict) and "httpMethod" in event:
                error = InternalError()
                body = {"error_code": error.code, "error_msg": error.message, "request_id": ""}
                return answers.apig_response(error.status, body, triggers.apig_request_id(event))
            raise

    def _handle(self, event: Any, view: RuntimeContext) -> Any:
        started, trigger = time.perf_counter(), Trigger.DIRECT
        try:
            trigger = triggers.recognize(event)
            items = self.items(event, trigger)
        except SyncError as error:
            return unusable(event, trigger, error, view, started)
        outcomes = []
        for item, kind in items:
            outcome = self._one(item, kind, view, started)
            level = logging.WARNING if outcome.error is not None else logging.INFO
            logs.write(level, answers.log_fields(outcome), self.settings.secrets())
            outcomes.append(outcome)
        return answers.deliver_batch(outcomes) if trigger is Trigger.EVENTGRID_BATCH else answers.deliver(outcomes[0])

    def cloud(self, view: RuntimeContext, region: str, own_project: str) -> Cloud:
        """What one invocation reaches CCE through: this instance's clients and tokens, the allowlist, the deadline."""
        deadline = view.deadline(self.settings.answer_reserve_ms)
        return Cloud(self.settings, self.clients, region, self.transport, self.tokens, view, deadline, own_project)

    def _one(self, event: Any, trigger: Trigger, view: RuntimeContext, started: float) -> Outcome:
        """Unwrap, interpret and perform one (non-batch) event into its outcome."""
        settings = self.settings
        try:
            unwrapped = self.unwrap(event, trigger)
        except SyncError as error:
            correlation_id = triggers.apig_request_id(event) if trigger is Trigger.APIG else ""
            return answers.conclude(trigger, error, None, settings.secrets(), correlation_id, view.request_id, started)
        intent, judged = self.interpret(unwrapped, view.project_id)
        kind = kind_of(intent)
        cloud = self.cloud(view, kind.region, judged.defaults.project_id)

        def run() -> Answer | SyncError:
            try:
                answer = kind.perform(cloud, judged)
            except SyncError as error:
                return error
            secrets = cloud.secrets()  # every credential the execution used is known by now
            for line in answer.log_lines:
                logs.write(logging.INFO, line, secrets)
            return answer._replace(body=logs.scrub(answer.body, secrets))

        result: Answer | SyncError
        try:  # a redelivery within the window gets the first delivery's result; a transient failure is not kept
            key = unwrapped.event_id
            result = run() if key is None else self.recent.once(key, run, cloud.deadline, keep=answers.lasting)
        except UpstreamTimeout as timeout:
            result = timeout
        secrets, correlation_id = cloud.secrets(), unwrapped.correlation_id
        outcome = answers.conclude(trigger, result, kind.target, secrets, correlation_id, view.request_id, started)
        lifted = requested_overrides(unwrapped.document)
        key = unwrapped.event_id
        source = key[1] if key is not None and key[0] == "eventgrid" else ""
        return outcome._replace(lifted=lifted, source=source) if lifted else outcome


class Instance:
    """A function instance as FunctionGraph keeps one: its `Function` built on first use from the variables (a
    mapping: `os.environ` for the platform) and the first context's user data (encrypted variables), then reused
    by every invocation; `reset` forgets it, so the next invocation reads the variables again."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ, self._lock = environ, threading.Lock()
        self._function: Function | None = None

    def function(self, context: Any = None) -> Function:
        """The instance's function; raises ConfigurationError (naming the variable) when a setting is wrong."""
        if self._function is None:
            with self._lock:
                if self._function is None:
                    environment = Environment(self._environ, RuntimeContext(context).user_data)
                    self._function = Function.from_environment(environment)
                    for name, close in misspelt(environment):  # once, at the cold start
                        warning = {"message": "not a setting", "variable": name, "did_you_mean": close}
                        logs.write(logging.WARNING, warning, ())
        return self._function

    def handle(self, event: Any, context: Any = None) -> Any:
        try:
            function = self.function(context)
        except SyncError as error:
            return refuse_event(event, context, error)
        return function.handle(event, context)

    def warm(self, context: Any = None) -> None:
        self.function(context).warm(context)

    def reset(self) -> None:
        with self._lock:
            if self._function is not None:
                self._function.close()
            self._function = None
