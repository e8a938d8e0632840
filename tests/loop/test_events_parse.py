"""CloudTrail events (as EventBridge delivers them) -> the reads they make stale; nothing else ever raised.

The records are of the shapes AWS documents: the CloudTrail user guide's record contents, the
Lambda developer guide's GetFunction and DeleteFunction entries, the API Gateway developer
guide's GetResource entry, and console-made API Gateway records (``createStageInput``,
``createDeploymentInput``, an IAM Identity Center role session).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern

from controller.aws.clients import USER_AGENT
from controller.loop.events import (
    DETAIL_TYPE,
    EVENT_NAMES,
    EVENT_SOURCES,
    Ignored,
    MalformedEvent,
    Touch,
    event_pattern,
    handled_event_names,
    parse_event,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def record(source: str, name: str, parameters: Any, **more: Any) -> dict[str, Any]:
    """A CloudTrail record of the shape the CloudTrail user guide documents."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": ALICE, "accountId": ACCOUNT, "userName": "alice"},
        "eventTime": "2026-12-02T12:00:00Z",
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.5",
        "userAgent": "console.amazonaws.com",
        "requestParameters": parameters,
        "responseElements": None,
        "requestID": "9f1a2b3c-0000-4000-8000-000000000001",
        "eventID": "0b1c2d3e-0000-4000-8000-000000000002",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        **more,
    }


def envelope(detail: Any, source: str = "aws.lambda") -> str:
    """The EventBridge event an SQS target receives as its message body."""
    return json.dumps(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail",
            "source": source,
            "account": ACCOUNT,
            "time": "2026-12-02T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def touch(source: str, name: str, parameters: Any, **more: Any) -> Touch | Ignored:
    return parse_event(envelope(record(source, name, parameters, **more), f"aws.{source}"))


FN_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:getProducts"
API = "a1b2c3d4e5"
WHOLE_API = (("rest_apis",), ("stages", API), ("resources", API), ("deployments", API), ("routes", API))
RESOURCES = (("resources", API), ("routes", API))
F = "getProducts"

# (source, event name as CloudTrail records it, requestParameters, expected keys, expected target in the reason)
CASES: list[tuple[str, str, dict[str, Any], tuple[tuple[str, ...], ...], str]] = [
    (
        "lambda",
        "CreateAlias20150331",
        {"functionName": FN_ARN, "name": "canary", "functionVersion": "2"},
        (("function", F), ("policy", F, "canary")),
        f"{F}:canary",
    ),
    (
        "lambda",
        "UpdateAlias20150331",
        {"functionName": F, "name": "prod", "functionVersion": "1", "routingConfig": {"additionalVersionWeights": {"2": 0.1}}},
        (("function", F), ("policy", F, "prod")),
        f"{F}:prod",
    ),
    ("lambda", "DeleteAlias20150331", {"functionName": f"{ACCOUNT}:function:{F}", "name": "dev"}, (("function", F), ("policy", F, "dev")), f"{F}:dev"),
    (
        "lambda",
        "AddPermission20150331v2",
        {
            "functionName": F,
            "statementId": "apigateway-prod",
            "action": "lambda:InvokeFunction",
            "principal": "apigateway.amazonaws.com",
            "qualifier": "prod",
            "sourceArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API}/*/GET/products",
        },
        (("policy", F, "prod"),),
        f"{F}:prod",
    ),
    ("lambda", "RemovePermission20150331v2", {"functionName": f"{FN_ARN}:prod", "statementId": "apigateway-prod"}, (("policy", F, "prod"),), f"{F}:prod"),
    ("lambda", "PublishVersion20150331", {"functionName": F, "description": "build 42"}, (("versions", F),), F),
    ("lambda", "UpdateFunctionCode20150331v2", {"functionName": F, "s3Bucket": "builds", "s3Key": "f.zip", "publish": False}, (("versions", F),), F),
    ("lambda", "UpdateFunctionConfiguration20150331v2", {"functionName": F, "environment": {}}, (("versions", F),), F),
    (
        "lambda",
        "CreateFunction20150331",
        {"functionName": F, "runtime": "python3.12", "role": f"arn:aws:iam::{ACCOUNT}:role/r"},
        (("function", F), ("versions", F)),
        F,
    ),
    ("lambda", "DeleteFunction20150331", {"functionName": F}, (("function", F), ("versions", F)), F),
    (
        "apigateway",
        "CreateStage",
        {"restApiId": API, "createStageInput": {"stageName": "prod", "deploymentId": "6gejpe"}, "template": False},
        (("stages", API),),
        f"{API}/prod",
    ),
    (
        "apigateway",
        "UpdateStage",
        {"restApiId": API, "stageName": "prod", "template": False, "patchOperations": [{"op": "replace", "path": "/variables/lambdaAlias", "value": "prod"}]},
        (("stages", API),),
        f"{API}/prod",
    ),
    ("apigateway", "DeleteStage", {"restApiId": API, "stageName": "dev", "template": False}, (("stages", API),), f"{API}/dev"),
    (
        "apigateway",
        "CreateDeployment",
        {"restApiId": API, "createDeploymentInput": {"description": "", "stageName": "dev"}, "template": False},
        (("deployments", API), ("stages", API)),
        f"{API}/dev",
    ),
    ("apigateway", "UpdateDeployment", {"restApiId": API, "deploymentId": "6gejpe", "template": False}, (("deployments", API),), API),
    ("apigateway", "DeleteDeployment", {"restApiId": API, "deploymentId": "6gejpe", "template": False}, (("deployments", API),), API),
    *[
        ("apigateway", name, {"restApiId": API, "resourceId": "r1", "httpMethod": "GET", "template": False}, RESOURCES, API)
        for name in (
            "PutIntegration",
            "UpdateIntegration",
            "DeleteIntegration",
            "PutIntegrationResponse",
            "UpdateIntegrationResponse",
            "DeleteIntegrationResponse",
            "PutMethod",
            "UpdateMethod",
            "DeleteMethod",
            "PutMethodResponse",
            "UpdateMethodResponse",
            "DeleteMethodResponse",
            "UpdateResource",
            "DeleteResource",
        )
    ],
    ("apigateway", "CreateResource", {"restApiId": API, "parentId": "r0", "createResourceInput": {"pathPart": "users"}, "template": False}, RESOURCES, API),
    ("apigateway", "CreateRestApi", {"createRestApiInput": {"name": "products-v3", "cloneFrom": API}, "template": False}, (("rest_apis",),), "products-v3"),
    ("apigateway", "ImportRestApi", {"mode": "import", "failonwarnings": False}, (("rest_apis",),), "a new REST API"),
    ("apigateway", "PutRestApi", {"restApiId": API, "mode": "overwrite", "template": False}, WHOLE_API, API),
    ("apigateway", "UpdateRestApi", {"restApiId": API, "template": False}, WHOLE_API, API),
    ("apigateway", "DeleteRestApi", {"restApiId": API, "template": False}, WHOLE_API, API),
    (
        "apigateway",
        "CreateBasePathMapping",
        {"domainName": "myapi.com", "createBasePathMappingInput": {"basePath": "v1", "restApiId": API, "stage": "prod"}},
        (("mappings", "myapi.com"),),
        "myapi.com/v1",
    ),
    ("apigateway", "UpdateBasePathMapping", {"domainName": "myapi.com", "basePath": "v1", "template": False}, (("mappings", "myapi.com"),), "myapi.com/v1"),
    ("apigateway", "DeleteBasePathMapping", {"domainName": "dev.myapi.com", "basePath": "(none)"}, (("mappings", "dev.myapi.com"),), "dev.myapi.com/(none)"),
    (
        "apigateway",
        "CreateApiMapping",
        {"domainName": "myapi.com", "apiId": API, "stage": "prod", "apiMappingKey": "v2"},
        (("mappings", "myapi.com"),),
        "myapi.com/v2",
    ),
    (
        "apigateway",
        "UpdateApiMapping",
        {"domainName": "myapi.com", "apiMappingId": "m1", "apiId": API, "stage": "prod"},
        (("mappings", "myapi.com"),),
        "myapi.com",
    ),
    ("apigateway", "DeleteApiMapping", {"domainName": "myapi.com", "apiMappingId": "m1"}, (("mappings", "myapi.com"),), "myapi.com"),
    (
        "apigateway",
        "CreateDomainName",
        {"createDomainNameInput": {"domainName": "*.myapi.com", "regionalCertificateArn": "arn:c"}},
        (("mappings", "*.myapi.com"),),
        "*.myapi.com",
    ),
    ("apigateway", "DeleteDomainName", {"domainName": "myapi.com"}, (("mappings", "myapi.com"),), "myapi.com"),
]


@pytest.mark.parametrize(("source", "name", "parameters", "keys", "target"), CASES, ids=[case[1] for case in CASES])
def test_a_write_names_the_reads_it_makes_stale(source: str, name: str, parameters: dict[str, Any], keys: tuple[Any, ...], target: str) -> None:
    got = touch(source, name, parameters)
    assert isinstance(got, Touch), got
    assert got.keys == keys
    assert got.actor == ALICE
    operation = name.removesuffix("20150331v2").removesuffix("20150331")
    assert got.reason == f"{source} {operation} {target} by {ALICE}"
    assert (got.event_id, got.event_time) == ("0b1c2d3e-0000-4000-8000-000000000002", "2026-12-02T12:00:00Z")
    assert got.functions == frozenset(key[1] for key in keys if key[0] in ("function", "versions", "policy"))
    assert got.api_ids == frozenset(key[1] for key in keys if key[0] in ("stages", "resources", "deployments"))
    assert got.domains == frozenset(key[1] for key in keys if key[0] == "mappings")


def test_every_handled_event_name_is_tested_and_in_the_rule() -> None:
    tested = {(f"aws.{source}", name.removesuffix("20150331v2").removesuffix("20150331")) for source, name, *_ in CASES}
    assert tested == {(source, name) for source, names in EVENT_NAMES.items() for name in names}
    assert set(EVENT_NAMES) == set(EVENT_SOURCES) and handled_event_names() == {s: list(n) for s, n in EVENT_NAMES.items()}


# ------------------------------------------------------------------ records as AWS documents them


def test_the_lambda_guides_delete_function_entry() -> None:
    """'Logging AWS Lambda API calls using AWS CloudTrail': eventVersion 1.03, no suffix on DeleteFunction."""
    entry = {
        "eventVersion": "1.03",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "A1B2C3D4E5F6G7EXAMPLE",
            "arn": "arn:aws:iam::999999999999:user/myUserName",
            "accountId": "999999999999",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "myUserName",
        },
        "eventTime": "2015-03-18T19:04:42Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "DeleteFunction",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "Python-httplib2/0.8 (gzip)",
        "requestParameters": {"functionName": "basic-node-task"},
        "responseElements": None,
        "requestID": "a2198ecc-cda1-11e4-aaa2-e356da31e4ff",
        "eventID": "20b84ce5-730f-482e-b2b2-e8fcc87ceb22",
        "eventType": "AwsApiCall",
        "recipientAccountId": "999999999999",
    }
    got = parse_event(envelope(entry))
    assert isinstance(got, Touch)
    assert got.keys == (("function", "basic-node-task"), ("versions", "basic-node-task"))
    assert got.reason == "lambda DeleteFunction basic-node-task by arn:aws:iam::999999999999:user/myUserName"
    assert (got.event_id, got.event_time) == ("20b84ce5-730f-482e-b2b2-e8fcc87ceb22", "2015-03-18T19:04:42Z")
    # The same guide's failed GetFunction: errorCode set, requestParameters null.
    failed = {**entry, "eventName": "GetFunction", "errorCode": "AccessDenied", "errorMessage": "User ... is not authorized", "requestParameters": None}
    assert parse_event(envelope(failed)) == Ignored("lambda GetFunction failed (AccessDenied): nothing changed")


def test_the_api_gateway_guides_get_resource_entry_is_a_read() -> None:
    entry = record(
        "apigateway",
        "GetResource",
        {"restApiId": "3rbEXAMPLE", "resourceId": "5tfEXAMPLE", "template": False},
        readOnly=True,
        userIdentity={
            "type": "Root",
            "principalId": "AKIAI44QH8DHBEXAMPLE",
            "arn": f"arn:aws:iam::{ACCOUNT}:root",
            "accountId": ACCOUNT,
            "sessionContext": {"attributes": {"mfaAuthenticated": "false"}},
        },
    )
    assert parse_event(envelope(entry, "aws.apigateway")) == Ignored("apigateway GetResource is a read: nothing changed")


SSO_SESSION = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLE:alice@example.com",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Developers_4972de7308bc000a/alice@example.com",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLE",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Developers_4972de7308bc000a",
            "accountId": ACCOUNT,
            "userName": "AWSReservedSSO_Developers_4972de7308bc000a",
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": "2024-04-17T06:43:19Z", "mfaAuthenticated": "false"},
    },
}
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"


def test_a_console_made_stage_and_deployment() -> None:
    """The console's CreateDeployment then CreateStage: the stage name is in the nested request body."""
    console = {
        "userIdentity": SSO_SESSION,
        "userAgent": BROWSER,
        "sessionCredentialFromConsole": "true",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": "apigateway.us-east-1.amazonaws.com"},
    }
    deployment = touch(
        "apigateway",
        "CreateDeployment",
        {"restApiId": "67ge356u6d", "createDeploymentInput": {"description": "", "stageName": ""}, "template": False},
        responseElements={"id": "6gejpe"},
        **console,
    )
    assert isinstance(deployment, Touch)
    assert deployment.keys == (("deployments", "67ge356u6d"), ("stages", "67ge356u6d"))
    assert deployment.reason == f"apigateway CreateDeployment 67ge356u6d by {SSO_SESSION['arn']}"
    stage = touch(
        "apigateway",
        "CreateStage",
        {
            "restApiId": "67ge356u6d",
            "createStageInput": {
                "cacheClusterSize": "0.5",
                "deploymentId": "6gejpe",
                "description": "",
                "cacheClusterEnabled": False,
                "tracingEnabled": False,
                "stageName": "new",
            },
            "template": False,
        },
        **console,
    )
    assert isinstance(stage, Touch) and stage.keys == (("stages", "67ge356u6d"),) and stage.api_ids == {"67ge356u6d"}
    assert "CreateStage 67ge356u6d/new by arn:aws:sts::" in stage.reason


def test_api_gateway_v2_calls_of_the_same_name_are_not_rest_apis() -> None:
    """HTTP APIs share the event source and names like CreateStage, with apiId for restApiId."""
    got = touch(
        "apigateway",
        "CreateStage",
        {"stageName": "5587y0s9d5aed", "autoDeploy": True, "apiId": "pxzfkfmjo7"},
        userAgent="APN/1.0 HashiCorp/1.0 Terraform/1.3.7 aws-sdk-go-v2/1.30.1 api/apigatewayv2#1.22.1",
    )
    assert isinstance(got, Ignored) and "API Gateway v2 API pxzfkfmjo7" in got.reason and "REST APIs" in got.reason
    assert isinstance(touch("apigateway", "UpdateIntegration", {"apiId": "pxzfkfmjo7", "integrationId": "i1"}), Ignored)


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("function_name", "function", "alias"),
    [
        ("getProducts", "getProducts", None),
        ("getProducts:prod", "getProducts", "prod"),
        (f"{ACCOUNT}:function:getProducts", "getProducts", None),
        (f"{ACCOUNT}:function:getProducts:prod", "getProducts", "prod"),
        (FN_ARN, "getProducts", None),
        (f"{FN_ARN}:prod", "getProducts", "prod"),
        (f"{FN_ARN}:$LATEST", "getProducts", "$LATEST"),
        (f"arn:aws-us-gov:lambda:us-gov-west-1:{ACCOUNT}:function:get_products-2:v1", "get_products-2", "v1"),
        (f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:getProducts", "getProducts", None),
    ],
)
def test_function_names_are_normalised(function_name: str, function: str, alias: str | None) -> None:
    versions = touch("lambda", "PublishVersion20150331", {"functionName": function_name})
    assert isinstance(versions, Touch) and versions.keys == (("versions", function),) and versions.functions == {function}
    permission = touch("lambda", "AddPermission20150331v2", {"functionName": function_name, "statementId": "s"})
    if alias is None:  # the function's own policy: not one Pointsman manages
        assert isinstance(permission, Ignored) and f"the policy of {function} itself" in permission.reason
    else:
        assert isinstance(permission, Touch) and permission.keys == (("policy", function, alias),)
    named = touch("lambda", "UpdateAlias20150331", {"functionName": function_name, "name": "canary"})
    assert isinstance(named, Touch) and named.keys == (("function", function), ("policy", function, "canary"))  # name wins over a qualifier


def test_the_alias_in_the_function_name_alone_names_it() -> None:
    got = touch("lambda", "UpdateAlias20150331", {"functionName": f"{FN_ARN}:prod"})
    assert isinstance(got, Touch)
    assert got.reason == f"lambda UpdateAlias getProducts:prod by {ALICE}"
    assert got.keys == (("function", "getProducts"), ("policy", "getProducts", "prod"))


def test_unsuffixed_lambda_names_of_older_records() -> None:
    for name in ("UpdateFunctionCode", "UpdateFunctionConfiguration", "UpdateFunctionCode20150331"):
        got = touch("lambda", name, {"functionName": "f"})
        assert isinstance(got, Touch) and got.keys == (("versions", "f"),), name


# ------------------------------------------------------------------ ignored, and why


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (touch("lambda", "GetAlias20150331", {"functionName": "f", "name": "prod"}, readOnly=True), "lambda GetAlias is a read: nothing changed"),
        (touch("lambda", "ListAliases20150331", {"functionName": "f"}), "lambda ListAliases: not a change Pointsman follows"),
        (touch("lambda", "PutFunctionConcurrency20171031", {"functionName": "f"}), "lambda PutFunctionConcurrency: not a change Pointsman follows"),
        (touch("apigateway", "GetStages", {"restApiId": API}, readOnly=True), "apigateway GetStages is a read: nothing changed"),
        (
            touch(
                "lambda",
                "UpdateAlias20150331",
                {"functionName": "f", "name": "prod"},
                errorCode="ResourceConflictException",
                errorMessage="The operation cannot be performed at this time.",
            ),
            "lambda UpdateAlias failed (ResourceConflictException): nothing changed",
        ),
        (touch("apigateway", "UpdateStage", None, errorCode="NotFoundException"), "apigateway UpdateStage failed (NotFoundException): nothing changed"),
        (
            touch("lambda", "AddPermission20150331v2", {"functionName": "f", "statementId": "s"}),
            "lambda AddPermission: the policy of f itself, not of an alias: not managed by Pointsman",
        ),
        (
            touch(
                "lambda",
                "UpdateAlias20150331",
                {"functionName": "f", "name": "prod"},
                userAgent=f"Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 lang/python#3.11.9 cfg/retry-mode#standard Botocore/1.35.0 {USER_AGENT}",
            ),
            "lambda UpdateAlias made by Pointsman itself (user agent)",
        ),
        (
            touch("apigateway", "UpdateStage", {"restApiId": API, "stageName": "prod"}, userAgent=f"[Boto3/1.35.0 {USER_AGENT}]"),
            "apigateway UpdateStage made by Pointsman itself (user agent)",
        ),
        (parse_event(envelope(record("ec2", "RunInstances", {}), "aws.ec2")), "event from ec2.amazonaws.com, not Lambda or API Gateway"),
        (
            parse_event(json.dumps({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})),
            "not a CloudTrail API call: detail-type 'Scheduled Event'",
        ),
    ],
)
def test_what_is_ignored_says_why(body: Touch | Ignored, reason: str) -> None:
    assert body == Ignored(reason)


def test_another_tools_user_agent_is_not_pointsman() -> None:
    assert isinstance(touch("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "p"}, userAgent="notpointsman/1.0 Boto3/1.35"), Touch)


def test_an_assumed_role_of_an_ignored_principal_is_pointsman_itself() -> None:
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/pointsman-controller/i-0abc",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/ops/pointsman-controller"}},
    }
    body = envelope(record("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}, userIdentity=identity))
    by_issuer = parse_event(body, ignore_principals=[f"arn:aws:iam::{ACCOUNT}:role/ops/pointsman-controller"])
    assert by_issuer == Ignored(f"lambda UpdateAlias made by Pointsman itself (arn:aws:sts::{ACCOUNT}:assumed-role/pointsman-controller/i-0abc)")
    without_issuer = json.loads(body)
    del without_issuer["detail"]["userIdentity"]["sessionContext"]
    # The role's ARN, with or without its path, names the session's role even with no issuer in the record.
    for principal in (
        f"arn:aws:iam::{ACCOUNT}:role/pointsman-controller",
        f"arn:aws:iam::{ACCOUNT}:role/ops/pointsman-controller",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/pointsman-controller",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/pointsman-controller/i-0abc",
    ):
        assert isinstance(parse_event(json.dumps(without_issuer), ignore_principals=[principal]), Ignored), principal
    for other in (
        f"arn:aws:iam::{ACCOUNT}:role/someone-else",
        "arn:aws:iam::210987654321:role/pointsman-controller",
        f"arn:aws:iam::{ACCOUNT}:user/pointsman-controller",
        "pointsman-controller",
    ):
        assert isinstance(parse_event(body, ignore_principals=[other]), Touch), other


def test_an_ignored_user_and_an_sso_role() -> None:
    assert isinstance(parse_event(envelope(record("lambda", "PublishVersion20150331", {"functionName": "f"})), ignore_principals=[ALICE]), Ignored)
    sso = envelope(record("lambda", "PublishVersion20150331", {"functionName": "f"}, userIdentity=SSO_SESSION))
    role = SSO_SESSION["sessionContext"]["sessionIssuer"]["arn"]  # type: ignore[index]
    assert isinstance(parse_event(sso, ignore_principals=[role]), Ignored)
    assert isinstance(parse_event(sso), Touch)


def test_a_service_caller_without_an_arn() -> None:
    identity = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    got = touch("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}, userIdentity=identity)
    assert isinstance(got, Touch) and got.actor == "cloudformation.amazonaws.com"
    got = touch("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}, userIdentity=None)
    assert isinstance(got, Touch) and got.actor == "unknown caller"


def test_sns_wrapped_and_bare_records_are_read() -> None:
    inner = envelope(record("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}))
    notification = {"Type": "Notification", "MessageId": "m1", "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t", "Message": inner}
    assert isinstance(parse_event(json.dumps(notification)), Touch)
    assert isinstance(parse_event(json.dumps(notification).encode()), Touch)
    assert isinstance(parse_event(json.dumps(record("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}))), Touch)


# ------------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "message is not JSON"),
        (b"\xff\xfe\x00garbage", "message is not JSON"),
        ("", "message is not JSON"),
        ("[1, 2]", "message is JSON list, not an event object"),
        ("null", "message is JSON NoneType, not an event object"),
        (json.dumps({"version": "0", "source": "aws.lambda"}), "message has no 'detail'"),
        (json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": "oops"}), "event detail is str, not an object"),
        (json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": None}), "event detail is NoneType"),
        (json.dumps({"Type": "Notification", "Message": "{not json"}), "SNS notification's Message is not JSON"),
        (envelope({"eventSource": "lambda.amazonaws.com"}), "without eventSource and eventName"),
        (envelope({"eventSource": "lambda.amazonaws.com", "eventName": 7}), "without eventSource and eventName"),
        (envelope(record("lambda", "UpdateAlias20150331", None)), "requestParameters.functionName is missing"),
        (envelope(record("lambda", "UpdateAlias20150331", {"functionName": "f"})), "requestParameters.name is missing"),
        (envelope(record("lambda", "UpdateAlias20150331", ["x"])), "requestParameters of lambda UpdateAlias is list, not an object"),
        (envelope(record("lambda", "UpdateAlias20150331", {"functionName": "a b\nc"})), "'a b c' is not a function name or ARN"),
        (envelope(record("lambda", "PublishVersion20150331", {"functionName": 12})), "requestParameters.functionName is missing"),
        (envelope(record("apigateway", "UpdateStage", {"stageName": "prod"}), "aws.apigateway"), "requestParameters.restApiId is missing"),
        (envelope(record("apigateway", "UpdateStage", None), "aws.apigateway"), "requestParameters.restApiId is missing"),
        (envelope(record("apigateway", "UpdateStage", {"restApiId": "a/b"}), "aws.apigateway"), "requestParameters.restApiId 'a/b' is not valid"),
        (envelope(record("apigateway", "DeleteBasePathMapping", {"basePath": "v1"}), "aws.apigateway"), "requestParameters.domainName is missing"),
        (
            envelope(record("apigateway", "DeleteBasePathMapping", {"domainName": "my api.com"}), "aws.apigateway"),
            "requestParameters.domainName 'my api.com' is not valid",
        ),
        ("x" * 2_000_000, "larger than any event"),
        ("[" * 100_000, "not JSON"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, "not JSON"),
    ],
)
def test_a_malformed_message_is_one_line(body: str | bytes, says: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(body)
    message = str(caught.value)
    assert says in message, message
    assert "\n" not in message and len(message) < 200


# ------------------------------------------------------------------ nothing but MalformedEvent, whatever the input

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_names = st.sampled_from([*EVENT_NAMES["aws.lambda"], *(f"{n}20150331" for n in EVENT_NAMES["aws.lambda"]), *EVENT_NAMES["aws.apigateway"], "GetAlias20150331"])
_fields = st.sampled_from(
    [
        "functionName",
        "name",
        "qualifier",
        "restApiId",
        "apiId",
        "stageName",
        "domainName",
        "basePath",
        "createStageInput",
        "createRestApiInput",
        "createBasePathMappingInput",
        "apiMappingKey",
    ]
)
_values = _json | st.sampled_from(["getProducts", FN_ARN, f"{FN_ARN}:prod", "a:b:c", API, "myapi.com", "", "$LATEST"])
_identity = st.dictionaries(
    st.sampled_from(["type", "arn", "sessionContext", "invokedBy"]),
    _values | st.fixed_dictionaries({"sessionIssuer": st.dictionaries(st.sampled_from(["arn", "type"]), _values)}),
)


@settings(max_examples=400, deadline=None)
@given(
    source=st.sampled_from(["lambda.amazonaws.com", "apigateway.amazonaws.com"]) | _json,
    name=_names | _json,
    params=st.dictionaries(_fields, _values | st.dictionaries(_fields, _values)) | _json,
    identity=_identity | _json,
    more=st.dictionaries(st.sampled_from(["errorCode", "readOnly", "userAgent", "eventID", "eventTime", "detail", "Type", "Message"]), _json),
)
def test_an_event_like_message_never_raises_anything_but_malformed_event(source: Any, name: Any, params: Any, identity: Any, more: Any) -> None:
    detail = {"eventSource": source, "eventName": name, "requestParameters": params, "userIdentity": identity, **more}
    for body in (envelope(detail), json.dumps(detail), json.dumps({"Type": "Notification", "Message": envelope(detail)})):
        try:
            result = parse_event(body, ignore_principals=[ALICE, f"arn:aws:iam::{ACCOUNT}:role/ops/pointsman"])
        except MalformedEvent as exc:
            assert "\n" not in str(exc)
            continue
        assert isinstance(result, (Touch, Ignored))
        assert "\n" not in (result.reason if isinstance(result, Ignored) else result.reason + result.actor + result.event_id)


@settings(max_examples=300, deadline=None)
@given(value=_json, raw=st.text(max_size=60) | st.binary(max_size=60))
def test_any_json_or_text_never_raises_anything_but_malformed_event(value: Any, raw: str | bytes) -> None:
    for body in (json.dumps(value), raw, envelope(value)):
        try:
            result = parse_event(body)
        except MalformedEvent:
            continue
        assert isinstance(result, (Touch, Ignored))


# ------------------------------------------------------------------ the rule


class _CloudFormation(yaml.SafeLoader):
    """PyYAML's safe loader that reads CloudFormation's short tags (!Ref, !GetAtt, !Sub...) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


_CloudFormation.add_multi_constructor("!", _tag)


def test_the_example_template_forwards_exactly_the_events_pointsman_reads() -> None:
    template = yaml.load((ROOT / "examples" / "events-queue.yaml").read_text(), Loader=_CloudFormation)  # noqa: S506 - safe loader subclass
    resources = template["Resources"]
    rule = resources["EventsRule"]["Properties"]
    assert rule["EventPattern"] == event_pattern()
    assert rule["State"] == "ENABLED"
    assert rule["Targets"][0]["Arn"] == {"GetAtt": "EventsQueue.Arn"}
    statement = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"GetAtt": "EventsRule.Arn"}
    assert resources["EventsQueuePolicy"]["Properties"]["Queues"] == [{"Ref": "EventsQueue"}]
    queue = resources["EventsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "DeadLetterQueue.Arn"}
    assert 3600 <= queue["MessageRetentionPeriod"] <= 6 * 3600
    assert template["Outputs"]["QueueUrl"]["Value"] == {"Ref": "EventsQueue"}
    assert template["Outputs"]["QueueArn"]["Value"] == {"GetAtt": "EventsQueue.Arn"}


def _is_valid_pattern(node: Any) -> bool:
    """EventBridge's pattern grammar, for the filters used: objects whose leaves are non-empty arrays
    of strings or of ``{"prefix": "..."}``."""
    if not isinstance(node, dict) or not node:
        return False
    for value in node.values():
        if isinstance(value, dict):
            if not _is_valid_pattern(value):
                return False
        elif not isinstance(value, list) or not value:
            return False
        elif not all(isinstance(v, str) or (isinstance(v, dict) and list(v) == ["prefix"] and isinstance(v["prefix"], str) and v["prefix"]) for v in value):
            return False
    return True


def test_the_pattern_is_an_eventbridge_pattern_within_the_default_size() -> None:
    pattern = event_pattern()
    assert _is_valid_pattern(pattern)
    assert pattern["source"] == list(EVENT_SOURCES) and pattern["detail-type"] == [DETAIL_TYPE]
    assert len(json.dumps(pattern, separators=(",", ":"))) < 2048  # the default "Event pattern size" quota
    EventPattern.load(json.dumps(pattern))  # moto's parser accepts it too


def _matches(source: str, name: str) -> bool:
    event = json.loads(envelope(record(source, name, {}), f"aws.{source}"))
    return EventPattern.load(json.dumps(event_pattern())).matches_event(event)


@pytest.mark.parametrize(
    ("source", "name"),
    [(f"{s.removeprefix('aws.')}", n) for s, n, *_ in CASES]
    + [
        ("lambda", "UpdateAlias"),
        ("lambda", "DeleteFunction"),
        ("lambda", "UpdateFunctionCode20150331"),
        ("lambda", "AddPermission20150331"),
    ],
)
def test_every_handled_event_matches_the_pattern(source: str, name: str) -> None:
    assert _matches(source, name)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("lambda", "GetAlias20150331"),
        ("lambda", "ListAliases20150331"),
        ("lambda", "Invoke"),
        ("lambda", "DeleteFunctionConcurrency20171031"),
        ("lambda", "CreateFunctionUrlConfig20211031"),
        ("lambda", "UpdateFunctionUrlConfig20211031"),
        ("apigateway", "GetStages"),
        ("apigateway", "CreateApiKey"),
        ("apigateway", "UpdateStageX"),
        ("ec2", "UpdateStage"),
    ],
)
def test_other_events_do_not(source: str, name: str) -> None:
    assert not _matches(source, name)


def test_events_rule_prints_the_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import cli

    code, out, err = cli(capsys, "events-rule")
    assert (code, err) == (0, "")
    assert json.loads(out) == event_pattern()
