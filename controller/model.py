"""The plain, immutable values that flow through the pipeline.

spec -> desired ``Resource`` set; AWS -> live ``Resource`` set; diff -> ``Drift``;
plan -> ordered ``Action`` list; apply -> ``Outcome`` per action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class DriftStatus(str, Enum):
    MISSING = "missing"
    MODIFIED = "modified"
    EXTRA = "extra"


class OutcomeStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"


def freeze(value: Any) -> Any:
    """Make attribute values hashable and order-independent where order means nothing."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Resource:
    """One managed AWS object: ``kind`` + ``key`` identify it, ``attributes`` are compared.

    ``context`` carries what the kind needs to act on it (ids, ARNs) but is never diffed.
    ``source`` is the spec location (file:line) it was declared at, when it was declared.
    """

    kind: str
    key: str
    attributes: Mapping[str, Any]
    context: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    source: str | None = field(default=None, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.key}"


@dataclass(frozen=True)
class FieldChange:
    field: str
    live: Any
    desired: Any

    def as_dict(self) -> dict[str, Any]:
        # _jsonable: a Sensitive value (an environment variable) is its digest, never its value.
        return {"field": self.field, "live": _jsonable(self.live), "desired": _jsonable(self.desired)}


@dataclass(frozen=True)
class Drift:
    resource: str
    kind: str
    status: DriftStatus
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""
    parent: str | None = None  # for an extra entry inside a resource (a stage variable)
    desired: Resource | None = field(default=None, compare=False)
    live: Resource | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resource": self.resource,
            "kind": self.kind,
            "status": self.status.value,
            "changes": [c.as_dict() for c in self.changes],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.parent:
            out["parent"] = self.parent
        return out


@dataclass(frozen=True)
class Ref:
    """A value only known at apply time: ``field`` of the result of the action on ``resource``."""

    resource: str
    field: str

    def __str__(self) -> str:
        return f"<{self.field} of {self.resource}>"


@dataclass(frozen=True)
class Call:
    """One AWS API call: ``service`` client, boto3 ``method`` name, its parameters."""

    service: str
    method: str  # boto3 snake_case method, e.g. "update_alias"
    params: Mapping[str, Any]

    @property
    def operation(self) -> str:
        return f"{self.service}.{''.join(part.title() for part in self.method.split('_'))}"


@dataclass(frozen=True)
class Action:
    """What to call and why: the write calls (usually one) that converge one resource."""

    resource: str
    kind: str
    verb: str  # create | update | delete | publish
    calls: tuple[Call, ...]
    reason: str
    wave: int
    requires: tuple[str, ...] = ()  # resource ids whose actions must succeed first
    # For a deletion: resource ids whose live state still uses what it removes (a stage that
    # routes to the alias, a mapping that points at the stage). The plan makes the deletion
    # wait for their actions, and holds it back when one of them has none.
    users: tuple[str, ...] = ()
    # The action this one completes: a stop request never falls between the two
    # (an alias update right after the PublishVersion it points to).
    completes: str | None = None

    @property
    def operation(self) -> str:
        return " + ".join(c.operation for c in self.calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "verb": self.verb,
            "operation": self.operation,
            "calls": [{"operation": c.operation, "params": _jsonable(c.params)} for c in self.calls],
            "reason": self.reason,
            "requires": list(self.requires),
        }

    @property
    def deletes(self) -> bool:
        return self.verb == "delete"


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: OutcomeStatus
    error: str = ""
    result: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "resource": self.action.resource,
            "operation": self.action.operation,
            "status": self.status.value,
        }
        if self.error:
            out["error"] = self.error
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
