"""The composition root: FunctionGraph's `handler(event, context)` and `initializer(context)`, served by the
instance's one `Function`, built on first use from `os.environ` and the first context's user data."""

import os
from typing import Any

from .function import Instance

__all__ = ["handler", "initializer", "reset"]

_instance = Instance(os.environ)


def handler(event: Any, context: Any = None) -> Any:
    """FunctionGraph entry point: do what the event asks and answer as its trigger expects."""
    return _instance.handle(event, context)


def initializer(context: Any = None) -> None:
    """FunctionGraph initializer: read the settings, compile the schema and, for IAM passwords, fetch the token."""
    _instance.warm(context)


def reset() -> None:
    """Forget the instance's function, so the next invocation reads the environment again."""
    _instance.reset()
