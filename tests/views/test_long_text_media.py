"""One plan with a changed generated template, a missing method (its templates on one side
only), a weighted routing change and a list value, rendered in every medium a person reads:
the text plan, the markdown PR comment, ``pointsman status``, ``pointsman history``, the status
and run pages and a notification. None shows a Python repr, an escaped ``\\n`` or another arrow;
each shows the template as a diff (or, in a notification, as its one-line summary)."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

import pytest

from controller.cli.status import render as status_text
from controller.engine.diff import diff
from controller.engine.pipeline import Result
from controller.engine.plan import make_plan
from controller.kinds.rest_method import method_attributes
from controller.loop.history import History, RunRecord
from controller.loop.notify import Notifier
from controller.model import Resource
from controller.versions.selection import Selector
from controller.versions.templates import request_template
from controller.views.report import Review, render
from controller.web.pages import run_page, status_page
from tests.conftest import cli
from tests.views.test_words import BAD_PLURAL, SHA, alias, page_text, run_entry, status_document

LIVE = request_template(Selector(header="Version"))
GIT = request_template(Selector(header="Api-Version"))
FIELD = "integration.request_template"
SUMMARY = f"{FIELD}: generated template changed (+3 -3 lines)"
N_LINES = len(GIT.splitlines())


def method(path: str, template: str, codes: list[str]) -> Resource:
    """A generated method (header Api-Version), with ``template`` and ``codes`` in place of its own."""
    attrs = method_attributes(Selector(header="Api-Version"), "us-east-1", "arn:aws:lambda:us-east-1:123456789012:function:postUser")
    attrs |= {FIELD: template, "method_responses": codes}
    return Resource("rest_method", f"users-api/POST{path}", attrs, {"api_id": "a1", "resource_id": "r1", "method": "POST"})


def result() -> Result:
    desired = [alias("fn", "prod", "3", {"4": 0.1}), method("/users", GIT, ["200", "400"]), method("/teams", GIT, ["200"])]
    live = [alias("fn", "prod", "1"), method("/users", LIVE, ["200"])]
    drifts = diff(desired, live)
    return Result(drift=drifts, plan=make_plan(drifts, prune=False, desired=desired), api_calls={"lambda.ListAliases": 1})


def drift_rows() -> list[dict[str, Any]]:
    r = result()
    return [
        {
            "resource": d.resource,
            "kind": d.kind,
            "status": d.status.value,
            "changes": [c.as_dict() for c in d.changes],
            "first_seen": "2026-12-02T11:00:00Z",
            "actions": [{"operation": a.operation, "outcome": "planned"} for a in r.plan.actions if a.resource == d.resource],
        }
        for d in r.drift
    ]


def outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    r = result()
    doc = status_document(1) | {"drift": drift_rows()}
    run = run_entry(1) | {"drift": doc["drift"], "drift_count": len(doc["drift"])}
    run["actions"] = [{"resource": d["resource"], **a, "reason": "moved by hand"} for d in doc["drift"] for a in d["actions"]]
    review = Review(account="123456789012", region="us-east-1", commit=SHA, routes=doc["routes"])
    record = RunRecord(started=time.time(), trigger="schedule", mode="detect", status="drift", commit_sha=SHA, head_sha=SHA)
    record.drift, record.actions, record.finished = doc["drift"], run["actions"], time.time()
    history = History(tmp_path / "history.sqlite3")
    history.finish(history.start(record))
    history.close()
    code, history_text, _ = cli(capsys, "history", "--state-dir", str(tmp_path))
    assert code == 0
    notifier = Notifier([], controller_name="pointsman")
    return {
        "text plan": render(r, fmt="text", mode="plan"),
        "markdown plan": render(r, fmt="markdown", mode="plan", review=review),
        "pointsman status": status_text(doc),
        "pointsman history": history_text,
        "status page": status_page(doc, [run], can_reconcile=False),
        "run page": run_page(run),
        "notification": notifier.summary("drift_found", record),
        "slack": notifier.slack_payload("drift_found", record)["blocks"][0]["text"]["text"],
    }


@pytest.fixture
def media(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    return outputs(tmp_path, capsys)


def test_every_medium_reads_one_way(media: dict[str, str]) -> None:
    for medium, out in media.items():
        text = page_text(out) if medium.endswith("page") else out
        assert "['" not in text and "{'" not in text, (medium, text)  # no Python reprs
        assert "\\n" not in text, (medium, text)  # no escaped template on one line
        assert "→" not in text and "←" not in text, (medium, text)  # one arrow: ->
        assert " %" not in text and "0.9" not in text.replace('{"4": 0.1}', ""), (medium, text)
        assert not BAD_PLURAL.search(text) and "1 lines" not in text, (medium, BAD_PLURAL.search(text))
        if medium in ("text plan", "pointsman status", "pointsman history"):
            assert not any(len(line) > 300 for line in text.splitlines()), medium
        if medium == "markdown plan":  # no cell holds a template
            assert not any(len(cell) > 200 for line in text.splitlines() if line.startswith("|") for cell in line.split("|")), medium
    for medium in ("text plan", "markdown plan", "pointsman status", "status page", "run page"):
        assert "90%" in page_text(media[medium]) or medium in ("text plan", "run page"), medium


def test_text_outputs_put_the_diff_under_the_summary(media: dict[str, str]) -> None:
    for medium in ("text plan", "pointsman status", "pointsman history"):
        lines = media[medium].splitlines()
        at = next(i for i, line in enumerate(lines) if line.endswith(SUMMARY))
        indent = len(lines[at]) - len(SUMMARY)
        assert lines[at + 1] == " " * (indent + 4) + "--- live" and lines[at + 2] == " " * (indent + 4) + "+++ git", (medium, lines[at : at + 3])
        assert any(line.strip() == '+#if($pmName.toLowerCase() == "api-version")##' for line in lines), medium
        assert 'method_responses: ["200"] -> ["200", "400"]' in media[medium], medium
        assert 'version: "1" -> "3"' in media[medium], medium
        assert f"{FIELD}: (none) -> generated template, {N_LINES} lines" in media[medium], medium
    # The plan shows the missing method's template under it; status keeps to the summary.
    assert media["text plan"].count("## Pointsman: version-selected Lambda integration request") == 3
    assert media["pointsman status"].count("## Pointsman: version-selected Lambda integration request") == 2
    assert media["pointsman history"].count("## Pointsman: version-selected Lambda integration request") == 2


def test_the_markdown_keeps_its_tables_valid_and_folds_the_diff(media: dict[str, str]) -> None:
    md = media["markdown plan"]
    for line in md.splitlines():
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) in (5, 7), line  # the routing table has 4 columns, the others 6
    assert f"| {FIELD} | generated template, {N_LINES - 0} lines | generated template changed (+3 -3 lines), diff below |" in md
    assert f"| (none) | generated template, {N_LINES} lines |" in md
    assert f"<details><summary>rest_method/users-api/POST/users {FIELD}: generated template changed (+3 -3 lines)</summary>" in md
    assert f"<details><summary>rest_method/users-api/POST/teams {FIELD}: generated template, {N_LINES} lines (show)</summary>" in md
    block = md[md.index("```diff") :]
    assert block.splitlines()[1:3] == ["--- live", "+++ git"]
    assert "90%" in md and 'version: "1"' not in md


def test_the_pages_fold_a_diff_with_marked_lines(media: dict[str, str]) -> None:
    for medium in ("status page", "run page"):
        page = media[medium]
        assert '<pre class="diff">' in page, medium
        assert f"<code>{FIELD}</code>: generated template changed (+3 -3 lines, show)</summary>" in page, medium
        assert f"(none) -&gt; generated template, {N_LINES} lines (show)</summary>" in page, medium
        added = re.findall(r'<span class="add">([^<]*)</span>', page)
        removed = re.findall(r'<span class="del">([^<]*)</span>', page)
        assert len(added) == len(removed) == 3 and html.unescape(added[-1]) == '+#if($pmName.toLowerCase() == "api-version")##', medium
        assert '&#34;1&#34;</span> -&gt; <span class="mono">&#34;3&#34;' in page, medium  # short values as before


def test_a_notification_says_only_the_summary(media: dict[str, str]) -> None:
    slack = media["slack"]
    assert f"`{FIELD}`: generated template changed (+3 -3 lines)" in slack
    assert f"`{FIELD}`: (none) -> generated template, {N_LINES} lines" in slack
    assert "@@" not in slack and "#set(" not in slack and "--- live" not in slack
    assert '`version`: "1" -> "3"' in slack
