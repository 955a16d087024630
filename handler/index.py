"""The composition root: FunctionGraph's `handler(event, context)` and `initializer(context)`, served by one
`Function` per instance, built on first use from the environment and the first context's user data."""

import os
import threading
from typing import Any

from .environment import Environment
from .errors import SyncError
from .function import Function, refuse_event
from .runtime import RuntimeContext

__all__ = ["handler", "initializer", "reset"]

_lock = threading.Lock()
_function: Function | None = None


def _current(context: Any) -> Function:
    """The instance's function; raises ConfigurationError (naming the variable) when a setting is wrong."""
    global _function  # noqa: PLW0603 - the per-instance state of a serverless function
    if _function is None:
        with _lock:
            if _function is None:
                _function = Function.from_environment(Environment(os.environ, RuntimeContext(context).user_data))
    return _function


def reset() -> None:
    """Forget the instance's function, so the next invocation reads the environment again."""
    global _function  # noqa: PLW0603
    with _lock:
        if _function is not None:
            _function.close()
        _function = None


def handler(event: Any, context: Any = None) -> Any:
    """FunctionGraph entry point: do what the event asks and answer as its trigger expects."""
    try:
        function = _current(context)
    except SyncError as error:
        return refuse_event(event, context, error)
    return function.handle(event, context)


def initializer(context: Any = None) -> None:
    """FunctionGraph initializer: read the settings, compile the schema and, for IAM passwords, fetch the token."""
    _current(context).warm(context)
