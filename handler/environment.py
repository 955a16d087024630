"""Where the function's variables come from (`Environment`), and the one wrapper a secret travels in (`Secret`)."""

import json
from collections.abc import Callable, Iterator, Mapping

__all__ = ["Environment", "Secret"]


class Secret:
    """A secret string whose repr and str are masked; `reveal()` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class Environment(Mapping[str, str]):
    """The function's variables where FunctionGraph puts them: `os.environ`, then the context's user data.

    Encrypted variables never reach `os.environ`: the Python runtime keeps them in the context's user data,
    read with `getUserData(key)`, and serialises that whole map as JSON into RUNTIME_USERDATA (the fallback).
    https://github.com/openyuanrong/runtime/blob/main/api/python/yr/functionsdk/context.py (load_user_data)
    """

    def __init__(self, environ: Mapping[str, str], user_data: Callable[[str], str | None] | None = None) -> None:
        self._environ, self._user_data = environ, user_data
        self._runtime_user_data: dict[str, str] | None = None

    def _serialised(self) -> dict[str, str]:
        if self._runtime_user_data is None:
            try:
                parsed = json.loads(self._environ.get("RUNTIME_USERDATA") or "{}")
            except ValueError:
                parsed = None
            items = parsed.items() if isinstance(parsed, dict) else ()
            self._runtime_user_data = {k: v for k, v in items if isinstance(k, str) and isinstance(v, str)}
        return self._runtime_user_data

    def __getitem__(self, name: str) -> str:
        if name in self._environ:
            return self._environ[name]
        value = self._user_data(name) if self._user_data is not None else None
        if value is not None:
            return value
        return self._serialised()[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._environ), **dict.fromkeys(self._serialised())})

    def __len__(self) -> int:
        return sum(1 for _ in self)
