"""Validation of sync request documents: schema errors with pointers, rules beyond the schema, defaults."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from handler.errors import DocumentInvalid
from handler.passwords import sha512_crypt
from handler.validation import Defaults, password_problems, prepare, validate_document

GOOD_PASSWORD = "Node-Pass-2026"
# The page's two request examples; the second's placeholder password replaced by a valid one.
PAGE_EXAMPLE_NODES = {
    "spec": {
        "maxUnavailable": 1,
        "nodeIDs": ["aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "bbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbb"],
        "nodePoolID": "cccccccc-cccc-cccc-cccc-cccccccccccc",
    }
}
PAGE_EXAMPLE_TEMPLATE = {
    "spec": {
        "maxUnavailable": 1,
        "nodeIDs": ["aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "bbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbb"],
        "nodePoolID": "DefaultPool",
        "nodeTemplate": {
            "lifeCycle": {"preInstall": "ZWNobyAx", "postInstall": "ZWNobyAx"},
            "login": {"userPassword": {"password": GOOD_PASSWORD, "username": "root"}},
        },
    }
}
FULL = {
    "kind": "NodePool",
    "apiVersion": "v3",
    "metadata": {"name": "pool-a"},
    "project_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "cluster_id": "7c3e1b2a-5d4f-11ee-9a3b-0255ac100b04",
    "nodepool_id": "DefaultPool",
    "dry_run": False,
    "spec": {
        "maxUnavailable": 20,
        "nodeIDs": ["n1"],
        "nodePoolID": "DefaultPool",
        "force": True,
        "retryTimes": 2,
        "skippedNodes": ["n2"],
        "nodeTemplate": {
            "lifeCycle": {"preInstall": "ZWNobyAx", "postInstall": "", "waitPostInstallFinish": True},
            "login": {
                "sshKey": "kp-ops",
                "userPassword": {"username": "ops", "password": GOOD_PASSWORD},
                "removeUserPassword": False,
                "removeSSHKey": False,
            },
            "volumeConfig": {"lvmConfig": "dockerThinpool=vgpaas/90%VG"},
        },
    },
}


@pytest.mark.parametrize(
    "document", [PAGE_EXAMPLE_NODES, PAGE_EXAMPLE_TEMPLATE, FULL], ids=["nodes", "template", "full"]
)
def test_valid_documents_have_no_errors(document: dict[str, Any]) -> None:
    assert validate_document(document) == []


def test_an_already_salted_password_is_valid() -> None:
    document = copy.deepcopy(PAGE_EXAMPLE_TEMPLATE)
    salted = base64.b64encode(sha512_crypt("root-looking-but-salted").encode()).decode()
    document["spec"]["nodeTemplate"]["login"]["userPassword"]["password"] = salted
    assert validate_document(document) == []


def _with(path: str, value: Any, base: dict[str, Any] = PAGE_EXAMPLE_TEMPLATE) -> dict[str, Any]:
    """A copy of `base` with the field at the /-separated path set to `value` (or removed when ... )."""
    document = copy.deepcopy(base)
    *parents, last = path.strip("/").split("/")
    node = document
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return document


LONG_SCRIPT = "QUFB" * 2560 + "QQ=="  # 10244 characters of valid Base64
INVALID = [
    # (id, document, pointer, words in the message)
    ("missing spec", {}, "/spec", "required"),
    ("missing maxUnavailable", _with("/spec/maxUnavailable", ...), "/spec/maxUnavailable", "required"),
    ("maxUnavailable 0", _with("/spec/maxUnavailable", 0), "/spec/maxUnavailable", "less than the minimum of 1"),
    ("maxUnavailable 21", _with("/spec/maxUnavailable", 21), "/spec/maxUnavailable", "greater than the maximum of 20"),
    ("maxUnavailable string", _with("/spec/maxUnavailable", "1"), "/spec/maxUnavailable", "must be an integer"),
    ("maxUnavailable 1.5", _with("/spec/maxUnavailable", 1.5), "/spec/maxUnavailable", "must be an integer"),
    ("missing nodePoolID", _with("/spec/nodePoolID", ...), "/spec/nodePoolID", "required"),
    ("nodeIDs not an array", _with("/spec/nodeIDs", "n1"), "/spec/nodeIDs", "must be an array"),
    ("nodeIDs with a number", _with("/spec/nodeIDs", ["n1", 7]), "/spec/nodeIDs/1", "must be a string"),
    ("nodeIDs with an empty id", _with("/spec/nodeIDs", [""]), "/spec/nodeIDs/0", "must not be empty"),
    ("non-Base64 script", _with("/spec/nodeTemplate/lifeCycle/preInstall", "echo 1"),
     "/spec/nodeTemplate/lifeCycle/preInstall", "not valid Base64"),
    ("Base64 with a trailing newline", _with("/spec/nodeTemplate/lifeCycle/postInstall", "ZWNobyAx\n"),
     "/spec/nodeTemplate/lifeCycle/postInstall", "not valid Base64"),
    ("10241-character script", _with("/spec/nodeTemplate/lifeCycle/preInstall", "A" * 10241),
     "/spec/nodeTemplate/lifeCycle/preInstall", "longer than 10240 characters"),
    ("10244-character valid Base64", _with("/spec/nodeTemplate/lifeCycle/preInstall", LONG_SCRIPT),
     "/spec/nodeTemplate/lifeCycle/preInstall", "longer than 10240"),
    ("nodeTemplate without login", _with("/spec/nodeTemplate/login", ...), "/spec/nodeTemplate/login", "required"),
    ("nodeTemplate without lifeCycle", _with("/spec/nodeTemplate/lifeCycle", ...),
     "/spec/nodeTemplate/lifeCycle", "required"),
    ("userPassword without password", _with("/spec/nodeTemplate/login/userPassword/password", ...),
     "/spec/nodeTemplate/login/userPassword/password", "required"),
    ("password too short", _with("/spec/nodeTemplate/login/userPassword/password", "Ab1!"),
     "/spec/nodeTemplate/login/userPassword/password", "8 to 26 characters"),
    ("password too long", _with("/spec/nodeTemplate/login/userPassword/password", "Ab1!" * 7),
     "/spec/nodeTemplate/login/userPassword/password", "8 to 26 characters"),
    ("password with two classes", _with("/spec/nodeTemplate/login/userPassword/password", "abcdefgh12"),
     "/spec/nodeTemplate/login/userPassword/password", "at least three of"),
    ("password with a character outside the classes", _with("/spec/nodeTemplate/login/userPassword/password",
     "Abcdef12 #"), "/spec/nodeTemplate/login/userPassword/password", "may contain only"),
    ("password containing the username", _with("/spec/nodeTemplate/login/userPassword/password", "Myroot-2026"),
     "/spec/nodeTemplate/login/userPassword/password", "must not contain the username"),
    ("password containing the username reversed", _with("/spec/nodeTemplate/login/userPassword/password",
     "Toor-2026-X"), "/spec/nodeTemplate/login/userPassword/password", "username reversed"),
    ("unknown top-level field", _with("/spek", {}), "/spek", "unknown field 'spek'"),
    ("unknown spec field (typo)", _with("/spec/maxUnavailble", 1), "/spec/maxUnavailble",
     "did you mean 'maxUnavailable'"),
    ("unknown nodeTemplate field", _with("/spec/nodeTemplate/extra", 1), "/spec/nodeTemplate/extra", "allowed: "),
    ("unknown lifeCycle field", _with("/spec/nodeTemplate/lifeCycle/preinstall", "ZWNobyAx"),
     "/spec/nodeTemplate/lifeCycle/preinstall", "did you mean 'preInstall'"),
    ("unknown login field", _with("/spec/nodeTemplate/login/sshkey", "kp"), "/spec/nodeTemplate/login/sshkey",
     "did you mean 'sshKey'"),
    ("unknown userPassword field", _with("/spec/nodeTemplate/login/userPassword/user", "root"),
     "/spec/nodeTemplate/login/userPassword/user", "unknown field"),
    ("cluster_id with a slash", _with("/cluster_id", "a/../b"), "/cluster_id", "not a valid ID"),
    ("nodepool_id with a trailing newline", _with("/nodepool_id", "pool\n"), "/nodepool_id", "not a valid ID"),
    ("dry_run not boolean", _with("/dry_run", "yes"), "/dry_run", "must be a boolean"),
    ("kind not NodePool", _with("/kind", "Pod"), "/kind", "must be one of: NodePool"),
    ("list", [], "", "must be an object, not an array"),
    ("string", "spec", "", "must be an object, not a string"),
    ("null", None, "", "must be an object, not null"),
    ("number", 42, "", "must be an object, not an integer"),
]  # fmt: skip


@pytest.mark.parametrize(("document", "pointer", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_documents_are_rejected_with_the_right_pointer(document: Any, pointer: str, words: str) -> None:
    errors = validate_document(document)
    assert any(e.path == pointer and words in e.message for e in errors), errors


def test_all_errors_are_reported_at_once() -> None:
    document = _with("/spec/maxUnavailable", 25, _with("/spec/maxUnavailble", 1))
    paths = {e.path for e in validate_document(document)}
    assert paths == {"/spec/maxUnavailable", "/spec/maxUnavailble"}


def test_the_issue_example_message() -> None:
    [error] = validate_document(_with("/spec/maxUnavailable", 25))
    assert str(error) == "/spec/maxUnavailable: 25 is greater than the maximum of 20"


def test_error_messages_never_echo_the_password() -> None:
    password = "secretpass"  # two classes: breaks a rule
    errors = validate_document(_with("/spec/nodeTemplate/login/userPassword/password", password))
    assert errors and all(password not in str(e) for e in errors)


@pytest.mark.parametrize(
    ("password", "username", "broken"),
    [
        ("Abcdefg1", "root", []),
        ("abc!1234", "root", []),
        ("ABC!abcd", "root", []),
        ("Ab1!", "root", ["8 to 26"]),
        ("abcdefgh", "root", ["three of"]),
        ("Abcdef12 ", "root", ["may contain only"]),
        ("Admin-ROOT-1", "root", ["the username"]),
        ("Admin-TOOR-1", "root", ["reversed"]),
    ],
)
def test_password_rules(password: str, username: str, broken: list[str]) -> None:
    problems = password_problems(password, username)
    assert len(problems) == len(broken)
    assert all(word in problem for word, problem in zip(broken, problems, strict=True))


DEFAULTS = Defaults(project_id="proj", cluster_id="clu", nodepool_id="pool")


def test_lifecycle_is_renamed_to_the_wire_name() -> None:
    document = {"spec": {"maxUnavailable": 1, "nodeTemplate": {"lifecycle": {"preInstall": "ZWNobyAx"}, "login": {}}}}
    sync = prepare(document, {}, DEFAULTS)
    assert sync.body["spec"]["nodeTemplate"] == {"lifeCycle": {"preInstall": "ZWNobyAx"}, "login": {}}
    assert "lifecycle" in document["spec"]["nodeTemplate"]  # the input is not mutated


def test_a_template_with_both_spellings_is_rejected() -> None:
    template = {"lifecycle": {}, "lifeCycle": {}, "login": {}}
    with pytest.raises(DocumentInvalid) as caught:
        prepare({"spec": {"maxUnavailable": 1, "nodeTemplate": template}}, {}, DEFAULTS)
    assert [e.path for e in caught.value.errors] == ["/spec/nodeTemplate"]


def test_defaults_fill_the_target_and_nodepoolid() -> None:
    sync = prepare({"spec": {"maxUnavailable": 1}}, {}, DEFAULTS)
    assert (sync.target.project_id, sync.target.cluster_id, sync.target.nodepool_id) == ("proj", "clu", "pool")
    assert sync.body == {"spec": {"maxUnavailable": 1, "nodePoolID": "pool"}}


def test_overrides_win_over_document_and_defaults() -> None:
    sync = prepare({"cluster_id": "doc", "spec": {"maxUnavailable": 1}}, {"cluster_id": "path"}, DEFAULTS)
    assert sync.target.cluster_id == "path"


def test_spec_falls_back_to_the_environment_spec() -> None:
    sync = prepare({}, {}, Defaults("p", "c", "n", spec={"maxUnavailable": 4}))
    assert sync.body == {"spec": {"maxUnavailable": 4, "nodePoolID": "n"}}


def test_nodepoolid_must_equal_the_target() -> None:
    with pytest.raises(DocumentInvalid) as caught:
        prepare({"spec": {"maxUnavailable": 1, "nodePoolID": "other"}}, {}, DEFAULTS)
    assert [e.path for e in caught.value.errors] == ["/spec/nodePoolID"]


def test_missing_targets_name_their_variables() -> None:
    with pytest.raises(DocumentInvalid) as caught:
        prepare({"spec": {"maxUnavailable": 1, "nodePoolID": "x"}}, {}, Defaults())
    messages = {e.path: e.message for e in caught.value.errors}
    assert "CCE_CLUSTER_ID" in messages["/cluster_id"] and "CCE_NODEPOOL_ID" in messages["/nodepool_id"]
    assert "HUAWEICLOUD_SDK_PROJECT_ID" in messages["/project_id"]


def test_node_login_password_fills_a_password_the_document_lacks() -> None:
    template = {"lifeCycle": {}, "login": {"userPassword": {"username": "root"}}}
    defaults = Defaults("p", "c", "n", node_login_password=GOOD_PASSWORD)
    sync = prepare({"spec": {"maxUnavailable": 1, "nodeTemplate": template}}, {}, defaults)
    assert sync.body["spec"]["nodeTemplate"]["login"]["userPassword"]["password"] == GOOD_PASSWORD


def test_target_and_control_fields_are_not_sent_to_cce() -> None:
    sync = prepare({**FULL, "dry_run": True}, {}, DEFAULTS)
    assert set(sync.body) == {"spec", "kind", "apiVersion", "metadata"}
    assert sync.dry_run is True
