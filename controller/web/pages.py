"""The status page and the run pages, rendered on the server from Jinja2 templates.

The page at ``/`` answers, at a glance: is live AWS in sync with git, since when does what
differ, what would a client notice (the routing view), what will be done, and what ran.
Values are formatted as the CLI formats them (``(none)``, JSON for strings and maps); a long
text (a generated template) is a collapsed diff (``controller.views.values``).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from controller.loop.history import parse_iso
from controller.views import words
from controller.views.values import change, format_value

# Groups with more rows than this start collapsed unless something in them differs.
COLLAPSE_ROWS = 20
# The managed resources the page shows at most (every one that differs, then those in sync);
# /api/status lists them all.
MANAGED_ROWS = 2000

_env = Environment(loader=PackageLoader("controller.web", "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def ago(seconds: float | None) -> str:
    """``12 s``, ``4 min``, ``3 h``, ``2 d`` (for "... ago" and "in ...")."""
    if seconds is None:
        return "-"
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _since(when: Any, now: float) -> float | None:
    """Seconds from ``when`` (an ISO-8601 UTC time of the status document) to ``now``; None if not a time."""
    ts = parse_iso(when)
    return None if ts is None else now - ts


def breakable(text: str) -> Markup:
    """``text`` escaped, where a line may break after each ``/`` (a resource id, a file path)."""
    return Markup("/<wbr>").join(escape(part) for part in str(text).split("/"))


_env.filters["value"] = format_value
_env.filters["breakable"] = breakable
_env.filters["ago"] = ago
_env.filters["commit_url"] = lambda sha, repo: commit_url(repo or "", sha or "")
# Words, not tokens: the same helpers as the CLI's text and the notifications.
for _name in ("plural", "noun", "state_words", "status_words", "outcome_words", "trigger_words", "short_sha", "actions_words", "agent_words", "managed_words"):
    _env.filters[_name] = getattr(words, _name)
_env.filters["percent"] = words.percent
_env.globals["arrow"] = words.ARROW
# A field's change: short values on one line, long text (a generated template) as a diff.
_env.globals["change"] = change


def run_link(run_id: Any, target: str | None = None) -> str:
    """``/runs/ID``, or ``/runs/ID?target=NAME`` for a run of a target (each numbers its own runs)."""
    return f"/runs/{run_id}" + ("?" + urlencode({"target": target}) if target else "")


def page_link(target: str | None = None) -> str:
    """The status page, ``/?target=NAME`` with that target selected in its filter."""
    return "/?" + urlencode({"target": target}) if target else "/"


_env.globals["run_link"] = run_link
_env.globals["page_link"] = page_link


_SHA = re.compile(r"[0-9a-f]{7,64}")
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)")  # git@github.com:acme/estate.git


def commit_url(repo: str, sha: str) -> str | None:
    """The web page of ``sha`` when ``repo`` is on GitHub or GitLab (a host named so, self-hosted
    included): ``https://HOST/OWNER/REPO/commit/SHA`` or ``.../-/commit/SHA``. None otherwise
    (a local path, another host): the page then shows the sha without a link."""
    if not _SHA.fullmatch(sha or ""):
        return None
    parts = urlsplit(repo)
    if parts.scheme in ("https", "http", "ssh", "git") and parts.hostname:
        host, path = parts.hostname, parts.path
    elif "://" not in repo and (match := _SCP_LIKE.fullmatch(repo)) is not None:
        host, path = match["host"], match["path"]
    else:
        return None
    path = path.strip("/").removesuffix(".git")
    if path.count("/") < 1 or any(not segment or segment in (".", "..") for segment in path.split("/")):
        return None
    if "github" in host:
        return f"https://{host}/{quote(path)}/commit/{sha}"
    if "gitlab" in host:
        return f"https://{host}/{quote(path)}/-/commit/{sha}"
    return None


def _group(rows: list[dict[str, Any]], key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(key) or "-")].append(row)
    return sorted(groups.items())


def _managed_groups(managed: list[dict[str, Any]], limit: int) -> list[tuple[str, list[dict[str, Any]], int, int, int]]:
    """The managed resources by kind: (kind, rows shown, rows in all, rows that differ, rows not
    shown). Every row that differs is shown; rows in sync fill what is left of ``limit``, the
    smaller kinds first (so a kind of a few resources is never cut for a kind of thousands)."""

    def differs(m: dict[str, Any]) -> bool:
        return m.get("status") in ("differs", "missing")

    groups = _group(managed, "kind")
    budget = max(0, limit - sum(1 for m in managed if differs(m)))
    shown: dict[str, list[dict[str, Any]]] = {}
    for kind, rows in sorted(groups, key=lambda g: len(g[1])):
        shown[kind] = []
        for m in rows:
            if differs(m) or budget > 0:
                shown[kind].append(m)
                budget -= 0 if differs(m) else 1
    return [(kind, shown[kind], len(rows), sum(1 for m in rows if differs(m)), len(rows) - len(shown[kind])) for kind, rows in groups]


def _holders(status: dict[str, Any]) -> dict[str, list[str]]:
    """The targets each replica holds (by the targets' holder), for the replicas' table."""
    held: dict[str, list[str]] = defaultdict(list)
    for t in status.get("targets") or []:
        if t.get("holder"):
            held[str(t["holder"])].append(str(t["name"]))
    return dict(held)


def status_page(status: dict[str, Any], runs: list[dict[str, Any]], *, can_reconcile: bool, now: float | None = None, target: str | None = None) -> str:
    """``/``: ``status`` is the controller's status document, ``runs`` recent history entries.

    A document of a spec split into targets (its ``targets``) adds the targets' table, the
    replicas' and a target column and filter; ``target`` (``/?target=NAME``) starts the filter
    on that target."""
    now = time.time() if now is None else now
    targets = status.get("targets")
    names = [str(t["name"]) for t in targets or []]
    routes = status.get("routes") or []
    route_groups = [(name, rows, any(r.get("differs") for r in rows)) for name, rows in _group(routes, "api")]
    return _env.get_template("status.html").render(
        s=status,
        now=now,
        drift_groups=_group(status.get("drift") or [], "kind"),
        route_groups=route_groups,
        routes_changed=sum(1 for r in routes if r.get("differs")),
        managed_groups=_managed_groups(status.get("managed") or [], MANAGED_ROWS),
        runs=runs,
        can_reconcile=can_reconcile,
        collapse_rows=COLLAPSE_ROWS,
        since=lambda value: _since(value, now),
        targets=targets,
        target_names=names,
        selected=target if target in names else None,
        unknown_target=target if target and targets is not None and target not in names else None,
        holders=_holders(status),
    )


def run_page(run: dict[str, Any], *, now: float | None = None) -> str:
    """``/runs/ID``: one run (its trigger, commit, drift, actions and their outcomes, AWS calls)."""
    now = time.time() if now is None else now
    return _env.get_template("run.html").render(r=run, now=now, since=lambda value: _since(value, now))


def not_found_page(message: str) -> str:
    return _env.get_template("message.html").render(title="Not found", message=message)
