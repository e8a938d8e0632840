"""lambda_function_config/FUNCTION: the environment variables of a function's $LATEST.

Only functions whose spec sets ``environment`` are managed ({} means: none). Published
versions keep the environment they were published with; they are never changed here (see
``lambda_version`` and the warnings of ``lambda_alias``). A value is text from git or the
value of an SSM parameter (``{ssm: NAME}``, read by ``PlanContext.environment``).
"""

from __future__ import annotations

from controller.kinds.base import Kind, PlanContext
from controller.model import Action, Call, Drift, FieldChange, Resource
from controller.sensitive import Sensitive, environment_changes


def config_id(function: str) -> str:
    return f"{LambdaFunctionConfig.name}/{function}"


class LambdaFunctionConfig(Kind):
    """Values are ``Sensitive`` everywhere (attributes, drift, the call's parameters): a plan,
    history, the status page and notifications show names and digests, never a value."""

    name = "lambda_function_config"
    wave = 0
    summary = "the environment variables of a function's $LATEST (published versions keep theirs)"
    read_actions = ("lambda:ListVersionsByFunction", "lambda:GetFunctionConfiguration")
    write_actions = ("lambda:UpdateFunctionConfiguration",)
    # Drift per variable: ``environment.DEBUG`` set by hand and not in git shows as its removal.
    entry_fields = frozenset({"environment"})

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        for fn_name, decl in ctx.spec.functions.items():
            if decl.spec.environment is None or ctx.function(fn_name) is None:
                continue
            environment = ctx.environment(fn_name)
            if environment is None:
                continue  # a value could not be read: a plan problem
            out.append(
                Resource(
                    kind=self.name,
                    key=fn_name,
                    attributes={"environment": environment},
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

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        function = desired.context["function"]
        environment: dict[str, Sensitive] = dict(desired.attributes["environment"])
        before: dict[str, Sensitive] = dict(live.attributes["environment"]) if live is not None else {}
        calls = [
            # The values stay Sensitive in the call: apply reveals them to boto3 only.
            Call("lambda", "update_function_configuration", {"FunctionName": function, "Environment": {"Variables": environment}}),
            # Lambda applies a configuration change asynchronously; nothing may publish $LATEST before it is done.
            Call("lambda", "wait:function_updated", {"FunctionName": function}),
        ]
        reason = f"environment of $LATEST: {environment_changes(before, environment)}"
        removed = sorted(before.keys() - environment.keys())
        if removed:
            reason += f"; removes {', '.join(removed)}, set in AWS but not in git"
        return [self.action(desired, "update", calls, reason)]

    def delete(self, live: Resource) -> list[Action]:
        return []  # a function's configuration is never deleted; leaving the spec leaves it as it is
