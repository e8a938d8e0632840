"""Run planned actions in order. A failed action skips every action that requires it
(directly or through a skipped one); independent actions go on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from botocore.exceptions import WaiterError

from controller.aws.clients import AWS_ERRORS, AwsClients, describe_error
from controller.model import Action, Call, Outcome, OutcomeStatus, Ref
from controller.sensitive import Sensitive, scrub, secrets_in

log = structlog.get_logger("pointsman.apply")

# A Call whose method is "wait:<botocore waiter>" waits (by reads) for the calls before it to take effect.
WAIT_PREFIX = "wait:"
WAITER_CONFIG = {"Delay": 1, "MaxAttempts": 60}
_WAITED_FOR = {  # waiter -> what it waits for, in the error when it never comes
    "function_updated": "function {FunctionName}: configuration update",
    "function_updated_v2": "function {FunctionName}: configuration update",
}


class WaitFailed(Exception):
    """A waited-for change failed or did not finish in time (one line)."""


class FencedOut(Exception):
    """The lease was lost between two calls of one action: its later calls are not sent."""


_ERRORS: tuple[type[BaseException], ...] = (*AWS_ERRORS, WaitFailed, FencedOut)


def _resolve(value: Any, results: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(value, Ref):
        return results[value.resource][value.field]
    if isinstance(value, Sensitive):
        return value.reveal()  # only here, in the call to AWS
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
    fence: Callable[[], bool] | None = None,
) -> list[Outcome]:
    """Each action in order. ``should_stop()``: start nothing new (what completes a started
    action still runs). ``fence()``: before every write call (each action's first, and each
    later call of an action of several), completing actions too; False (this replica no longer
    holds the target's lease) and no further call is sent at all."""
    outcomes: list[Outcome] = []
    fenced_out = False
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
        if fenced_out or (fence is not None and not fence()):
            fenced_out = True
            failed[action.resource] = "not started"
            outcomes.append(Outcome(action, OutcomeStatus.SKIPPED, "skipped: this replica no longer holds the target's lease"))
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
            for index, call in enumerate(action.calls):
                if index and fence is not None and not call.method.startswith(WAIT_PREFIX) and not fence():
                    fenced_out = True
                    raise FencedOut(f"this replica no longer holds the target's lease: {call.operation} not sent")
                answer = _call(clients, call, results)
                if not call.method.startswith(WAIT_PREFIX):
                    result = answer  # a wait keeps the answer of the call it waited for
                    # A later call of the same action may use an earlier one's answer (a new resource's id).
                    results[action.resource] = {**results.get(action.resource, {}), **result}
                done.append(call.operation)
            outcomes.append(Outcome(action, OutcomeStatus.SUCCEEDED, result=_summary(result)))
            log.info("action succeeded", resource=action.resource, operation=action.operation)
        except _ERRORS as exc:
            error = str(exc) if isinstance(exc, WaitFailed | FencedOut) else describe_error(exc)
            # An AWS error may quote what it was sent (Lambda's "String measured: {...}").
            error = scrub(error, (secret for call in action.calls for secret in secrets_in(call.params)))
            if done:
                error += f" (after {', '.join(done)} succeeded)"
            failed[action.resource] = "failed"
            outcomes.append(Outcome(action, OutcomeStatus.FAILED, error))
            log.error("action failed", resource=action.resource, operation=action.operation, error=error)
    return outcomes


def _call(clients: AwsClients, call: Call, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    params = _resolve(dict(call.params), results)
    if call.method.startswith(WAIT_PREFIX):
        return _wait(clients.client(call.service), call.method.removeprefix(WAIT_PREFIX), params)
    response = getattr(clients.client(call.service), call.method)(**params)
    response.pop("ResponseMetadata", None)
    return response


def _wait(client: Any, waiter: str, params: dict[str, Any]) -> dict[str, Any]:
    """Poll with the botocore waiter (its calls are reads, counted as such) until it succeeds."""
    try:
        client.get_waiter(waiter).wait(**params, WaiterConfig=dict(WAITER_CONFIG))
    except WaiterError as exc:
        last = exc.last_response if isinstance(exc.last_response, dict) else {}
        config = last.get("Configuration", last)  # function_updated_v2 polls GetFunction
        status = config.get("LastUpdateStatus")
        detail = config.get("LastUpdateStatusReason") or ""
        if status == "Failed":
            reason = f"Failed: {detail}" if detail else "Failed"
        elif "Max attempts exceeded" in str(exc.kwargs.get("reason", "")):
            wait = WAITER_CONFIG["Delay"] * WAITER_CONFIG["MaxAttempts"]
            reason = f"still {status or 'in progress'} after {wait} s"
        else:
            reason = str(exc.kwargs.get("reason") or exc)
        try:
            subject = _WAITED_FOR[waiter].format(**params)
        except (KeyError, IndexError):
            subject = f"{waiter} ({', '.join(f'{k}={v}' for k, v in params.items())})"
        raise WaitFailed(" ".join(f"{subject} did not finish: {reason}".split())) from None
    return {}


def _summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool))}
