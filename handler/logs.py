"""One structured JSON line per invocation, through the standard `logging` module, secrets scrubbed."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .answers import scrub

__all__ = ["LOGGER_NAME", "logger", "write"]

LOGGER_NAME = "nodepool_sync"


def logger() -> logging.Logger:
    """The function's logger: JSON lines on stdout, level from LOG_LEVEL (default INFO)."""
    log = logging.getLogger(LOGGER_NAME)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper() or "INFO")
        log.propagate = False
    return log


def write(level: int, fields: Mapping[str, Any], secrets: Sequence[str]) -> None:
    """Log `fields` as one JSON object, dropping empty values and masking every known secret."""
    record = {key: value for key, value in fields.items() if value not in (None, "")}
    logger().log(level, json.dumps(scrub(record, secrets), ensure_ascii=False, default=str))
