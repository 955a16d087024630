"""The function hosted as FunctionGraph hosts it, locally: a `Host` builds one `Function` from the variables (a
mapping, never `os.environ`), runs its initializer, and hands it events with a context whose deadline is the
template's timeout. Also the small pieces every command shares (reading input, printing, the log's stream)."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from handler.errors import ConfigurationError, SyncError, SyncInProgress
from handler.function import Function
from handler.rendering import SUCCEEDED, Status

from .clouds import UsageError

__all__ = [
    "Host",
    "JobWatch",
    "LocalContext",
    "base_environment",
    "environment_for",
    "json_argument",
    "log_lines_to",
    "one_line",
    "print_json",
    "read_env_file",
    "read_input",
    "succeeded",
]

_SUCCEEDED = frozenset(status.value for status in SUCCEEDED)


class LocalContext:
    """A FunctionGraph-like context for local runs: a request id and the template's timeout as deadline."""

    def __init__(self, timeout_seconds: float) -> None:
        self._request_id = uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def getRequestID(self) -> str:  # noqa: N802 - the platform's method names
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def succeeded(answer: Any) -> bool:
    """Whether an answer means everything asked was done or rightly left alone (exit code 0): accepted, running,
    succeeded, in sync, a dry run, skipped because a sync already runs, ignored; a pass or a fan-out only when
    nothing in it failed or was refused (their 207); every event of a batch. Anything else is 1 (a guard's 409,
    a 207, a failed job, a refusal)."""
    if not isinstance(answer, dict):
        return False
    if "statusCode" in answer:
        http = int(answer["statusCode"])
        return (200 <= http < 300 and http != 207) or _body(answer).get("error_code") == SyncInProgress.code
    status = answer.get("status")
    if status == Status.BATCH:
        return all(succeeded(result) for result in answer["results"])
    if status == Status.RECONCILED:
        totals = answer.get("totals") or {}
        return not any(totals.get(key) for key in ("failed", "refused", "clusters_unread"))
    if status == Status.DISPATCHED:
        return not any("error" in scope for scope in answer.get("scopes", ()))
    return status in _SUCCEEDED or status == Status.SKIPPED


def _body(answer: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(answer.get("body") or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Host:
    """One function instance as the template describes it: built from `environment`, initializer run."""

    def __init__(self, template: dict[str, Any], environment: Mapping[str, str]) -> None:
        function = template["function"]
        self.timeout = float(function["timeout"])
        self.function = Function.from_environment(dict(environment))
        if function.get("initializer"):
            self.function.warm(LocalContext(float(function.get("initializer_timeout", 30))))

    def invoke(self, event: Any) -> tuple[Any, bool]:
        """The function's answer to the event (a raised error's class and message) and whether it succeeded."""
        try:
            answer = self.function.handle(event, LocalContext(self.timeout))
        except SyncError as error:
            return {"raised": type(error).__name__, "transient": error.transient, "error_msg": error.message}, False
        return answer, succeeded(answer)

    def close(self) -> None:
        self.function.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def print_json(label: str, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    print(f"{label}:\n" + "\n".join("    " + line for line in text.splitlines()))


def read_input(name: str) -> str:
    """A file's text, or stdin's for "-"; a file that cannot be read is a usage error."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {name}: it is not UTF-8 text") from None


def json_argument(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from None


def log_lines_to(stream: Any, form: str = "log: %(message)s") -> None:
    """The function's JSON log lines go to `stream` in this form (stderr, labelled: stdout carries the answer)."""
    from handler import logs

    for handler in logs.logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
            handler.setFormatter(logging.Formatter(form))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped; quotes around a value are removed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(read_input(str(path)).splitlines(), 1):
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


def base_environment(template: dict[str, Any]) -> dict[str, str]:
    return dict(template["function"].get("environment", {}))


def one_line(value: Any, width: int = 150) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def environment_for(template: dict[str, Any], env_file: str | None, shell: Mapping[str, str]) -> dict[str, str]:
    """The function's variables as every command resolves them: the template's, then the shell's, then the
    --env-file's, the later winning; each setting checked as the function would, a bad one a usage error."""
    from handler.settings import Settings
    from handler.variables import misspelt, variable_names

    environment = base_environment(template)
    environment.update({name: shell[name] for name in variable_names() if name in shell})
    given = list(shell)
    if env_file:
        from_file = read_env_file(Path(env_file))
        environment.update(from_file)
        given += list(from_file)
    for name, close in misspelt(dict.fromkeys(given)):
        print(f"warning: {name} is not a setting of the function; did you mean {close}?", file=sys.stderr)
    try:
        Settings.from_environ(environment)
    except ConfigurationError as error:
        where = f" (from {env_file} or the shell)" if env_file else ""
        raise UsageError(f"{error.message}{where}") from None
    return environment


class JobWatch(logging.Handler):
    """The function's job log lines, as they come: the job of a sync being followed (for Ctrl-C's message)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.jobid = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            return
        if isinstance(line, dict) and line.get("message") == "job" and isinstance(line.get("jobid"), str):
            self.jobid = line["jobid"]
