"""Node login passwords as CCE wants them: `base64(sha512_crypt(password))`, salted fresh each time.

SHA-512 crypt is implemented here (Drepper's specification) because Python's `crypt` module is
deprecated and gone in 3.13, and the function may not add a runtime dependency.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from .logs import MASK
from .validation import is_salted_password

__all__ = ["mask_body", "replace_password", "salt_body", "sha512_crypt"]

_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DEFAULT_ROUNDS = 5000
# The order in which the 64 digest bytes are packed, three at a time, into the crypt alphabet.
_PERMUTATION = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
    (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def _encode(digest: bytes) -> str:
    out = []
    for a, b, c in _PERMUTATION:
        value = (digest[a] << 16) | (digest[b] << 8) | digest[c]
        for _ in range(4):
            out.append(_ALPHABET[value & 0x3F])
            value >>= 6
    value = digest[63]
    out.extend((_ALPHABET[value & 0x3F], _ALPHABET[value >> 6]))
    return "".join(out)


def _repeat(digest: bytes, length: int) -> bytes:
    return (digest * (length // 64 + 1))[:length]


def sha512_crypt(password: str, salt: str | None = None, rounds: int = _DEFAULT_ROUNDS) -> str:
    """The `$6$` crypt string of a password; a random 16-character salt unless one is given."""
    if salt is None:
        import secrets  # only when a plain password is salted

        salt = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    rounds = max(1000, min(rounds, 999_999_999))
    key, salt_bytes = password.encode("utf-8"), salt[:16].encode("utf-8")

    alternate = hashlib.sha512(key + salt_bytes + key).digest()
    context = hashlib.sha512(key + salt_bytes + _repeat(alternate, len(key)))
    length = len(key)
    while length:
        context.update(alternate if length & 1 else key)
        length >>= 1
    digest = context.digest()

    p_bytes = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    s_bytes = _repeat(hashlib.sha512(salt_bytes * (16 + digest[0])).digest(), len(salt_bytes))

    for i in range(rounds):
        step = hashlib.sha512(p_bytes if i & 1 else digest)
        if i % 3:
            step.update(s_bytes)
        if i % 7:
            step.update(p_bytes)
        step.update(digest if i & 1 else p_bytes)
        digest = step.digest()

    prefix = "$6$" if rounds == _DEFAULT_ROUNDS else f"$6$rounds={rounds}$"
    return f"{prefix}{salt_bytes.decode()}${_encode(digest)}"


def replace_password(body: dict[str, Any], replace: Callable[[str], str]) -> dict[str, Any]:
    """A copy of a CCE body with `userPassword.password` replaced; the body itself when nothing changes."""
    template = body.get("spec", {}).get("nodeTemplate")
    user_password = (template or {}).get("login", {}).get("userPassword")
    if not user_password or "password" not in user_password:
        return body
    password = replace(user_password["password"])
    if password == user_password["password"]:
        return body
    login = {**template["login"], "userPassword": {**user_password, "password": password}}
    return {**body, "spec": {**body["spec"], "nodeTemplate": {**template, "login": login}}}


def _salted(password: str) -> str:
    if is_salted_password(password):
        return password
    return base64.b64encode(sha512_crypt(password).encode("ascii")).decode("ascii")


def salt_body(body: dict[str, Any]) -> dict[str, Any]:
    """The CCE body with a plain `userPassword.password` replaced by its salted form (others unchanged)."""
    return replace_password(body, _salted)


def mask_body(body: dict[str, Any]) -> dict[str, Any]:
    """The CCE body with the node login password masked, for dry runs and for showing requests."""
    return replace_password(body, lambda _: MASK)
