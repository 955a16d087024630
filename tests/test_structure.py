"""The code's shape, checked: rooms that fit, no import circles, each error code stated once, and imports inside
functions only where the cold start needs them (the table below is the one list of them)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler.errors import SyncError, codes
from tests.conftest import ROOT

SOURCES = sorted(p for folder in ("handler", "local") for p in (ROOT / folder).rglob("*.py"))
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_INDEX_LINES = 500, 150, 150

# Imports inside functions in handler/: the one list. Each keeps something out of the cold start of a valid
# single sync (jsonschema explains only invalid documents; fleets, passes and change events bring their own
# machinery; a time parser, the retry policy, the lone-surrogate fixer and the password hasher are rare).
LAZY_IMPORTS = {
    "handler/api.py": {".pacing", ".retry"},  # a pass's pacing and the retry policy: on the first failure
    "handler/cce.py": {".times"},  # a job's times
    "handler/intents.py": {  # every kind but a single sync and a refusal, with its plans: when one comes
        ".changes",
        ".plans",
        ".kinds.change",
        ".kinds.fanout",
        ".kinds.fleet",
        ".kinds.ignore",
        ".kinds.passes",
        ".kinds.status",
        ".kinds.worker",
    },
    "handler/judge.py": {".times"},  # a closed window
    "handler/gate.py": {".decide"},  # a pass's decisions, or a fleet guard that holds an operator's request
    "handler/kinds/single.py": {"..plans", "..reconcile"},  # reading the configured pass, when a guard needs it
    "handler/kinds/status.py": {"..decide"},  # the guards of a pool, when the configured pass has any
    "handler/pacing.py": {"concurrent.futures"},  # a pass's concurrent reads and starts
    "handler/passwords.py": {"secrets"},  # salting a node password
    "handler/reconcile.py": {".metrics", ".notify", "difflib"},  # figures to report; news to tell; a typo
    "handler/kinds/fanout.py": {"..metrics"},  # a scheduled coordinator's figures, with CES_NAMESPACE
    "handler/endpoints.py": {"ipaddress"},  # a loopback endpoint other than localhost and 127.x
    "handler/variables.py": {".metrics", ".windows", "difflib"},  # CES_NAMESPACE; SYNC_WINDOWS; a setting's typo
    "handler/transport.py": {".strictjson"},  # an answer with a lone surrogate
    "handler/triggers.py": {"datetime", "hashlib"},  # a tick's time; a worker's duplicate-window key
    "handler/validation.py": {"difflib", "jsonschema"},  # explaining an invalid document
}


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, module: str | None, level: int) -> str:
    """The absolute name of a (possibly relative) import in `path`."""
    if level == 0:
        return module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _imports(path: Path) -> Iterator[str]:
    """The modules `path` imports, at import time or inside its functions (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    checked = {id(n) for node in tree.body if isinstance(node, ast.If) for n in ast.walk(node) if _type_checking(node)}
    for node in ast.walk(tree):
        if id(node) in checked:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(path, node.module, node.level)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in SOURCES}
    return {
        name: {imported for imported in _imports(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_no_module_is_longer_than_500_lines(path: Path) -> None:
    assert path.read_text().count("\n") <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_no_class_is_longer_than_150_lines(path: Path) -> None:
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert long == []


def test_index_only_composes_in_at_most_150_lines() -> None:
    assert (ROOT / "handler" / "index.py").read_text().count("\n") <= MAX_INDEX_LINES


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        for imported in sorted(graph[name]):
            if imported in trail:
                circles.append([*trail[trail.index(imported) :], imported])
            elif imported not in seen:
                seen.add(imported)
                visit(imported, [*trail, imported])

    seen: set[str] = set()
    for name in sorted(graph):
        if name not in seen:
            seen.add(name)
            visit(name, [name])
    assert circles == []


def test_domain_modules_never_import_presentation() -> None:
    domain = ("handler.decide", "handler.plans", "handler.reconcile", "handler.changes", "handler.windows")
    presentation = {"handler.answers", "handler.rendering", "handler.function", "handler.index", "handler.kinds"}
    graph = _graph()
    assert {name: graph[name] & presentation for name in domain if graph[name] & presentation} == {}


def test_every_func_code_is_stated_in_errors_py_only() -> None:
    stray = {
        _relative(path): found
        for path in SOURCES
        if path.name != "errors.py" and (found := re.findall(r"[\"']FUNC\.[A-Z_0-9]+[\"']", path.read_text()))
    }
    assert stray == {}


def test_every_error_code_has_one_class() -> None:
    table = codes()
    assert all(cls.code == code and issubclass(cls, SyncError) for code, cls in table.items())
    assert {"FUNC.CONFIG", "FUNC.IAM", "FUNC.NO_POOL", "FUNC.INTERNAL", "FUNC.BUSY"} <= set(table)


def test_the_docs_table_of_error_codes_is_the_code_table() -> None:
    text = (ROOT / "docs" / "answers.md").read_text()
    section = text.split("## Every error code", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(FUNC\.[A-Z_0-9]+)` \| (\d+) \| (yes|no) \|", section, re.MULTILINE)
    expected = [(code, str(cls.status), "yes" if cls.transient else "no") for code, cls in codes().items()]
    assert rows == expected


def _function_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for function in ast.walk(ast.parse(path.read_text())):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    found |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module:
                    found.add("." * node.level + node.module)
                elif isinstance(node, ast.ImportFrom):
                    found |= {"." * node.level + alias.name for alias in node.names}
    return found


def test_imports_inside_functions_are_the_listed_ones() -> None:
    found = {
        _relative(path): imports
        for path in SOURCES
        if _relative(path).startswith("handler/") and (imports := _function_imports(path))
    }
    assert found == LAZY_IMPORTS


def test_the_templates_forbidden_plain_variables_are_the_credential_and_secret_variables() -> None:
    import json

    from handler.variables import credential_names, secret_names

    schema = json.loads((ROOT / "schemas" / "template.schema.json").read_text())
    environment = schema["properties"]["function"]["properties"]["environment"]
    assert sorted(environment["propertyNames"]["not"]["enum"]) == sorted({*credential_names(), *secret_names()})


def test_no_source_cites_a_file_outside_the_repository() -> None:
    texts = [*SOURCES, *(ROOT / "tests").rglob("*.py"), *(ROOT / "schemas").rglob("*.*"), *(ROOT / "docs").glob("*.md")]
    cited = [_relative(path) for path in texts if re.search(r"\.\./shared/|platform-facts\.md", path.read_text())]
    assert cited == []
