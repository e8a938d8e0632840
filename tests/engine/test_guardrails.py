"""Guardrails (engine/guardrails.py): protect, blast-radius caps, sync windows and manual approval,
each deciding before any write call (asserted from the call counts), against moto in-process."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from controller.aws.clients import write_calls
from controller.engine.guardrails import Guardrails, fingerprint
from controller.spec import load_spec
from tests.conftest import run


def _edit(spec_dir, name, change):
    path = spec_dir / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _alias(clients, name):
    return clients.lambda_.get_alias(FunctionName="getreport", Name=name)


def _prod(**fields):
    def change(d):
        d["functions"]["getreport"]["aliases"]["prod"].update(fields)

    return change


# --------------------------------------------------------------------------- protect


def test_a_change_to_a_protected_alias_is_refused_before_any_write(converged, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", _prod(version="2", protect=True))
    result = run(spec_dir, clients, apply=True)
    assert result.refused and "lambda_alias/getreport/prod" in result.refused[0] and "--allow-protected" in result.refused[0]
    assert write_calls(result.api_calls) == {}
    assert not result.outcomes and [a.resource for a in result.plan.actions] == ["lambda_alias/getreport/prod"]
    assert _alias(clients, "prod")["FunctionVersion"] == "1"

    allowed = run(spec_dir, clients, apply=True, guardrails=Guardrails(allow_protected=True))
    assert not allowed.refused and not allowed.failed
    assert write_calls(allowed.api_calls) == {"lambda.UpdateAlias": 1}
    assert _alias(clients, "prod")["FunctionVersion"] == "2"


def test_creating_a_protected_resource_needs_no_flag(estate, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", _prod(protect=True))
    result = run(spec_dir, clients, apply=True)
    assert not result.refused and not result.failed
    assert _alias(clients, "prod")["FunctionVersion"] == "1"


def test_a_protected_alias_removed_from_git_is_held_not_pruned(converged, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", lambda d: d["functions"]["getreport"]["aliases"].update(blue={"version": "1", "protect": True}))
    assert not run(spec_dir, clients, apply=True).failed
    before = load_spec(spec_dir)  # the commit applied last protects getreport:blue
    _edit(spec_dir, "getreport.yaml", lambda d: d["functions"]["getreport"]["aliases"].pop("blue"))
    result = run(spec_dir, clients, apply=True, prune=True, guardrails=Guardrails(protected_before=before, allow_protected=True))
    held = {h.action.resource: h.reason for h in result.plan.held}
    assert held["lambda_alias/getreport/blue"].startswith("protected (protect: true at ")
    assert write_calls(result.api_calls) == {}
    assert _alias(clients, "blue")["FunctionVersion"] == "1"
    # Once a commit that no longer protects it is the one applied, prune deletes it.
    unprotected = run(spec_dir, clients, apply=True, prune=True, guardrails=Guardrails(protected_before=load_spec(spec_dir)))
    assert write_calls(unprotected.api_calls) == {"lambda.DeleteAlias": 1}


def test_removing_a_variable_of_a_protected_stage_is_a_protected_change(converged, clients, spec_dir):
    def change(d):
        stage = d["rest_apis"]["getreport-api"]["stages"]["prod"]
        stage["protect"] = True
        stage["description"] = "changed"

    _edit(spec_dir, "getreport.yaml", change)
    result = run(spec_dir, clients, apply=True, prune=True)
    assert result.refused and "rest_stage/getreport-api/prod" in result.refused[0]
    assert write_calls(result.api_calls) == {}


def test_a_protected_api_protects_its_stages(converged, clients, spec_dir):
    def change(d):
        api = d["rest_apis"]["getreport-api"]
        api["protect"] = True
        api["stages"]["dev"]["description"] = "changed"

    _edit(spec_dir, "getreport.yaml", change)
    result = run(spec_dir, clients, apply=True)
    assert result.refused and "rest_stage/getreport-api/dev" in result.refused[0]
    assert write_calls(result.api_calls) == {}


# --------------------------------------------------------------------------- blast radius


def _two_changes(d):
    d["functions"]["getreport"]["aliases"]["prod"]["version"] = "2"
    d["functions"]["getreport"]["aliases"]["dev"]["description"] = "changed"


def test_a_plan_over_max_changes_is_refused_before_any_write(converged, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", _two_changes)
    result = run(spec_dir, clients, apply=True, guardrails=Guardrails(max_changes=1))
    assert result.refused == ["the plan has 2 actions, over --max-changes 1"]
    assert write_calls(result.api_calls) == {}
    assert _alias(clients, "prod")["FunctionVersion"] == "1"
    ok = run(spec_dir, clients, apply=True, guardrails=Guardrails(max_changes=2))
    assert not ok.refused and write_calls(ok.api_calls) == {"lambda.UpdateAlias": 2}


def test_a_plan_over_max_deletions_is_refused_before_any_write(converged, clients, spec_dir):
    clients.lambda_.create_alias(FunctionName="getreport", Name="old1", FunctionVersion="1")
    clients.lambda_.create_alias(FunctionName="getreport", Name="old2", FunctionVersion="1")
    result = run(spec_dir, clients, apply=True, prune=True, guardrails=Guardrails(max_deletions=1))
    assert result.refused == ["the plan has 2 deletions, over --max-deletions 1"]
    assert write_calls(result.api_calls) == {}
    assert _alias(clients, "old1") and _alias(clients, "old2")


# --------------------------------------------------------------------------- sync windows

FRIDAY_1800_PARIS = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)  # Friday 18:00 in Paris (UTC+1)
MONDAY_0900_PARIS = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def _window(allow_heal=False):
    def change(d):
        _two_changes(d)
        d["windows"] = [{"deny": "Fri 16:00-Mon 08:00", "timezone": "Europe/Paris", "allow_heal": allow_heal}]

    return change


def test_a_deny_window_defers_applies_until_it_closes(converged, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", _window())
    inside = run(spec_dir, clients, apply=True, guardrails=Guardrails(now=FRIDAY_1800_PARIS))
    assert inside.window == "sync window: applies wait until Mon 08:00 Europe/Paris (in 2 d 14 h)"
    assert write_calls(inside.api_calls) == {} and len(inside.plan.actions) == 2 and inside.drift
    assert _alias(clients, "prod")["FunctionVersion"] == "1"
    # Monday 09:00: the window has closed.
    after = run(spec_dir, clients, apply=True, guardrails=Guardrails(now=MONDAY_0900_PARIS))
    assert not after.window and write_calls(after.api_calls) == {"lambda.UpdateAlias": 2}
    assert _alias(clients, "prod")["FunctionVersion"] == "2"


def test_allow_heal_lets_healing_through_but_not_a_new_commit(converged, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", _window(allow_heal=True))
    new_commit = run(spec_dir, clients, apply=True, guardrails=Guardrails(now=FRIDAY_1800_PARIS))
    assert new_commit.window and write_calls(new_commit.api_calls) == {}
    heal = run(spec_dir, clients, apply=True, guardrails=Guardrails(now=FRIDAY_1800_PARIS, heal=True))
    assert not heal.window and write_calls(heal.api_calls) == {"lambda.UpdateAlias": 2}


def test_allow_windows_let_applies_through_only_while_open(converged, clients, spec_dir):
    def change(d):
        _two_changes(d)
        d["windows"] = [{"allow": "Mon 09:00-Fri 17:00", "timezone": "UTC"}]

    _edit(spec_dir, "getreport.yaml", change)
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    closed = run(spec_dir, clients, apply=True, guardrails=Guardrails(now=saturday))
    assert closed.window == "sync window: applies wait until Mon 09:00 UTC (in 1 d 21 h)"
    assert write_calls(closed.api_calls) == {}
    opened = run(spec_dir, clients, apply=True, guardrails=Guardrails(now=datetime(2026, 3, 9, 9, 30, tzinfo=UTC)))
    assert not opened.window and write_calls(opened.api_calls) == {"lambda.UpdateAlias": 2}


# --------------------------------------------------------------------------- manual approval


def test_an_alias_with_manual_approval_waits_while_the_rest_is_applied(converged, clients, spec_dir):
    def change(d):
        _two_changes(d)
        d["functions"]["getreport"]["aliases"]["prod"]["approve"] = "manual"

    _edit(spec_dir, "getreport.yaml", change)
    first = run(spec_dir, clients, apply=True, guardrails=Guardrails(approvals=True))
    assert [a.resource for a in first.waiting] == ["lambda_alias/getreport/prod"]
    assert write_calls(first.api_calls) == {"lambda.UpdateAlias": 1}
    assert _alias(clients, "prod")["FunctionVersion"] == "1" and _alias(clients, "dev")["Description"] == "changed"
    approved = frozenset(fingerprint(a) for a in first.waiting)
    second = run(spec_dir, clients, apply=True, guardrails=Guardrails(approvals=True, approved=approved))
    assert not second.waiting and write_calls(second.api_calls) == {"lambda.UpdateAlias": 1}
    assert _alias(clients, "prod")["FunctionVersion"] == "2"


def test_an_approval_covers_the_plan_it_was_given_for_only(converged, clients, spec_dir):
    _edit(spec_dir, "getreport.yaml", _prod(version="2", approve="manual"))
    first = run(spec_dir, clients, apply=True, guardrails=Guardrails(approvals=True))
    approved = frozenset(fingerprint(a) for a in first.waiting)
    _edit(spec_dir, "getreport.yaml", _prod(version="1", description="other"))  # a different change since
    second = run(spec_dir, clients, apply=True, guardrails=Guardrails(approvals=True, approved=approved))
    assert [a.resource for a in second.waiting] == ["lambda_alias/getreport/prod"]
    assert write_calls(second.api_calls) == {}
