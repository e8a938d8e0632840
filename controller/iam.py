"""Least-privilege IAM policy, assembled from what each kind declares it calls."""

from __future__ import annotations

from typing import Any

from controller.kinds import KINDS


def policy_document() -> dict[str, Any]:
    lambda_actions = sorted({a for k in KINDS for a in k.read_actions + k.write_actions if a.startswith("lambda:")})
    apigw_actions = sorted({a for k in KINDS for a in k.read_actions + k.write_actions if a.startswith("apigateway:")})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PointsmanLambda", "Effect": "Allow", "Action": lambda_actions, "Resource": "arn:aws:lambda:*:*:function:*"},
            {
                "Sid": "PointsmanApiGateway",
                "Effect": "Allow",
                "Action": apigw_actions,
                "Resource": ["arn:aws:apigateway:*::/restapis", "arn:aws:apigateway:*::/restapis/*", "arn:aws:apigateway:*::/domainnames/*"],
            },
            {
                # Only with `pointsman run --events-queue`: narrow Resource to that queue's ARN.
                "Sid": "PointsmanEventsQueue",
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                "Resource": "arn:aws:sqs:*:*:*",
            },
        ],
    }
