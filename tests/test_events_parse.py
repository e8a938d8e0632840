"""CloudTrail events (as EventBridge delivers them) -> the reads they make stale; nothing else ever raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.aws import USER_AGENT
from controller.events import Ignored, MalformedEvent, Touch, event_pattern, parse_event

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"


def record(source: str, name: str, parameters: Any, **more: Any) -> dict[str, Any]:
    """A CloudTrail record of the shape the CloudTrail user guide documents."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT},
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
        **more,
    }


def envelope(detail: Any, source: str = "aws.lambda") -> str:
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


@pytest.mark.parametrize(
    ("source", "name", "parameters", "keys"),
    [
        ("lambda", "UpdateAlias20150331", {"functionName": "getProducts", "name": "prod", "functionVersion": "1"},
         (("function", "getProducts"), ("policy", "getProducts", "prod"))),
        ("lambda", "CreateAlias20150331", {"functionName": FN_ARN, "name": "canary", "functionVersion": "2"},
         (("function", "getProducts"), ("policy", "getProducts", "canary"))),
        ("lambda", "DeleteAlias20150331", {"functionName": f"{ACCOUNT}:function:getProducts", "name": "dev"},
         (("function", "getProducts"), ("policy", "getProducts", "dev"))),
        ("lambda", "AddPermission20150331v2", {"functionName": "getProducts", "statementId": "s", "action": "lambda:InvokeFunction",
                                               "principal": "apigateway.amazonaws.com", "qualifier": "prod"},
         (("policy", "getProducts", "prod"),)),
        ("lambda", "RemovePermission20150331v2", {"functionName": f"{FN_ARN}:prod", "statementId": "s"}, (("policy", "getProducts", "prod"),)),
        ("lambda", "PublishVersion20150331", {"functionName": "getProducts"}, (("versions", "getProducts"),)),
        ("lambda", "UpdateFunctionConfiguration20150331v2", {"functionName": "getProducts", "environment": {}}, (("versions", "getProducts"),)),
        ("lambda", "DeleteFunction20150331", {"functionName": "getProducts"}, (("function", "getProducts"), ("versions", "getProducts"))),
        ("apigateway", "UpdateStage", {"restApiId": "a1b2c3", "stageName": "prod", "patchOperations": []}, (("stages", "a1b2c3"),)),
        ("apigateway", "CreateDeployment", {"restApiId": "a1b2c3", "stageName": "dev"}, (("deployments", "a1b2c3"), ("stages", "a1b2c3"))),
        ("apigateway", "PutIntegration", {"restApiId": "a1b2c3", "resourceId": "r1", "httpMethod": "GET"},
         (("resources", "a1b2c3"), ("routes", "a1b2c3"))),
        ("apigateway", "UpdateBasePathMapping", {"domainName": "myapi.com", "basePath": "v1"}, (("mappings", "myapi.com"),)),
        ("apigateway", "CreateBasePathMapping", {"domainName": "myapi.com", "createBasePathMappingInput": {"restApiId": "a1b2c3"}},
         (("mappings", "myapi.com"),)),
        ("apigateway", "CreateRestApi", {"name": "products-v3", "cloneFrom": "a1b2c3"}, (("rest_apis",),)),
        ("apigateway", "DeleteRestApi", {"restApiId": "a1b2c3"},
         (("rest_apis",), ("stages", "a1b2c3"), ("resources", "a1b2c3"), ("deployments", "a1b2c3"), ("routes", "a1b2c3"))),
    ],
)
def test_a_write_names_the_reads_it_makes_stale(source: str, name: str, parameters: dict[str, Any], keys: tuple[Any, ...]) -> None:
    got = touch(source, name, parameters)
    assert isinstance(got, Touch), got
    assert got.keys == keys
    assert got.actor == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert got.reason.endswith(f"by arn:aws:iam::{ACCOUNT}:user/alice")


def test_the_reason_reads_well_and_names_are_normalised() -> None:
    got = touch("lambda", "UpdateAlias20150331", {"functionName": f"{FN_ARN}:prod"})  # the alias in the name only
    assert isinstance(got, Touch)
    assert got.reason == f"lambda UpdateAlias getProducts:prod by arn:aws:iam::{ACCOUNT}:user/alice"
    assert got.functions == frozenset({"getProducts"})


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (touch("lambda", "GetAlias20150331", {"functionName": "f", "name": "prod"}), "not a change Pointsman follows"),
        (touch("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}, errorCode="ResourceConflictException"), "nothing changed"),
        (touch("lambda", "AddPermission20150331v2", {"functionName": "f", "statementId": "s"}), "changes nothing Pointsman manages"),
        (touch("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}, userAgent=f"Boto3/1.35 Botocore/1.35 {USER_AGENT}"),
         "made by Pointsman itself (user agent)"),
        (parse_event(envelope(record("ec2", "RunInstances", {}), "aws.ec2")), "not Lambda or API Gateway"),
        (parse_event(json.dumps({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})), "not a CloudTrail API call"),
    ],
)
def test_what_is_ignored_says_why(body: Touch | Ignored, why: str) -> None:
    assert isinstance(body, Ignored)
    assert why in body.reason


def test_an_assumed_role_of_an_ignored_principal_is_pointsman_itself() -> None:
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/pointsman-controller/i-0abc",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/ops/pointsman-controller"}},
    }
    body = envelope(record("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}, userIdentity=identity))
    assert isinstance(parse_event(body, ignore_principals=[f"arn:aws:iam::{ACCOUNT}:role/ops/pointsman-controller"]), Ignored)
    without_issuer = json.loads(body)
    del without_issuer["detail"]["userIdentity"]["sessionContext"]
    # The role's ARN matches the session's role name even without the issuer.
    assert isinstance(parse_event(json.dumps(without_issuer), ignore_principals=[f"arn:aws:iam::{ACCOUNT}:role/pointsman-controller"]), Ignored)
    assert isinstance(parse_event(body, ignore_principals=[f"arn:aws:iam::{ACCOUNT}:role/someone-else"]), Touch)


def test_sns_wrapped_and_bare_records_are_read() -> None:
    inner = envelope(record("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}))
    assert isinstance(parse_event(json.dumps({"Type": "Notification", "Message": inner})), Touch)
    assert isinstance(parse_event(json.dumps(record("lambda", "UpdateAlias20150331", {"functionName": "f", "name": "prod"}))), Touch)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "message is not JSON"),
        ("[1, 2]", "not an event object"),
        (json.dumps({"version": "0", "source": "aws.lambda"}), "no 'detail'"),
        (json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": "oops"}), "detail is str"),
        (envelope({"eventSource": "lambda.amazonaws.com"}), "without eventSource and eventName"),
        (envelope(record("lambda", "UpdateAlias20150331", None)), "requestParameters.functionName is missing"),
        (envelope(record("lambda", "UpdateAlias20150331", ["x"])), "not an object"),
        (envelope(record("lambda", "UpdateAlias20150331", {"functionName": "a b"})), "is not a function name or ARN"),
        (envelope(record("apigateway", "UpdateStage", {"stageName": "prod"}), "aws.apigateway"), "requestParameters.restApiId is missing"),
        ("x" * 300_000, "larger than any event"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_a_malformed_message_is_one_line(body: str, says: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(body)
    message = str(caught.value)
    assert says in message and "\n" not in message and len(message) < 200


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["eventSource", "eventName", "requestParameters", "userIdentity", "userAgent", "errorCode", "detail", "Type", "Message"])


@settings(max_examples=300, deadline=None)
@given(
    detail=st.dictionaries(_keys, _json | st.sampled_from(["lambda.amazonaws.com", "apigateway.amazonaws.com", "UpdateAlias20150331", "UpdateStage"])),
    raw=st.text(max_size=50),
)
def test_no_input_raises_anything_but_malformed_event(detail: dict[str, Any], raw: str) -> None:
    for body in (envelope(detail), json.dumps(detail), raw, raw.encode("utf-8", "surrogatepass")):
        try:
            result = parse_event(body)
        except MalformedEvent:
            continue
        assert isinstance(result, (Touch, Ignored))


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
    assert rule["Targets"][0]["Arn"] == {"GetAtt": "EventsQueue.Arn"}
    statement = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"GetAtt": "EventsRule.Arn"}
    assert resources["EventsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "DeadLetterQueue.Arn"}
    assert template["Outputs"]["QueueUrl"]["Value"] == {"Ref": "EventsQueue"}


def test_every_handled_event_matches_the_pattern() -> None:
    pattern = event_pattern()["detail"]["eventName"]

    def matches(name: str) -> bool:
        return any(name == p if isinstance(p, str) else name.startswith(p["prefix"]) for p in pattern)

    for name in ("UpdateAlias20150331", "AddPermission20150331v2", "UpdateFunctionConfiguration20150331v2", "UpdateStage", "DeleteBasePathMapping"):
        assert matches(name), name
    assert not matches("GetAlias20150331") and not matches("GetStages")


def test_events_rule_prints_the_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import cli

    code, out, err = cli(capsys, "events-rule")
    assert (code, err) == (0, "")
    assert json.loads(out) == event_pattern()
