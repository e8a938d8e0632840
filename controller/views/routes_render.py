"""The routing view's renderings (text, JSON, a markdown table) and the ``pointsman routes`` command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence

from controller.aws.clients import AwsClients
from controller.live.scope import Scope
from controller.spec import Spec
from controller.views.routes import EXIT_DIFFERS, EXIT_OK, Route, Which, routes

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def select(found: Iterable[Route], which: Which) -> list[Route]:
    """The routes one side has (``both``: every one)."""
    if which == "live":
        return [r for r in found if r.live_chain is not None]
    if which == "desired":
        return [r for r in found if r.git_chain is not None]
    return list(found)


def render_text(found: Sequence[Route], which: Which = "both") -> str:
    """One line per route; ``live``/``desired``: that side's chains alone (each line once)."""
    chosen = select(found, which)
    lines = list(dict.fromkeys(r.describe(which) for r in chosen))
    if not lines:
        return "No routes."
    if which == "both":
        differ = sum(r.differs for r in chosen)
        summary = f"{len(chosen)} routes: {'all match git' if not differ else f'{differ} differ from git'}."
        lines += ["", summary]
    return "\n".join(lines)


def render_json(found: Sequence[Route], which: Which = "both") -> str:
    """A JSON list, one object per route, with the same keys whatever the route."""
    return json.dumps([r.as_dict(which) for r in select(found, which)], indent=2)


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else " "


def render_markdown(found: Sequence[Route], which: Which = "both") -> str:
    """A table: Entry | Route | Live | Git; a row that differs is marked ⚠️."""
    lines = ["### Pointsman routes", ""]
    chosen = select(found, which)
    if not chosen:
        return "\n".join([*lines, "No routes."])
    columns = {"both": ["Live", "Git"], "live": ["Live"], "desired": ["Git"]}[which]
    lines += ["| Entry | Route | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for route in chosen:
        chain, live_text, git_text = route.columns(which)
        cells = {"Live": live_text, "Git": git_text}
        mark = "⚠️ " if route.differs and which == "both" else ""
        row = [f"{mark}{route.entry}", chain, *(cells[c] for c in columns)]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    if which == "both":
        differ = sum(r.differs for r in chosen)
        lines += ["", f"{len(chosen)} routes: {'all match git' if not differ else f'{differ} differ from git (⚠️)'}."]
    return "\n".join(lines)


def render(found: Sequence[Route], fmt: str = "text", which: Which = "both") -> str:
    if fmt == "json":
        return render_json(found, which)
    if fmt == "markdown":
        return render_markdown(found, which)
    return render_text(found, which)


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def command(spec: Spec, args: argparse.Namespace) -> int:
    """``pointsman routes``: exit 0, or with ``--exit-code`` 2 when a route differs from git.
    AWS errors propagate to the CLI's one-line error handling (exit 1)."""
    clients = AwsClients()
    clients.start_deadline()
    found = routes(spec, Scope(clients, concurrency=getattr(args, "concurrency", 8)))
    which: Which = getattr(args, "view", None) or "both"
    print(render(found, getattr(args, "format", "text"), which))
    if getattr(args, "exit_code", False) and any(r.differs for r in found):
        return EXIT_DIFFERS
    return EXIT_OK
