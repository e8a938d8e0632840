"""lambda_version/FUNCTION/sha256:DIGEST: publish $LATEST when an alias asks for code not yet published."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.kinds.base import Kind, PlanContext
from controller.kinds.lambda_function_config import config_id
from controller.live.scope import FunctionLive
from controller.model import Action, Call, Drift, FieldChange, Resource
from controller.sensitive import Sensitive


@dataclass(frozen=True)
class Pin:
    """What a ``sha256:`` pin resolves to."""

    version: str | None = None  # the published version to serve
    publish: bool = False  # none has the code (with the declared environment), $LATEST has it: publish $LATEST
    stale: bool = False  # ``version`` has the code but another environment, and $LATEST has other code


def resolve_sha(fn: FunctionLive, sha: str, environment: Mapping[str, Sensitive] | None) -> Pin:
    """A pin names code; when the function's environment is managed, it names that code with
    that environment: only a published version with both will do (versions are immutable)."""
    published = fn.published_with(sha, environment)
    if published:
        return Pin(version=published)
    if fn.latest_sha == sha:
        return Pin(publish=True)
    stale = fn.published_with_sha(sha) if environment is not None else None
    return Pin(version=stale, stale=True) if stale else Pin()


class LambdaVersion(Kind):
    name = "lambda_version"
    wave = 1
    summary = "a published Lambda version, published from $LATEST when an alias names its CodeSha256"
    read_actions = ("lambda:ListVersionsByFunction",)
    write_actions = ("lambda:PublishVersion",)

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        for fn_name, decl in ctx.spec.functions.items():
            fn = ctx.scope.function(fn_name)
            if fn is None:
                continue
            seen: set[str] = set()
            environment = ctx.environment(fn_name)
            for alias_name, alias in decl.spec.aliases.items():
                if not alias.version.startswith("sha256:"):
                    continue
                sha = alias.version.removeprefix("sha256:")
                if not resolve_sha(fn, sha, environment).publish or sha in seen:
                    continue
                seen.add(sha)
                attributes: dict[str, Any] = {"code_sha256": sha}
                context: dict[str, Any] = {"function": fn_name}
                if environment is not None:
                    attributes["environment"] = dict(environment)  # Sensitive values: digests when shown
                    context["why"] = f"$LATEST of {fn_name} has {sha}; no published version has it with the declared environment"
                    if fn.latest_environment != environment:
                        # Published from $LATEST once its environment is the declared one.
                        context["requires"] = (config_id(fn_name),)
                out.append(
                    Resource(
                        kind=self.name,
                        key=f"{fn_name}/sha256:{sha}",
                        attributes=attributes,
                        context=context,
                        source=ctx.spec.source_of("functions", fn_name, "aliases", alias_name),
                    )
                )
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        # Only unpublished digests are ever desired here, so none of them is live.
        return []

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        sha = desired.attributes["code_sha256"]
        call = Call("lambda", "publish_version", {"FunctionName": desired.context["function"], "CodeSha256": sha})
        why = desired.context.get("why") or f"$LATEST of {desired.context['function']} has {sha}; no published version does"
        return [self.action(desired, "publish", [call], why, self.requires(desired))]

    def delete(self, live: Resource) -> list[Action]:
        return []  # published versions are immutable history: never deleted
