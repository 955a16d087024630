"""Turn a sync request document into a validated sync: defaults, `lifeCycle` spelling, schema and rules.

The JSON Schemas are generated from the CCE API reference (schemas/generate.py); rules JSON Schema cannot
say (a script's decoded size, the node password rules) live here with the same error shape.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation

from .errors import MAX_ERRORS_FOUND, DocumentInvalid, FieldError, kind_of
from .fastschema import Check, compile_schema

__all__ = [
    "ID_PATTERN",
    "SCHEMA_DIR",
    "Defaults",
    "Fleet",
    "Reconcile",
    "Selection",
    "Target",
    "ValidSync",
    "check_document",
    "is_fleet",
    "is_reconcile",
    "is_salted_password",
    "password_problems",
    "plan_fleet",
    "plan_reconcile",
    "prepare",
    "target_of",
    "validate_document",
]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
DOCUMENT_SCHEMA = "sync-request.schema.json"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SPECIAL_CHARACTERS = "!@$%^-_=+[{}]:,./?"
MAX_SCRIPT_BYTES = 7680
_SALTED = re.compile(r"\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}")
_TARGET_FIELDS = ("project_id", "cluster_id", "nodepool_id")
_CONTROL_FIELDS = (*_TARGET_FIELDS, "dry_run", "wait", "force")
_FLEET_FIELDS = ("targets", "nodepools")
FLEET_SCHEMA = "sync-fleet.schema.json"
RECONCILE_SCHEMA = "sync-reconcile.schema.json"
_TARGET_SOURCES = {
    "project_id": "HUAWEICLOUD_SDK_PROJECT_ID (or the FunctionGraph context's project)",
    "cluster_id": "CCE_CLUSTER_ID",
    "nodepool_id": "CCE_NODEPOOL_ID",
}


class Target(NamedTuple):
    """The node pool a sync is for; every ID matched ID_PATTERN before it got here."""

    project_id: str
    cluster_id: str
    nodepool_id: str


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

    @property
    def names_nodes(self) -> bool:
        """Whether the spec picks nodes itself (nodeIDs): then the pool's counts do not say it is needless."""
        return bool(self.body.get("spec", {}).get("nodeIDs"))


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    """A generated schema, read once per process (`check_schema` is the tests' job, not the cold start's)."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    """jsonschema's validator of a generated schema: it explains what is wrong."""
    return Draft202012Validator(_schema(name))


@functools.cache
def _is_valid() -> Check:
    """The document schema compiled into a yes/no check for the hot path."""
    return compile_schema(_schema(DOCUMENT_SCHEMA))


def warm() -> None:
    """Load and compile the schema now (for the initializer) instead of on the first event."""
    _is_valid()
    _validator(DOCUMENT_SCHEMA)


def _pointer(parts: Iterator[str | int] | Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_ARTICLE = {"integer": "an integer", "object": "an object", "array": "an array"}


def _explain(error: SchemaViolation) -> Iterator[FieldError]:
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
    return _SALTED.fullmatch(decoded) is not None


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
    for name in _TARGET_FIELDS:
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


def _found(errors: Iterable[FieldError]) -> list[FieldError]:
    """The errors, up to MAX_ERRORS_FOUND: jsonschema finds them lazily, so the rest are never looked for."""
    return list(islice(errors, MAX_ERRORS_FOUND))


def _schema_errors(name: str, document: Any) -> list[FieldError]:
    return _found(e for violation in _validator(name).iter_errors(document) for e in _explain(violation))


def validate_document(document: Any) -> list[FieldError]:
    """The errors of a (normalized) document, at most MAX_ERRORS_FOUND: schema violations, then the rules beyond."""
    if _is_valid()(document):
        return _found(_rule_errors(document))
    errors = _schema_errors(DOCUMENT_SCHEMA, document)
    if not isinstance(document, dict):
        return errors or [FieldError("", f"must be an object, not {kind_of(document)}")]
    return errors or _found(_rule_errors(document))


def _normalized_spec(spec: Any, nodepool_id: str, node_login_password: str, errors: list[FieldError]) -> Any:
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
    """The document with its spec normalized (see _normalized_spec) against its own nodepool_id."""
    if "spec" not in document:
        return document
    nodepool_id = document.get("nodepool_id")
    nodepool_id = nodepool_id if isinstance(nodepool_id, str) else ""
    return {**document, "spec": _normalized_spec(document["spec"], nodepool_id, node_login_password, errors)}


def check_document(document: Any) -> list[FieldError]:
    """Every error of a document as it stands (no defaults): for tools that validate files."""
    if not isinstance(document, dict):
        return validate_document(document)
    errors: list[FieldError] = []
    normalized = _normalized(document, "", errors)
    return errors + validate_document(normalized)


def prepare(document: Mapping[str, Any], overrides: Mapping[str, str], defaults: Defaults) -> ValidSync:
    """Merge overrides and defaults into the document, validate it, and split it into target and body."""
    merged = dict(document)
    merged.update(overrides)
    for name in _TARGET_FIELDS:
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
    for name in _TARGET_FIELDS:
        if name not in merged:
            errors.append(FieldError(f"/{name}", f"is required: set it in the document or {_TARGET_SOURCES[name]}"))
    if errors:
        raise DocumentInvalid(errors)
    target = Target(merged["project_id"], merged["cluster_id"], merged["nodepool_id"])
    body = {key: value for key, value in merged.items() if key not in _CONTROL_FIELDS}
    dry_run, wait = bool(merged.get("dry_run", defaults.dry_run)), bool(merged.get("wait", defaults.wait))
    return ValidSync(target, body, dry_run, wait, bool(merged.get("force", False)))


class Selection(str, Enum):
    """How a fleet document chooses its node pools."""

    TARGETS = "targets"  # the document lists them
    NAMES = "names"  # the cluster's node pools with these names
    ALL = "all"  # every node pool of the cluster (DefaultPool only when asked)


class Fleet(NamedTuple):
    """A validated fleet document: the listed targets' documents, or a selection to resolve with CCE."""

    selection: Selection
    project_id: str
    cluster_id: str
    shared: dict[str, Any]
    documents: tuple[dict[str, Any], ...] = ()  # Selection.TARGETS
    names: tuple[str, ...] = ()  # Selection.NAMES
    include_default: bool = False  # Selection.ALL


def _shared_spec_errors(spec: dict[str, Any], node_login_password: str) -> list[FieldError]:
    """The shared spec's errors, found once for the whole fleet rather than once per target that uses it."""
    errors: list[FieldError] = []
    probe = {"spec": _normalized_spec(spec, spec.get("nodePoolID") or "fleet-target", node_login_password, errors)}
    return _found([*errors, *validate_document(probe)])


def target_of(overrides: Mapping[str, str], defaults: Defaults) -> Target:
    """The node pool named by API Gateway path parameters (and the defaults), for a status question."""
    merged = {name: overrides.get(name) or getattr(defaults, name) for name in _TARGET_FIELDS}
    errors = [
        FieldError(f"/{name}", "is not a valid ID" if value else f"is required: {_TARGET_SOURCES[name]}")
        for name, value in merged.items()
        if not (value and ID_PATTERN.fullmatch(value))
    ]
    if errors:
        raise DocumentInvalid(errors)
    return Target(merged["project_id"], merged["cluster_id"], merged["nodepool_id"])


def is_reconcile(document: Mapping[str, Any]) -> bool:
    return "reconcile" in document


class Reconcile(NamedTuple):
    """A validated reconcile pass: where to look, which pools, how gently, and the spec of every start."""

    project_id: str
    every_cluster: bool  # clusters: "all" (the project's cluster list)
    cluster_ids: tuple[str, ...]  # otherwise these
    pools: Selection  # ALL or NAMES
    names: tuple[str, ...]
    include_default: bool
    exclude: frozenset[str]
    max_syncing: int
    force: bool
    spec: dict[str, Any]
    dry_run: bool
    pool_ids: frozenset[str] = frozenset()  # a change event's pool: only it (empty: every chosen pool)


def plan_reconcile(document: Mapping[str, Any], overrides: Mapping[str, str], defaults: Defaults) -> Reconcile:
    """Check a reconcile document; defaults fill the project, the clusters (CCE_CLUSTER_ID) and the spec."""
    if "nodepool_id" in overrides:
        raise DocumentInvalid([FieldError("", "this API path names one node pool: send a single sync document")])
    errors = _schema_errors(RECONCILE_SCHEMA, document)
    options = document.get("reconcile")
    options = options if isinstance(options, dict) else {}
    selection = options.get("nodepools", {"all": True})
    if isinstance(selection, dict) and ("names" in selection) == bool(selection.get("all")):
        errors.append(FieldError("/reconcile/nodepools", "give either names or all: true"))
    clusters = options.get("clusters", [defaults.cluster_id] if defaults.cluster_id else [])
    if "cluster_id" in overrides:
        if "clusters" in options and options["clusters"] != [overrides["cluster_id"]]:
            errors.append(FieldError("/reconcile/clusters", "differs from the API path's cluster, which decides"))
        clusters = [overrides["cluster_id"]]
    if not clusters:
        errors.append(FieldError("/reconcile/clusters", "is required: set it or CCE_CLUSTER_ID"))
    project_id = overrides.get("project_id") or document.get("project_id") or defaults.project_id
    if not project_id:
        errors.append(FieldError("/project_id", f"is required: set it or {_TARGET_SOURCES['project_id']}"))
    spec = document.get("spec", defaults.spec)
    if spec is None:
        errors.append(FieldError("/spec", "is required: set it in the document or CCE_SYNC_SPEC"))
    elif isinstance(spec, dict) and not errors:
        errors = _shared_spec_errors(dict(spec), defaults.node_login_password)
    if errors:
        raise DocumentInvalid(errors)
    assert isinstance(selection, dict) and isinstance(spec, Mapping)
    return Reconcile(
        project_id=str(project_id),
        every_cluster=clusters == "all",
        cluster_ids=() if clusters == "all" else tuple(dict.fromkeys(clusters)),
        pools=Selection.ALL if selection.get("all") else Selection.NAMES,
        names=tuple(selection.get("names", ())),
        include_default=bool(selection.get("include_default")),
        exclude=frozenset(options.get("exclude", ())),
        max_syncing=int(options.get("max_syncing_per_cluster", 1)),
        force=bool(options.get("force", False)),
        spec=dict(spec),
        dry_run=bool(document.get("dry_run", defaults.dry_run)),
    )


def is_fleet(document: Mapping[str, Any]) -> bool:
    return any(name in document for name in _FLEET_FIELDS)


def plan_fleet(document: Mapping[str, Any], overrides: Mapping[str, str], defaults: Defaults) -> Fleet:
    """Check a fleet document's shape; each target is validated later as a document of its own.

    `overrides` (API Gateway path parameters) win here as for a single document: a target naming another
    project or cluster is a conflict, and a path that names one node pool cannot carry a fleet."""
    if "nodepool_id" in overrides:
        raise DocumentInvalid(
            [FieldError("", "this API path names one node pool: send a single sync document, not targets or nodepools")]
        )
    merged = {**document, **overrides}
    errors = _schema_errors(FLEET_SCHEMA, merged)
    if "targets" in merged and "nodepools" in merged:
        errors.append(FieldError("/nodepools", "give either targets or nodepools, not both"))
    selection = merged.get("nodepools")
    if isinstance(selection, dict) and ("names" in selection) == bool(selection.get("all")):
        errors.append(FieldError("/nodepools", "give either names or all: true"))
    project_id = merged.get("project_id") or defaults.project_id
    cluster_id = merged.get("cluster_id") or defaults.cluster_id
    if "nodepools" in merged and not cluster_id:
        errors.append(FieldError("/cluster_id", "is required to select node pools: set it or CCE_CLUSTER_ID"))
    targets = merged.get("targets", [])
    for index, target in enumerate(targets if isinstance(targets, list) else ()):
        for key, value in overrides.items():
            if isinstance(target, dict) and target.get(key, value) != value:
                errors.append(FieldError(f"/targets/{index}/{key}", "differs from the API path's, which decides"))
    if not errors and isinstance(merged.get("spec"), dict):
        errors = _shared_spec_errors(merged["spec"], defaults.node_login_password)
    if errors:
        raise DocumentInvalid(errors)
    shared: dict[str, Any] = {key: merged[key] for key in ("spec", "dry_run", "wait") if key in merged}
    if "targets" in merged:
        ids = {"project_id": project_id} if project_id else {}
        ids.update({"cluster_id": cluster_id} if cluster_id else {})
        documents = tuple({**shared, **ids, **target, **overrides} for target in targets)
        return Fleet(Selection.TARGETS, project_id, cluster_id, shared, documents=documents)
    assert isinstance(selection, dict)  # a fleet document without targets has nodepools, an object
    if selection.get("all"):
        include_default = bool(selection.get("include_default"))
        return Fleet(Selection.ALL, project_id, cluster_id, shared, include_default=include_default)
    return Fleet(Selection.NAMES, project_id, cluster_id, shared, names=tuple(selection["names"]))
