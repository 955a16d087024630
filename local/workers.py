"""The one worker runner: a fanned-out pass's worker invocations run as FunctionGraph runs them, each in a
process of its own (a fresh interpreter whose function is built from the variables, never from os.environ),
several at once; each result with its wall time and the CPU time its process spent handling it. The bench, the
tests and the local cloud use it (threads=True runs them in this process instead, for tests that need speed)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["WorkerResult", "run_sent_workers", "run_worker", "run_workers"]

ROOT = Path(__file__).resolve().parent.parent

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    request = json.loads(sys.stdin.read())
    from handler.function import Function
    from local.host import LocalContext

    function = Function.from_environment(request["environment"])
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        answer = function.handle(request["body"], LocalContext(request["timeout"]))
    except Exception as error:  # a raised (transient) failure is the worker's answer too
        answer = {"raised": type(error).__name__, "error_msg": str(getattr(error, "message", error))}
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"answer": answer, "wall_s": wall, "cpu_s": cpu}))
    """
)


class WorkerResult(NamedTuple):
    """One worker's answer, how long its invocation took and the CPU time its process spent on it."""

    body: dict[str, Any]
    answer: Any
    wall_s: float
    cpu_s: float


def run_worker(
    environment: Mapping[str, str], body: dict[str, Any], timeout: float = 120.0, threads: bool = False
) -> WorkerResult:
    """One worker invocation: in a process of its own (the default), or in this process."""
    if threads:
        import time

        from handler.function import Function

        from .host import LocalContext

        function = Function.from_environment(dict(environment))
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            answer = function.handle(body, LocalContext(timeout))
        finally:
            function.close()
        return WorkerResult(body, answer, time.perf_counter() - wall, time.thread_time() - cpu)
    request = json.dumps({"environment": dict(environment), "body": body, "timeout": timeout})
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT)],
        input=request,
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return WorkerResult(body, {"raised": "WorkerCrashed", "error_msg": done.stderr[-300:]}, 0.0, 0.0)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return WorkerResult(body, result["answer"], result["wall_s"], result["cpu_s"])


def run_workers(
    environment: Mapping[str, str],
    bodies: Sequence[dict[str, Any]],
    timeout: float = 120.0,
    threads: bool = False,
    at_once: int = 20,
) -> list[WorkerResult]:
    """Every worker invocation, `at_once` at a time (FunctionGraph runs them in parallel), results in order."""
    if not bodies:
        return []
    with ThreadPoolExecutor(max_workers=min(at_once, len(bodies))) as pool:
        return list(pool.map(lambda body: run_worker(environment, body, timeout, threads), bodies))


def run_sent_workers(emulator: Emulator) -> None:
    """Run each asynchronous invocation the emulator receives as FunctionGraph would: a worker in a process of its
    own (the one worker runner), with the environment the invoking command handed it; a line for each."""

    def run(invocation: dict[str, Any]) -> None:
        environment = emulator.worker_environment
        scope = invocation["body"].get("scope", {}) if isinstance(invocation.get("body"), dict) else {}
        where = f"{scope.get('region', '?')}/{str(scope.get('project_id', '?'))[:8]}"
        if environment is None:
            if emulator.log is not None:
                emulator.log(f"worker {where}: not run (no environment was handed to the emulator)")
            return
        result = run_worker(environment, invocation["body"])
        answer = result.answer if isinstance(result.answer, dict) else {}
        totals = answer.get("totals") or {}
        if emulator.log is not None:
            said = f"{answer.get('status', answer.get('raised', '?'))}, {totals.get('started', 0)} started"
            emulator.log(f"worker {where}: {said} in {result.wall_s:.2f} s")

    emulator.run_async = run
