"""Values that are never printed: a function's environment variables.

A ``Sensitive`` holds one value and shows only a short digest of it (``sha256:1a2b3c4d``)
wherever it is turned into text: ``str``, ``repr``, f-strings, JSON made by the reports,
history, the status page and notifications. Two are equal when their values are (compared
by the full SHA-256), so the diff compares them like any other attribute. The value itself
comes out only through ``reveal()``: when apply makes the AWS call, and for
``pointsman plan --show-values``.

The digest tells a reviewer that a value changed, and whether two values are the same; it
is not a secret, and a value short or common enough to guess can be found from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

DIGEST_CHARS = 8  # shown; equality uses the whole digest


class Sensitive:
    """One value that prints as its digest."""

    __slots__ = ("_value", "_digest")

    def __init__(self, value: str) -> None:
        self._value = value
        self._digest = hashlib.sha256(value.encode()).hexdigest()

    def reveal(self) -> str:
        return self._value

    @property
    def digest(self) -> str:
        return f"sha256:{self._digest[:DIGEST_CHARS]}"

    def __str__(self) -> str:
        return self.digest

    def __repr__(self) -> str:
        return f"Sensitive({self.digest})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sensitive) and other._digest == self._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __copy__(self) -> Sensitive:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Sensitive:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a Sensitive value is not pickled")


def seal(values: Mapping[str, str]) -> dict[str, Sensitive]:
    return {name: Sensitive(value) for name, value in values.items()}


def reveal(value: Any) -> Any:
    """``value`` with every Sensitive inside (maps, lists) replaced by its value."""
    if isinstance(value, Sensitive):
        return value.reveal()
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reveal(v) for v in value]
    return value


def secrets_in(value: Any) -> list[str]:
    """The values of the Sensitive inside ``value`` (to scrub them from an error message)."""
    if isinstance(value, Sensitive):
        return [value.reveal()]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in secrets_in(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in secrets_in(v)]
    return []


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` (an AWS error message may quote what it was sent) with each secret masked."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, str(Sensitive(secret)))
    return text


def environment_changes(live: Mapping[str, Any], desired: Mapping[str, Any]) -> str:
    """``DB_PASSWORD: (changed), DEBUG: (removed), TABLE: (added)``: names only, never values."""
    parts = []
    for name in sorted(live.keys() | desired.keys()):
        if name not in live:
            parts.append(f"{name}: (added)")
        elif name not in desired:
            parts.append(f"{name}: (removed)")
        elif live[name] != desired[name]:
            parts.append(f"{name}: (changed)")
    return ", ".join(parts)
