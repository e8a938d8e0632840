"""An observe-only alias in the running controller (moto's server, a local repo, apply mode): its
drift is on the status page and in /api/status with the action that is never taken, the
history says why, and the controller writes nothing to it, run after run."""

from __future__ import annotations

from typing import Any

import pytest

from controller.aws.clients import write_calls
from controller.loop.runner import Controller
from controller.loop.settings import RunSettings
from controller.web import pages
from tests.e2e_support import git
from tests.loop.test_status_schema import check

pytestmark = pytest.mark.server


def test_an_observed_alias_is_drift_on_the_page_and_never_written(world: dict[str, Any]) -> None:
    spec = world["repo"] / "desired_state" / "products.yaml"
    spec.write_text(
        spec.read_text().replace('prod: {version: 3, description: "v1 production"}', 'prod: {version: 3, description: "v1 production", manage: observe}')
    )
    git("commit", "-qam", "Observe getProducts:prod", cwd=world["repo"])
    world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    settings = RunSettings(repo=str(world["repo"]), state_dir=world["tmp"] / "state", listen="127.0.0.1:0", interval=3600, jitter=0, poll_interval=0)
    c = Controller(settings)
    try:
        for _ in range(2):
            record = c.reconcile("schedule")
            assert write_calls(record.api_calls) == {}
            assert record.status == "drift"
            (action,) = record.actions
            assert action["outcome"] == "observed" and action["error"].startswith("alias getProducts:prod is observe-only")
        document = c.status_document()
        check(document)
        assert document["state"] == "drifted" and "observe-only resources (manage: observe)" in document["state_reason"]
        (drift,) = document["drift"]
        assert drift["resource"] == "lambda_alias/getProducts/prod" and drift["actions"][0]["outcome"] == "observed"
        page = pages.status_page(document, [], can_reconcile=False)
        assert "observe only, not written" in page
        assert world["clients"].lambda_.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "1"
    finally:
        c.history.close()
