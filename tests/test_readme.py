"""The README (and the docs/ pages it links) says what the code has: its tables are checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from handler.rendering import Status
from handler.variables import variable_names
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


def test_the_readme_first_screen_says_what_and_why_draws_the_flow_and_gives_the_two_commands() -> None:
    first = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    assert "FunctionGraph" in first and "CCE" in first
    assert "only through a **sync**, and a sync resets them" in first  # why it must be gentle
    assert "```mermaid\nflowchart" in first
    assert "make run " in first and "make test " in first


def _links(page: Path) -> list[tuple[str, str]]:
    return re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text(encoding="utf-8"))


def _anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#+ (.*)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_docs_page_is_linked_from_the_readme_and_every_link_resolves() -> None:
    readme = ROOT / "README.md"
    linked = {(readme.parent / target).resolve() for target, _ in _links(readme) if target}
    assert set((ROOT / "docs").glob("*.md")) <= linked
    for page in [readme, *(ROOT / "docs").glob("*.md")]:
        for target, anchor in _links(page):
            if target.startswith("http"):
                continue
            resolved = (page.parent / target).resolve() if target else page
            assert resolved.exists(), f"{page.name}: {target}"
            assert not anchor or anchor in _anchors(resolved), f"{page.name}: {target}#{anchor}"
