"""Least-privilege IAM policy, assembled from what each kind declares it calls.

Given a spec whose environments take values from SSM Parameter Store, the policy also
allows ``ssm:GetParameters`` on exactly those parameters, and ``kms:Decrypt`` through SSM
only (a SecureString encrypted with a customer managed key; the AWS managed key aws/ssm
needs no statement): narrow its Resource to those keys' ARNs. Rollouts gated by alarms add
``cloudwatch:DescribeAlarms`` on those alarms; an error-rate analysis adds
``cloudwatch:GetMetricData`` (which has no resource-level permissions).
"""

from __future__ import annotations

import re
from typing import Any

from controller.kinds import KINDS
from controller.spec import Spec


def ssm_parameters(spec: Spec) -> list[str]:
    """The SSM parameter names the spec's environments name."""
    return sorted({name for decl in spec.functions.values() for name in decl.spec.ssm_parameters().values()})


def rollout_gates(spec: Spec) -> tuple[list[str], bool]:
    """The CloudWatch alarms the spec's rollouts are gated by, and whether one reads the error rate."""
    alarms: set[str] = set()
    analysis = False
    for decl in spec.functions.values():
        for alias in decl.spec.aliases:
            rollout = decl.spec.rollout_of(alias)
            if rollout is not None:
                alarms.update(rollout.alarms)
                analysis = analysis or rollout.analysis is not None
    return sorted(alarms), analysis


def policy_document(spec: Spec | None = None, *, read_only: bool = False) -> dict[str, Any]:
    """The least-privilege policy; ``read_only``: only what reading needs (``plan``, ``routes``,
    ``explain``, a controller in detect mode, ``import``): no write action at all."""
    actions = [a for k in KINDS for a in (k.read_actions if read_only else k.read_actions + k.write_actions)]
    lambda_actions = sorted({a for a in actions if a.startswith("lambda:")})
    apigw_actions = sorted({a for a in actions if a.startswith("apigateway:")})
    document: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PointsmanLambda", "Effect": "Allow", "Action": lambda_actions, "Resource": "arn:aws:lambda:*:*:function:*"},
            {
                "Sid": "PointsmanApiGateway",
                "Effect": "Allow",
                "Action": apigw_actions,
                "Resource": [
                    "arn:aws:apigateway:*::/restapis",
                    "arn:aws:apigateway:*::/restapis/*",
                    "arn:aws:apigateway:*::/domainnames",
                    "arn:aws:apigateway:*::/domainnames/*",
                ],
            },
            {
                # `pointsman import` lists the functions in scope (and, with --tag, their tags); ListFunctions has no resource-level permissions.
                "Sid": "PointsmanImportDiscovery",
                "Effect": "Allow",
                "Action": ["lambda:ListFunctions", "lambda:ListTags"],
                "Resource": "*",
            },
        ],
    }
    if not read_only:  # deleting a handled event from the queue is a write
        document["Statement"].append(
            {
                # Only with `pointsman run --events-queue`: narrow Resource to that queue's ARN.
                "Sid": "PointsmanEventsQueue",
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                "Resource": "arn:aws:sqs:*:*:*",
            }
        )
    parameters = ssm_parameters(spec) if spec is not None else []
    if parameters:
        statements: list[dict[str, Any]] = document["Statement"]
        statements.append(
            {
                "Sid": "PointsmanSsmParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameters"],
                # A name with a leading / (a hierarchy) is parameter/NAME in the ARN, with one slash.
                "Resource": [f"arn:aws:ssm:*:*:parameter/{name.lstrip('/')}" for name in parameters],
            }
        )
        statements.append(
            {
                "Sid": "PointsmanSsmSecureStringDecrypt",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": "arn:aws:kms:*:*:key/*",
                "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},
            }
        )
    alarms, analysis = rollout_gates(spec) if spec is not None else ([], False)
    if alarms:
        document["Statement"].append(
            {
                "Sid": "PointsmanRolloutAlarms",
                "Effect": "Allow",
                "Action": ["cloudwatch:DescribeAlarms"],
                "Resource": [f"arn:aws:cloudwatch:*:*:alarm:{name}" for name in alarms],
            }
        )
    if analysis:
        # GetMetricData has no resource-level permissions: its Resource is "*".
        document["Statement"].append({"Sid": "PointsmanRolloutMetrics", "Effect": "Allow", "Action": ["cloudwatch:GetMetricData"], "Resource": "*"})
    return document


def scoped(document: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    """The policy with every resource ARN narrowed to one account and Region (a target's role):
    ``arn:aws:lambda:*:*:`` becomes ``arn:aws:lambda:REGION:ACCOUNT:``, API Gateway's
    ``arn:aws:apigateway:*::`` becomes ``arn:aws:apigateway:REGION::``."""

    def narrow(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"^(arn:aws:[a-z0-9-]+):\*:\*:", rf"\1:{region}:{account}:", value).replace(
                "arn:aws:apigateway:*::", f"arn:aws:apigateway:{region}::"
            )
        if isinstance(value, list):
            return [narrow(item) for item in value]
        if isinstance(value, dict):
            return {key: narrow(item) for key, item in value.items()}
        return value

    return narrow(document)


def trust_policy(principal: str, *, external_id: bool) -> dict[str, Any]:
    """A target role's trust policy: ``principal`` (the role or user the controller runs as, or the
    hub role of a chain) may assume it, with the ExternalId when the target declares one (its value
    is not printed: the placeholder stands for it)."""
    statement: dict[str, Any] = {"Sid": "PointsmanAssumeRole", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": "<the external_id of target.yaml>"}}
    return {"Version": "2012-10-17", "Statement": [statement]}


LEASE_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem")


def with_lease_table(document: dict[str, Any], table: str) -> dict[str, Any]:
    """The policy plus what replicas sharing the targets through ``table`` need on it (conditional
    writes, TransactWriteItems for fenced shared state); CreateTable is for `pointsman lease-table create` only."""
    statements = [*document["Statement"]]
    statements.append(
        {
            "Sid": "PointsmanLeaseTable",
            "Effect": "Allow",
            "Action": sorted({*LEASE_ACTIONS, "dynamodb:ConditionCheckItem"}),
            "Resource": f"arn:aws:dynamodb:*:*:table/{table}",
        }
    )
    return {**document, "Statement": statements}
