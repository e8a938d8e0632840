"""Console-style drift made by a second client (the real aws CLI) is reported and healed.

End to end over moto's server on 127.0.0.1: the estate is seeded, ``pointsman apply``
(the CLI, in a subprocess) converges it, then the aws CLI changes things the way someone
in the console would. ``pointsman plan`` must report exactly that drift without writing,
and ``pointsman apply`` must heal it with exactly the writes the drift needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from controller.aws.clients import AwsClients, write_calls
from controller.demo.estate import seed
from tests.conftest import EXAMPLE_SPEC, REGION, ROOT

pytestmark = pytest.mark.server

AWS_CLI = Path(sys.executable).parent / "aws"
TIMEOUT = 120


def _reset_moto(endpoint: str) -> None:
    # ThreadedMotoServer serves the process-wide moto backends: start and end each test clean.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _honour_remove_permission_qualifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's RemovePermission honour ``Qualifier`` the way AWS does (this test only).

    AWS keeps one resource policy per alias, so ``remove-permission --qualifier prod`` removes
    the statement from prod's policy only. moto 5.2 keeps one policy per function (statements
    tagged by Resource) and its RemovePermission ignores the qualifier: it removes the *first*
    statement with that Sid anywhere on the function. With Pointsman's former Sid
    ``pointsman-<api id>`` (the same on the prod and dev aliases) that was dev's statement;
    since 534ce81 the Sid also names the alias, but the test should not depend on that. The
    server runs in this process, so patching the response handler fixes the emulator only.
    """
    from moto.awslambda.exceptions import UnknownPolicyException
    from moto.awslambda.responses import LambdaResponse

    original = LambdaResponse.remove_permission

    def remove_permission(self: Any) -> Any:
        qualifier = self.querystring.get("Qualifier", [None])[0]
        if not qualifier:
            return original(self)
        function_name = unquote(self.path.split("/")[-3])
        statement_id = self.path.split("/")[-1].split("?")[0]
        policy = self.backend.get_function(function_name).policy
        for statement in policy.statements:
            if statement.get("Sid") == statement_id and str(statement.get("Resource", "")).endswith(f":{qualifier}"):
                policy.statements.remove(statement)
                policy.revision = str(uuid.uuid4())
                return 204, {"status": 204}, "{}"
        raise UnknownPolicyException()

    monkeypatch.setattr(LambdaResponse, "remove_permission", remove_permission)


def pointsman_statements(policy_response: dict[str, Any], api_id: str, alias_arn_suffix: str) -> list[dict[str, Any]]:
    """Statements Pointsman added for REST API ``api_id`` (Sid ``pointsman-<api id>...``, see
    lambda_permission.py) on the resource ending with ``alias_arn_suffix`` (``:getreport:prod``)."""
    policy = json.loads(policy_response["Policy"])
    return [
        s for s in policy["Statement"]
        if str(s.get("Sid", "")).startswith(f"pointsman-{api_id}") and str(s.get("Resource", "")).endswith(alias_arn_suffix)
    ]  # fmt: skip


class Estate:
    """The seeded example estate behind a moto server, driven through two CLIs."""

    def __init__(self, endpoint: str, spec_dir: Path, env: dict[str, str], seeded: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.spec_dir = spec_dir
        self.env = env
        self.seeded = seeded

    def api_id(self, name: str) -> str:
        return str(self.seeded["apis"][name]["id"])

    def pointsman(self, *args: str, fmt_json: bool = True) -> tuple[int, dict[str, Any], subprocess.CompletedProcess[str]]:
        command, *rest = args
        argv = [sys.executable, "-m", "controller.cli", command, "--spec", str(self.spec_dir), *rest]
        if fmt_json:
            argv += ["--format", "json"]
        proc = subprocess.run(argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
        report: dict[str, Any] = {}
        if fmt_json:
            try:
                report = json.loads(proc.stdout)
            except json.JSONDecodeError:
                pytest.fail(f"pointsman {' '.join(args)} printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.returncode, report, proc

    def aws(self, *args: str, check: bool = True) -> Any:
        argv = [str(AWS_CLI), *args, "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json"]
        proc = subprocess.run(argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
        if check:
            assert proc.returncode == 0, f"aws {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            return json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc


@pytest.fixture
def estate(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Estate]:
    """Seeded estate on the moto server, converged by ``pointsman apply`` (the CLI)."""
    assert AWS_CLI.exists(), f"aws CLI not found at {AWS_CLI}"
    _reset_moto(moto_server)
    _honour_remove_permission_qualifier(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    seeded = seed(AwsClients())

    spec_dir = tmp_path / "spec"
    shutil.copytree(EXAMPLE_SPEC, spec_dir)
    env = dict(os.environ)  # after the autouse aws_env fixture: fake creds, region, no profile
    for name in list(env):
        if name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
            del env[name]
    env.update(
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(ROOT),
    )
    est = Estate(moto_server, spec_dir, env, seeded)

    rc, report, proc = est.pointsman("apply")
    assert rc == 0, f"initial apply exited {rc}:\n{proc.stdout}\n{proc.stderr}"
    assert report["converged"] is True
    rc, report, proc = est.pointsman("plan")
    assert rc == 0 and report["in_sync"] is True, f"not in sync after the initial apply:\n{proc.stdout}\n{proc.stderr}"
    try:
        yield est
    finally:
        _reset_moto(moto_server)


def test_console_drift_is_reported_then_healed(estate: Estate) -> None:
    v1 = estate.api_id("products-v1")
    getreport_api = estate.api_id("getreport-api")

    # The statement Pointsman added on getreport:prod for getreport-api, as a console user
    # would find it in the alias's policy.
    policy = estate.aws("lambda", "get-policy", "--function-name", "getreport", "--qualifier", "prod")
    ours = pointsman_statements(policy, getreport_api, ":getreport:prod")
    assert len(ours) == 1, json.dumps(json.loads(policy["Policy"]), indent=1)
    sid = ours[0]["Sid"]

    # -- console-style changes by a second client -------------------------------------
    alias = estate.aws("lambda", "update-alias", "--function-name", "getProducts", "--name", "prod", "--function-version", "1")
    assert alias["FunctionVersion"] == "1"
    stage = estate.aws(
        "apigateway", "update-stage", "--rest-api-id", v1, "--stage-name", "prod",
        "--patch-operations", "op=replace,path=/variables/lambdaAlias,value=dev",
    )  # fmt: skip
    assert stage["variables"]["lambdaAlias"] == "dev"
    estate.aws("apigateway", "delete-base-path-mapping", "--domain-name", "myapi.com", "--base-path", "v2")
    estate.aws(
        "lambda", "remove-permission", "--function-name", "getreport", "--qualifier", "prod",
        "--statement-id", sid,
    )  # fmt: skip
    # Only prod's statement went (as on AWS); dev's for the same API stays.
    policy = estate.aws("lambda", "get-policy", "--function-name", "getreport", "--qualifier", "prod")
    assert pointsman_statements(policy, getreport_api, ":getreport:prod") == [], policy
    policy = estate.aws("lambda", "get-policy", "--function-name", "getreport", "--qualifier", "dev")
    assert len(pointsman_statements(policy, getreport_api, ":getreport:dev")) == 1, policy

    # -- plan reports exactly that drift, and writes nothing --------------------------
    rc, plan, proc = estate.pointsman("plan")
    assert rc == 2, f"plan exited {rc}, wanted 2 (drift):\n{proc.stdout}\n{proc.stderr}"
    assert plan["in_sync"] is False
    assert plan["problems"] == []
    drift = {d["resource"]: d for d in plan["drift"]}
    assert {rid: d["status"] for rid, d in drift.items()} == {
        "lambda_alias/getProducts/prod": "modified",
        "rest_stage/products-v1/prod": "modified",
        "base_path_mapping/myapi.com/v2": "missing",
        "lambda_permission/getreport/prod/getreport-api": "missing",
    }, json.dumps(plan["drift"], indent=2)
    assert drift["lambda_alias/getProducts/prod"]["changes"] == [{"field": "version", "live": "1", "desired": "3"}]
    assert drift["rest_stage/products-v1/prod"]["changes"] == [{"field": "variables.lambdaAlias", "live": "dev", "desired": "prod"}]
    assert write_calls(plan["api_calls"]) == {}, plan["api_calls"]
    assert plan["write_calls"] == 0
    assert plan["api_calls"], "plan made no AWS calls at all"

    # -- apply heals it with exactly the writes the drift needs -----------------------
    rc, applied, proc = estate.pointsman("apply")
    assert rc == 0, f"apply exited {rc}:\n{proc.stdout}\n{proc.stderr}"
    assert applied["converged"] is True
    assert all(o["status"] == "succeeded" for o in applied["outcomes"]), applied["outcomes"]
    assert write_calls(applied["api_calls"]) == {
        "lambda.UpdateAlias": 1,
        "apigateway.UpdateStage": 1,
        "apigateway.CreateBasePathMapping": 1,
        "lambda.AddPermission": 1,
    }, applied["api_calls"]

    rc, again, proc = estate.pointsman("plan")
    assert rc == 0, f"plan after apply exited {rc}:\n{proc.stdout}\n{proc.stderr}"
    assert again["in_sync"] is True and again["drift"] == []
    assert write_calls(again["api_calls"]) == {}

    # -- the second client sees the healed estate too ---------------------------------
    alias = estate.aws("lambda", "get-alias", "--function-name", "getProducts", "--name", "prod")
    assert alias["FunctionVersion"] == "3"
    stage = estate.aws("apigateway", "get-stage", "--rest-api-id", v1, "--stage-name", "prod")
    assert stage["variables"]["lambdaAlias"] == "prod"
    mappings = estate.aws("apigateway", "get-base-path-mappings", "--domain-name", "myapi.com")
    by_path = {m.get("basePath"): m for m in mappings.get("items", [])}
    assert "v2" in by_path, mappings
    assert by_path["v2"]["restApiId"] == estate.api_id("products-v2")
    assert by_path["v2"]["stage"] == "prod"
    policy = estate.aws("lambda", "get-policy", "--function-name", "getreport", "--qualifier", "prod")
    assert any(str(s.get("Resource", "")).endswith(":getreport:prod") for s in json.loads(policy["Policy"])["Statement"]), policy
    assert [s["Sid"] for s in pointsman_statements(policy, getreport_api, ":getreport:prod")] == [sid], policy


def test_extra_alias_is_reported_and_only_pruned_on_request(estate: Estate) -> None:
    created = estate.aws("lambda", "create-alias", "--function-name", "getreport", "--name", "experiment", "--function-version", "2")
    assert created["FunctionVersion"] == "2"

    rc, plan, proc = estate.pointsman("plan")
    assert rc == 2, f"plan exited {rc}, wanted 2 (drift):\n{proc.stdout}\n{proc.stderr}"
    assert [(d["resource"], d["status"]) for d in plan["drift"]] == [("lambda_alias/getreport/experiment", "extra")]
    assert write_calls(plan["api_calls"]) == {}

    # Without --prune: reported, left alone.
    rc, applied, proc = estate.pointsman("apply")
    assert rc == 0, f"apply exited {rc}:\n{proc.stdout}\n{proc.stderr}"
    assert applied["not_pruned"] == ["lambda_alias/getreport/experiment"]
    assert applied["actions"] == []
    assert write_calls(applied["api_calls"]) == {}, applied["api_calls"]
    still = estate.aws("lambda", "get-alias", "--function-name", "getreport", "--name", "experiment")
    assert still["FunctionVersion"] == "2"

    # With --prune: deleted, with exactly one write.
    rc, pruned, proc = estate.pointsman("apply", "--prune")
    assert rc == 0, f"apply --prune exited {rc}:\n{proc.stdout}\n{proc.stderr}"
    assert pruned["not_pruned"] == []
    assert write_calls(pruned["api_calls"]) == {"lambda.DeleteAlias": 1}, pruned["api_calls"]
    gone = estate.aws("lambda", "get-alias", "--function-name", "getreport", "--name", "experiment", check=False)
    assert gone.returncode != 0 and "ResourceNotFoundException" in gone.stderr, (gone.returncode, gone.stdout, gone.stderr)

    rc, again, proc = estate.pointsman("plan")
    assert rc == 0, f"plan after prune exited {rc}:\n{proc.stdout}\n{proc.stderr}"
    assert again["in_sync"] is True and again["drift"] == []
