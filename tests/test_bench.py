"""The bench's verdicts (its timings are never pass/fail: they live in bench/)."""

from __future__ import annotations

import pytest

from bench.__main__ import _free_port, _target, emulator_command
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("value", "operator", "bound", "verdict"),
    [
        (0.81, "<=", 0.85, "<= 0.85x: met"),
        (0.85, "<=", 0.85, "<= 0.85x: met"),
        (0.86, "<=", 0.85, "<= 0.85x: MISSED"),
        (59.9, "<", 60, "< 60x: met"),
        (60, "<", 60, "< 60x: MISSED"),
    ],
)
def test_each_figure_is_marked_met_or_missed_against_its_target(
    value: float, operator: str, bound: float, verdict: str
) -> None:
    assert _target(value, operator, bound, "x") == verdict


def test_the_benchs_emulator_answers_thousands_of_requests_though_nobody_reads_its_output() -> None:
    import subprocess

    import requests

    port = _free_port()
    emulator = subprocess.Popen(emulator_command(port), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert emulator.stdout is not None
        emulator.stdout.readline()  # "emulator listening on ...", as the bench reads it, and nothing more
        with requests.Session() as session:
            for _ in range(1500):  # a line each would be ~90 KB: past a pipe's 64 KB
                assert session.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=5).status_code == 200
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
