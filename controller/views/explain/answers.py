"""What an estate view answers (the :class:`Estate` protocol and its values), and the explanation:
its steps, the status and body the client gets, and who serves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controller.views.explain.request import Request
from controller.views.words import percent

EXIT_SERVED, EXIT_CLIENT = 0, 3
MISSING_TOKEN: dict[str, str] = {"message": "Missing Authentication Token"}
INTERNAL_ERROR: dict[str, str] = {"message": "Internal server error"}
LATEST = "$LATEST"

# ---------------------------------------------------------------------------------------------
# What an estate view answers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a base path mapping sends requests. An empty ``stage``: the next path segment names it."""

    api: str
    api_id: str | None
    stage: str


@dataclass(frozen=True)
class Mappings:
    by_base_path: dict[str, Target]
    origin: str


@dataclass(frozen=True)
class StageView:
    variables: dict[str, str]
    origin: str


@dataclass(frozen=True)
class IntegrationResponse:
    status: str
    pattern: str | None
    template: str | None


@dataclass(frozen=True)
class Integration:
    type: str
    uri: str
    request_parameters: dict[str, str]
    request_templates: dict[str, str]
    passthrough: str | None
    responses: tuple[IntegrationResponse, ...]
    origin: str
    generated: bool = False  # by Pointsman, from the spec's versions (desired view)


Resources = dict[str, dict[str, Integration | None]]  # resource path -> HTTP method -> integration


@dataclass(frozen=True)
class AliasView:
    function: str
    alias: str
    versions: dict[str, float]  # version -> share of traffic
    origin: str
    note: str = ""


@dataclass(frozen=True)
class FunctionHome:
    arn: str  # unqualified
    partition: str
    region: str
    account: str


@dataclass(frozen=True)
class Permission:
    allowed: bool
    detail: str


class Estate(Protocol):
    """The reads explain needs; :class:`LiveEstate` and :class:`DesiredEstate` answer them."""

    view: str

    @property
    def region(self) -> str: ...

    def mappings(self, domain: str) -> Mappings | None: ...

    def api_name(self, api_id: str) -> str | None: ...

    def api_id(self, name: str) -> str | None: ...

    def stage(self, api: str, api_id: str, stage: str) -> StageView | None: ...

    def resources(self, api: str, api_id: str) -> Resources: ...

    def function_home(self, function: str) -> FunctionHome | None: ...

    def alias(self, function: str, alias: str) -> AliasView | None: ...

    def permission(self, function: str, alias: str, api: str, stage: str, source_arn: str, derived: bool) -> Permission: ...


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    step: str
    detail: str


@dataclass(frozen=True)
class ServedBy:
    function: str
    alias: str | None
    versions: dict[str, float]

    def describe(self) -> str:
        name = f"{self.function}:{self.alias}" if self.alias else self.function
        return f"{name} -> {describe_versions(self.versions)}"


@dataclass(frozen=True)
class Explanation:
    request: Request
    view: str
    steps: tuple[Step, ...]
    status: int
    body: Any
    reason: str
    served_by: ServedBy | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_SERVED if 200 <= self.status < 300 else EXIT_CLIENT

    def as_dict(self) -> dict[str, Any]:
        served = None
        if self.served_by is not None:
            served = {"function": self.served_by.function, "alias": self.served_by.alias, "versions": self.served_by.versions}
        return {
            "request": self.request.as_dict(),
            "view": self.view,
            "steps": [{"step": s.step, "detail": s.detail} for s in self.steps],
            "served_by": served,
            "status": self.status,
            "body": self.body,
            "reason": self.reason,
        }


def describe_versions(versions: Mapping[str, float]) -> str:
    """``version 3``, ``$LATEST``, or ``version 3 (90%), version 4 (10%)``."""

    def one(version: str) -> str:
        return version if version == LATEST or not version.isdigit() else f"version {version}"

    if len(versions) == 1:
        return one(next(iter(versions)))
    return ", ".join(f"{one(v)} ({percent(share)})" for v, share in versions.items())


def weighted(primary: str, additional: Mapping[str, float]) -> dict[str, float]:
    """An alias's traffic split: the primary version gets what the additional one does not."""
    extra = {str(v): float(w) for v, w in additional.items()}
    return {primary: round(1.0 - sum(extra.values()), 6), **extra}


class _Answer(Exception):
    """The request stops here: what the client gets, and why."""

    def __init__(self, status: int, body: Any, reason: str, served_by: ServedBy | None = None) -> None:
        super().__init__(reason)
        self.status, self.body, self.reason, self.served_by = status, body, reason, served_by


def _forbidden(reason: str) -> _Answer:
    return _Answer(403, MISSING_TOKEN, reason)


def _internal(reason: str) -> _Answer:
    return _Answer(500, INTERNAL_ERROR, reason)
