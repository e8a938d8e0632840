"""``pointsman status``, ``approve`` and ``rollout`` against a controller whose spec is split into
targets (the server of a fake loop serving two targets, tests/targets_support.py): a line per
target, entries led by their target, ``--target NAME`` shows one alone, and approvals and rollout
controls send their target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli.main import main
from tests.targets_support import TOKEN, FakeLoop, serve_fake, two_targets


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeLoop, str]]:
    monkeypatch.setenv("POINTSMAN_UI_TOKEN", TOKEN)
    with serve_fake(tmp_path) as (loop, base):
        yield loop, base


def test_status_prints_a_line_per_target_and_leads_each_entry_with_its_target(served: tuple[FakeLoop, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, base = served
    assert main(["status", "--url", base]) == 2  # drift in eu-prod
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [
        "drifted: eu-prod: 1 resource differs from git",
        "Targets (2):",
        "  eu-prod (111111111111/eu-west-1): drifted, held by replica-a (here), 1 resource differs",
        "  us-stage (222222222222/us-east-1): rolling out, held by replica-b, no drift; error: AccessDenied: lambda:ListAliases (a role without it)",
        "  replica replica-a holds eu-prod",
    ]
    assert "  last run of us-stage #3: rolling out (schedule), 3 s ago" in lines
    assert any(line.startswith("  eu-prod: lambda_alias/getProducts/prod  [modified") for line in lines)
    assert "  us-stage: getReport:live 4 -> 5 at 10%, step 1 of 3" in lines
    assert "  eu-prod: eu-prod.example.com/v1 -> getProducts:prod" in lines
    assert any(line.startswith("  eu-prod: stage_variable/products-api/prod/debug  [extra], healed by run #9") for line in lines)
    assert "  ! us-stage: stage variable debug is set by hand" in lines


def test_status_target_shows_that_target_alone(served: tuple[FakeLoop, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, base = served
    assert main(["status", "--url", base, "--target", "us-stage"]) == 2  # rolling out
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:3] == [
        "rolling out: getReport:live rolling out",
        "Targets (1):",
        "  us-stage (222222222222/us-east-1): rolling out, held by replica-b, no drift; error: AccessDenied: lambda:ListAliases (a role without it)",
    ]
    assert "eu-prod:" not in out and "Drift (" not in out and "Routing (" not in out
    assert "  last run #3: rolling out (schedule), 3 s ago" in lines and "  getReport:live 4 -> 5 at 10%, step 1 of 3" in lines
    assert "  ! stage variable debug is set by hand" in lines and "manages 2 resources" in out

    assert main(["status", "--url", base, "--target", "eu-prod", "--format", "json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["state"] == "drifted" and [t["name"] for t in document["targets"]] == ["eu-prod"]
    assert document["last_run"]["id"] == 12 and document["last_run"]["target"] == "eu-prod"
    for key in ("drift", "managed", "routes", "healed"):
        assert document[key] and {e["target"] for e in document[key]} == {"eu-prod"}, key
    assert document["rollouts"] == [] and document["warnings"] == []


def test_an_in_sync_target_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = two_targets()
    document["targets"][1] |= {"state": "in_sync", "state_reason": "live AWS matches git", "error": None}
    document["rollouts"] = []
    with serve_fake(tmp_path, document) as (_, base):
        assert main(["status", "--url", base, "--target", "us-stage"]) == 0
        assert capsys.readouterr().out.startswith("in sync: live AWS matches git\n")
        assert main(["status", "--url", base]) == 2


def test_an_unknown_target_or_a_controller_without_targets_is_a_one_line_error(
    served: tuple[FakeLoop, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = served
    assert main(["status", "--url", base, "--target", "ap-dev"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "error: no target 'ap-dev' at this controller; its targets: eu-prod, us-stage\n"
    assert main(["status", "--url", base, "--target", "ap-dev", "--wait", "in_sync", "--timeout", "5"]) == 1
    assert capsys.readouterr().err == "error: no target 'ap-dev' at this controller; its targets: eu-prod, us-stage\n"
    single = {k: v for k, v in two_targets().items() if k not in ("targets", "replica")}
    with serve_fake(tmp_path / "single", single) as (_, one):
        assert main(["status", "--url", one, "--target", "eu-prod"]) == 1
        assert capsys.readouterr().err == "error: --target eu-prod: this controller reconciles a single spec, not targets\n"
        assert main(["status", "--url", one]) == 2
        out = capsys.readouterr().out
        assert "Targets" not in out and "  lambda_alias/getProducts/prod  [modified" in out  # as before: no target leads


def test_wait_with_a_target_waits_on_that_targets_state(served: tuple[FakeLoop, str], capsys: pytest.CaptureFixture[str]) -> None:
    loop, base = served
    # The fixed document's runs are older than the command: no new run of eu-prod comes.
    assert main(["status", "--url", base, "--target", "eu-prod", "--wait", "drifted", "--timeout", "1"]) == 1
    assert "waiting for eu-prod drifted after a new run (the state is drifted" in capsys.readouterr().err
    fresh = "2099-01-01T00:00:00Z"
    loop.document["targets"][0]["last_run"] |= {"started": fresh}
    loop.document["running"] = {"id": 4, "trigger": "schedule", "started": fresh}  # another target's run in flight
    assert main(["status", "--url", base, "--target", "eu-prod", "--wait", "drifted", "--timeout", "5"]) == 2
    assert capsys.readouterr().out.startswith("drifted: 1 resource differs from git\n")
    assert main(["status", "--url", base, "--target", "eu-prod", "--wait", "in_sync", "--timeout", "1"]) == 1
    assert "waiting for eu-prod in sync" in capsys.readouterr().err


def test_approve_and_rollout_send_their_target(served: tuple[FakeLoop, str], capsys: pytest.CaptureFixture[str]) -> None:
    loop, base = served
    assert main(["approve", "12", "--target", "eu-prod", "--url", base]) == 0
    assert loop.calls[-1] == ("approve", 12, "eu-prod")
    assert "approved run #12 of eu-prod" in capsys.readouterr().out
    assert main(["approve", "12", "--url", base]) == 1
    assert loop.calls[-1] == ("approve", 12, None)
    assert capsys.readouterr().err == "error: run #12 not approved: HTTP 409: run #12 of None is not waiting\n"
    assert main(["rollout", "abort", "getReport:live", "--target", "us-stage", "--url", base]) == 0
    assert loop.calls[-1] == ("rollout_control", "getReport:live", "abort", "us-stage")
    assert capsys.readouterr().out.startswith("abort of getReport:live in us-stage's rollout asked for")
    assert main(["rollout", "promote", "getReport:live", "--target", "eu-prod", "--url", base]) == 1
    assert loop.calls[-1] == ("rollout_control", "getReport:live", "promote", "eu-prod")
    assert "promote of getReport:live in eu-prod refused: HTTP 400" in capsys.readouterr().err
