"""lambda_function_config/FUNCTION: the environment variables of a function's $LATEST.

Only functions whose spec sets ``environment`` are managed ({} means: none). Published
versions keep the environment they were published with; they are never changed here (see
``lambda_version`` and the warnings of ``lambda_alias``).
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.kinds.base import Kind, PlanContext
from controller.model import Action, Call, Drift, FieldChange, Resource


def config_id(function: str) -> str:
    return f"{LambdaFunctionConfig.name}/{function}"


def environment_changes(live: Mapping[str, str], desired: Mapping[str, str]) -> str:
    """``TABLE: products-v1 -> products-v2, DEBUG: (none) -> true``: only what differs."""
    parts = []
    for name in sorted(live.keys() | desired.keys()):
        before, after = live.get(name), desired.get(name)
        if before != after:
            parts.append(f"{name}: {'(none)' if before is None else before} -> {'(none)' if after is None else after}")
    return ", ".join(parts)


class LambdaFunctionConfig(Kind):
    name = "lambda_function_config"
    wave = 0
    summary = "the environment variables of a function's $LATEST (published versions keep theirs)"
    read_actions = ("lambda:ListVersionsByFunction", "lambda:GetFunctionConfiguration")
    write_actions = ("lambda:UpdateFunctionConfiguration",)

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        for fn_name, decl in ctx.spec.functions.items():
            environment = decl.spec.environment
            if environment is None or ctx.function(fn_name) is None:
                continue
            out.append(
                Resource(
                    kind=self.name,
                    key=fn_name,
                    attributes={"environment": dict(environment)},
                    context={"function": fn_name},
                    source=ctx.spec.source_of("functions", fn_name, "environment") or decl.source,
                )
            )
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        for resource in desired:
            fn = ctx.scope.function(resource.context["function"])
            if fn is not None:
                out.append(
                    Resource(
                        kind=self.name,
                        key=resource.key,
                        attributes={"environment": dict(fn.latest_environment)},
                        context=dict(resource.context),
                    )
                )
        return out

    def converge(
        self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]
    ) -> list[Action]:
        assert desired is not None
        function = desired.context["function"]
        environment = dict(desired.attributes["environment"])
        before = dict(live.attributes["environment"]) if live is not None else {}
        calls = [
            Call("lambda", "update_function_configuration", {"FunctionName": function, "Environment": {"Variables": environment}}),
            # Lambda applies a configuration change asynchronously; nothing may publish $LATEST before it is done.
            Call("lambda", "wait:function_updated", {"FunctionName": function}),
        ]
        reason = f"environment of $LATEST: {environment_changes(before, environment)}"
        return [self.action(desired, "update", calls, reason)]

    def delete(self, live: Resource) -> list[Action]:
        return []  # a function's configuration is never deleted; leaving the spec leaves it as it is
