"""Reconcile several targets (accounts and Regions) at once, each on its own.

A bounded pool of workers (``parallelism``) takes the targets in turn. Each worker makes the
target's credentials (its role assumed, see :mod:`controller.aws.targets`), checks with
GetCallerIdentity that they are for the declared account, then plans (and applies) the
target's spec with clients of its own, whose quota buckets are those of the target's account and
Region. What goes wrong on one target (AccessDenied, an unreachable endpoint, throttling past
its deadline, another account) is that target's error alone: the others carry on, and no target
waits for another's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3

from controller.aws.clients import AwsClients, describe_error
from controller.aws.targets import TargetIdentityError, assumed_session, check_account
from controller.engine.pipeline import Result, reconcile
from controller.live.scope import Scope
from controller.spec.targets import Target, TargetSpec

DEFAULT_PARALLELISM = 4


@dataclass
class TargetRun:
    """One target's reconcile: its result, or the one line that says why it has none."""

    target: Target
    result: Result | None
    error: str | None
    seconds: float
    clients: AwsClients | None = None


def clients_for(target: Target, *, base: boto3.session.Session | None = None, **options: Any) -> AwsClients:
    """The target's clients: its role assumed (through its chain) in its Region, paced by its
    account's and Region's quota buckets, the account checked (:class:`TargetIdentityError`); the
    ambient credentials, unchecked, for a spec without targets."""
    return clients_for_settings(target.settings, base=base, **options)


def clients_for_settings(settings: TargetSpec | None, *, base: boto3.session.Session | None = None, **options: Any) -> AwsClients:
    """As :func:`clients_for`, from a target's settings alone (None: the ambient ones)."""
    if settings is None:
        return AwsClients(**options)
    roles = [*settings.via, settings.role_arn] if settings.role_arn else []
    external = settings.external_id
    session = assumed_session(
        settings.region,
        roles,
        external_id=(lambda: external.reveal()) if external is not None else None,
        session_name=settings.session_name,
        duration_seconds=settings.duration_seconds,
        base=base,
    )
    clients = AwsClients(session, account=settings.account_id, **options)
    check_account(clients.client("sts"), settings.account_id)
    return clients


def run_target(target: Target, make_clients: Callable[[Target], AwsClients], **reconcile_options: Any) -> TargetRun:
    """One target, start to end; never raises (its error is its own line)."""
    started = time.monotonic()
    clients: AwsClients | None = None
    try:
        clients = make_clients(target)
        result = reconcile(target.spec, clients, scope=Scope(clients, concurrency=reconcile_options.get("concurrency", 8)), **reconcile_options)
        return TargetRun(target, result, None, time.monotonic() - started, clients)
    except TargetIdentityError as exc:
        return TargetRun(target, None, f"{exc}; nothing was read or written", time.monotonic() - started, clients)
    except Exception as exc:  # noqa: BLE001 - one target's failure is reported as its own line
        return TargetRun(target, None, describe_error(exc), time.monotonic() - started, clients)


def reconcile_targets(
    targets: Sequence[Target],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    make_clients: Callable[[Target], AwsClients] | None = None,
    **reconcile_options: Any,
) -> list[TargetRun]:
    """Every target through a pool of ``parallelism`` workers; the runs in the targets' order.
    ``make_clients``: a target's clients (default :func:`clients_for`)."""
    make_clients = make_clients or (lambda target: clients_for(target))
    with ThreadPoolExecutor(max(1, parallelism), thread_name_prefix="target") as pool:
        futures = [pool.submit(run_target, target, make_clients, **reconcile_options) for target in targets]
        return [future.result() for future in futures]
