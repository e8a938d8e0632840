"""One voice in what people read: a drifted estate in detect mode, rendered everywhere a person
reads it (the text plan, the markdown plan, ``pointsman status``, the status and run pages, a
notification), reads the same way: words not tokens, "would" not "will", one plural rule, one
arrow, ``90%``, one short sha length, lists and maps as JSON."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest

from controller.cli.status import render as status_text
from controller.engine.diff import diff
from controller.engine.pipeline import Managed, Result
from controller.engine.plan import make_plan
from controller.loop.history import RunRecord, iso
from controller.loop.notify import Notifier
from controller.model import Drift, DriftStatus, FieldChange, Resource
from controller.views.managed import managed_entries
from controller.views.report import Review, format_value, render
from controller.views.words import SHORT_SHA, actions_words, percent, plural, short_sha, state_words, status_words, trigger_words
from controller.web.pages import run_page, status_page

SHA = "0123456789abcdef0123456789abcdef01234567"
RAW_TOKENS = re.compile(r"\b(in_sync|drift_found|apply_failed|new-commit|webhook:\w+)\b")
BAD_PLURAL = re.compile(r"\b1 (resources|actions|routes|runs|problems)\b|\b(?:0|[2-9]|\d\d+) (resource|action|route|run|problem)\b(?!s)")
WILL = re.compile(r"\bwill\b|will be done", re.IGNORECASE)


def alias(fn: str, name: str, version: str, routing: dict[str, float] | None = None) -> Resource:
    return Resource("lambda_alias", f"{fn}/{name}", {"version": version, "description": "", "routing": dict(routing or {})}, {"function": fn, "alias": name})


def result(n: int) -> Result:
    """``n`` (1 or 2) drifted aliases: prod moved by hand (with a canary map), and one missing."""
    desired = [alias("fn", "prod", "3", {"4": 0.1}), alias("fn", "new", "1")][:n]
    live = [alias("fn", "prod", "1")]
    drifts = diff(desired, live)
    return Result(drift=drifts, plan=make_plan(drifts, prune=False, desired=desired), api_calls={"lambda.ListAliases": 1})


def status_document(n: int) -> dict[str, Any]:
    now = time.time()
    drift = [
        {
            "resource": d.resource,
            "kind": d.kind,
            "status": d.status.value,
            "changes": [c.as_dict() for c in d.changes],
            "first_seen": "2026-12-02T11:00:00Z",
            "actions": [{"operation": a.operation, "outcome": "planned"} for a in result(n).plan.actions if a.resource == d.resource],
        }
        for d in result(n).drift
    ]
    commit = {"sha": SHA, "short": SHA[:12], "subject": "Promote", "author": "Ann", "time": iso(now - 120)}
    return {
        "repo": "https://example.com/estate.git",
        "branch": "main",
        "path": "desired_state",
        "mode": "detect",
        "prune": False,
        "state": "drifted",
        "state_reason": "detect mode: drift is reported, not healed",
        "now": "2026-12-02T12:00:00Z",
        "applied_commit": SHA,
        "head_commit": SHA,
        "head_valid": True,
        "commits": {"desired": commit, "head": commit},
        "spec_errors": [],
        "git": {"reachable": True, "error": None, "last_ok": None},
        "running": None,
        "last_run": {
            "id": 4,
            "status": "drift",
            "trigger": "webhook:github",
            "started": iso(now - 5),
            "finished": iso(now - 4),
            "duration_s": 1.0,
            "age_s": 4.0,
        },
        "next_run_at": None,
        "next_run_in_s": 42.0,
        "drift": drift,
        "healed_by_last_run": [],
        "routes": [
            {
                "entry": f"api/r{i}",
                "api": "api",
                "chain": "api/prod -> fn:prod",
                "text": "api/r -> fn:prod -> version 1 (git: version 3 (90%) + version 4 (10%))",
                "live_text": "version 1",
                "desired_text": "version 3 (90%) + version 4 (10%)",
                "differs": True,
            }
            for i in range(n)
        ],
        "managed": managed_entries(
            [Managed(d, alias("fn", "prod", "1") if d.key == "fn/prod" else None) for d in [alias("fn", "prod", "3", {"4": 0.1}), alias("fn", "new", "1")][:n]]
            + [Managed(alias("other", "prod", "2"), alias("other", "prod", "2"))],
            drift,
            drift,
        ),
        "last_error": None,
        "warnings": [],
    }


def run_entry(n: int) -> dict[str, Any]:
    doc = status_document(n)
    return {
        "id": 4,
        "started": "2026-12-02T11:59:00Z",
        "trigger": "schedule",
        "triggers": ["schedule"],
        "mode": "detect",
        "commit_sha": SHA,
        "head_sha": SHA,
        "status": "drift",
        "drift_count": n,
        "drift": doc["drift"],
        "actions": [{"resource": d["resource"], **a, "reason": "moved by hand"} for d in doc["drift"] for a in d["actions"]],
        "api_calls": {"lambda.ListAliases": 1},
        "count": 1,
        "duration_s": 0.5,
        "warnings": [],
        "error": None,
    }


def page_text(page: str) -> str:
    """What a person sees: the page without its tags, attributes and script."""
    page = re.sub(r"<(script|style)>.*?</\1>", " ", page, flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def outputs(n: int) -> dict[str, str]:
    r = result(n)
    review = Review(account="123456789012", region="us-east-1", commit=SHA)
    notifier = Notifier([], controller_name="pointsman")
    record = RunRecord(started=time.time(), trigger="schedule", mode="detect", status="drift", commit_sha=SHA, head_sha=SHA, id=4)
    record.drift = status_document(n)["drift"]
    record.actions = run_entry(n)["actions"]
    return {
        "text plan": render(r, fmt="text", mode="plan"),
        "markdown plan": render(r, fmt="markdown", mode="plan", review=review),
        "pointsman status": status_text(status_document(n)),
        "status page": page_text(status_page(status_document(n), [run_entry(n)], can_reconcile=False)),
        "run page": page_text(run_page(run_entry(n))),
        "notification": notifier.summary("drift_found", record),
        "slack": notifier.slack_payload("drift_found", record)["blocks"][0]["text"]["text"],
    }


@pytest.mark.parametrize("n", [1, 2])
def test_a_drifted_estate_in_detect_mode_reads_the_same_everywhere(n: int) -> None:
    for medium, text in outputs(n).items():
        assert not WILL.search(text), (medium, WILL.search(text), text)
        assert not RAW_TOKENS.search(text), (medium, RAW_TOKENS.search(text), text)
        assert not BAD_PLURAL.search(text), (medium, BAD_PLURAL.search(text), text)
        assert "→" not in text and "←" not in text, (medium, text)  # one arrow: ->
        assert " %" not in text, (medium, text)
        assert "{4: 0.1}" not in text and "{'" not in text and "['" not in text, (medium, text)
        # one short sha length where a sha is shortened
        assert SHA[:7] + " " not in text and SHA[:7] + "*" not in text, (medium, text)


def test_the_words_in_detect_mode() -> None:
    out = outputs(2)
    assert "Would do (planned, not applied)" in out["status page"]
    assert "lambda.UpdateAlias planned, not applied" in out["status page"]
    assert "#4 : drifted (webhook from GitHub)" in out["status page"]
    assert "2 planned, not applied" in out["status page"]  # the recent runs' actions
    assert "2 resources differ from git" in out["status page"]
    assert "Run #4: drifted" in out["run page"] and "schedule (schedule)" not in out["run page"]
    assert "Would do (2, planned, not applied)" in out["run page"]
    assert out["pointsman status"].startswith("drifted: ")
    assert "last run #4: drifted (webhook from GitHub)" in out["pointsman status"]
    assert "would do: lambda.UpdateAlias (planned, not applied)" in out["pointsman status"]
    assert "Drift (2 resources):" in out["pointsman status"]
    assert "Routing (2 routes differ from git):" in out["pointsman status"]
    assert "manages 3 resources: lambda_alias 3 (2 differ from git)" in out["pointsman status"]
    assert "Managed resources: 3 resources (2 differ from git)" in out["status page"]
    # (page_text puts a space where a tag was: after each / that may break a line, and around a field name)
    assert 'lambda_alias/ fn/ prod version : "1" description : "" routing : {} differs' in out["status page"]
    assert "lambda_alias/ fn/ new not in AWS not in AWS" in out["status page"]
    assert 'lambda_alias/ other/ prod version : "2" description : "" routing : {} in sync' in out["status page"]
    assert "What apply would change in AWS" in out["markdown plan"]
    assert f"at {SHA[:SHORT_SHA]}**" in out["markdown plan"]
    assert "Plan (2 actions, in order):" in out["text plan"]
    assert "drift found on 2 resources at " + SHA[:12] + " (detect mode; 2 actions planned, not applied)" in out["notification"]
    for medium in ("text plan", "pointsman status", "slack"):
        assert 'version: "1" -> "3"' in out[medium].replace("`", ""), (medium, out[medium])
    assert 'routing: {} -> {"4": 0.1}' in out["text plan"]


def test_the_words_in_singular() -> None:
    out = outputs(1)
    assert "1 resource differs from git" in out["status page"]
    assert "Drift (1 resource):" in out["pointsman status"]
    assert "Routing (1 route differs from git):" in out["pointsman status"]
    assert "manages 2 resources: lambda_alias 2 (1 differs from git)" in out["pointsman status"]
    assert "Plan (1 action, in order):" in out["text plan"]
    assert "drift found on 1 resource at" in out["notification"] and "1 action planned, not applied" in out["notification"]
    assert "Would do (1, planned, not applied)" in out["run page"]


def test_apply_mode_keeps_its_wording() -> None:
    doc = status_document(2) | {"mode": "apply"}
    page = page_text(status_page(doc, [], can_reconcile=False))
    assert "Will be done" in page and "Would do" not in page
    text = status_text(doc)
    assert "would do" not in text and "  -> lambda.UpdateAlias (planned, not applied)" in text
    assert "What apply changes in AWS" in render(result(2), fmt="markdown", mode="apply")


def test_the_helpers() -> None:
    assert [plural(0, "resource"), plural(1, "resource"), plural(2, "resource")] == ["0 resources", "1 resource", "2 resources"]
    assert [state_words("in_sync"), state_words("drifted"), state_words("healing")] == ["in sync", "drifted", "healing"]
    assert [status_words(s) for s in ("in_sync", "drift", "applied", "failed", "error")] == ["in sync", "drifted", "healed", "apply failed", "error"]
    assert trigger_words("schedule", ["schedule"]) == "schedule"
    assert trigger_words("webhook:github") == "webhook from GitHub"
    assert trigger_words("new-commit,schedule", ["event"]) == "new commit, schedule and event"
    assert short_sha(SHA) == SHA[:12] and short_sha(None) == "-"
    assert [percent(0.9), percent(0.1), percent(1 / 3)] == ["90%", "10%", "33.3333%"]
    assert format_value(["200", "400", "500"]) == '["200", "400", "500"]' and format_value({3: 0.1}) == '{"3": 0.1}'
    assert actions_words([], "detect") == "none"
    assert actions_words([{"outcome": "succeeded"}, {"outcome": "failed"}], "apply") == "1 applied, 1 failed"
    drift = Drift("x", "lambda_alias", DriftStatus.MODIFIED, (FieldChange("codes", ["200"], ["200", "400"]),))
    assert '["200"] -> ["200", "400"]' in render(Result(drift=[drift]), fmt="text", mode="plan")
