"""plan and apply with guardrails: --max-changes, --max-deletions, --allow-protected and their
POINTSMAN_* variables; a refusal is one error line, the plan's list, exit 1, and no write call."""

from __future__ import annotations

import yaml

from controller.aws.clients import write_calls
from tests.conftest import cli


def _two_changes(spec_dir, **prod):
    path = spec_dir / "getreport.yaml"
    data = yaml.safe_load(path.read_text())
    data["functions"]["getreport"]["aliases"]["prod"].update(version="2", **prod)
    data["functions"]["getreport"]["aliases"]["dev"]["description"] = "changed"
    path.write_text(yaml.safe_dump(data))


def test_apply_over_max_changes_is_refused_with_one_line_and_the_list(converged, clients, spec_dir, capsys):
    _two_changes(spec_dir)
    code, out, err = cli(capsys, "apply", "--spec", str(spec_dir), "--max-changes", "1")
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: plan refused: the plan has 2 actions, over --max-changes 1; nothing was applied"
    assert "lambda_alias/getreport/prod" in out and "lambda_alias/getreport/dev" in out and "Refused; nothing was applied:" in out
    assert write_calls(clients.counter.snapshot()) == {}
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"] == "1"


def test_the_caps_and_allow_protected_come_from_the_environment_too(converged, clients, spec_dir, capsys, monkeypatch):
    _two_changes(spec_dir, protect=True)
    monkeypatch.setenv("POINTSMAN_MAX_DELETIONS", "0")
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir), "--format", "json")
    assert code == 1 and "apply would refuse this plan" in err and "--allow-protected" in err
    monkeypatch.setenv("POINTSMAN_ALLOW_PROTECTED", "true")
    code, out, err = cli(capsys, "apply", "--spec", str(spec_dir))
    assert code == 0, err
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"] == "2"
    monkeypatch.setenv("POINTSMAN_MAX_CHANGES", "lots")
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir))
    assert code == 1 and err.strip() == "error: POINTSMAN_MAX_CHANGES must be a whole number of 0 or more, not 'lots'"
