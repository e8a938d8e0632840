"""The plan or apply of several targets: a section per target (its account and Region, its own
plan or its error), then the total.

Text::

    == target prod-eu: 111122223333 eu-west-1 as arn:aws:iam::111122223333:role/pointsman (4.2 s)
    <the target's plan, as for one>
    == target dev-us: 444455556666 us-east-1 (ambient credentials) (0.3 s)
    error: AccessDenied: ...
    Total: 2 targets: 1 drifted (3 to change, 1 to add), 1 failed

JSON: ``{"targets": [{"name", "account", "region", "seconds", "error", "result"}], "total": {...}}``
with each ``result`` as one target's JSON. Markdown: a heading per target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from controller.engine.pipeline import Result
from controller.spec.targets import Target
from controller.views.report import as_dict, counts, render


class Run(Protocol):
    target: Target
    result: Result | None
    error: str | None
    seconds: float


def _where(target: Target) -> str:
    return target.settings.describe() if target.settings is not None else "the ambient account and Region"


def state(run: Run) -> str:
    """failed, problems, refused, in sync, applied (apply wrote and every action succeeded) or drifted."""
    result = run.result
    if run.error is not None or result is None:
        return "failed"
    if result.problems:
        return "problems"
    if result.refused:
        return "refused"
    if result.failed:
        return "failed"
    if result.in_sync:
        return "in sync"
    return "applied" if result.outcomes and not result.dry_run else "drifted"


def total(runs: Sequence[Run]) -> dict[str, Any]:
    by_state: dict[str, int] = {}
    change = add = delete = 0
    for run in runs:
        by_state[state(run)] = by_state.get(state(run), 0) + 1
        if run.result is not None:
            c, a, d, _ = counts(run.result)
            change, add, delete = change + c, add + a, delete + d
    return {"targets": len(runs), "states": dict(sorted(by_state.items())), "to_change": change, "to_add": add, "to_delete": delete}


def total_line(runs: Sequence[Run]) -> str:
    figures = total(runs)
    states = ", ".join(f"{n} {name}" for name, n in figures["states"].items())
    changes = [f"{figures['to_' + verb]} to {verb}" for verb in ("change", "add", "delete") if figures["to_" + verb]]
    what = f" ({', '.join(changes)})" if changes else ""
    return f"Total: {figures['targets']} targets: {states}{what}"


def render_targets(runs: Sequence[Run], *, fmt: str, mode: str) -> str:
    if fmt == "json":
        out = []
        for run in runs:
            settings = run.target.settings
            out.append(
                {
                    "name": run.target.label,
                    "account": settings.account_id if settings else None,
                    "region": settings.region if settings else None,
                    "seconds": round(run.seconds, 3),
                    "state": state(run),
                    "error": run.error,
                    "result": as_dict(run.result, mode=mode) if run.result is not None else None,
                }
            )
        return json.dumps({"targets": out, "total": total(runs)}, indent=2)
    sections: list[str] = []
    for run in runs:
        head = f"target {run.target.label}: {_where(run.target)} ({run.seconds:.1f} s)"
        body = f"error: {run.error}" if run.error is not None or run.result is None else render(run.result, fmt=fmt, mode=mode)
        sections.append(f"## {head}\n\n{body}" if fmt == "markdown" else f"== {head}\n{body}")
    sections.append(total_line(runs))
    return "\n\n".join(sections)
