"""Run planned actions in order. A failed action skips every action that requires it
(directly or through a skipped one); independent actions go on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from controller.aws import AWS_ERRORS, AwsClients, describe_error
from controller.model import Action, Call, Outcome, OutcomeStatus, Ref

log = structlog.get_logger("pointsman.apply")


def _resolve(value: Any, results: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(value, Ref):
        return results[value.resource][value.field]
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(v, results) for v in value]
    return value


def apply_actions(
    clients: AwsClients,
    actions: tuple[Action, ...] | list[Action],
    *,
    dry_run: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    failed: dict[str, str] = {}  # resource id -> why it did not converge
    results: dict[str, dict[str, Any]] = {}
    for action in actions:
        blocked = [r for r in action.requires if r in failed]
        if blocked:
            why = f"skipped: {blocked[0]} did not converge ({failed[blocked[0]]})"
            failed[action.resource] = "skipped"
            outcomes.append(Outcome(action, OutcomeStatus.SKIPPED, why))
            log.warning("action skipped", resource=action.resource, operation=action.operation, because=blocked[0])
            continue
        if dry_run:
            outcomes.append(Outcome(action, OutcomeStatus.DRY_RUN))
            continue
        # On a stop request, finish what was started (an alias update after its publish),
        # start nothing new.
        if should_stop() and action.completes not in results:
            failed[action.resource] = "not started"
            outcomes.append(Outcome(action, OutcomeStatus.SKIPPED, "skipped: stopping on request"))
            continue
        done: list[str] = []
        try:
            result: dict[str, Any] = {}
            for call in action.calls:
                result = _call(clients, call, results)
                done.append(call.operation)
            results[action.resource] = result
            outcomes.append(Outcome(action, OutcomeStatus.SUCCEEDED, result=_summary(result)))
            log.info("action succeeded", resource=action.resource, operation=action.operation)
        except AWS_ERRORS as exc:
            error = describe_error(exc)
            if done:
                error += f" (after {', '.join(done)} succeeded)"
            failed[action.resource] = "failed"
            outcomes.append(Outcome(action, OutcomeStatus.FAILED, error))
            log.error("action failed", resource=action.resource, operation=action.operation, error=error)
    return outcomes


def _call(clients: AwsClients, call: Call, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    params = _resolve(dict(call.params), results)
    response = getattr(clients.client(call.service), call.method)(**params)
    response.pop("ResponseMetadata", None)
    return response


def _summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool))}
