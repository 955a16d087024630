"""One structured JSON line per invocation, through the standard `logging` module, secrets scrubbed."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LEVELS", "LOGGER_NAME", "MASK", "failed", "logger", "scrub", "write"]

LOGGER_NAME = "nodepool_sync"
MASK = "***"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def scrub(value: Any, secrets: Sequence[str]) -> Any:
    """A copy of `value` with every secret string replaced by ***: the last line of defence for answers and logs."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


_configured: list[logging.Logger] = []


def logger() -> logging.Logger:
    """The function's logger: JSON lines on stdout, INFO until the settings say otherwise (LOG_LEVEL), set up once."""
    if _configured:
        return _configured[0]
    log = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    _configured.append(log)
    return log


def write(level: int, fields: Mapping[str, Any], secrets: Sequence[str]) -> None:
    """Log `fields` as one JSON object, dropping empty values and masking every known secret."""
    record = {key: value for key, value in fields.items() if value not in (None, "")}
    logger().log(level, json.dumps(scrub(record, secrets), ensure_ascii=False, default=str))


def failed(message: str, reason: str, secrets: Sequence[str], **fields: Any) -> str:
    """A warning line for what failed beside a request's own work (notifying, reporting), which never fails it:
    the reason scrubbed and cut to 200 characters, as the line and the answer both say it."""
    cut = str(scrub(reason, secrets))[:200]
    write(logging.WARNING, {"message": message, **fields, "error": cut}, secrets)
    return cut
