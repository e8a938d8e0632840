"""A rollout survives its controller being killed (SIGKILL, no goodbye) at each step: the next
process reads the rollout's record from the history database and the alias from AWS, resumes
the step it was in with the pause time left, and no canary weight ever goes backwards.

`pointsman run` runs as a process against moto's server on 127.0.0.1, following a local repo.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import ControllerProcess, git, start_controller, wait_for

pytestmark = pytest.mark.server

ROLLOUT = 'prod: {version: 2, description: "v1 production", rollout: {steps: [{weight: 10}, {pause: 8s}, {weight: 50}, {pause: 8s}]}}'


def kill(controller: ControllerProcess) -> None:
    controller.process.send_signal(signal.SIGKILL)
    controller.process.wait(10)


def rollout(controller: ControllerProcess) -> dict[str, Any]:
    rows = controller.status().get("rollouts") or []
    return rows[0] if rows else {}


def test_killed_at_each_step_a_new_process_resumes_the_same_step(world: dict[str, Any], moto_server: str, tmp_path: Path) -> None:
    spec = world["repo"] / "desired_state" / "products.yaml"
    spec.write_text(spec.read_text().replace('prod: {version: 3, description: "v1 production"}', ROLLOUT))
    git("commit", "-qam", "Roll out getProducts 2", cwd=world["repo"])
    lam = world["clients"].lambda_
    seen: list[tuple[str, float]] = []  # (primary, weight of 2) as the alias moved
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(0.2):
            item = lam.get_alias(FunctionName="getProducts", Name="prod")
            weight = float(((item.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).get("2", 0.0))
            state = (item["FunctionVersion"], 1.0 if item["FunctionVersion"] == "2" else weight)
            if not seen or seen[-1] != state:
                seen.append(state)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    state = tmp_path / "state"
    args = ("--interval", "3600", "--rollout-poll", "1", "--poll-interval", "0")
    controller = start_controller(str(world["repo"]), state, moto_server, *args)
    try:
        # Killed in the first pause (10%): the next process resumes it, with less than 8 s left.
        wait_for(lambda: "step 2 of 4 (10%), next step in" in rollout(controller).get("line", ""), 30, "the first pause")
        kill(controller)
        controller = start_controller(str(world["repo"]), state, moto_server, *args)
        row = wait_for(lambda: rollout(controller) or None, 30, "the resumed rollout")
        assert row["step"] in (1, 2) and row["weight"] in (10.0, 50.0), row  # the pause, or the 50% step it led to
        if row["step"] == 1:
            left = row["line"].split("next step in ", 1)[1].split(",")[0]
            assert left.endswith(" s") and int(left.split()[0]) < 8, row["line"]  # the time left, not a new pause
        # Killed in the second pause (50%): resumed again, then promoted.
        wait_for(lambda: "step 4 of 4 (50%), next step in" in rollout(controller).get("line", ""), 30, "the second pause")
        kill(controller)
        controller = start_controller(str(world["repo"]), state, moto_server, *args)
        wait_for(lambda: rollout(controller).get("status") == "promoted" or controller.status()["state"] == "in_sync", 40, "the promotion")
        item = lam.get_alias(FunctionName="getProducts", Name="prod")
        assert item["FunctionVersion"] == "2" and not (item.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        wait_for(lambda: seen and seen[-1] == ("2", 1.0), 10, "the watcher to see the promotion")
    finally:
        watching.set()
        watcher.join(5)
        if controller.process.poll() is None:
            controller.stop()
    weights = [w for _, w in seen]
    assert weights == sorted(weights), seen  # no weight went backwards across the kills
    assert weights[0] == 0.0 and 0.1 in weights and 0.5 in weights and weights[-1] == 1.0, seen
