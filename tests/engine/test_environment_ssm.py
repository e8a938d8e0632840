"""Environment values from SSM Parameter Store, masked output, ``plan --show-values``, the IAM policy.

Against moto in-process (the `converged` fixture: the example estate after a first apply), and
botocore's Stubber where an AWS error message quoting the values sent has to be shown.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.stub import Stubber

from controller.aws.clients import AwsClients, write_calls
from controller.engine.apply import apply_actions
from controller.engine.iam import policy_document
from controller.kinds.lambda_function_config import LambdaFunctionConfig
from controller.model import FieldChange, OutcomeStatus, Resource
from controller.sensitive import Sensitive
from controller.spec import SpecInvalid, json_schema, load_spec
from tests.conftest import cli, run

FN = "getProductsV2"
CONFIG = f"lambda_function_config/{FN}"
ANCHOR = "  getProductsV2:          # backs products-v2: prod is version 2.2\n"


def declare(spec_dir: Path, environment: str) -> Path:
    path = spec_dir / "products.yaml"
    text = path.read_text()
    assert ANCHOR in text
    path.write_text(text.replace(ANCHOR, f"  getProductsV2:\n    environment: {environment}\n"))
    return path


def live_environment(clients: AwsClients) -> dict[str, str]:
    config = clients.lambda_.get_function_configuration(FunctionName=FN)
    return dict((config.get("Environment") or {}).get("Variables") or {})


def put(clients: AwsClients, name: str, value: str, kind: str = "SecureString") -> None:
    clients.client("ssm").put_parameter(Name=name, Value=value, Type=kind)


# ------------------------------------------------------------------ resolving


def test_a_securestring_is_read_decrypted_set_and_then_in_sync(converged, clients, spec_dir):
    put(clients, "/shop/prod/db-password", "s3cr3t-from-ssm")
    put(clients, "/shop/prod/region", "eu-west-1", "String")
    declare(spec_dir, "{DB_PASSWORD: {ssm: /shop/prod/db-password}, HOME_REGION: {ssm: /shop/prod/region}, TABLE: t}")
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert applied.api_calls["ssm.GetParameters"] == 1  # both names in one call
    assert write_calls(applied.api_calls) == {"lambda.UpdateFunctionConfiguration": 1}
    assert live_environment(clients) == {"DB_PASSWORD": "s3cr3t-from-ssm", "HOME_REGION": "eu-west-1", "TABLE": "t"}
    after = run(spec_dir, clients)
    assert after.in_sync and write_calls(after.api_calls) == {}

    # The parameter changes in SSM: drift on that variable alone, healed by the next apply.
    clients.client("ssm").put_parameter(Name="/shop/prod/db-password", Value="rotated-s3cr3t", Type="SecureString", Overwrite=True)
    rotated = run(spec_dir, clients)
    assert [c.field for d in rotated.drift for c in d.changes] == ["environment.DB_PASSWORD"]
    assert not run(spec_dir, clients, apply=True).failed
    assert live_environment(clients)["DB_PASSWORD"] == "rotated-s3cr3t"


def test_parameters_are_read_ten_a_call(converged, clients, spec_dir):
    for i in range(12):
        put(clients, f"/shop/p{i:02}", f"value-{i}", "String")
    declare(spec_dir, "{" + ", ".join(f"V{i:02}: {{ssm: /shop/p{i:02}}}" for i in range(12)) + "}")
    result = run(spec_dir, clients, apply=True)
    assert not result.failed
    assert result.api_calls["ssm.GetParameters"] == 2
    assert live_environment(clients) == {f"V{i:02}": f"value-{i}" for i in range(12)}


def test_a_missing_parameter_is_one_problem_at_its_line(converged, clients, spec_dir, capsys):
    put(clients, "/shop/prod/db-password", "s3cr3t-from-ssm")
    path = declare(spec_dir, "\n      DB_PASSWORD: {ssm: /shop/prod/db-password}\n      API_KEY: {ssm: /shop/prod/api-key}")
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir))
    assert code == 1
    assert f"  error: {path}:12: functions.getProductsV2.environment.API_KEY: SSM parameter /shop/prod/api-key does not exist" in out
    assert "Cannot plan: 1 problem; nothing was applied." in out
    code, out, err = cli(capsys, "apply", "--spec", str(spec_dir))
    assert code == 1 and "/shop/prod/api-key does not exist" in out
    assert live_environment(clients) == {}  # nothing half-applied


def test_with_the_values_from_ssm_over_4_kb_is_a_problem(converged, clients, spec_dir):
    put(clients, "/big", "x" * 4000, "String")
    declare(spec_dir, "{A: {ssm: /big}, B: " + "y" * 200 + "}")
    result = run(spec_dir, clients)
    assert [p.message for p in result.problems] == [
        "functions.getProductsV2.environment: with the values from SSM, the variables total 4,202 bytes; Lambda allows 4,096"
    ]


# ------------------------------------------------------------------ never printed, unless asked


def test_show_values_prints_values_only_when_asked(converged, clients, spec_dir, capsys):
    put(clients, "/shop/prod/db-password", "s3cr3t-from-ssm")
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"DEBUG": "hunter2-debug"}})
    declare(spec_dir, "{DB_PASSWORD: {ssm: /shop/prod/db-password}}")

    code, out, _ = cli(capsys, "plan", "--spec", str(spec_dir))
    assert code == 2
    assert "s3cr3t-from-ssm" not in out and "hunter2-debug" not in out
    assert f"environment.DB_PASSWORD: (none) -> {Sensitive('s3cr3t-from-ssm')}" in out
    assert f"environment.DEBUG: {Sensitive('hunter2-debug')} -> (none)" in out
    assert "DB_PASSWORD: (added), DEBUG: (removed); removes DEBUG, set in AWS but not in git" in out

    code, out, _ = cli(capsys, "plan", "--spec", str(spec_dir), "--show-values")
    assert code == 2
    assert 'environment.DB_PASSWORD: (none) -> "s3cr3t-from-ssm"' in out
    assert 'environment.DEBUG: "hunter2-debug" -> (none)' in out

    for fmt in ("json", "markdown"):
        code, out, err = cli(capsys, "plan", "--spec", str(spec_dir), "--show-values", "--format", fmt)
        assert code == 1 and out == ""
        assert err.strip() == f"error: --show-values is for the text plan a person reads, not --format {fmt}"
    with pytest.raises(SystemExit) as exited:  # apply has no such flag
        cli(capsys, "apply", "--spec", str(spec_dir), "--show-values")
    assert exited.value.code == 2 and "unrecognized arguments: --show-values" in capsys.readouterr().err


def test_an_aws_error_quoting_the_values_is_masked(monkeypatch):
    # Lambda's InvalidParameterValueException for a too large environment quotes what it was sent.
    # moto does not answer so: botocore's Stubber does.
    clients = AwsClients(boto3.session.Session(region_name="us-east-1"), max_attempts=1)
    kind = LambdaFunctionConfig()
    secret = Sensitive("s3cr3t-from-ssm")
    desired = Resource(kind.name, FN, {"environment": {"DB_PASSWORD": secret}}, context={"function": FN})
    (action,) = kind.converge(desired, None, (FieldChange("environment.DB_PASSWORD", None, secret),), [])
    with Stubber(clients.lambda_) as stubber:
        stubber.add_client_error(
            "update_function_configuration",
            "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the environment variables you have provided "
            'exceeded the 4KB limit. String measured: {"DB_PASSWORD":"s3cr3t-from-ssm"}',
            expected_params={"FunctionName": FN, "Environment": {"Variables": {"DB_PASSWORD": "s3cr3t-from-ssm"}}},
        )
        (outcome,) = apply_actions(clients, [action])
    assert outcome.status is OutcomeStatus.FAILED
    assert "s3cr3t-from-ssm" not in outcome.error
    assert f'String measured: {{"DB_PASSWORD":"{secret}"}}' in outcome.error


def test_a_sensitive_value_shows_its_digest_only():
    value = Sensitive("hunter2")
    assert str(value) == f"{value}" == value.digest and value.digest.startswith("sha256:") and len(value.digest) == 15
    assert repr(value) == f"Sensitive({value.digest})" and "hunter2" not in repr({"A": value})
    assert value == Sensitive("hunter2") and value != Sensitive("hunter3") and value != "hunter2"
    assert json.dumps({"A": value}, default=str) == json.dumps({"A": value.digest})
    with pytest.raises(TypeError):
        pickle.dumps(value)


# ------------------------------------------------------------------ spec, schema, IAM


def test_the_schema_and_validate_accept_a_reference(spec_dir, capsys):
    declare(spec_dir, "{DB_URL: {ssm: /shop/prod/db-url}, TABLE: t}")
    code, out, _ = cli(capsys, "validate", "--spec", str(spec_dir))
    assert code == 0, out
    schema = json_schema()
    good = {"functions": {"f": {"environment": {"DB_URL": {"ssm": "/shop/prod/db-url"}, "PORT": 80}}}}
    jsonschema.validate(good, schema)
    for bad in ({"ssm": "/has space"}, {"ssm": "/a", "extra": 1}, {}, {"ssm": "/a//b"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"functions": {"f": {"environment": {"A": bad}}}}, schema)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (
            "{ssm: 'has space'}",
            "functions.getProductsV2.environment.A.ssm",
            "SSM parameter name 'has space' is not allowed: letters, digits, . - _ in /-separated parts (at most 2,011 characters)",
        ),
        ("{ssm: /a, version: 2}", "functions.getProductsV2.environment.A.version", "unknown field 'version'"),
        ("{}", "functions.getProductsV2.environment.A.ssm", "required field 'ssm' is missing"),
        ("null", "functions.getProductsV2.environment.A", "Input should be a valid string"),
    ],
)
def test_a_bad_reference_is_a_spec_problem_at_its_line(spec_dir, value, field, message):
    path = declare(spec_dir, "{A: " + value + "}")
    with pytest.raises(SpecInvalid) as info:
        load_spec(spec_dir)
    assert [str(p) for p in info.value.problems] == [f"{path}:10: {field}: {message}"]


def _statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def test_iam_policy_names_the_parameters_only_when_the_spec_uses_them(spec_dir, capsys, tmp_path, monkeypatch):
    plain = _statements(policy_document(load_spec(spec_dir)))
    assert not any(a.startswith(("ssm:", "kms:")) for s in plain.values() for a in s["Action"])

    declare(spec_dir, "{DB_URL: {ssm: /shop/prod/db-url}, API_KEY: {ssm: shop-api-key}, TABLE: t}")
    code, out, _ = cli(capsys, "iam-policy", "--spec", str(spec_dir))
    assert code == 0
    statements = _statements(json.loads(out))
    assert statements["PointsmanSsmParameters"]["Action"] == ["ssm:GetParameters"]
    assert statements["PointsmanSsmParameters"]["Resource"] == [
        "arn:aws:ssm:*:*:parameter/shop/prod/db-url",
        "arn:aws:ssm:*:*:parameter/shop-api-key",
    ]
    decrypt = statements["PointsmanSsmSecureStringDecrypt"]
    assert decrypt["Action"] == ["kms:Decrypt"]
    assert decrypt["Condition"] == {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}}

    monkeypatch.chdir(tmp_path)  # no desired_state/ here: the policy without a spec
    code, out, _ = cli(capsys, "iam-policy")
    assert code == 0 and "ssm:" not in out
