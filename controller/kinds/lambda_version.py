"""lambda_version/FUNCTION/sha256:DIGEST: publish $LATEST when an alias asks for code not yet published."""

from __future__ import annotations

from controller.kinds.base import Kind, PlanContext
from controller.model import Action, Call, Drift, FieldChange, Resource


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
            for alias_name, alias in decl.spec.aliases.items():
                if not alias.version.startswith("sha256:"):
                    continue
                sha = alias.version.removeprefix("sha256:")
                if fn.published_with_sha(sha) or fn.latest_sha != sha or sha in seen:
                    continue
                seen.add(sha)
                out.append(
                    Resource(
                        kind=self.name,
                        key=f"{fn_name}/sha256:{sha}",
                        attributes={"code_sha256": sha},
                        context={"function": fn_name},
                        source=ctx.spec.source_of("functions", fn_name, "aliases", alias_name),
                    )
                )
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        # Only unpublished digests are ever desired here, so none of them is live.
        return []

    def converge(
        self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]
    ) -> list[Action]:
        assert desired is not None
        sha = desired.attributes["code_sha256"]
        call = Call("lambda", "publish_version", {"FunctionName": desired.context["function"], "CodeSha256": sha})
        return [self.action(desired, "publish", [call], f"$LATEST of {desired.context['function']} has {sha}; no published version does")]

    def delete(self, live: Resource) -> list[Action]:
        return []  # published versions are immutable history: never deleted
