"""The status page, the run pages and the API of a spec split into targets, shared by replicas:
the server of a fake loop serving a document of two targets (tests/targets_support.py). The page
shows the targets, who holds each, a target column and a target filter (``/?target=NAME``); the
server passes a target on to the loop for /runs/ID, /api/history, approvals and rollout controls."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.loop.history import RunRecord
from controller.web.pages import run_page, status_page
from tests.targets_support import NOW, TOKEN, FakeLoop, as_standby, serve_fake, two_targets
from tests.views.test_words import page_text
from tests.web.test_status_page import _fits, browser, shot  # noqa: F401 - browser is a fixture


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeLoop, str]]:
    with serve_fake(tmp_path) as (loop, base):
        yield loop, base


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(url: str, fields: dict[str, str], form: bool = False) -> tuple[int, str]:
    if form:
        data, headers = urllib.parse.urlencode({**fields, "token": TOKEN}).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        data, headers = json.dumps(fields).encode(), {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(urllib.request.Request(url, data=data, headers=headers, method="POST"), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location") or exc.read().decode()


def rows(html: str, table: str) -> list[str]:
    """The text of each body row of ``table.CLASS``."""
    body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    assert body is not None, table
    return [text(row) for row in re.findall(r"<tr.*?</tr>", body.group(1), re.DOTALL)]


def text(html: str) -> str:
    """What a person reads: the text without tags, no space before a comma, colon or full stop."""
    return re.sub(r" ([,:.])", r"\1", page_text(html)).strip()


def test_the_targets_table_says_where_each_target_is_who_holds_it_and_how_it_is() -> None:
    html = status_page(two_targets(), [], can_reconcile=False, now=NOW)
    eu, us = rows(html, "targets")
    assert eu.startswith("eu-prod 111111111111 eu-west-1 drifted 1 resource differs from git replica-a here since 2 h ago, epoch 4")
    assert "#12: drifted, 8 s ago by replica-a" in eu and eu.endswith("1 -")
    assert us.startswith("us-stage 222222222222 us-east-1 rolling out")
    assert "replica-b since 3 h ago" in us and "here" not in us and "as written 3 s ago" in us
    assert us.endswith("0 AccessDenied: lambda:ListAliases (a role without it)")
    assert '<span class="state state-rolling_out" data-state="rolling_out">' in html  # the state colours of the page's state
    assert 'href="/runs/12?target=eu-prod"' in html and 'href="/runs/3?target=us-stage"' in html
    assert 'href="/?target=us-stage"' in html


def test_each_entry_has_its_target_and_the_filter_lists_the_targets() -> None:
    html = status_page(two_targets(), [], can_reconcile=True, now=NOW)
    assert re.findall(r'<table class="(\w+)"><thead><tr><th>Target</th>', html) == ["targets", "rollouts", "healed", "drift", "managed", "routes"]
    assert rows(html, "drift")[0].startswith("eu-prod lambda_alias/getProducts/prod")
    assert [r.split()[0] for r in rows(html, "managed")] == ["eu-prod", "us-stage", "us-stage"]
    assert [r.split()[0] for r in rows(html, "routes")] == ["eu-prod", "us-stage"]
    assert rows(html, "healed")[0].startswith("eu-prod stage_variable/products-api/prod/debug") and 'href="/runs/9?target=eu-prod"' in html
    # The rollout's target is the target, its version in version; its buttons send the target.
    assert rows(html, "rollouts")[0].startswith("us-stage getReport:live 4 -> 5 progressing") and "on the new version" in rows(html, "rollouts")[0]
    assert '<input type="hidden" name="alias" value="getReport/live"><input type="hidden" name="target" value="us-stage">' in html
    select = re.search(r'<select id="target-filter".*?</select>', html, re.DOTALL)
    assert select is not None
    assert re.findall(r'<option value="([^"]*)"( selected)?>', select.group(0)) == [("", ""), ("eu-prod", ""), ("us-stage", "")]
    assert " hidden" not in re.sub(r"<script>.*?</script>", "", html, flags=re.DOTALL)
    assert "<b>this replica</b>" in html and "which reconciles eu-prod." in text(html)


def test_a_target_in_the_address_is_selected_and_the_other_targets_rows_start_hidden() -> None:
    html = status_page(two_targets(), [], can_reconcile=True, now=NOW, target="us-stage")
    assert '<option value="us-stage" selected>' in html and '<tr class="target selected" data-name="us-stage">' in html
    hidden = re.findall(r'data-target="([\w-]+)" hidden', html)
    assert hidden and set(hidden) == {"eu-prod"}
    assert 'data-target="us-stage" hidden' not in html
    unknown = status_page(two_targets(), [], can_reconcile=True, now=NOW, target="nowhere")
    assert "No target nowhere: every target is shown (the targets are eu-prod, us-stage)." in text(unknown)
    assert " selected>" not in unknown


def test_a_standby_replica_says_so_and_every_holder_is_listed() -> None:
    assert "This page is served by replica replica-c: a standby, it holds no target" in text(
        status_page(as_standby(two_targets()), [], can_reconcile=False, now=NOW)
    )
    html = status_page(as_standby(two_targets()), [], can_reconcile=False, now=NOW)
    assert rows(html, "replicas") == [
        "replica-a alive, renewed 2 s ago eu-prod",
        "replica-b alive, renewed 3 s ago us-stage",
        "replica-c this replica alive, renewed 4 s ago nothing: a standby",
    ]
    nobody = two_targets()
    nobody["targets"][1] |= {"holder": None, "since": None, "epoch": None}
    assert "Held by no replica: us-stage (a live replica takes it over at its next renewal)." in text(status_page(nobody, [], can_reconcile=False, now=NOW))


def test_without_targets_nothing_of_targets_is_on_the_page() -> None:
    document = {k: v for k, v in two_targets().items() if k not in ("targets", "replica")}
    html = status_page(document, [], can_reconcile=True, now=NOW, target="eu-prod")
    page = html.split("<script>")[0]
    assert "Targets" not in page_text(html) and "Replicas" not in page_text(html)
    assert "target-filter" not in page and "data-target" not in page and "<th>Target</th>" not in page


def test_the_run_page_of_a_targets_run_names_it() -> None:
    run = RunRecord(started=NOW - 60, trigger="schedule", mode="detect", status="drift", finished=NOW - 58, id=12, target="eu-prod").as_json()
    html = run_page(run, now=NOW)
    assert "<h1>eu-prod: Run #12: drifted</h1>" in html
    assert 'id="run-target"><code>eu-prod</code>' in html and '<a href="/?target=eu-prod">Back to the status page</a>' in html


def test_the_server_passes_the_target_on(served: tuple[FakeLoop, str]) -> None:
    loop, base = served
    code, html = get(base + "/runs/12?target=eu-prod")
    assert code == 200 and "eu-prod: Run #12" in html
    assert ("run_record", 12, "eu-prod") in loop.calls
    code, html = get(base + "/runs/12?target=us-stage")
    assert code == 404 and "No run #12 in the history of target us-stage." in html
    code, html = get(base + "/runs/3")
    assert code == 200 and ("run_record", 3, None) in loop.calls
    code, body = get(base + "/api/history?target=us-stage&limit=5")
    assert code == 200 and [(r["id"], r["target"]) for r in json.loads(body)] == [(3, "us-stage")]
    assert ("recent_runs", 5, None, "us-stage") in loop.calls
    code, body = get(base + "/api/history")
    assert code == 200 and len(json.loads(body)) == 2 and ("recent_runs", 20, None, None) in loop.calls
    code, html = get(base + "/?target=us-stage")
    assert code == 200 and '<option value="us-stage" selected>' in html
    assert '<a href="/runs/3?target=us-stage">#3</a>' in html  # the recent runs, each with its target


def test_approvals_and_rollout_controls_name_their_target(served: tuple[FakeLoop, str]) -> None:
    loop, base = served
    assert post(base + "/approve/12", {"target": "eu-prod"}) == (202, json.dumps({"approved": True, "run": 12, "target": "eu-prod"}, indent=2))
    assert loop.calls[-1] == ("approve", 12, "eu-prod")
    code, body = post(base + "/approve/12", {})
    assert code == 409 and loop.calls[-1] == ("approve", 12, None) and "of None is not waiting" in body
    code, location = post(base + "/approve/12", {"target": "eu-prod"}, form=True)
    assert (code, location) == (303, "/?target=eu-prod") and loop.calls[-1] == ("approve", 12, "eu-prod")
    code, body = post(base + "/rollout", {"alias": "getReport/live", "action": "abort", "target": "us-stage"})
    assert code == 202 and json.loads(body)["target"] == "us-stage"
    assert loop.calls[-1] == ("rollout_control", "getReport/live", "abort", "us-stage")
    code, location = post(base + "/rollout", {"alias": "getReport/live", "action": "promote", "target": "us-stage"}, form=True)
    assert (code, location) == (303, "/?target=us-stage#rollouts")
    code, body = post(base + "/rollout", {"alias": "getReport/live", "action": "abort"})
    assert code == 400 and loop.calls[-1] == ("rollout_control", "getReport/live", "abort", None)


def test_in_a_browser_the_target_filter_hides_the_other_targets_and_the_page_fits(served: tuple[FakeLoop, str], browser: Any) -> None:  # noqa: F811
    loop, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base + "/?target=eu-prod")
    shot(page, "targets-eu-prod")
    _fits(page, "targets page")
    assert page.locator("table.drift tbody tr").first.is_visible()
    assert not page.locator("table.rollouts tbody tr").first.is_visible()  # us-stage's
    assert [t.strip() for t in page.locator("table.managed tbody tr:visible td.target").all_inner_texts()] == ["eu-prod"]
    page.select_option("#target-filter", "us-stage")
    assert page.evaluate("location.search") == "?target=us-stage"
    assert [t.strip() for t in page.locator("table.managed tbody tr:visible td.target").all_inner_texts()] == ["us-stage", "us-stage"]
    assert not page.locator("table.drift").is_visible()  # its only group has no us-stage row
    assert page.locator("table.rollouts tbody tr").first.is_visible()
    page.select_option("#target-filter", "")
    assert page.evaluate("location.search") == ""
    assert page.locator("table.managed tbody tr:visible").count() == 3 and page.locator("table.drift").is_visible()
    page.fill("#filter", "getReport")
    assert page.locator("table.managed tbody tr:visible").count() == 1
    page.goto(base + "/runs/12?target=eu-prod")
    _fits(page, "a target's run page")
    page.click("text=Back to the status page")
    assert page.locator("#target-filter").input_value() == "eu-prod"
