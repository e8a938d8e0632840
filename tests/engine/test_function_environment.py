"""functions.F.environment: the environment variables of $LATEST, kept in sync.

Against moto in-process (the `converged` fixture: the example estate after a first apply),
plus botocore's Stubber for the wait after UpdateFunctionConfiguration: moto reports
LastUpdateStatus "Successful" at once, so polling, a "Failed" update and a wait that runs
out are only seen with stubbed answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

import controller.engine.apply as apply_module
from controller.aws.clients import AwsClients, is_write, write_calls
from controller.engine.apply import apply_actions
from controller.engine.pipeline import Result
from controller.kinds.lambda_function_config import LambdaFunctionConfig
from controller.kinds.lambda_version import LambdaVersion
from controller.model import Call, DriftStatus, FieldChange, OutcomeStatus, Resource
from controller.sensitive import Sensitive, reveal
from controller.spec import SpecInvalid, load_spec
from controller.views.report import as_dict, render
from tests.conftest import run

FN = "getProductsV2"
CONFIG = f"lambda_function_config/{FN}"
ANCHOR = "  getProductsV2:          # backs products-v2: prod is version 2.2\n"


def declare(spec_dir: Path, environment: str, *, prod: str | None = None) -> Path:
    """Give getProductsV2 an `environment:` line (YAML flow text) and optionally repin prod."""
    path = spec_dir / "products.yaml"
    text = path.read_text()
    assert ANCHOR in text
    text = text.replace(ANCHOR, f"  getProductsV2:\n    environment: {environment}\n")
    if prod is not None:
        text = text.replace('prod: {version: 2, description: "v2 production"}', f'prod: {{version: "{prod}", description: "v2 production"}}')
        assert prod in text
    path.write_text(text)
    return path


def live_environment(clients: AwsClients, qualifier: str | None = None) -> dict[str, str]:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    config = clients.lambda_.get_function_configuration(FunctionName=FN, **kwargs)
    return dict((config.get("Environment") or {}).get("Variables") or {})


def drift_of(result: Result, resource: str) -> Any:
    found = [d for d in result.drift if d.resource == resource]
    assert found, f"no drift for {resource}: {[d.resource for d in result.drift]}"
    return found[0]


def latest_sha(clients: AwsClients) -> str:
    return str(clients.lambda_.get_function_configuration(FunctionName=FN)["CodeSha256"])


# ------------------------------------------------------------------ drift and apply


def test_declared_environment_is_drift_then_one_update_then_in_sync(converged, clients, spec_dir):
    baseline = run(spec_dir, clients)
    assert baseline.in_sync
    declare(spec_dir, "{TABLE: products-v2}")

    plan = run(spec_dir, clients)
    assert [(d.resource, d.status, d.changes) for d in plan.drift] == [
        (CONFIG, DriftStatus.MODIFIED, (FieldChange("environment.TABLE", None, Sensitive("products-v2")),))
    ]
    (action,) = plan.plan.actions
    assert action.operation == "lambda.UpdateFunctionConfiguration + lambda.Wait:FunctionUpdated"
    # The value is in the call, as a Sensitive: apply reveals it to AWS, everything else shows its digest.
    assert reveal(action.calls[0].params) == {"FunctionName": FN, "Environment": {"Variables": {"TABLE": "products-v2"}}}
    assert action.as_dict()["calls"][0]["params"]["Environment"] == {"Variables": {"TABLE": Sensitive("products-v2").digest}}
    assert action.reason == "environment of $LATEST: TABLE: (added)"
    # A declared environment is compared with $LATEST's: one ListVersionsByFunction, nothing more.
    with_environment = {**baseline.api_calls, "lambda.ListVersionsByFunction": baseline.api_calls.get("lambda.ListVersionsByFunction", 0) + 1}
    assert plan.api_calls == with_environment

    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert write_calls(applied.api_calls) == {"lambda.UpdateFunctionConfiguration": 1}
    assert applied.api_calls["lambda.GetFunctionConfiguration"] == 1  # the wait: a read
    assert live_environment(clients) == {"TABLE": "products-v2"}

    after = run(spec_dir, clients)
    assert after.in_sync, [d.as_dict() for d in after.drift]
    assert write_calls(after.api_calls) == {}
    assert after.api_calls == with_environment


def test_console_change_of_a_variable_is_drift_and_healed(converged, clients, spec_dir):
    declare(spec_dir, "{TABLE: products-v2, PAGE_SIZE: 50}")
    assert not run(spec_dir, clients, apply=True).failed
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"TABLE": "products-v1", "PAGE_SIZE": "50", "DEBUG": "1"}})

    plan = run(spec_dir, clients)
    drift = drift_of(plan, CONFIG)
    assert drift.status is DriftStatus.MODIFIED
    assert drift.changes == (
        FieldChange("environment.DEBUG", Sensitive("1"), None),
        FieldChange("environment.TABLE", Sensitive("products-v1"), Sensitive("products-v2")),
    )
    assert plan.plan.actions[0].reason == ("environment of $LATEST: DEBUG: (removed), TABLE: (changed); removes DEBUG, set in AWS but not in git")

    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed
    assert write_calls(applied.api_calls) == {"lambda.UpdateFunctionConfiguration": 1}
    assert live_environment(clients) == {"TABLE": "products-v2", "PAGE_SIZE": "50"}
    assert run(spec_dir, clients).in_sync


def test_empty_environment_is_managed_and_clears_variables(converged, clients, spec_dir):
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"LEFTOVER": "x"}})
    declare(spec_dir, "{}")
    plan = run(spec_dir, clients)
    assert drift_of(plan, CONFIG).changes == (FieldChange("environment.LEFTOVER", Sensitive("x"), None),)
    assert plan.plan.actions[0].reason == "environment of $LATEST: LEFTOVER: (removed); removes LEFTOVER, set in AWS but not in git"
    applied = run(spec_dir, clients, apply=True)
    assert write_calls(applied.api_calls) == {"lambda.UpdateFunctionConfiguration": 1}
    assert live_environment(clients) == {}
    assert run(spec_dir, clients).in_sync


def test_without_environment_in_the_spec_variables_are_not_managed(converged, clients, spec_dir):
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"SET_BY": "console"}})
    result = run(spec_dir, clients, apply=True)
    assert result.in_sync and not result.warnings
    assert write_calls(result.api_calls) == {}
    assert live_environment(clients) == {"SET_BY": "console"}


def test_numbers_and_booleans_are_sent_as_text(converged, clients, spec_dir):
    declare(spec_dir, "{PAGE_SIZE: 50, DEBUG: true, RATIO: 0.5}")
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed
    assert live_environment(clients) == {"PAGE_SIZE": "50", "DEBUG": "true", "RATIO": "0.5"}
    assert run(spec_dir, clients).in_sync


def test_iam_policy_names_the_configuration_calls():
    from controller.engine.iam import policy_document

    actions = policy_document()["Statement"][0]["Action"]
    assert {"lambda:UpdateFunctionConfiguration", "lambda:GetFunctionConfiguration"} <= set(actions)


# ------------------------------------------------------------------ published versions keep theirs


WARNING = "getProductsV2: alias prod serves version 2, whose environment differs from the declared one (TABLE: (added))"


def test_alias_on_a_published_version_with_another_environment_is_a_warning_not_drift(converged, clients, spec_dir):
    declare(spec_dir, "{TABLE: products-v2}")
    applied = run(spec_dir, clients, apply=True)
    assert applied.warnings == [WARNING]

    result = run(spec_dir, clients)
    assert result.in_sync and not result.plan.actions  # apply cannot change version 2
    assert result.warnings == [WARNING]
    assert as_dict(result, mode="plan")["warnings"] == [WARNING]
    assert json.loads(render(result, fmt="json", mode="plan"))["warnings"] == [WARNING]
    text = render(result, fmt="text", mode="plan")
    assert "Warnings (1; not drift, apply does not change them):" in text and f"  ! {WARNING}" in text
    assert WARNING in render(result, fmt="markdown", mode="plan")
    # dev serves $LATEST, which has the declared environment now: nothing to say about it.
    assert "alias dev" not in text


def test_no_warning_when_the_published_version_has_the_declared_environment(converged, clients, spec_dir):
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"TABLE": "products-v2"}})
    published = clients.lambda_.publish_version(FunctionName=FN)["Version"]
    declare(spec_dir, "{TABLE: products-v2}", prod=published)
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed and not applied.warnings
    assert write_calls(applied.api_calls) == {"lambda.UpdateAlias": 1}
    assert as_dict(run(spec_dir, clients), mode="plan")["warnings"] == []


def test_aliases_sharing_a_version_are_named_in_one_warning(converged, clients, spec_dir):
    path = declare(spec_dir, "{TABLE: products-v2}")
    path.write_text(
        path.read_text().replace(
            'dev: {version: $LATEST, description: "v2 development"}',
            'dev: {version: $LATEST, description: "v2 development"}\n      canary: {version: 1, routing: {"2": 0.1}}',
        )
    )
    result = run(spec_dir, clients)
    assert result.warnings == [
        "getProductsV2: alias canary serves version 1, whose environment differs from the declared one (TABLE: (added))",
        "getProductsV2: aliases prod, canary serve version 2, whose environment differs from the declared one (TABLE: (added))",
    ]


# ------------------------------------------------------------------ sha256 pins


def test_sha256_pin_publishes_after_the_environment_update(converged, clients, spec_dir):
    sha = latest_sha(clients)
    declare(spec_dir, "{TABLE: products-v2}", prod=f"sha256:{sha}")

    plan = run(spec_dir, clients)
    ops = [(a.operation, a.resource) for a in plan.plan.actions]
    assert ops == [
        ("lambda.UpdateFunctionConfiguration + lambda.Wait:FunctionUpdated", CONFIG),
        ("lambda.PublishVersion", f"lambda_version/{FN}/sha256:{sha}"),
        ("lambda.UpdateAlias", f"lambda_alias/{FN}/prod"),
    ]
    assert plan.plan.actions[1].requires == (CONFIG,)
    assert plan.plan.actions[1].reason == (f"$LATEST of {FN} has {sha}; no published version has it with the declared environment")
    assert not plan.warnings  # prod will serve a version with the declared environment

    applied = run(spec_dir, clients, apply=True)
    assert [(o.action.resource, o.status) for o in applied.outcomes] == [
        (CONFIG, OutcomeStatus.SUCCEEDED),
        (f"lambda_version/{FN}/sha256:{sha}", OutcomeStatus.SUCCEEDED),
        (f"lambda_alias/{FN}/prod", OutcomeStatus.SUCCEEDED),
    ]
    assert write_calls(applied.api_calls) == {
        "lambda.UpdateFunctionConfiguration": 1,
        "lambda.PublishVersion": 1,
        "lambda.UpdateAlias": 1,
    }
    version = clients.lambda_.get_alias(FunctionName=FN, Name="prod")["FunctionVersion"]
    assert version == "3"
    assert live_environment(clients, version) == {"TABLE": "products-v2"}

    after = run(spec_dir, clients)
    assert after.in_sync and not after.warnings
    assert write_calls(after.api_calls) == {}


def test_sha256_pin_skips_a_published_version_with_the_same_code_and_another_environment(converged, clients, spec_dir):
    sha = latest_sha(clients)
    old = clients.lambda_.publish_version(FunctionName=FN)["Version"]  # $LATEST's code, no environment
    declare(spec_dir, "{TABLE: products-v2}", prod=f"sha256:{sha}")

    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert [o.action.operation.split(" + ")[0] for o in applied.outcomes] == [
        "lambda.UpdateFunctionConfiguration",
        "lambda.PublishVersion",
        "lambda.UpdateAlias",
    ]
    version = clients.lambda_.get_alias(FunctionName=FN, Name="prod")["FunctionVersion"]
    assert int(version) > int(old)
    assert live_environment(clients, version) == {"TABLE": "products-v2"}
    assert run(spec_dir, clients).in_sync


def test_sha256_pin_with_latest_already_configured_publishes_without_waiting_for_a_config_action(converged, clients, spec_dir):
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"TABLE": "products-v2"}})
    sha = latest_sha(clients)
    declare(spec_dir, "{TABLE: products-v2}", prod=f"sha256:{sha}")
    plan = run(spec_dir, clients)
    assert [(a.operation, a.requires) for a in plan.plan.actions] == [
        ("lambda.PublishVersion", ()),
        ("lambda.UpdateAlias", (f"lambda_version/{FN}/sha256:{sha}",)),
    ]


def test_sha256_pin_of_old_code_with_another_environment_serves_it_with_a_warning(converged, clients, spec_dir):
    versions = clients.lambda_.list_versions_by_function(FunctionName=FN)["Versions"]
    sha2 = next(v["CodeSha256"] for v in versions if v["Version"] == "2")
    declare(spec_dir, "{TABLE: products-v2}", prod=f"sha256:{sha2}")
    result = run(spec_dir, clients)
    assert not result.problems
    assert [d.resource for d in result.drift] == [CONFIG]  # prod already serves version 2
    assert result.warnings == [
        f"getProductsV2: alias prod asks for sha256:{sha2}, which only version 2 has, and its environment differs "
        "from the declared one (TABLE: (added)); $LATEST has other code, so no version with both can be published"
    ]


# ------------------------------------------------------------------ spec validation


@pytest.mark.parametrize(
    ("environment", "field", "message"),
    [
        (
            "{bad-name: x}",
            "functions.getProductsV2.environment.bad-name",
            "environment variable name 'bad-name' is not allowed: a letter, then letters, digits or _",
        ),
        ("{9LIVES: x}", "functions.getProductsV2.environment.9LIVES", "environment variable name '9LIVES' is not allowed: a letter, then letters, digits or _"),
        ("{AWS_REGION: eu-west-1}", "functions.getProductsV2.environment.AWS_REGION", "environment variable 'AWS_REGION' is reserved by Lambda"),
        (
            "{AWS_LAMBDA_FUNCTION_NAME: x}",
            "functions.getProductsV2.environment.AWS_LAMBDA_FUNCTION_NAME",
            "environment variable 'AWS_LAMBDA_FUNCTION_NAME' is reserved by Lambda",
        ),
        ("{_HANDLER: x}", "functions.getProductsV2.environment._HANDLER", "environment variable '_HANDLER' is reserved by Lambda"),
        (
            "{BLOB: " + "x" * 4093 + "}",
            "functions.getProductsV2.environment",
            "environment variables total 4,097 bytes (names and values); Lambda allows 4,096",
        ),
        ("[TABLE]", "functions.getProductsV2.environment", "Input should be a valid dictionary"),
    ],
)
def test_bad_environment_is_a_spec_problem_at_its_line(spec_dir, environment, field, message):
    path = declare(spec_dir, environment)
    with pytest.raises(SpecInvalid) as info:
        load_spec(spec_dir)
    assert [str(p) for p in info.value.problems] == [f"{path}:10: {field}: {message}"]


def test_variable_problem_points_at_its_own_line(spec_dir):
    path = declare(spec_dir, "\n      TABLE: products-v2\n      AWS_SESSION_TOKEN: x")
    with pytest.raises(SpecInvalid) as info:
        load_spec(spec_dir)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:12: functions.getProductsV2.environment.AWS_SESSION_TOKEN: environment variable 'AWS_SESSION_TOKEN' is reserved by Lambda"
    ]


def test_settable_names_and_exactly_4_kb_are_accepted(spec_dir):
    declare(spec_dir, "{TZ: Europe/Paris, AWS_LAMBDA_EXEC_WRAPPER: /opt/wrapper, B: " + "x" * 4046 + "}")
    spec = load_spec(spec_dir)
    environment = spec.functions[FN].spec.environment
    assert sum(len(k) + len(v) for k, v in environment.items()) == 4096
    assert spec.functions["getProducts"].spec.environment is None


# ------------------------------------------------------------------ the wait (botocore Stubber)


def _config_action(function: str = FN) -> Any:
    kind = LambdaFunctionConfig()
    desired = Resource(kind.name, function, {"environment": {"TABLE": Sensitive("products-v2")}}, context={"function": function})
    live = Resource(kind.name, function, {"environment": {}}, context={"function": function})
    (action,) = kind.converge(desired, live, (FieldChange("environment.TABLE", None, Sensitive("products-v2")),), [])
    return action


def _publish_action(function: str = FN) -> Any:
    sha = "A" * 43 + "="
    desired = Resource(
        "lambda_version",
        f"{function}/sha256:{sha}",
        {"code_sha256": sha},
        context={"function": function, "why": "test", "requires": (f"lambda_function_config/{function}",)},
    )
    (action,) = LambdaVersion().converge(desired, None, (), [])
    return action


@pytest.fixture
def stubbed() -> Any:
    """AwsClients whose lambda client answers from a Stubber (no emulator, no network)."""
    clients = AwsClients(boto3.session.Session(region_name="us-east-1"), max_attempts=1)
    stubber = Stubber(clients.lambda_)
    with stubber:
        yield clients, stubber
    stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waiter's sleeps, recorded instead of slept."""
    import botocore.waiter

    slept: list[float] = []
    monkeypatch.setattr(botocore.waiter.time, "sleep", slept.append)
    return slept


def _status(status: str, reason: str = "") -> dict[str, Any]:
    answer: dict[str, Any] = {"FunctionName": FN, "LastUpdateStatus": status}
    if reason:
        answer["LastUpdateStatusReason"] = reason
    return answer


def test_wait_polls_get_function_configuration_until_successful(stubbed, sleeps):
    clients, stubber = stubbed
    update = {"FunctionName": FN, "Environment": {"Variables": {"TABLE": "products-v2"}}}
    stubber.add_response("update_function_configuration", {**_status("InProgress")}, update)
    for status in ("InProgress", "InProgress", "Successful"):
        stubber.add_response("get_function_configuration", _status(status), {"FunctionName": FN})
    (outcome,) = apply_actions(clients, [_config_action()])
    assert outcome.status is OutcomeStatus.SUCCEEDED, outcome.error
    assert sleeps == [1, 1]  # WaiterConfig Delay 1 between polls
    calls = clients.counter.snapshot()
    assert calls == {"lambda.UpdateFunctionConfiguration": 1, "lambda.GetFunctionConfiguration": 3}
    assert write_calls(calls) == {"lambda.UpdateFunctionConfiguration": 1}


def test_failed_update_is_one_error_line_and_the_publish_waiting_for_it_is_skipped(stubbed, sleeps):
    clients, stubber = stubbed
    stubber.add_response("update_function_configuration", _status("InProgress"))
    stubber.add_response("get_function_configuration", _status("InProgress"))
    stubber.add_response(
        "get_function_configuration",
        _status("Failed", "Lambda was unable to configure access to your environment variables because the KMS key is disabled.\nRetry."),
    )
    config, publish = apply_actions(clients, [_config_action(), _publish_action()])
    assert config.status is OutcomeStatus.FAILED
    assert config.error == (
        "function getProductsV2: configuration update did not finish: Failed: Lambda was unable to configure access to "
        "your environment variables because the KMS key is disabled. Retry. (after lambda.UpdateFunctionConfiguration succeeded)"
    )
    assert "\n" not in config.error
    assert publish.status is OutcomeStatus.SKIPPED
    assert publish.error.startswith(f"skipped: {CONFIG} did not converge")
    assert "lambda.PublishVersion" not in clients.counter.snapshot()


def test_wait_that_runs_out_is_one_error_line(stubbed, sleeps, monkeypatch):
    clients, stubber = stubbed
    monkeypatch.setattr(apply_module, "WAITER_CONFIG", {"Delay": 1, "MaxAttempts": 2})
    stubber.add_response("update_function_configuration", _status("InProgress"))
    stubber.add_response("get_function_configuration", _status("InProgress"))
    stubber.add_response("get_function_configuration", _status("InProgress"))
    (outcome,) = apply_actions(clients, [_config_action()])
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.error == (
        "function getProductsV2: configuration update did not finish: still InProgress after 2 s (after lambda.UpdateFunctionConfiguration succeeded)"
    )


def test_a_wait_is_not_a_write():
    wait = Call("lambda", "wait:function_updated", {"FunctionName": FN})
    assert wait.operation == "lambda.Wait:FunctionUpdated"
    assert not is_write(wait.operation)
    assert is_write("lambda.UpdateFunctionConfiguration")
    import botocore.session

    assert (
        "function_updated"
        in botocore.session.get_session().create_client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x").waiter_names
    )
