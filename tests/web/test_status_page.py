"""The status page in a real browser: headless Chromium (Debian's chromium, driven by Playwright)
loads the page of a running controller in sync, with drift, mid-reconcile and with an invalid
head commit, and the tests check what a person looks for. Screenshots go to test-artifacts/.

The controller runs in-process against moto's server on 127.0.0.1, following a local git repo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import build_runner
from controller.loop.history import iso
from controller.loop.runner import Runner
from controller.loop.settings import RunSettings
from tests.e2e_support import git, wait_for
from tests.loop.test_events_parse import ALICE, envelope, record

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "ui-token-for-tests"
# As the machine's closed network needs: no background connections, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def start(world: dict[str, Any], mode: str = "detect", **more: Any) -> Runner:
    given: dict[str, Any] = {"ui_token": TOKEN, **more}
    settings = RunSettings(
        repo=str(world["repo"]),
        state_dir=world["tmp"] / f"state-{mode}",
        listen="127.0.0.1:0",
        interval=3600,
        jitter=0,
        poll_interval=0,
        mode=mode,
        **given,
    )
    runner = build_runner(settings)
    runner.start()
    wait_for(lambda: runner.controller.status.last_run is not None, 60, "the first run")
    return runner


def url(runner: Runner, path: str = "/") -> str:
    host, port = runner.http.server_address[:2]
    return f"http://{host}:{port}{path}"


def status(runner: Runner) -> dict[str, Any]:
    with urllib.request.urlopen(url(runner, "/api/status"), timeout=5) as response:
        return dict(json.loads(response.read()))


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"status-{name}.png"), full_page=True)


def test_in_sync_the_page_says_so_with_the_commit_and_the_routes(world: dict[str, Any], browser: Any) -> None:
    runner = start(world, "apply")
    try:
        page = browser.new_page()
        page.goto(url(runner))
        shot(page, "in-sync")
        assert page.locator("#state").inner_text() == "in sync"
        assert "live AWS matches git" in page.locator("#state-reason").inner_text()
        desired = page.locator("#desired-commit").inner_text()
        assert "Example estate" in desired and "by t" in desired and "ago" in desired
        assert page.locator("#last-run").inner_text().startswith("#1: in sync (schedule)")
        assert "in " in page.locator("#next-run").inner_text()
        assert "none, live AWS matches git" in page.locator("h2#drift").inner_text()
        routes = page.locator("table.routes").all_inner_texts()
        assert any("myapi.com/v1" in t and "getProducts:prod" in t for t in routes), routes
        assert page.locator("tr.differs").count() == 0
        page.click("a[href='/runs/1']")
        assert page.locator("h1").inner_text().startswith("Run #1: in sync")
        assert "lambda.ListAliases" in page.content()
    finally:
        runner.stop()


def test_in_sync_the_managed_resources_are_listed_by_kind_with_live_values_and_files(world: dict[str, Any], browser: Any) -> None:
    runner = start(world, "detect")
    try:
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(url(runner))
        shot(page, "managed")
        assert page.locator("#state").inner_text() == "in sync"
        managed = status(runner)["managed"]
        assert f"Managed resources: {len(managed)} resources" in page.locator("h2#managed").inner_text()
        # Grouped by kind, each group a <details> with its count.
        aliases = page.locator("details[data-kind='lambda_alias']")
        assert aliases.locator("summary").inner_text() == "lambda_alias (11 resources)"
        assert page.locator("details[data-kind='rest_method'] summary").inner_text() == "rest_method (2 resources)"
        row = aliases.locator("tr[data-resource='lambda_alias/getProducts/prod']")
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == "lambda_alias/getProducts/prod"
        assert 'version: "3"' in cells[1] and 'description: "v1 production"' in cells[1], cells
        assert cells[2] == "in sync" and cells[3] == "desired_state/products.yaml:7", cells
        method = page.locator("tr[data-resource='rest_method/users-api/POST/users']").inner_text()
        assert "integration.request_template: generated template, " in method and " lines" in method
        assert "#set" not in method and "## Pointsman" not in method  # the template itself is not printed
        # The page keeps within the window: long values wrap.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # The filter hides what does not match, and the groups without a match.
        other = page.locator("tr[data-resource='lambda_alias/getreport/prod']")
        mapping = page.locator("details[data-kind='base_path_mapping']")
        assert other.is_visible() and mapping.is_visible()
        page.fill("#filter", "getProducts/")
        assert row.is_visible() and not other.is_visible() and not mapping.is_visible()
        page.fill("#filter", "getreport.yaml:7")
        assert other.is_visible() and not row.is_visible()
        page.fill("#filter", "")
        assert row.is_visible() and other.is_visible() and mapping.is_visible()
    finally:
        runner.stop()


def test_drift_is_shown_with_live_and_git_side_by_side_and_the_button_reconciles(world: dict[str, Any], browser: Any) -> None:
    runner = start(world, "detect")
    try:
        world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
        page = browser.new_page()
        page.goto(url(runner))
        page.fill("input[name=token]", "wrong")
        page.click("#reconcile-now")
        assert "Wrong UI token: nothing was started." in page.content()
        assert runner.controller.status.last_run["id"] == 1
        page.goto(url(runner))
        page.fill("input[name=token]", TOKEN)
        page.click("#reconcile-now")
        wait_for(lambda: status(runner)["state"] == "drifted", 30, "the drift found")
        page.goto(url(runner))
        shot(page, "drifted")
        assert page.locator("#state").inner_text() == "drifted"
        assert "detect mode" in page.locator("#state-reason").inner_text()
        assert page.locator("#summary").inner_text().count("Desired commit (reconciled, not applied)") == 1
        row = page.locator("table.drift tr[data-resource='lambda_alias/getProducts/prod']")
        text = row.inner_text()
        assert 'version: "1" -> "3"' in text, text
        assert "UpdateAlias" in text and "planned" in text and "ago" in text
        routes = page.locator("table.routes tr.differs").all_inner_texts()
        assert routes and all("getProducts:prod" in t for t in routes), routes
        assert any("myapi.com/v1" in t for t in routes), routes
        # The filter box hides what does not match.
        page.fill("#filter", "getreport")
        assert not row.is_visible()
        page.fill("#filter", "getProducts")
        assert row.is_visible()
        # The managed resources say it too: the live value read, and where git declares it.
        managed = page.locator("table.managed tr[data-resource='lambda_alias/getProducts/prod']")
        assert managed.is_visible() and "differs" in managed.get_attribute("class")
        cells = managed.locator("td").all_inner_texts()
        assert 'version: "1"' in cells[1] and cells[2] == "differs" and cells[3] == "desired_state/products.yaml:7", cells
        assert "1 differs from git" in page.locator("h2#managed").inner_text()
        assert status(runner)["drift"][0]["first_seen"].endswith("Z")
    finally:
        runner.stop()


def test_an_unauthenticated_post_starts_nothing(world: dict[str, Any]) -> None:
    runner = start(world, "detect", ui_token=None)
    try:
        request = urllib.request.Request(url(runner, "/reconcile"), data=b"token=x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 403
        assert runner.controller.status.last_run["id"] == 1
    finally:
        runner.stop()


def test_mid_reconcile_the_page_says_healing_and_answers(world: dict[str, Any], browser: Any) -> None:
    runner = start(world, "apply")
    release, planned = threading.Event(), threading.Event()
    original = runner.controller._planned

    def slow(drift: int, actions: int) -> None:
        original(drift, actions)
        planned.set()
        release.wait(30)

    runner.controller._planned = slow  # type: ignore[method-assign]
    try:
        world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
        runner.trigger("test")
        assert planned.wait(30)
        page = browser.new_page()
        page.goto(url(runner))
        shot(page, "healing")
        assert page.locator("#state").inner_text() == "healing"
        assert "applying 1 action for 1 drifted resource" in page.locator("#state-reason").inner_text()
        assert "running now" in page.locator("#last-run").inner_text()
        release.set()
        wait_for(lambda: status(runner)["state"] == "in_sync" and status(runner)["last_run"]["id"] == 2, 30, "healed")
        page.goto(url(runner))
        assert page.locator("#state").inner_text() == "in sync"
        assert "lambda_alias/getProducts/prod" in page.locator("#healed").inner_text()
        assert status(runner)["drift"] == [] and status(runner)["in_sync"] is True
    finally:
        release.set()
        runner.stop()


def test_right_after_a_heal_the_page_shows_what_was_changed_by_whom_and_when(world: dict[str, Any], browser: Any) -> None:
    sqs = world["clients"].client("sqs")
    queue = sqs.create_queue(QueueName="pointsman-events")["QueueUrl"]
    runner = start(world, "apply", events_queue=queue, events_wait=1)
    try:
        wait_for(runner.controller.has_reads, 60, "the first full run's reads")
        world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
        # The CloudTrail record AWS writes for the console click, as EventBridge puts it on the queue.
        click = record(
            "lambda",
            "UpdateAlias20150331",
            {"functionName": "getProducts", "name": "prod", "functionVersion": "1"},
            userAgent="console.amazonaws.com",
            sourceIPAddress="198.51.100.23",
            eventTime=iso(time.time()),
        )
        sqs.send_message(QueueUrl=queue, MessageBody=envelope(click, "aws.lambda"))
        wait_for(lambda: status(runner)["healed"], 30, "the heal")
        page = browser.new_page()
        page.goto(url(runner))
        shot(page, "healed")
        assert page.locator("#state").inner_text() == "in sync"
        row = page.locator("table.healed tr[data-resource='lambda_alias/getProducts/prod']")
        text = " ".join(row.inner_text().split())
        assert 'version: "1" -> "3"' in text, text  # what someone set -> git's value, restored
        assert ALICE in text and "with the AWS console from 198.51.100.23" in text, text
        assert "lambda UpdateAlias" in text and "ago" in text, text
        run_id = status(runner)["healed"][0]["run"]
        assert f"run #{run_id}" in text, text
        # The exact UTC times are on hover.
        assert row.locator("time").first.get_attribute("title").endswith("Z")
        page.click(f"table.healed a[href='/runs/{run_id}']")
        assert "changed by" in page.locator("table").first.inner_text() and ALICE in page.content()
    finally:
        runner.stop()


def test_an_invalid_head_commit_is_explained_on_the_page(world: dict[str, Any], browser: Any) -> None:
    runner = start(world, "apply")
    try:
        spec = world["repo"] / "desired_state" / "getreport.yaml"
        spec.write_text(spec.read_text().replace("version: $LATEST", "version: latest-please"))
        git("commit", "-am", "Break the dev alias", cwd=world["repo"])
        runner.trigger("test")
        wait_for(lambda: status(runner)["head_valid"] is False and not status(runner)["running"], 30, "the invalid commit seen")
        page = browser.new_page()
        page.goto(url(runner))
        shot(page, "invalid-commit")
        banner = page.locator("#invalid-commit").inner_text()
        assert "is invalid: nothing from it is applied" in banner
        assert "desired_state/getreport.yaml" in banner
        assert "Break the dev alias" in page.locator("#head-commit").inner_text()
        assert "invalid" in page.locator("#head-commit").inner_text()
    finally:
        runner.stop()


def _edit_request_template(world: dict[str, Any]) -> None:
    """A console edit of users-api's POST /users: one line of its generated request template."""
    apigw = world["clients"].client("apigateway")
    api = next(a["id"] for a in apigw.get_rest_apis()["items"] if a["name"] == "users-api")
    users = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/users")
    integration = apigw.get_integration(restApiId=api, resourceId=users, httpMethod="POST")
    template = integration["requestTemplates"]["application/json"]
    edited = template.replace("\n", "\n## edited in the console\n", 1)
    apigw.put_integration(
        restApiId=api,
        resourceId=users,
        httpMethod="POST",
        type=integration["type"],
        integrationHttpMethod=integration["httpMethod"],
        uri=integration["uri"],
        requestParameters=integration.get("requestParameters") or {},
        requestTemplates={"application/json": edited},
        passthroughBehavior=integration["passthroughBehavior"],
    )


def _fits(page: Any, name: str) -> None:
    """Nothing on the page is wider than the window."""
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (name, widths)


def test_a_changed_template_is_a_diff_and_no_page_is_wider_than_the_window(world: dict[str, Any], browser: Any) -> None:
    runner = start(world, "detect")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url(runner))
        assert page.locator("#state").inner_text() == "in sync"
        _fits(page, "status page in sync")
        page.goto(url(runner, "/runs/1"))
        _fits(page, "run page in sync")
        page.goto(url(runner, "/runs/999"))
        assert "No run #999" in page.content()
        _fits(page, "not found page")
        page.goto(url(runner))
        page.fill("input[name=token]", "wrong")
        page.click("#reconcile-now")
        assert "Wrong UI token" in page.content()
        _fits(page, "message page")

        _edit_request_template(world)
        runner.trigger("test")
        wait_for(lambda: status(runner)["state"] == "drifted", 30, "the drift found")
        (drift,) = status(runner)["drift"]
        # moto's PutIntegration drops the integration responses too: their templates are on one side only.
        assert drift["resource"].startswith("rest_method/users-api/") and "integration.request_template" in [c["field"] for c in drift["changes"]]
        for path in ("/", "/runs/2"):
            page.goto(url(runner, path))
            shot(page, "template-diff" + path.replace("/", "-"))
            cell = page.locator("details.long", has_text="integration.request_template")
            assert cell.locator("summary").inner_text() == "integration.request_template: generated template changed (+0 -1 lines, show)", path
            assert not cell.locator("pre.diff").is_visible()  # collapsed until asked
            _fits(page, path)
            cell.locator("summary").click()
            diff = cell.locator("pre.diff")
            assert diff.is_visible()
            # The live template has the line git does not: the diff from live to git removes it.
            assert diff.locator("span.del").all_inner_texts() == ["-## edited in the console"], path
            assert diff.locator("span.add").count() == 0
            assert "\\n" not in page.locator("body").inner_text(), path
            _fits(page, path + " with the diff open")
            one_side = page.locator("details.long", has_text="response.200.template")
            assert re.fullmatch(r"response\.200\.template: \(none\) -> generated template, \d+ lines \(show\)", one_side.locator("summary").inner_text())
            one_side.locator("summary").click()
            assert "## Pointsman" in one_side.locator("pre.text").inner_text()
            _fits(page, path + " with the template open")
    finally:
        runner.stop()


def test_long_short_values_wrap_instead_of_widening_the_page(browser: Any) -> None:
    """A long ARN, stage-variable map, route chain and error wrap in their cells (the pages
    rendered from a status document, without a controller)."""
    from controller.web.pages import not_found_page, run_page, status_page
    from tests.views.test_words import run_entry, status_document

    arn = "arn:aws:lambda:us-east-1:123456789012:function:" + "AVeryLongFunctionName" * 10 + ":prod"
    doc = status_document(2)
    doc["drift"][0]["changes"] += [
        {"field": "function_arn", "live": arn, "desired": arn + "2"},
        {"field": "variables", "live": {f"variable{i}": arn for i in range(3)}, "desired": {}},
    ]
    doc["routes"][0] |= {"chain": " -> ".join([arn] * 3), "live_text": arn, "desired_text": arn}
    doc["last_error"], doc["state"] = "AccessDenied: " + arn * 4, "error"
    doc["warnings"] = [f"stage variable points at {arn}{arn}"]
    run = run_entry(2) | {"drift": doc["drift"], "error": doc["last_error"], "warnings": doc["warnings"]}
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    for name, html in (("status", status_page(doc, [run], can_reconcile=True)), ("run", run_page(run)), ("not found", not_found_page(arn * 3))):
        page.set_content(html)
        assert arn in page.locator("body").inner_text().replace("\n", ""), name
        _fits(page, name)
