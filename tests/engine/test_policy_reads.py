"""Reads cost what exists: an alias's policy is read (one GetPolicy) only once its function's
ListAliases has listed it. An alias not created yet, or one of a function that does not exist,
costs no GetPolicy; an alias created in the run is asked about again once the write is forgotten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controller.aws.clients import AwsClients, write_calls
from controller.demo.estate import handler_zip
from controller.kinds.lambda_permission import covers
from controller.live.scope import ALIAS_FIELDS, PolicyStatement, Scope
from controller.spec import load_spec
from tests.conftest import run


def live_aliases(clients: AwsClients, spec_dir: Path) -> set[tuple[str, str]]:
    """(function, alias) of every alias the spec's functions have in AWS."""
    return {(name, alias["Name"]) for name in load_spec(spec_dir).functions for alias in clients.lambda_.list_aliases(FunctionName=name)["Aliases"]}


def declared_aliases(spec_dir: Path) -> set[tuple[str, str]]:
    return {(name, alias) for name, decl in load_spec(spec_dir).functions.items() for alias in decl.spec.aliases}


def test_a_plan_of_aliases_not_created_yet_makes_no_get_policy(estate: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    # The example's functions and APIs exist; none of the aliases the spec declares (nor those its stages route to) do.
    assert live_aliases(clients, spec_dir) == set()
    result = run(spec_dir, clients)
    created = {d.resource for d in result.drift if d.resource.startswith("lambda_alias/")}
    assert created == {f"lambda_alias/{f}/{a}" for f, a in declared_aliases(spec_dir)}
    assert any(d.resource.startswith("lambda_permission/") for d in result.drift)  # their permissions are planned too
    assert "lambda.GetPolicy" not in result.api_calls, result.api_calls
    assert result.api_calls["lambda.ListAliases"] == len(load_spec(spec_dir).functions)


def test_a_plan_of_aliases_that_exist_makes_one_get_policy_per_alias(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    live = live_aliases(clients, spec_dir)
    assert live >= declared_aliases(spec_dir) and live
    result = run(spec_dir, clients)
    assert result.in_sync
    assert result.api_calls["lambda.GetPolicy"] == len(live)
    assert result.api_calls["lambda.ListAliases"] == len(load_spec(spec_dir).functions)


def test_only_the_aliases_that_exist_are_read_when_some_are_new(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    live = live_aliases(clients, spec_dir)
    path = spec_dir / "getreport.yaml"
    text = path.read_text()
    new = "      staging: {version: $LATEST}\n      qa: {version: $LATEST}\n"
    path.write_text(
        text.replace("      dev: {version: $LATEST, description: development}\n", "      dev: {version: $LATEST, description: development}\n" + new)
    )
    result = run(spec_dir, clients)
    assert {d.resource for d in result.drift} == {"lambda_alias/getreport/staging", "lambda_alias/getreport/qa"}
    assert result.api_calls["lambda.GetPolicy"] == len(live)  # none for staging or qa


def test_a_first_apply_converges_and_a_second_run_writes_nothing(estate: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    first = run(spec_dir, clients, apply=True)
    assert not first.failed, [o.as_dict() for o in first.outcomes]
    assert first.api_calls["lambda.CreateAlias"] == len(declared_aliases(spec_dir))
    assert first.api_calls["lambda.AddPermission"] > 0  # the permissions of the aliases just created
    again = run(spec_dir, clients, apply=True)
    assert again.in_sync, [d.resource for d in again.drift]
    assert write_calls(again.api_calls) == {}
    assert again.api_calls["lambda.GetPolicy"] == len(live_aliases(clients, spec_dir))


def test_the_scope_answers_no_policy_for_a_missing_alias_then_reads_it_once_created(estate: dict[str, Any], clients: AwsClients) -> None:
    scope = Scope(clients)
    clients.counter.reset()
    assert scope.policy_statements("getreport", "prod") == ()
    assert scope.policy_statements("nosuchfunction", "prod") == ()
    assert clients.counter.snapshot() == {"lambda.ListAliases": 2}  # no GetPolicy: neither alias exists

    # An apply creates the alias and its permission in the same run, and forgets what it wrote.
    create = {"FunctionName": "getreport", "Name": "prod", "FunctionVersion": "1"}
    permit = {
        "FunctionName": "getreport",
        "Qualifier": "prod",
        "StatementId": "invoke-from-api",
        "Action": "lambda:InvokeFunction",
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*",
    }
    clients.lambda_.create_alias(**create)
    clients.lambda_.add_permission(**permit)
    scope.forget_writes([("lambda", create), ("lambda", permit)])
    clients.counter.reset()
    statements = scope.policy_statements("getreport", "prod")
    assert [s.sid for s in statements] == ["invoke-from-api"]
    assert clients.counter.snapshot() == {"lambda.ListAliases": 1, "lambda.GetPolicy": 1}
    assert scope.policy_statements("getreport", "prod") == statements  # read once
    assert clients.counter.snapshot() == {"lambda.ListAliases": 1, "lambda.GetPolicy": 1}

    # Deleted behind the scope's back: once its function's aliases are forgotten, no policy again, and no read of it.
    clients.lambda_.delete_alias(FunctionName="getreport", Name="prod")
    scope.invalidate([("function", "getreport")])
    clients.counter.reset()
    assert scope.policy_statements("getreport", "prod") == ()
    assert clients.counter.snapshot() == {"lambda.ListAliases": 1}


def test_the_scope_keeps_of_a_policy_and_an_alias_only_what_is_compared(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    """A run of 10,000 functions keeps 30,000 policies and aliases: each as little as the plan reads."""
    scope = Scope(clients)
    kept: list[PolicyStatement] = []
    for name, alias in sorted(live_aliases(clients, spec_dir)):
        fn = scope.function(name)
        assert fn is not None and set(fn.aliases[alias]) <= set(ALIAS_FIELDS)
        assert fn.aliases[alias]["FunctionVersion"] == clients.lambda_.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
        statements = scope.policy_statements(name, alias)
        document = json.loads(clients.lambda_.get_policy(FunctionName=name, Qualifier=alias)["Policy"])["Statement"]
        raw = {s["Sid"]: s for s in document if s["Resource"].endswith(f":function:{name}:{alias}")}
        assert [s.sid for s in statements] == list(raw)
        for statement in statements:
            source_arn = ((raw[statement.sid].get("Condition") or {}).get("ArnLike") or {}).get("AWS:SourceArn")
            assert statement.source_arn == source_arn
            assert statement == PolicyStatement.parse(raw[statement.sid])
            wanted = source_arn or "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"
            assert covers(statement, wanted) == covers(raw[statement.sid], wanted)
        kept += statements
    assert len(kept) > 1
    # Equal principals and actions are one object, however many statements name them.
    assert len({id(s.principal) for s in kept}) == len({json.dumps(s.principal, sort_keys=True) for s in kept})
    assert len({id(s.action) for s in kept}) == len({json.dumps(s.action, sort_keys=True) for s in kept})


FUNCTIONS = 20
ALIASES_PER_FUNCTION = 100  # 2,000 aliases, none created yet


def test_a_plan_of_two_thousand_missing_aliases_reads_only_the_functions(clients: AwsClients, tmp_path: Path) -> None:
    iam = clients.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="many", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    lines = ["functions:"]
    for i in range(FUNCTIONS):
        name = f"fn{i:02d}"
        clients.lambda_.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": handler_zip(name, 1)})
        lines += [f"  {name}:", "    aliases:"] + [f"      a{k:03d}: {{version: $LATEST}}" for k in range(ALIASES_PER_FUNCTION)]
    (tmp_path / "many.yaml").write_text("\n".join(lines) + "\n")
    result = run(tmp_path, clients)
    assert len([d for d in result.drift if d.resource.startswith("lambda_alias/")]) == FUNCTIONS * ALIASES_PER_FUNCTION
    assert "lambda.GetPolicy" not in result.api_calls, result.api_calls
    assert result.api_calls["lambda.ListAliases"] == FUNCTIONS
    assert sum(result.api_calls.values()) <= FUNCTIONS + 1, result.api_calls  # and GetRestApis
