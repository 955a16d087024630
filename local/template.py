"""template.yaml: load it and validate it (its schema, its variable names); what it says of the runtime and route.
Rendering it into Terraform is terraform.py's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SCHEMA = ROOT / "schemas" / "template.schema.json"


class TemplateError(Exception):
    """template.yaml is missing, not YAML, or does not match its schema."""


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template, validated against schemas/template.schema.json."""
    try:
        template = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: {exc}") from None
    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = sorted(validator.iter_errors(template), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
        raise TemplateError(f"{path} is not valid:\n" + "\n".join(lines))
    _check_variable_names(path, template["function"])
    result: dict[str, Any] = template
    return result


def _check_variable_names(path: Path, function: dict[str, Any]) -> None:
    """Every variable the template sets is one the function reads: a typo would otherwise deploy unnoticed."""
    import difflib

    from handler.variables import variable_names

    known = variable_names()
    for name in function.get("environment", {}):  # secret_environment's names the schema's enum checks already
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else "; docs/settings.md lists them"
            raise TemplateError(f"{path}: function.environment: {name} is not a setting of the function{hint}")


def python_version(template: dict[str, Any]) -> str:
    """'3.12' for runtime Python3.12."""
    return str(template["function"]["runtime"]).removeprefix("Python")


def route_pattern(template: dict[str, Any]) -> re.Pattern[str]:
    """The API Gateway route as a regex with one named group per {parameter}."""
    path = template["triggers"]["apig"]["path"]
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
