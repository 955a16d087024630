"""The bench's verdicts (its timings are never pass/fail: they live in bench/)."""

from __future__ import annotations

import pytest

from bench.__main__ import _target


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
