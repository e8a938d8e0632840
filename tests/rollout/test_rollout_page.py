"""A rollout on the status page, in headless Chromium: its progress and gate readings, and the
Abort and Retry buttons (authenticated with the UI token, like "Reconcile now"); then the same
controls from the command line (`pointsman rollout`)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.cli.main import main
from tests.e2e_support import git, wait_for
from tests.web.test_status_page import TOKEN, browser, shot, start, status, url

pytestmark = pytest.mark.server
__all__ = ["browser"]  # the module's Chromium fixture

ROLLOUT = 'prod: {version: 2, description: "v1 production", rollout: {steps: [{weight: 10}, {pause: 1h}], alarms: [getProducts-errors]}}'


def test_the_page_shows_a_rollout_and_its_buttons_abort_and_retry_it(
    world: dict[str, Any], browser: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudwatch = world["clients"].client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="getProducts-errors", StateValue="OK", StateReason="quiet")  # the example estate has it (controller.demo.estate)
    spec = world["repo"] / "desired_state" / "products.yaml"
    spec.write_text(spec.read_text().replace('prod: {version: 3, description: "v1 production"}', ROLLOUT))
    git("commit", "-qam", "Roll out getProducts 2", cwd=world["repo"])
    runner = start(world, "apply", rollout_poll=1)
    try:
        # The first run sets 10%; the next look (a second later) starts the hour's pause.
        wait_for(lambda: "next step in" in " ".join(r["line"] for r in status(runner)["rollouts"]), 30, "the pause")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url(runner))
        shot(page, "rollout")
        assert page.locator("#state").inner_text() == "rolling out"
        row = page.locator("tr.rollout[data-alias='getProducts/prod']")
        text = " ".join(row.inner_text().split())
        assert "getProducts:prod 3 -> 2" in text and "10% on 2, step 2 of 2" in text, text
        assert "next step in 59 min" in text and "next step due in 60 min" in text and "getProducts-errors OK" in text, text
        assert row.locator("progress").get_attribute("value") == "10.0"
        assert page.locator("table.healed").count() == 0  # a step is not a heal
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        row.locator("input[name=token]").fill(TOKEN)
        row.locator("button[value=abort]").click()
        wait_for(lambda: status(runner)["rollouts"] and status(runner)["rollouts"][0].get("status") == "aborted", 30, "the abort")
        versions = world["clients"].lambda_.get_alias(FunctionName="getProducts", Name="prod")
        assert versions["FunctionVersion"] == "3" and not (versions.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        page.goto(url(runner))
        row = page.locator("tr.rollout[data-alias='getProducts/prod']")
        assert "rollout of getProducts:prod 3 -> 2 aborted (by request)" in row.inner_text()
        assert row.locator("button[value=retry]").count() == 1
        # The command line: a wrong action is refused by the controller; retry starts it again.
        host, port = runner.http.server_address[:2]
        address = f"http://{host}:{port}"
        monkeypatch.setenv("POINTSMAN_UI_TOKEN", TOKEN)
        assert main(["rollout", "abort", "getProducts:prod", "--url", address]) == 1
        assert "only one in progress (or waiting) can be aborted" in capsys.readouterr().err
        assert main(["rollout", "retry", "getProducts:prod", "--url", address]) == 0
        wait_for(lambda: status(runner)["rollouts"][0].get("status") == "progressing", 30, "the retry")
        weights = world["clients"].lambda_.get_alias(FunctionName="getProducts", Name="prod")["RoutingConfig"]["AdditionalVersionWeights"]
        assert weights == {"2": 0.1}
    finally:
        runner.stop()
