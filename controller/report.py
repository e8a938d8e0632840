"""Render a reconcile ``Result`` as text (a review-ready plan), JSON or Markdown."""

from __future__ import annotations

import json
from typing import Any

from controller.aws import write_calls
from controller.engine import Result
from controller.model import DriftStatus, OutcomeStatus

_SIGN = {DriftStatus.MISSING: "+", DriftStatus.MODIFIED: "~", DriftStatus.EXTRA: "-"}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def as_dict(result: Result, *, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "in_sync": result.in_sync,
        "problems": [str(p) for p in result.problems],
        "warnings": list(result.warnings),
        "drift": [d.as_dict() for d in result.drift],
        "actions": [a.as_dict() for a in result.plan.actions],
        "not_pruned": [d.resource for d in result.plan.not_pruned],
        "held": [h.as_dict() for h in result.plan.held],
        "api_calls": result.api_calls,
        "write_calls": sum(write_calls(result.api_calls).values()),
    }
    if mode == "apply":
        out["outcomes"] = [o.as_dict() for o in result.outcomes]
        out["converged"] = not result.failed
        out["dry_run"] = result.dry_run
    return out


def render(result: Result, *, fmt: str, mode: str) -> str:
    if fmt == "json":
        return json.dumps(as_dict(result, mode=mode), indent=2, sort_keys=False)
    if fmt == "markdown":
        return _markdown(result, mode=mode)
    return _text(result, mode=mode)


def _calls_line(result: Result) -> str:
    total = sum(result.api_calls.values())
    writes = sum(write_calls(result.api_calls).values())
    detail = ", ".join(f"{op}={n}" for op, n in result.api_calls.items())
    return f"AWS calls: {total} ({writes} writes): {detail}" if detail else "AWS calls: 0"


def _text(result: Result, *, mode: str) -> str:
    lines: list[str] = []
    if result.problems:
        lines.append(f"Cannot plan: {len(result.problems)} problem(s); nothing was applied.")
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
                lines.append(f"      {c.field}: {_value(c.live)} -> {_value(c.desired)}")
    if result.plan.actions:
        lines.append("")
        lines.append(f"Plan ({len(result.plan.actions)} actions, in order):")
        for i, a in enumerate(result.plan.actions, 1):
            lines.append(f"  {i}. {a.operation}  {a.resource}")
            lines.append(f"       {a.reason}")
    elif not result.in_sync and not result.plan.held:
        lines.append("")
        lines.append("Plan: no actions (only extra resources, and prune is off).")
    if result.plan.held:
        lines.append("")
        lines.append(f"Held back ({len(result.plan.held)}; deleting would break what still uses them):")
        for h in result.plan.held:
            lines.append(f"  - {h.action.operation}  {h.action.resource}: {h.reason}")
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


def _md_cell(value: Any) -> str:
    return _value(value).replace("|", "\\|")


def _markdown(result: Result, *, mode: str) -> str:
    lines: list[str] = ["### Pointsman " + ("apply" if mode == "apply" else "plan"), ""]
    if result.problems:
        lines.append("**Cannot plan**; nothing was applied:")
        lines.append("")
        lines.extend(f"- `{p}`" for p in result.problems)
        return "\n".join(lines)
    if result.in_sync:
        lines.append("✅ In sync: live AWS matches the spec.")
    else:
        lines += ["| resource | status | field | live | desired |", "|---|---|---|---|---|"]
        for d in result.drift:
            if not d.changes:
                lines.append(f"| `{d.resource}` | {d.status.value} | | | |")
            for c in d.changes:
                lines.append(f"| `{d.resource}` | {d.status.value} | {c.field} | {_md_cell(c.live)} | {_md_cell(c.desired)} |")
    if result.plan.actions:
        lines += ["", "**Actions**", ""]
        lines += [f"{i}. `{a.operation}` `{a.resource}`: {a.reason}" for i, a in enumerate(result.plan.actions, 1)]
    if result.plan.held:
        lines += ["", "**Held back** (deleting would break what still uses them):", ""]
        lines += [f"- `{h.action.operation}` `{h.action.resource}`: {h.reason}" for h in result.plan.held]
    if result.warnings:
        lines += ["", "**Warnings** (not drift; apply does not change them):", ""]
        lines += [f"- ⚠️ {w}" for w in result.warnings]
    if result.plan.not_pruned:
        lines += ["", f"Not pruned (prune is off): {', '.join(f'`{d.resource}`' for d in result.plan.not_pruned)}"]
    if mode == "apply" and result.outcomes:
        lines += ["", "| action | resource | outcome | error |", "|---|---|---|---|"]
        for o in result.outcomes:
            lines.append(f"| `{o.action.operation}` | `{o.action.resource}` | {o.status.value} | {o.error.replace('|', '/')} |")
    lines += ["", f"<sub>{_calls_line(result)}</sub>"]
    return "\n".join(lines)
