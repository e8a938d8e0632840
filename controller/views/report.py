"""Render a reconcile ``Result`` as text (a review-ready plan), JSON or Markdown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from controller.aws.clients import write_calls
from controller.engine.pipeline import Result
from controller.model import DriftStatus, OutcomeStatus
from controller.spec.changes import SpecChange
from controller.views.values import Change, change, format_value, md_details, md_escape, text_lines
from controller.views.words import plural, short_sha

__all__ = ["MARKER", "Review", "as_dict", "counts", "format_value", "render", "summary_line"]

_SIGN = {DriftStatus.MISSING: "+", DriftStatus.MODIFIED: "~", DriftStatus.EXTRA: "-"}


def as_dict(result: Result, *, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "in_sync": result.in_sync,
        "problems": [str(p) for p in result.problems],
        "warnings": list(result.warnings),
        "drift": [d.as_dict() for d in result.drift],
        "actions": [a.as_dict() for a in result.plan.actions],
        "not_pruned": [d.resource for d in result.plan.not_pruned],
        "held": [h.as_dict() for h in result.plan.held],
        "observed": [h.as_dict() for h in result.observed],
        "rollouts": [r for r in result.rollouts.summaries() if r.get("line")],
        "refused": list(result.refused),
        "window": result.window or None,
        "waiting_approval": [a.as_dict() for a in result.waiting],
        "api_calls": result.api_calls,
        "write_calls": sum(write_calls(result.api_calls).values()),
    }
    if mode == "apply":
        out["outcomes"] = [o.as_dict() for o in result.outcomes]
        out["converged"] = not result.failed
        out["dry_run"] = result.dry_run
    return out


@dataclass
class Review:
    """What a PR review needs beside the plan: where it ran, and what the change does to git."""

    account: str | None = None
    region: str | None = None
    commit: str | None = None  # the head commit the spec was read at
    base: str | None = None  # "--base main" / "--base-spec DIR": what spec_changes compare against
    base_commit: str | None = None
    spec_changes: list[SpecChange] | None = None
    routes: list[dict[str, Any]] = field(default_factory=list)  # routing view rows (see controller.views.routes)


MARKER = "<!-- pointsman-plan -->"  # the comment a CI job finds and updates


def render(result: Result, *, fmt: str, mode: str, review: Review | None = None, show_values: bool = False) -> str:
    """``show_values``: the text format shows environment values, not their digests (only for a
    person at a terminal who asked: ``pointsman plan --show-values``)."""
    if show_values and fmt != "text":
        raise ValueError("show_values is for the text format only")
    if fmt == "json":
        out = as_dict(result, mode=mode)
        if review is not None:
            out["summary"] = summary_line(result, review)
            if review.spec_changes is not None:
                out["spec_changes"] = {"base": review.base, "base_commit": review.base_commit, "changes": [c.as_dict() for c in review.spec_changes]}
            if review.routes:
                out["routes"] = review.routes
        return json.dumps(out, indent=2, sort_keys=False)
    if fmt == "markdown":
        return _markdown(result, mode=mode, review=review)
    text = _text(result, mode=mode, routes=review.routes if review is not None else [], show_values=show_values)
    if review is not None and review.spec_changes is not None:
        text = _spec_changes_text(review, show_values) + "\n\n" + text
    return text


def counts(result: Result) -> tuple[int, int, int, int]:
    """To change, to add, to delete, and extra resources kept (prune off)."""
    change = sum(d.status is DriftStatus.MODIFIED for d in result.drift)
    add = sum(d.status is DriftStatus.MISSING for d in result.drift)
    kept = len(result.plan.not_pruned)
    delete = sum(d.status is DriftStatus.EXTRA for d in result.drift) - kept
    return change, add, delete, kept


def summary_line(result: Result, review: Review | None = None) -> str:
    """``3 to change, 1 to add, 0 to delete against account 1234/eu-west-1 at abc1234``."""
    change, add, delete, kept = counts(result)
    line = f"{change} to change, {add} to add, {delete} to delete"
    if kept:
        line += f" ({kept} extra kept: prune is off)"
    if review is not None:
        line += f" against account {review.account or '?'}/{review.region or '?'}"
        if review.commit:
            line += f" at {short_sha(review.commit)}"
    return line


def _spec_changes_text(review: Review, show_values: bool = False) -> str:
    changes = review.spec_changes or []
    head = f"Spec changes against {review.base}" + (f" ({short_sha(review.base_commit)})" if review.base_commit else "")
    if not changes:
        return head + ": none (this change edits nothing Pointsman manages)."
    lines = [f"{head} ({len(changes)}):"]
    sign = {"added": "+", "removed": "-", "changed": "~"}
    for c in changes:
        where = f"  ({c.source})" if c.source else ""
        path = ".".join(c.path)
        if c.change == "changed":
            shown = change(path, c.base, c.head, show_values=show_values)
            lines.extend(_with_where(text_lines(shown, "  ~ "), where))
        else:
            shown = change(path, c.base if c.change == "removed" else None, c.head if c.change == "added" else None, show_values=show_values)
            one = shown.desired if c.change == "added" else shown.live
            lines.append(f"  {sign[c.change]} {path}: {one}{where}")
            lines.extend(f"      {line}".rstrip() for line in shown.text)
    return "\n".join(lines)


def _with_where(lines: list[str], where: str) -> list[str]:
    """``where`` (the spec file:line) at the end of the first line."""
    return [lines[0] + where, *lines[1:]]


def _calls_line(result: Result) -> str:
    total = sum(result.api_calls.values())
    writes = sum(write_calls(result.api_calls).values())
    detail = ", ".join(f"{op}={n}" for op, n in result.api_calls.items())
    return f"AWS calls: {total} ({writes} writes): {detail}" if detail else "AWS calls: 0"


def _text(result: Result, *, mode: str, routes: list[dict[str, Any]] | None = None, show_values: bool = False) -> str:
    """``routes``: routing view rows; those that differ are the routing changes (as in the markdown)."""
    lines: list[str] = []
    if result.problems:
        lines.append(f"Cannot plan: {plural(len(result.problems), 'problem')}; nothing was applied.")
        lines.extend(f"  error: {p}" for p in result.problems)
        lines.append(_calls_line(result))
        return "\n".join(lines)
    if result.in_sync:
        lines.append("In sync: live AWS matches the spec.")
    else:
        lines.append(f"Drift ({len(result.drift)}):")
        for d in result.drift:
            note = ""
            if d.status is DriftStatus.EXTRA and d in result.plan.not_pruned:
                note = "  (not pruned; --prune deletes it)"
            lines.append(f"  {_SIGN[d.status]} {d.resource}  [{d.status.value}]{note}")
            if d.reason:
                lines.append(f"      {d.reason}")
            for c in d.changes:
                lines.extend(text_lines(change(c.field, c.live, c.desired, show_values=show_values), "      "))
    if result.plan.actions:
        lines.append("")
        lines.append(f"Plan ({plural(len(result.plan.actions), 'action')}, in order):")
        for i, a in enumerate(result.plan.actions, 1):
            lines.append(f"  {i}. {a.operation}  {a.resource}")
            lines.append(f"       {a.reason}")
    elif not result.in_sync and not result.plan.held:
        lines.append("")
        lines.append("Plan: no actions (only extra resources, and prune is off).")
    if result.observed:
        lines.append("")
        lines.append(f"Observe only ({len(result.observed)}; manage: observe, never written):")
        for h in result.observed:
            lines.append(f"  - would {h.action.operation}  {h.action.resource}: {h.reason}")
    if result.plan.held:
        lines.append("")
        lines.append(f"Held back ({len(result.plan.held)}; deletions not run, each with why):")
        for h in result.plan.held:
            lines.append(f"  - {h.action.operation}  {h.action.resource}: {h.reason}")
    lines.extend(_guardrail_lines(result, mode))
    changed_routes = [r for r in routes or [] if r.get("differs")]
    if changed_routes:
        lines.append("")
        lines.append(f"Routing changes ({len(changed_routes)}; what clients get):")
        for r in changed_routes:
            lines.append(f"  ~ {r['entry']}" + (f": {r['chain']}" if r["chain"].strip() else ""))
            lines.append(f"      now (live): {r['live_text'].strip() or '-'}")
            lines.append(f"      after apply (git): {r['desired_text'].strip() or '-'}")
    rollouts = [r for r in result.rollouts.summaries() if r.get("line")]
    if rollouts:
        lines.append("")
        lines.append(f"Rollouts ({len(rollouts)}):")
        lines.extend(f"  {r['line']}" for r in rollouts)
    if result.warnings:
        lines.append("")
        lines.append(f"Warnings ({len(result.warnings)}; not drift, apply does not change them):")
        lines.extend(f"  ! {w}" for w in result.warnings)
    if mode == "apply" and result.outcomes:
        lines.append("")
        ok = sum(o.status is OutcomeStatus.SUCCEEDED for o in result.outcomes)
        lines.append(f"Apply{' (dry run)' if result.dry_run else ''}: {ok}/{len(result.outcomes)} succeeded")
        for o in result.outcomes:
            tail = f": {o.error}" if o.error else ""
            lines.append(f"  {o.status.value:9} {o.action.operation}  {o.action.resource}{tail}")
        if result.failed:
            lines.append("Not converged: fix the errors above; the next apply retries what was not done.")
    lines.append("")
    lines.append(_calls_line(result))
    return "\n".join(lines)


def _md_cells(c: Change) -> tuple[str, str]:
    """The live and desired cells of a change: a long text's cell says what changed, its diff
    follows the table (:func:`controller.views.values.md_details`)."""
    if c.diff:
        return md_escape(c.live), md_escape(f"{c.summary}, diff below")
    if c.long and not c.text:  # the same lines: only the line endings differ
        return md_escape(c.live), md_escape(c.summary)
    return md_escape(c.live), md_escape(c.desired)


def _guardrail_lines(result: Result, mode: str) -> list[str]:
    """Refusals, the sync window and what waits for approval (engine/guardrails.py)."""
    lines: list[str] = []
    if result.waiting:
        lines += ["", f"Waiting for approval ({len(result.waiting)}; applied after `pointsman approve RUN_ID`):"]
        lines += [f"  - {a.operation}  {a.resource}: {a.reason}" for a in result.waiting]
    if result.refused:
        lines += ["", "Apply would refuse this plan:" if mode == "plan" else "Refused; nothing was applied:"]
        lines += [f"  - {line}" for line in result.refused]
        if result.plan.actions:
            lines.append(f"  (the plan above lists the {plural(len(result.plan.actions), 'action')} it would have done)")
    if result.window:
        lines += ["", result.window + ("; nothing was applied" if mode == "apply" else "")]
    return lines


def _details(summary: str, body: list[str], open_: bool = False) -> list[str]:
    return [f"<details{' open' if open_ else ''}><summary>{summary}</summary>", "", *body, "", "</details>"]


def _after_table(details: list[str]) -> list[str]:
    """A blank line first, so the table ends before the collapsed block."""
    return ["", *details] if details else []


def _markdown(result: Result, *, mode: str, review: Review | None = None) -> str:
    """A ready PR comment: a summary line, the spec changes against the base, the changes to
    AWS by kind (collapsible), the routing changes, then warnings."""
    lines: list[str] = ["### Pointsman " + ("apply" if mode == "apply" else "plan"), ""]
    if result.problems:
        lines.append("**Cannot plan**; nothing was applied:")
        lines.append("")
        lines.extend(f"- `{p}`" for p in result.problems)
        return "\n".join([*lines, "", MARKER])
    icon = "✅" if result.in_sync else "📝"
    lines.append(f"{icon} **{summary_line(result, review)}**" + (": live AWS matches the spec." if result.in_sync else ""))
    if review is not None and review.spec_changes is not None:
        label = f"`{review.base}`" + (f" ({short_sha(review.base_commit)})" if review.base_commit else "")
        lines += ["", f"#### What this change edits in git, against {label}", ""]
        if not review.spec_changes:
            lines.append("Nothing Pointsman manages.")
        else:
            by_section: dict[str, list[SpecChange]] = {}
            for c in review.spec_changes:
                by_section.setdefault(c.section, []).append(c)
            for section, items in by_section.items():
                body = ["| | item | field | base | this change | where |", "|---|---|---|---|---|---|"]
                below: list[str] = []
                sign = {"added": "➕", "removed": "➖", "changed": "✏️"}
                for c in items:
                    shown = change(c.field or "value", c.base if c.change != "added" else None, c.head if c.change != "removed" else None)
                    base, head = _md_cells(shown)
                    body.append(
                        f"| {sign[c.change]} | `{c.item}` | {c.field or '(whole item)'} | {base if c.change != 'added' else ''}"
                        f" | {head if c.change != 'removed' else ''} | {c.source or ''} |"
                    )
                    below += _after_table(md_details(f"{c.item} {c.field or ''}".strip(), shown))
                body += below
                lines += _details(f"{section} ({len(items)})", body, open_=True)
    if not result.in_sync:
        lines += ["", "#### What apply changes in AWS" if mode == "apply" else "#### What apply would change in AWS", ""]
        by_kind: dict[str, list[Any]] = {}
        for d in result.drift:
            by_kind.setdefault(d.kind, []).append(d)
        actions = {a.resource: a for a in result.plan.actions}
        for kind, drifts in by_kind.items():
            body = ["| resource | status | field | live | desired | action |", "|---|---|---|---|---|---|"]
            below = []
            for d in drifts:
                action = actions.get(d.resource) or actions.get(d.parent or "")
                what = f"`{action.operation}`" if action else ("not pruned" if d in result.plan.not_pruned else "")
                if not d.changes:
                    body.append(f"| `{d.resource}` | {d.status.value} | | | | {what} |")
                for c in d.changes:
                    shown = change(c.field, c.live, c.desired)
                    live, desired = _md_cells(shown)
                    body.append(f"| `{d.resource}` | {d.status.value} | {c.field} | {live} | {desired} | {what} |")
                    below += _after_table(md_details(f"{d.resource} {c.field}", shown))
            body += below
            add = sum(d.status is DriftStatus.MISSING for d in drifts)
            chg = sum(d.status is DriftStatus.MODIFIED for d in drifts)
            dele = sum(d.status is DriftStatus.EXTRA for d in drifts)
            lines += _details(f"{kind}: {chg} to change, {add} to add, {dele} extra", body, open_=len(result.drift) <= 20)
        if result.plan.actions:
            body = [f"{i}. `{a.operation}` `{a.resource}`: {a.reason}" for i, a in enumerate(result.plan.actions, 1)]
            lines += [""] + _details(f"Actions, in order ({len(result.plan.actions)})", body)
    rollouts = [r for r in result.rollouts.summaries() if r.get("line")]
    if rollouts:
        lines += ["", "#### Rollouts", ""]
        lines += [f"- {r['line']}" for r in rollouts]
    changed_routes = [r for r in (review.routes if review else []) if r.get("differs")]
    if changed_routes:
        lines += ["", "#### Routing changes: what clients get", "", "| entry | route | now (live) | after apply (git) |", "|---|---|---|---|"]
        lines += [f"| `{r['entry']}` | {r['chain']} | {r['live_text']} | {r['desired_text']} |" for r in changed_routes]
    warnings: list[str] = []
    deleting = [d for d in result.drift if d.status is DriftStatus.EXTRA and d not in result.plan.not_pruned]
    warnings += [f"prune deletes `{d.resource}`" for d in deleting]
    warnings += [f"`{d.resource}`: {d.reason}" for d in result.drift if d.kind == "lambda_permission" and d.status is DriftStatus.MISSING and d.reason]
    warnings += [f"held back: `{h.action.operation}` `{h.action.resource}`: {h.reason}" for h in result.plan.held]
    warnings += [f"observe only, not written: `{h.action.operation}` `{h.action.resource}`: {h.reason}" for h in result.observed]
    warnings += [f"refused: {line}" for line in result.refused]
    warnings += [result.window] if result.window else []
    warnings += [f"waits for approval: `{a.operation}` `{a.resource}`: {a.reason}" for a in result.waiting]
    warnings += list(result.warnings)
    if warnings:
        lines += ["", "#### Warnings", ""]
        lines += [f"- ⚠️ {w}" for w in warnings]
    if result.plan.not_pruned:
        lines += ["", f"Not pruned (prune is off): {', '.join(f'`{d.resource}`' for d in result.plan.not_pruned)}"]
    if mode == "apply" and result.outcomes:
        lines += ["", "| action | resource | outcome | error |", "|---|---|---|---|"]
        for o in result.outcomes:
            lines.append(f"| `{o.action.operation}` | `{o.action.resource}` | {o.status.value} | {o.error.replace('|', '/')} |")
    lines += ["", f"<sub>{_calls_line(result)}</sub>", "", MARKER]
    return "\n".join(lines)
