"""SHA-512 crypt and the salting of node login passwords."""

from __future__ import annotations

import base64
import warnings

import pytest

from handler.passwords import salt_body, sha512_crypt
from handler.validation import is_salted_password

# Test vectors published with Ulrich Drepper's SHA-crypt specification.
VECTORS = [
    ("Hello world!", "saltstring", 5000,
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    ("Hello world!", "saltstringsaltstring", 10000,
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
    ("This is just a test", "toolongsaltstring", 5000,
     "$6$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"),
    ("a very much longer text to encrypt.  This one even stretches over morethan one line.", "anotherlongsaltstring",
     1400,
     "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"),
    ("we have a short salt string but not a short password", "short", 77777,
     "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"),
    ("a short string", "asaltof16chars..gaga", 123456,
     "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"),
    ("the minimum number is still observed", "roundstoolow", 10,
     "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."),
]  # fmt: skip


@pytest.mark.parametrize(("password", "salt", "rounds", "expected"), VECTORS)
def test_sha512_crypt_matches_the_published_vectors(password: str, salt: str, rounds: int, expected: str) -> None:
    assert sha512_crypt(password, salt, rounds) == expected


@pytest.mark.parametrize("password", ["", "a", "Abcdef12!x", "x" * 200, "Pässwörd-1"])
def test_sha512_crypt_matches_the_crypt_module(password: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    assert sha512_crypt(password, "Xy7./abcdef12345") == crypt.crypt(password, "$6$Xy7./abcdef12345")


def test_a_fresh_16_character_salt_each_time() -> None:
    first, second = sha512_crypt("Abcdef12!x"), sha512_crypt("Abcdef12!x")
    assert first != second
    assert len(first.split("$")[2]) == 16


def _body(password: str) -> dict[str, object]:
    return {
        "spec": {
            "maxUnavailable": 1,
            "nodePoolID": "p",
            "nodeTemplate": {"lifeCycle": {}, "login": {"userPassword": {"username": "root", "password": password}}},
        }
    }


def test_salt_body_round_trips_through_crypt() -> None:
    salted = salt_body(_body("Abcdef12!x"))["spec"]["nodeTemplate"]["login"]["userPassword"]["password"]  # type: ignore[index]
    crypt_string = base64.b64decode(salted).decode()
    salt = crypt_string.split("$")[2]
    assert crypt_string == sha512_crypt("Abcdef12!x", salt)
    assert is_salted_password(salted)


def test_an_already_salted_password_is_sent_unchanged() -> None:
    salted = base64.b64encode(sha512_crypt("Abcdef12!x").encode()).decode()
    body = _body(salted)
    assert salt_body(body) is body


def test_salt_body_leaves_the_input_untouched() -> None:
    body = _body("Abcdef12!x")
    salt_body(body)
    assert body["spec"]["nodeTemplate"]["login"]["userPassword"]["password"] == "Abcdef12!x"  # type: ignore[index]
