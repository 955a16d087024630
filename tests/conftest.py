"""Shared fixtures: the loopback emulator, a clean environment, log capture, and the secret-leak guard.

Every answer that goes through `invoke` and every log line is scanned for planted and issued secrets when
the test ends: no test can pass while a secret leaks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The suite uses only emulators it starts, never one `make emulator` keeps running for a person (local/clouds.py).
os.environ["NODEPOOL_SYNC_DISCOVERY"] = "off"

from handler import index  # noqa: E402
from handler.function import Instance  # noqa: E402
from handler.logs import LOGGER_NAME  # noqa: E402
from local.emulator import Emulator  # noqa: E402

EVENTS = Path(__file__).resolve().parent / "events"

PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
CLUSTER = "7c3e1b2a-5d4f-11ee-9a3b-0255ac100b04"
NODEPOOL = "np-0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5"
TOKEN = "MIIplanted-token-" + "x" * 40
IAM_DOMAIN, IAM_USER, IAM_PASSWORD = "acme-account", "sync-bot", "Pl4nted-IAM-Passw0rd!"
ACCESS_KEY, SECRET_KEY, SECURITY_TOKEN = "AKPLANTED0001", "planted-secret-key-0001", "planted-security-token-01"
NODE_PASSWORD = "Pl4nted-Node-Pw!"
PLANTED = (TOKEN, IAM_PASSWORD, SECRET_KEY, SECURITY_TOKEN, NODE_PASSWORD)

_VARIABLES = (
    "HUAWEICLOUD_SDK_REGION", "CCE_ENDPOINT", "IAM_ENDPOINT", "HUAWEICLOUD_SDK_IAM_ENDPOINT",
    "HUAWEICLOUD_SDK_PROJECT_ID", "RUNTIME_PROJECT_ID", "CCE_CLUSTER_ID", "CCE_NODEPOOL_ID", "CCE_SYNC_SPEC",
    "SYNC_DRY_RUN", "HUAWEICLOUD_AUTH_MODE", "HUAWEICLOUD_AUTH_TOKEN", "HUAWEICLOUD_IAM_USERNAME",
    "HUAWEICLOUD_IAM_PASSWORD", "HUAWEICLOUD_IAM_DOMAIN_NAME", "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN", "NODE_LOGIN_PASSWORD", "TOKEN_REFRESH_MARGIN_SECONDS", "RUNTIME_FUNC_NAME",
    "SYNC_WAIT", "SYNC_SKIP_IF_BUSY", "SYNC_ALLOWED_TARGETS", "JOB_POLL_INTERVAL_SECONDS",
    "JOB_POLL_MAX_INTERVAL_SECONDS", "TARGET_MIN_SECONDS", "EVENT_DEDUP_WINDOW_SECONDS", "APIG_MAX_BODY_BYTES",
    "HTTP_CONNECT_TIMEOUT_SECONDS", "HTTP_READ_TIMEOUT_SECONDS", "ANSWER_RESERVE_MS", "RETRY_MAX_ATTEMPTS",
    "RETRY_AFTER_CAP_SECONDS", "RUNTIME_USERDATA", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
    "NO_PROXY", "no_proxy", "RETRY_BASE_SECONDS", "RETRY_CAP_SECONDS", "LOG_LEVEL", "SYNC_RECONCILE",
    "SYNC_WINDOWS", "SMN_TOPIC_URN", "SMN_ENDPOINT", "SYNC_FAILED_BACKOFF_SECONDS", "SYNC_STUCK_AFTER_SECONDS",
)  # fmt: skip


class FakeContext:
    """A FunctionGraph context with the documented methods; pass only some to model partial contexts.

    `user_data` is the function's configuration as `getUserData(key, default=None)` serves it (encrypted
    variables included); `auth_token` answers the open-source runtime's `getAuthToken()`.
    """

    def __init__(
        self,
        request_id: str = "fg-req-0001",
        remaining_ms: float = 30000,
        user_data: dict[str, str] | None = None,
        **values: str,
    ) -> None:
        self._values, self._user_data = values, user_data
        self._request_id, self._remaining = request_id, remaining_ms

    def getRequestID(self) -> str:  # noqa: N802 - the platform's method names
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> float:  # noqa: N802
        return self._remaining

    def __getattr__(self, name: str) -> Callable[[], str]:
        if name == "getUserData" and self._user_data is not None:
            return self._user_data.get  # type: ignore[return-value]
        keys = {
            "getToken": "token",
            "getAuthToken": "auth_token",
            "getSecurityAccessKey": "access_key",
            "getSecuritySecretKey": "secret_key",
            "getSecurityToken": "security_token",
            "getProjectID": "project_id",
        }
        if name in keys and keys[name] in self._values:
            return lambda: self._values[keys[name]]
        raise AttributeError(name)


@pytest.fixture(scope="session")
def _emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(_emulator: Emulator) -> Iterator[Emulator]:
    """The loopback emulator, cleared and set back to its defaults for each test."""
    _emulator.clear()
    _emulator.users = {(IAM_DOMAIN, IAM_USER): IAM_PASSWORD}
    _emulator.tokens = {}
    _emulator.keys = {}
    _emulator.pools = {}
    _emulator.add_token(TOKEN)
    _emulator.token_lifetime, _emulator.omit_expires_at = 86400.0, False
    _emulator.job_seconds, _emulator.job_outcome = 0.0, "Success"
    _emulator.strict, _emulator.run_async, _emulator.worker_environment = False, None, None
    yield _emulator
    _emulator.clear()


class Variables(dict[str, str]):
    """The function's variables in one test: a mapping the function is built from (os.environ is left alone).
    Call it to set or unset (None) variables; after a change the next invocation is a new instance."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.mirror: pytest.MonkeyPatch | None = None  # the `platform` fixture's: os.environ follows
        self.instances: list[Instance] = []  # built from these variables: each a new instance after a change

    def __call__(self, **values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                self.pop(name, None)
            else:
                self[name] = value
        if self.mirror is not None:
            _mirror(self, self.mirror)
        for instance in self.instances:
            instance.reset()
        index.reset()


def _mirror(variables: Variables, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in {*_VARIABLES, *variables}:
        if name in variables:
            monkeypatch.setenv(name, variables[name])
        else:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(emulator: Emulator) -> Iterator[Variables]:
    """The function's variables, pointing at the emulator with a token: a mapping, set or unset by calling it."""
    variables = Variables(
        {
            "CCE_ENDPOINT": emulator.url,
            "IAM_ENDPOINT": emulator.url,
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
            "CCE_CLUSTER_ID": CLUSTER,
            "CCE_NODEPOOL_ID": NODEPOOL,
            "HUAWEICLOUD_AUTH_TOKEN": TOKEN,
            "RETRY_BASE_SECONDS": "0.01",
            "RETRY_CAP_SECONDS": "0.05",
            "SYNC_SKIP_IF_BUSY": "false",  # the guard has its own tests (test_fleet.py); here one request per sync
        }
    )
    yield variables
    for instance in variables.instances:
        instance.reset()


@pytest.fixture
def instance(env: Variables) -> Instance:
    """The function instance the test invokes, built from its variables on first use (as the platform builds
    one from its environment), a new one after each change of them."""
    made = Instance(env)
    env.instances.append(made)
    return made


@pytest.fixture
def platform(env: Variables, monkeypatch: pytest.MonkeyPatch) -> Variables:
    """For the tests of the platform's entry points (index.handler, index.initializer): os.environ holds the
    variables, as FunctionGraph leaves them, and follows every change."""
    env.mirror = monkeypatch
    _mirror(env, monkeypatch)
    return env


def only_platform_variables(env: Callable[..., None]) -> None:
    """os.environ as FunctionGraph leaves it when no setting is a plain variable: the platform's names only."""
    env(
        CCE_ENDPOINT=None,
        IAM_ENDPOINT=None,
        HUAWEICLOUD_SDK_PROJECT_ID=None,
        CCE_CLUSTER_ID=None,
        CCE_NODEPOOL_ID=None,
        HUAWEICLOUD_AUTH_TOKEN=None,
        SYNC_SKIP_IF_BUSY=None,
        RUNTIME_PROJECT_ID=PROJECT,
        RUNTIME_FUNC_NAME="nodepool-sync",
    )


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def syncs(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("message") == "sync"]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)


@pytest.fixture
def answers() -> list[Any]:
    return []


@pytest.fixture
def invoke(instance: Instance, answers: list[Any]) -> Callable[..., Any]:
    """Call the function, built from the test's variables as the platform builds it from its environment; the
    answer is kept for the secret-leak guard."""

    def call(event: Any, context: Any = None) -> Any:
        try:
            answer = instance.handle(event, context)
        except Exception as exc:
            answers.append(f"{type(exc).__name__}: {exc} {getattr(exc, 'message', '')}")
            raise
        answers.append(answer)
        return answer

    return call


@pytest.fixture(autouse=True)
def _no_secret_leaks(request: pytest.FixtureRequest, answers: list[Any]) -> Iterator[None]:
    """Fail the test if any planted or emulator-issued secret appears in an answer or a log line."""
    capture = LogCapture()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture)
    yield
    logger.removeHandler(capture)
    secrets = list(PLANTED)
    if "emulator" in request.fixturenames:
        secrets += list(request.getfixturevalue("_emulator").tokens)
    text = json.dumps(answers, default=str) + "\n".join(capture.lines)
    leaked = [s[:12] + "..." for s in secrets if s and s in text]
    assert not leaked, f"secrets leaked into answers or logs: {leaked}"


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 120, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`python -m local ARGS` as a user runs it: its exit code, stdout and stderr.

    In this process by default (the same code, without the interpreter's start-up: the suite stays fast), with
    the environment it would inherit and restored afterwards; `process=True` runs a real child process, for the
    tests that are about being one."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "local", *args],
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    import contextlib
    import io
    import os
    import traceback

    from local import cli

    saved, out, err = dict(os.environ), io.StringIO(), io.StringIO()
    real_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exit_:  # argparse: --help, usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # what a real process would print before dying
                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.stdin = real_stdin
        os.environ.clear()
        os.environ.update(saved)
        index.reset()
    return subprocess.CompletedProcess(["python", "-m", "local", *args], code, out.getvalue(), err.getvalue())


def readme_section(heading: str) -> str:
    """The text from the heading (any level) to the end of its page: the README's, or a docs/ page it links."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        parts = re.split(r"^#+ " + re.escape(heading) + r"\n", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
        if len(parts) > 1:
            return parts[1]
    raise AssertionError(f"no section {heading!r} in the README or docs/")


def readme_code(heading: str, language: str = "sh") -> str:
    """The first ```language block of the README section with that heading."""
    return readme_section(heading).split(f"```{language}\n", 1)[1].split("```", 1)[0]


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def apig_event(document: Any = None, path_parameters: dict[str, str] | None = None, **changes: Any) -> dict[str, Any]:
    """tests/events/apig.json carrying `document` (JSON, or bytes as they are) as its Base64 body."""
    event: dict[str, Any] = load_event("apig.json")
    if document is not None:
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        event["body"] = base64.b64encode(raw).decode()
    if path_parameters is not None:  # the route that gives these parameters, as API Gateway shows it in `path`
        event["pathParameters"] = path_parameters
        named = [
            f"{kind}s/{path_parameters[f'{kind}_id']}"
            for kind in ("cluster", "nodepool")
            if f"{kind}_id" in path_parameters
        ]
        event["path"] = "/" + "/".join([*named, "sync"])
    event.update(changes)
    return event


def status_body(answer: Any) -> tuple[int, dict[str, Any]]:
    """The status and the parsed body of an API Gateway answer, which must be well formed."""
    assert set(answer) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert answer["headers"]["Content-Type"] == "application/json" and answer["isBase64Encoded"] is False
    return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture(autouse=True)
def _clean_process() -> Iterator[None]:
    index.reset()
    yield
    index.reset()
