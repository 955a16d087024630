"""The README (and the docs/ pages it links) says what the code has: its tables are checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from handler.answers import Status
from handler.settings import variable_names
from tests.conftest import ROOT


def _pages() -> list[str]:
    return [(ROOT / "README.md").read_text(encoding="utf-8")] + [
        page.read_text(encoding="utf-8") for page in sorted((ROOT / "docs").glob("*.md"))
    ]


def _table(heading: str) -> list[str]:
    """The first column of the first table under the heading (in the README or a docs/ page)."""
    for text in _pages():
        parts = re.split(r"^#+ " + re.escape(heading) + r"\n", text, flags=re.MULTILINE)
        if len(parts) > 1:
            lines = parts[1].splitlines()
            start = next(i for i, line in enumerate(lines) if line.startswith("|"))
            end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
            return [row.split("|")[1] for row in lines[start + 2 : end]]
    raise AssertionError(f"no section {heading!r} in the README or docs/")


def _names(cells: list[str]) -> set[str]:
    return {name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def test_the_variables_table_names_every_setting_and_nothing_else() -> None:
    assert _names(_table("Environment variables")) == set(variable_names())


def test_the_statuses_table_names_every_status_and_nothing_else() -> None:
    assert _names(_table("Statuses")) == {status.value for status in Status}


def test_the_schemas_table_names_every_schema_file_and_nothing_else() -> None:
    files = {path.name for path in Path(ROOT / "schemas").glob("*.schema.json")}
    assert _names(_table("Schemas")) == files
