"""Manual approval in a browser: a change to an alias declared `approve: manual` waits, the status
page says so with an Approve button, and the button (with the UI token) applies it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e_support import wait_for
from tests.loop.test_guardrails_loop import TOKEN, _two_changes, commit, first_run, prod_version, start, url
from tests.web.test_status_page import browser, shot

pytestmark = pytest.mark.server
__all__ = ["browser"]  # the module's Chromium fixture


def test_the_approve_button_applies_what_waits(world: dict[str, Any], browser: Any) -> None:
    def change(d: dict[str, Any]) -> None:
        _two_changes(d)
        d["functions"]["getreport"]["aliases"]["prod"]["approve"] = "manual"

    commit(world, change, "Promote getreport:prod, with approval")
    runner = start(world, "approval-page")
    try:
        record = first_run(runner)
        assert record.status == "waiting" and prod_version(world) == "1"
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url(runner) + "/")
        shot(page, "waiting-for-approval")
        button = page.locator("#approve")
        assert button.inner_text() == f"Approve run #{record.id}"
        assert "lambda_alias/getreport/prod" in page.content()
        page.fill("input[aria-label='UI token for approval']", "wrong")
        button.click()
        assert "Wrong UI token" in page.content() and prod_version(world) == "1"
        page.goto(url(runner) + "/")
        page.fill("input[aria-label='UI token for approval']", TOKEN)
        page.click("#approve")
        wait_for(lambda: prod_version(world) == "2", 60, "the approved alias update")
        wait_for(lambda: runner.controller.status.running is None and not runner.controller._waiting, 60, "the approval used")
        page.goto(url(runner) + "/")
        assert page.locator("#approve").count() == 0
    finally:
        runner.stop()
