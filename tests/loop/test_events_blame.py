"""Who made a drift: the CloudTrail event that explains it, its caller, source IP and client.

``blame`` picks, among a run's events, the one on the drifted resource's function, REST API
or domain, preferring an event whose target is the resource itself. Records are of the
shapes the CloudTrail user guide documents (``userIdentity.arn``, ``sourceIPAddress``,
``userAgent``, ``eventTime``).
"""

from __future__ import annotations

from typing import Any

from controller.loop.events import Touch, blame
from controller.model import Drift, DriftStatus, FieldChange, Resource
from controller.views.words import actor_words, agent_words
from tests.loop.test_events_parse import ALICE, touch


def alias_drift(function: str = "getProducts", alias: str = "prod") -> Drift:
    live = Resource("lambda_alias", f"{function}/{alias}", {"version": "1"})
    return Drift(f"lambda_alias/{function}/{alias}", "lambda_alias", DriftStatus.MODIFIED, (FieldChange("version", "1", "3"),), live=live)


def stage_drift(api_id: str = "a1b2c3d4e5", api: str = "products-v1", stage: str = "prod") -> Drift:
    live = Resource("rest_stage", f"{api}/{stage}", {"variables": {"lambdaAlias": "dev"}}, {"api": api, "api_id": api_id, "stage": stage})
    return Drift(f"rest_stage/{api}/{stage}", "rest_stage", DriftStatus.MODIFIED, (FieldChange("variables.lambdaAlias", "dev", "prod"),), live=live)


def event(source: str, name: str, parameters: dict[str, Any], **more: Any) -> Touch:
    parsed = touch(source, name, parameters, **more)
    assert isinstance(parsed, Touch), parsed
    return parsed


def test_an_alias_change_is_blamed_on_its_event_with_the_caller_ip_and_client() -> None:
    update = event("lambda", "UpdateAlias20150331", {"functionName": "getProducts", "name": "prod", "functionVersion": "1"})
    assert blame(alias_drift(), [update]) is update
    who = update.who()
    assert who == {
        "arn": ALICE,
        "source_ip": "203.0.113.5",
        "user_agent": "console.amazonaws.com",
        "event": "lambda UpdateAlias",
        "event_time": "2026-12-02T12:00:00Z",
        "event_id": "0b1c2d3e-0000-4000-8000-000000000002",
    }
    assert actor_words(who) == f"{ALICE} with the AWS console from 203.0.113.5"


def test_an_event_on_another_function_or_api_explains_nothing() -> None:
    other = event("lambda", "UpdateAlias20150331", {"functionName": "getreport", "name": "prod"})
    assert blame(alias_drift(), [other]) is None
    stage = event("apigateway", "UpdateStage", {"restApiId": "zzzzzzzzzz", "stageName": "prod"})
    assert blame(stage_drift(), [stage]) is None
    assert blame(alias_drift(), []) is None


def test_the_event_naming_the_resource_wins_over_a_newer_one_on_the_same_function() -> None:
    on_prod = event("lambda", "UpdateAlias20150331", {"functionName": "getProducts", "name": "prod"}, eventTime="2026-12-02T12:00:00Z")
    on_dev = event("lambda", "UpdateAlias20150331", {"functionName": "getProducts", "name": "dev"}, eventTime="2026-12-02T12:05:00Z")
    assert blame(alias_drift(), [on_prod, on_dev]) is on_prod
    assert blame(alias_drift(alias="dev"), [on_prod, on_dev]) is on_dev
    # Of two events on the alias itself, the newer one made what is live now.
    later = event("lambda", "UpdateAlias20150331", {"functionName": "getProducts", "name": "prod"}, eventTime="2026-12-02T12:09:00Z")
    assert blame(alias_drift(), [on_prod, later, on_dev]) is later


def test_a_stage_change_is_matched_by_the_api_id_events_carry() -> None:
    update = event(
        "apigateway",
        "UpdateStage",
        {"restApiId": "a1b2c3d4e5", "stageName": "prod"},
        userAgent="aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.ubuntu.22",
        sourceIPAddress="198.51.100.7",
    )
    deploy = event(
        "apigateway", "CreateDeployment", {"restApiId": "a1b2c3d4e5", "createDeploymentInput": {"stageName": "dev"}}, eventTime="2026-12-02T12:30:00Z"
    )
    assert blame(stage_drift(), [update, deploy]) is update  # names products-v1/prod (by its id)
    assert actor_words(update.who()) == f"{ALICE} with the AWS CLI from 198.51.100.7"


def test_clients_read_as_words() -> None:
    assert agent_words("console.amazonaws.com") == "the AWS console"
    assert agent_words("AWS Internal") == "the AWS console"
    assert agent_words("aws-cli/1.32.0 Python/3.11 Linux") == "the AWS CLI"
    assert agent_words("Boto3/1.34.0 md/Botocore#1.34.0 Python/3.12") == "boto3"
    assert agent_words("APN/1.0 HashiCorp/1.0 Terraform/1.7.0 (+https://www.terraform.io)") == "Terraform"
    assert agent_words("") == "an unknown client"
    assert agent_words("curl/8.0") == "curl/8.0"
    assert actor_words(None) == "unknown"
