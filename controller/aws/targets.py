"""Credentials per target: a role assumed (optionally through a chain of roles), refreshed before
it expires, and the account it lands in checked before anything is read.

``assumed_session`` returns a boto3 session whose credentials botocore refreshes by itself
(``RefreshableCredentials``: a refresh starts 15 minutes before expiry, and is forced 10 minutes
before), each refresh walking the chain again from the base credentials. A chained session
lasts at most one hour (AWS's role-chaining limit), so every hop after the first asks for at
most 3,600 seconds. The ExternalId is passed to the last role only, and never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import boto3
import botocore.config
import botocore.session
from botocore.credentials import RefreshableCredentials

CHAINED_MAX_SECONDS = 3600


class TargetIdentityError(Exception):
    """The credentials of a target are for another account than the one it declares."""


def assumed_session(
    region: str,
    roles: Sequence[str],
    *,
    external_id: Callable[[], str] | None = None,
    session_name: str = "pointsman",
    duration_seconds: int = 3600,
    base: boto3.session.Session | None = None,
) -> boto3.session.Session:
    """A session in ``region`` with the credentials of the last of ``roles``, each assumed with the
    credentials of the one before (the first with ``base``'s, the ambient ones by default).
    ``external_id()`` gives the last role's ExternalId when its trust policy asks for one."""
    if not roles:
        return base or boto3.session.Session(region_name=region)
    start = base or boto3.session.Session(region_name=region)
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 5})

    def fetch() -> dict[str, Any]:
        session = start
        credentials: dict[str, Any] = {}
        for hop, arn in enumerate(roles):
            params: dict[str, Any] = {
                "RoleArn": arn,
                "RoleSessionName": session_name,
                "DurationSeconds": duration_seconds if hop == 0 else min(duration_seconds, CHAINED_MAX_SECONDS),
            }
            if hop == len(roles) - 1 and external_id is not None:
                params["ExternalId"] = external_id()
            credentials = session.client("sts", region_name=region, config=config).assume_role(**params)["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=region,
            )
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    refreshable = RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
    core = botocore.session.get_session()
    core._credentials = refreshable  # the documented way to hand botocore refreshable credentials has no public setter
    core.set_config_variable("region", region)
    return boto3.session.Session(botocore_session=core, region_name=region)


def check_account(sts: Any, expected: str) -> None:
    """GetCallerIdentity must name ``expected``; raise :class:`TargetIdentityError` otherwise."""
    actual = str(sts.get_caller_identity()["Account"])
    if actual != expected:
        raise TargetIdentityError(f"the credentials are for account {actual}, not the declared {expected}")
