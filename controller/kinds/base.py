"""What every managed kind declares, and the context kinds read while planning.

A kind says: its name and key, its attributes, how to build desired and live instances
from the spec and the observed scope, which calls converge a drift, which IAM actions
those calls need, and its wave (place in the apply order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from controller.live.scope import FunctionLive, Scope
from controller.model import Action, Call, Drift, FieldChange, Resource
from controller.rollout import RolloutBook
from controller.sensitive import Sensitive
from controller.spec import MAX_ENVIRONMENT_BYTES, Spec, SsmReference


@dataclass(frozen=True)
class PlanProblem:
    """A reason the plan cannot be made (nothing is applied): where in the spec, and what."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


@dataclass
class PlanContext:
    spec: Spec
    scope: Scope
    prune: bool = False  # deletions are planned: their users are worth reading
    problems: list[PlanProblem] = field(default_factory=list)
    # What the plan cannot fix but someone should know (reported, not drift; nothing is blocked).
    warnings: list[str] = field(default_factory=list)
    _reported: set[str] = field(default_factory=set)
    derived: dict[str, Any] = field(default_factory=dict)  # values several kinds derive once per plan
    # REST APIs this apply creates (clones): what they carry is planned once they exist.
    pending_apis: set[str] = field(default_factory=set)
    # Rollouts: the records of earlier runs, the controls asked for, and this plan's decisions.
    rollouts: RolloutBook = field(default_factory=RolloutBook)

    def problem(self, source: str | None, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.problems.append(PlanProblem(source or "", message))

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def api_id(self, name: str, source: str | None = None) -> str | None:
        """Resolve a REST API name; missing or ambiguous names are plan problems."""
        ids = self.scope.rest_api_ids().get(name, [])
        if len(ids) == 1:
            return ids[0]
        if not ids and name in self.pending_apis:
            return None  # created by this apply; its stages and mappings follow in a second pass
        where = source or (self.spec.rest_apis[name].source if name in self.spec.rest_apis else None)
        if not ids:
            self.problem(where, f"REST API {name!r} does not exist")
        else:
            self.problem(where, f"REST API name {name!r} is ambiguous: ids {', '.join(sorted(ids))}")
        return None

    def function(self, name: str, source: str | None = None) -> FunctionLive | None:
        fn = self.scope.function(name)
        if fn is None:
            where = source or (self.spec.functions[name].source if name in self.spec.functions else None)
            self.problem(where, f"function {name!r} does not exist")
        return fn

    def environment(self, function: str) -> dict[str, Sensitive] | None:
        """The environment the spec declares for ``function``, values from SSM read, each value
        a ``Sensitive`` (never printed). None when not managed, or when a value cannot be had
        (a plan problem then names the spec line and the parameter)."""
        key = f"environment/{function}"
        if key not in self.derived:
            self.derived[key] = self._environment(function)
        return self.derived[key]

    def _environment(self, function: str) -> dict[str, Sensitive] | None:
        decl = self.spec.functions[function]
        declared = decl.spec.environment
        if declared is None:
            return None
        if "parameters" not in self.derived:  # every parameter of the spec at once: the batches observe read
            names = [name for d in self.spec.functions.values() for name in d.spec.ssm_parameters().values()]
            self.derived["parameters"] = self.scope.parameters(names)
        parameters: dict[str, Sensitive | None] = self.derived["parameters"]
        out: dict[str, Sensitive] = {}
        complete = True
        for name, value in declared.items():
            if isinstance(value, SsmReference):
                found = parameters.get(value.ssm)
                if found is None:
                    where = self.spec.source_of("functions", function, "environment", name) or decl.source
                    self.problem(where, f"functions.{function}.environment.{name}: SSM parameter {value.ssm} does not exist")
                    complete = False
                    continue
                out[name] = found
            else:
                out[name] = Sensitive(value)
        size = sum(len(k.encode()) + len(v.reveal().encode()) for k, v in out.items())
        if complete and size > MAX_ENVIRONMENT_BYTES:
            where = self.spec.source_of("functions", function, "environment") or decl.source
            self.problem(
                where,
                f"functions.{function}.environment: with the values from SSM, the variables total {size:,} bytes; Lambda allows {MAX_ENVIRONMENT_BYTES:,}",
            )
            complete = False
        return out if complete else None

    def declared_aliases(self, function: str) -> dict[str, Any]:
        decl = self.spec.functions.get(function)
        return dict(decl.spec.aliases) if decl else {}


class Kind:
    name: ClassVar[str]
    wave: ClassVar[int]
    summary: ClassVar[str]
    # IAM actions needed to observe and to change this kind.
    read_actions: ClassVar[tuple[str, ...]] = ()
    write_actions: ClassVar[tuple[str, ...]] = ()
    # attribute name -> kind name of its entries, for map attributes whose undeclared
    # entries are reported as `extra` on their own (e.g. stage variables).
    entry_kinds: ClassVar[dict[str, str]] = {}
    # Does deleting an instance reach clients only when the API is next deployed (a method or
    # resource: stages serve their deployment's snapshot)? Then what it uses waits a reconcile longer.
    deletion_reaches_clients_at_next_deployment: ClassVar[bool] = False
    # Map attributes compared entry by entry within the resource: a changed entry is a field
    # change ``NAME.ENTRY``, and so is a live entry the spec leaves out (its removal).
    entry_fields: ClassVar[frozenset[str]] = frozenset()

    def desired(self, ctx: PlanContext) -> list[Resource]:
        raise NotImplementedError

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        """Live instances inside the managed scope (including undeclared ones there)."""
        raise NotImplementedError

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        """Actions for a missing/modified resource (and extra entries to prune inside it)."""
        raise NotImplementedError

    def delete(self, live: Resource) -> list[Action]:
        raise NotImplementedError

    def requires(self, desired: Resource) -> tuple[str, ...]:
        return tuple(desired.context.get("requires", ()))

    # helpers -------------------------------------------------------------------------

    def action(
        self,
        resource: Resource,
        verb: str,
        calls: list[Call],
        reason: str,
        requires: tuple[str, ...] = (),
        completes: str | None = None,
        users: tuple[str, ...] = (),
    ) -> Action:
        delete = verb == "delete"
        return Action(
            resource=resource.id,
            kind=self.name,
            verb=verb,
            calls=tuple(calls),
            reason=reason,
            wave=(100 - self.wave) if delete else self.wave,
            requires=requires,
            completes=completes,
            users=users,
        )


def describe_changes(changes: tuple[FieldChange, ...]) -> str:
    return ", ".join(f"{c.field} {_show(c.live)} -> {_show(c.desired)}" for c in changes)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (dict, list, tuple)):  # JSON, as the plan shows values: {"3": 0.1}, ["200", "400"]
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
