"""A changed value as people read it: short values on one line, long text as a diff.

Every medium (the text and markdown plans, ``pointsman history``, ``pointsman status``, the
status and run pages, notifications) shows a field's change through :func:`change`, so the
same change reads the same everywhere:

- a short value is one line, ``version: "1" -> "3"`` (:func:`format_value`: ``(none)``, JSON
  for strings, lists and maps; an environment value is its digest, ``sha256:1a2b3c4d``);
- long text (a string with a newline, or longer than :data:`LONG_TEXT` characters: the
  generated mapping templates of a ``rest_method``) is never one escaped line. Changed on both
  sides it is a unified diff of its lines (``--- live`` / ``+++ git``) under a summary,
  ``integration.request_template: generated template changed (+3 -1 lines)``; on one side only
  (a missing resource, a removed value) it is ``generated template, 12 lines``, its lines
  shown where there is room for them.

JSON outputs and ``/api/*`` keep the raw values; this is for people only.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from controller.sensitive import reveal
from controller.views.words import ARROW, as_json, plural

LONG_TEXT = 100  # characters: a longer string (or one with a newline) is long text
CONTEXT_LINES = 3  # unchanged lines shown around each change of a diff
DIFF_HEADERS = ("live", "git")


def format_value(value: Any, *, show_values: bool = False) -> str:
    """A value on one line: ``(none)``, JSON for strings, lists and maps, else str().

    An environment value (``Sensitive``) is its digest, ``sha256:1a2b3c4d``; its text only
    with ``show_values`` (``pointsman plan --show-values``, never for what is stored or sent)."""
    if show_values:
        value = reveal(value)
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list, tuple)):
        return as_json(value)
    return str(value)


def is_long_text(value: Any) -> bool:
    """A string with a newline, or longer than :data:`LONG_TEXT` characters."""
    return isinstance(value, str) and ("\n" in value or len(value) > LONG_TEXT)


def text_noun(field: str) -> str:
    """What a long text is called: ``generated template`` for a template field, else ``text``."""
    return "generated template" if "template" in field.lower() else "text"


def _lines(text: str) -> list[str]:
    return text.splitlines() or [""]


@dataclass(frozen=True)
class Change:
    """One field's change, ready for any medium.

    ``live`` and ``desired`` are each side on one line (for a long text, ``generated template,
    12 lines``); ``summary`` is what follows ``field: ``. ``diff`` holds the unified diff's
    lines when both sides are text and one is long; ``text`` the lines of the long side when
    only one side is text (``text_side`` says which: ``live`` or ``desired``)."""

    field: str
    live: str
    desired: str
    summary: str
    diff: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    text_side: str = ""
    added: int = 0
    removed: int = 0
    long: bool = False  # one side at least is long text

    @property
    def line(self) -> str:
        """``version: "1" -> "3"``, ``integration.request_template: generated template changed (+3 -1 lines)``."""
        return f"{self.field}: {self.summary}"

    @property
    def counts(self) -> str:
        """``+3 -1 lines`` (a diff only)."""
        return f"+{self.added} -{self.removed} lines"

    @property
    def show(self) -> str:
        """The summary of a collapsed block: ``generated template changed (+3 -1 lines, show)``,
        ``(none) -> generated template, 12 lines (show)``."""
        if self.diff:
            return self.summary.removesuffix(")") + ", show)"
        return f"{self.summary} (show)"

    @property
    def diff_rows(self) -> list[tuple[str, str]]:
        """The diff's lines with a class each: ``head``, ``hunk``, ``add``, ``del`` or ``ctx``."""
        rows: list[tuple[str, str]] = []
        for i, line in enumerate(self.diff):
            if i < 2 and line.startswith(("---", "+++")):
                cls = "head"
            elif line.startswith("@@"):
                cls = "hunk"
            elif line.startswith("+"):
                cls = "add"
            elif line.startswith("-"):
                cls = "del"
            else:
                cls = "ctx"
            rows.append((cls, line))
        return rows


def change(field: str, live: Any, desired: Any, *, show_values: bool = False) -> Change:
    """``field``'s change from ``live`` to ``desired`` as people read it (see the module)."""
    if show_values:
        live, desired = reveal(live), reveal(desired)
    noun = text_noun(field)

    def side(value: Any) -> str:
        return f"{noun}, {plural(len(_lines(value)), 'line')}" if is_long_text(value) else format_value(value)

    one_sided = not (isinstance(live, str) and isinstance(desired, str))
    if not (is_long_text(live) or is_long_text(desired)) or (one_sided and "\n" not in f"{live}{desired}"):
        # Short, or one line on one side only (an integration URI on a missing method): the value itself.
        return Change(field, format_value(live), format_value(desired), f"{format_value(live)} {ARROW} {format_value(desired)}")
    if isinstance(live, str) and isinstance(desired, str):
        diff = tuple(difflib.unified_diff(_lines(live), _lines(desired), *DIFF_HEADERS, n=CONTEXT_LINES, lineterm=""))
        body = diff[2:]
        added = sum(line.startswith("+") for line in body)
        removed = sum(line.startswith("-") for line in body)
        if not diff:  # the same lines: only a final newline or the line endings differ
            return Change(field, side(live), side(desired), f"{noun} changed (line endings only)", long=True)
        return Change(field, side(live), side(desired), f"{noun} changed (+{added} -{removed} lines)", diff=diff, added=added, removed=removed, long=True)
    text_side = "live" if is_long_text(live) else "desired"
    text = tuple(_lines(live if text_side == "live" else desired))
    return Change(field, side(live), side(desired), f"{side(live)} {ARROW} {side(desired)}", text=text, text_side=text_side, long=True)


def text_lines(c: Change, indent: str, *, text_up_to: int | None = None) -> list[str]:
    """``c`` for a terminal: its line at ``indent``, then a diff's lines (or, when it has at most
    ``text_up_to`` lines, the one-sided text; None: always) indented under it."""
    lines = [indent + c.line]
    body = c.diff or (c.text if text_up_to is None or len(c.text) <= text_up_to else ())
    lines.extend((indent + "    " + line).rstrip() for line in body)
    return lines


def md_escape(text: str) -> str:
    """For a markdown table cell: ``|`` escaped, on one line."""
    return " ".join(text.replace("|", "\\|").splitlines())


def _fence(lines: tuple[str, ...], info: str = "") -> list[str]:
    """A fenced code block longer than any run of backticks in ``lines``."""
    runs = [len(run) for line in lines for run in re.findall(r"`+", line)]
    fence = "`" * max(3, 1 + max(runs, default=0))
    return [fence + info, *lines, fence]


def md_details(title: str, c: Change) -> list[str]:
    """A long text's diff (or text) for a markdown comment, collapsed under ``title``; [] for a short value."""
    if not (c.diff or c.text):
        return []
    esc = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if c.diff:
        return [f"<details><summary>{esc}: {c.summary}</summary>", "", *_fence(c.diff, "diff"), "", "</details>"]
    shown = c.live if c.text_side == "live" else c.desired
    return [f"<details><summary>{esc}: {shown} (show)</summary>", "", *_fence(c.text), "", "</details>"]
