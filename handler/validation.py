"""Turn a sync request document into a validated sync: defaults, `lifeCycle` spelling, schema and rules.

The JSON Schemas are generated from the CCE API reference (schemas/generate.py); rules JSON Schema cannot
say (a script's decoded size, the node password rules) live here with the same error shape.
"""

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # jsonschema only explains invalid documents: it is imported then, never on the valid path
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError as SchemaViolation

from .errors import MAX_ERRORS_FOUND, DocumentInvalid, FieldError, kind_of
from .fastschema import Check, compile_schema
from .model import Target

__all__ = [
    "ID_PATTERN",
    "OVERRIDES",
    "SCHEMA_DIR",
    "TARGET_SOURCES",
    "Defaults",
    "Target",
    "ValidSync",
    "found_errors",
    "is_fleet",
    "is_reconcile",
    "is_salted_password",
    "normalized_spec",
    "password_problems",
    "prepare",
    "requested_overrides",
    "schema_defaults",
    "schema_errors",
    "spec_errors",
    "target_of",
    "validate_document",
]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
DOCUMENT_SCHEMA = "sync-request.schema.json"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SPECIAL_CHARACTERS = "!@$%^-_=+[{}]:,./?"
MAX_SCRIPT_BYTES = 7680
# The overrides a document may carry, each lifting one guard of the gate (gate.py).
OVERRIDES = ("ignore_halt", "ignore_waves", "ignore_budget", "ignore_windows", "ignore_backoff")
_SALTED = r"\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}"  # SHA-512 crypt; compiled on first use
CCE_BODY_SCHEMA = "cce-upgrade-request.schema.json"
FLEET_SCHEMA = "sync-fleet.schema.json"
RECONCILE_SCHEMA = "sync-reconcile.schema.json"
TARGET_SOURCES = {
    "project_id": "HUAWEICLOUD_SDK_PROJECT_ID (or the FunctionGraph context's project)",
    "cluster_id": "CCE_CLUSTER_ID",
    "nodepool_id": "CCE_NODEPOOL_ID",
}


class Defaults(NamedTuple):
    """What the environment (and the context) supply when the document is silent."""

    project_id: str = ""
    cluster_id: str = ""
    nodepool_id: str = ""
    spec: Mapping[str, Any] | None = None
    node_login_password: str = ""
    dry_run: bool = False
    wait: bool = False


class ValidSync(NamedTuple):
    """A validated sync: where it goes, the CCE body to send, whether to only show it, follow its job, or send
    it even when every node already carries the pool's configuration."""

    target: Target
    body: dict[str, Any]
    dry_run: bool
    wait: bool = False
    force: bool = False
    lifts: frozenset[str] = frozenset()  # the guards the request's overrides lift (OVERRIDES' names)

    @property
    def names_nodes(self) -> bool:
        """Whether the spec picks nodes itself (nodeIDs): then the pool's counts do not say it is needless."""
        return bool(self.body.get("spec", {}).get("nodeIDs"))

    @property
    def carries_template(self) -> bool:
        """Whether the spec brings a template of its own (nodeTemplate): the counts say nothing of it."""
        return bool(self.body.get("spec", {}).get("nodeTemplate"))


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    """A generated schema, read once per process (`check_schema` is the tests' job, not the cold start's)."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator(name: str) -> "Draft202012Validator":
    """jsonschema's validator of a generated schema: it explains what is wrong (imported on first need)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema(name))


@functools.cache
def _compiled(name: str) -> Check:
    """A generated schema compiled into a yes/no check for the hot path (fastschema)."""
    return compile_schema(_schema(name))


@functools.cache
def schema_defaults(name: str) -> dict[str, Any]:
    """Every field's `default` in a generated schema, by field name: the one statement of each default."""
    found: dict[str, Any] = {}
    pending: list[Any] = [_schema(name)]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for field, schema in node.get("properties", {}).items():
                if isinstance(schema, dict) and "default" in schema:
                    found[field] = schema["default"]
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _properties(name: str) -> frozenset[str]:
    return frozenset(_schema(name)["properties"])


@functools.cache
def document_keys() -> frozenset[str]:
    """The top-level keys of every document the function takes (sync, fleet, reconcile), from their schemas: an
    object with none of them, and no trigger's shape, is not for this function."""
    return _properties(DOCUMENT_SCHEMA) | _properties(FLEET_SCHEMA) | _properties(RECONCILE_SCHEMA)


@functools.cache
def control_fields() -> frozenset[str]:
    """The sync document's fields that are the function's, not CCE's: what is never sent."""
    return _properties(DOCUMENT_SCHEMA) - _properties(CCE_BODY_SCHEMA)


def fleet_fields() -> frozenset[str]:
    """The keys that make a document a fleet: the fleet schema's that a sync document does not have."""
    return _properties(FLEET_SCHEMA) - _properties(DOCUMENT_SCHEMA)


def warm() -> None:
    """Load and compile the sync document's schema now (for the initializer) instead of on the first event;
    jsonschema stays unimported, as it is needed only to explain an invalid document."""
    _compiled(DOCUMENT_SCHEMA)


def _pointer(parts: Iterator[str | int] | Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_ARTICLE = {"integer": "an integer", "object": "an object", "array": "an array"}


def _explain(error: "SchemaViolation") -> Iterator[FieldError]:
    """Restate one schema violation for a person, without echoing strings (they may be secrets)."""
    path = _pointer(error.absolute_path)
    keyword, expected, instance = str(error.validator), error.validator_value, error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "required":
        for name in expected if isinstance(expected, list) else ():
            if isinstance(instance, dict) and name not in instance and error.message.startswith(repr(name)):
                yield FieldError(f"{path}/{name}", "is required")
        return
    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for name in instance if isinstance(instance, dict) else ():
            if name not in allowed:
                import difflib  # only on the error path: keeps it off the cold start

                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                yield FieldError(
                    f"{path}/{_pointer([name])[1:]}",
                    f"unknown field {name[:64]!r}{hint}; allowed: {', '.join(allowed)}",
                )
        return
    if keyword == "type":
        yield FieldError(path, f"must be {_ARTICLE.get(str(expected), 'a ' + str(expected))}, not {kind_of(instance)}")
        return
    yield FieldError(path, _sentence(keyword, expected, schema, instance) or error.message[:200])


def _sentence(keyword: str, expected: Any, schema: Mapping[str, Any], instance: Any) -> str:
    if keyword == "pattern":
        return str(schema.get("x-messages", {}).get("pattern", "has an invalid format"))
    if keyword == "maxLength":
        return f"is longer than {expected} characters ({len(instance)})"
    if keyword == "minLength":
        return "must not be empty" if expected == 1 else f"is shorter than {expected} characters"
    if keyword == "enum":
        return f"must be one of: {', '.join(map(str, expected))}"
    if keyword in ("maxItems", "maxProperties"):
        return f"has more than {expected} {'items' if keyword == 'maxItems' else 'properties'}"
    if keyword == "minimum":
        return f"{instance!r} is less than the minimum of {expected}"
    if keyword == "maximum":
        return f"{instance!r} is greater than the maximum of {expected}"
    return ""


def is_salted_password(value: str) -> bool:
    """True for a value CCE takes as is: the Base64 of a SHA-512 crypt string."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        return False
    return re.fullmatch(_SALTED, decoded) is not None


def password_problems(password: str, username: str) -> list[str]:
    """The node login password rules of the CCE reference, one sentence per rule broken."""
    problems = []
    if not 8 <= len(password) <= 26:
        problems.append(f"must be 8 to 26 characters long (it has {len(password)})")
    classes = [
        any(c.isascii() and c.isupper() for c in password),
        any(c.isascii() and c.islower() for c in password),
        any(c.isascii() and c.isdigit() for c in password),
        any(c in SPECIAL_CHARACTERS for c in password),
    ]
    if sum(classes) < 3:
        problems.append(
            "must contain at least three of: uppercase letters, lowercase letters, digits, "
            f"special characters {SPECIAL_CHARACTERS}"
        )
    if any(not (c.isascii() and c.isalnum()) and c not in SPECIAL_CHARACTERS for c in password):
        problems.append(f"may contain only letters, digits and the special characters {SPECIAL_CHARACTERS}")
    lowered, user = password.lower(), username.lower()
    if user and user in lowered:
        problems.append("must not contain the username")
    if user and user[::-1] in lowered:
        problems.append("must not contain the username reversed")
    return problems


def _rule_errors(document: Mapping[str, Any]) -> Iterator[FieldError]:
    """Rules beyond the schema, run on a document that already passed it."""
    for name in Target._fields:
        value = document.get(name)
        if isinstance(value, str) and not ID_PATTERN.fullmatch(value):
            yield FieldError(f"/{name}", "is not a valid ID")
    template = document["spec"].get("nodeTemplate") or {}
    for script in ("preInstall", "postInstall"):
        value = template.get("lifeCycle", {}).get(script)
        if isinstance(value, str) and value:
            # The schema's pattern is exact canonical Base64, except that `$` also matches before a final
            # newline; so no decoding is needed here, and the decoded length follows from the length.
            if value.endswith("\n"):
                yield FieldError(f"/spec/nodeTemplate/lifeCycle/{script}", "is not valid Base64")
                continue
            decoded_length = len(value) // 4 * 3 - value[-2:].count("=")
            if decoded_length > MAX_SCRIPT_BYTES:
                yield FieldError(
                    f"/spec/nodeTemplate/lifeCycle/{script}",
                    f"decodes to {decoded_length} bytes; at most {MAX_SCRIPT_BYTES} fit in 10240 Base64 characters",
                )
    user_password = template.get("login", {}).get("userPassword")
    if user_password and not is_salted_password(user_password["password"]):
        for problem in password_problems(user_password["password"], user_password.get("username", "root")):
            yield FieldError("/spec/nodeTemplate/login/userPassword/password", problem)


def found_errors(errors: Iterable[FieldError]) -> list[FieldError]:
    """The errors, up to MAX_ERRORS_FOUND: jsonschema finds them lazily, so the rest are never looked for."""
    return list(islice(errors, MAX_ERRORS_FOUND))


def schema_errors(name: str, document: Any) -> list[FieldError]:
    """No errors when the compiled check passes; otherwise jsonschema's, explained."""
    if _compiled(name)(document):
        return []
    return found_errors(e for violation in _validator(name).iter_errors(document) for e in _explain(violation))


def validate_document(document: Any) -> list[FieldError]:
    """The errors of a (normalized) document, at most MAX_ERRORS_FOUND: schema violations, then the rules beyond."""
    errors = schema_errors(DOCUMENT_SCHEMA, document)
    if not isinstance(document, dict):
        return errors or [FieldError("", f"must be an object, not {kind_of(document)}")]
    return errors or found_errors(_rule_errors(document))


def spec_errors(spec: dict[str, Any], node_login_password: str) -> list[FieldError]:
    """A spec's errors as every pool it is sent to would have them (a fleet's shared spec, CCE_SYNC_SPEC), found
    once rather than once per pool."""
    errors: list[FieldError] = []
    probe = {"spec": normalized_spec(spec, spec.get("nodePoolID") or "fleet-target", node_login_password, errors)}
    return found_errors([*errors, *validate_document(probe)])


def normalized_spec(spec: Any, nodepool_id: str, node_login_password: str, errors: list[FieldError]) -> Any:
    """A copy of the spec with `lifeCycle` spelled as on the wire, nodePoolID and the login secret filled."""
    if not isinstance(spec, dict):
        return spec
    spec = dict(spec)
    if "nodePoolID" not in spec and nodepool_id:
        spec["nodePoolID"] = nodepool_id
    elif nodepool_id and spec["nodePoolID"] != nodepool_id:
        errors.append(FieldError("/spec/nodePoolID", "must equal the target node pool ID (nodepool_id)"))
    template = spec.get("nodeTemplate")
    if not isinstance(template, dict):
        return spec
    template = spec["nodeTemplate"] = dict(template)
    if "lifecycle" in template:
        if "lifeCycle" in template:
            errors.append(
                FieldError("/spec/nodeTemplate", "has both 'lifecycle' and 'lifeCycle'; send one ('lifeCycle')")
            )
            del template["lifecycle"]  # reported once here, not again as an unknown field
        else:
            template = spec["nodeTemplate"] = {
                ("lifeCycle" if key == "lifecycle" else key): value for key, value in template.items()
            }
    login = template.get("login")
    user_password = login.get("userPassword") if isinstance(login, dict) else None
    if node_login_password and isinstance(user_password, dict) and "password" not in user_password:
        assert isinstance(login, dict)
        template["login"] = {**login, "userPassword": {**user_password, "password": node_login_password}}
    return spec


def _normalized(document: dict[str, Any], node_login_password: str, errors: list[FieldError]) -> dict[str, Any]:
    """The document with its spec normalized (see normalized_spec) against its own nodepool_id."""
    if "spec" not in document:
        return document
    nodepool_id = document.get("nodepool_id")
    nodepool_id = nodepool_id if isinstance(nodepool_id, str) else ""
    return {**document, "spec": normalized_spec(document["spec"], nodepool_id, node_login_password, errors)}


def prepare(document: Mapping[str, Any], overrides: Mapping[str, str], defaults: Defaults) -> ValidSync:
    """Merge overrides and defaults into the document, validate it, and split it into target and body."""
    merged = dict(document)
    merged.update(overrides)
    for name in Target._fields:
        if name not in merged and getattr(defaults, name):
            merged[name] = getattr(defaults, name)
    if "spec" not in merged and defaults.spec is not None:
        merged["spec"] = dict(defaults.spec)
    errors: list[FieldError] = []
    merged = _normalized(merged, defaults.node_login_password, errors)
    errors.extend(
        FieldError(e.path, "is required: set it in the document or CCE_SYNC_SPEC")
        if e.path == "/spec" and e.message == "is required"
        else e
        for e in validate_document(merged)
    )
    for name in Target._fields:
        if name not in merged:
            errors.append(FieldError(f"/{name}", f"is required: set it in the document or {TARGET_SOURCES[name]}"))
    if errors:
        raise DocumentInvalid(errors)
    target = Target(merged["project_id"], merged["cluster_id"], merged["nodepool_id"])
    body = {key: value for key, value in merged.items() if key not in control_fields()}
    # SYNC_DRY_RUN makes every sync a dry run: a document can ask for one, never out of one.
    dry_run = defaults.dry_run or bool(merged.get("dry_run", False))
    wait = bool(merged.get("wait", defaults.wait))
    force = bool(merged.get("force", False))
    lifts = frozenset(name for name in OVERRIDES if merged.get(name) is True)
    return ValidSync(target, body, dry_run, wait, force, lifts | ({"ignore_windows"} if force else set()))


def target_of(overrides: Mapping[str, str], defaults: Defaults) -> Target:
    """The node pool named by API Gateway path parameters (and the defaults), for a status question."""
    merged = {name: overrides.get(name) or getattr(defaults, name) for name in Target._fields}
    errors = [
        FieldError(f"/{name}", "is not a valid ID" if value else f"is required: {TARGET_SOURCES[name]}")
        for name, value in merged.items()
        if not (value and ID_PATTERN.fullmatch(value))
    ]
    if errors:
        raise DocumentInvalid(errors)
    return Target(merged["project_id"], merged["cluster_id"], merged["nodepool_id"])


def requested_overrides(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The guards a document asks to lift (OVERRIDES set true, at its top or in its reconcile options)."""
    options = document.get("reconcile")
    inner = options if isinstance(options, Mapping) else {}
    return tuple(name for name in OVERRIDES if document.get(name) is True or inner.get(name) is True)


def is_reconcile(document: Mapping[str, Any]) -> bool:
    return "reconcile" in document


def is_fleet(document: Mapping[str, Any]) -> bool:
    return not fleet_fields().isdisjoint(document)
