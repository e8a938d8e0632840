"""One voice for what people read: counts, states, triggers, shas, shares and values.

Pages, the CLI's text, the markdown plan and notifications use these helpers, so the same
thing reads the same everywhere. JSON outputs and ``/api/*`` keep the machine tokens
(``in_sync``, ``webhook:github``); these words are for people only.

- ``plural(1, "resource")`` is ``1 resource``, ``plural(2, "resource")`` ``2 resources``;
- a state or run status reads as words: ``in sync``, ``drifted``, ``healed``, ``error``;
- a trigger reads once, as words: ``schedule``, ``webhook from GitHub``, ``new commit``;
- a short sha is :data:`SHORT_SHA` characters; a share is ``90%``; the arrow between a live
  and a desired value is :data:`ARROW` in text, markdown and pages alike;
- lists and maps are JSON (``["200", "400"]``, ``{"3": 0.1}``);
- a generated mapping template reads as its length, ``generated template, 42 lines``, never
  whole; another long value is cut, ``"abc..." (1234 characters)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

ARROW = "->"
SHORT_SHA = 12

# Irregular plurals; every other word takes an "s".
_PLURALS = {"is": "are", "differs": "differ", "was": "were", "this": "these", "it": "they"}

# The controller's state (``/api/status`` ``state``) and a run's status (history ``status``).
_STATES = {
    "in_sync": "in sync",
    "drifted": "drifted",
    "rolling_out": "rolling out",
    "healing": "healing",
    "reconciling": "reconciling",
    "error": "error",
    "starting": "starting",
}
_RUN_STATUSES = {
    "in_sync": "in sync",
    "drift": "drifted",
    "rolling_out": "rolling out",
    "applied": "healed",
    "failed": "apply failed",
    "invalid": "invalid commit",
    "error": "error",
    "running": "running",
    "interrupted": "interrupted",
    "refused": "refused by a guardrail",
    "deferred": "deferred by a sync window",
    "waiting": "waiting for approval",
}
# An action's outcome (detect mode plans and never applies).
_OUTCOMES = {
    "observed": "observe only, not written",
    "planned": "planned, not applied",
    "dry-run": "dry run, not applied",
    "not pruned": "not pruned (prune is off)",
    "waiting": "waiting for approval",
    "refused": "refused, not applied",
    "deferred": "deferred by a sync window",
}
_TRIGGERS = {
    "schedule": "schedule",
    "new-commit": "new commit",
    "event": "event",
    "ui": "Reconcile now",
    "rollout": "rollout step",
    "once": "run once",
    "approve": "approval",
}
# A managed resource after the last run (``/api/status`` ``managed[].status``).
_MANAGED = {"in_sync": "in sync", "differs": "differs", "missing": "not in AWS", "healed": "healed by the last run"}
# Values longer than this are cut where people read them (the page's managed resources).
LONG_VALUE = 200
_SENDERS = {"github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket", "gitea": "Gitea", "generic": "a generic sender"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 resource``, ``2 resources``, ``0 resources`` (``many`` for an irregular plural)."""
    return f"{n} {noun(n, word, many)}"


def noun(n: int, word: str, many: str | None = None) -> str:
    """The word alone, for ``n``: ``resource`` or ``resources``; ``is`` or ``are``."""
    if n == 1:
        return word
    return many or _PLURALS.get(word) or word + "s"


def state_words(state: str | None) -> str:
    """The controller's state as words: ``in_sync`` is ``in sync``."""
    return _STATES.get(str(state), str(state or "unknown").replace("_", " "))


def status_words(status: str | None) -> str:
    """A run's status as words: ``drift`` is ``drifted``, ``applied`` is ``healed``."""
    return _RUN_STATUSES.get(str(status), str(status or "unknown").replace("_", " "))


def outcome_words(outcome: str | None) -> str:
    """An action's outcome as words: ``planned`` is ``planned, not applied``."""
    return _OUTCOMES.get(str(outcome), str(outcome or "").replace("_", " "))


def _one_trigger(trigger: str) -> str:
    if trigger.startswith("webhook:"):
        sender = trigger.split(":", 1)[1]
        return f"webhook from {_SENDERS.get(sender.lower(), sender)}" if sender else "webhook"
    return _TRIGGERS.get(trigger, trigger.replace("_", " ").replace("-", " "))


def trigger_words(trigger: str | None, triggers: Iterable[str] = ()) -> str:
    """What started a run, each trigger once: ``schedule``, ``webhook from GitHub``,
    ``new commit and schedule`` (``triggers``: those of the identical runs folded with it)."""
    names: list[str] = []
    for part in [*(str(trigger or "").split(",")), *triggers]:
        for piece in str(part).split(","):
            words = _one_trigger(piece.strip()) if piece.strip() else ""
            if words and words not in names:
                names.append(words)
    if not names:
        return "unknown"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def short_sha(sha: str | None, missing: str = "-") -> str:
    """A commit as a person reads it: its first :data:`SHORT_SHA` characters."""
    return sha[:SHORT_SHA] if sha else missing


def percent(share: float) -> str:
    """A share of 1 as a percentage: ``0.9`` is ``90%``."""
    return f"{round(share * 100, 4):g}%"


def as_json(value: Any) -> str:
    """A list or map as JSON (``["200", "400"]``, ``{"3": 0.1}``), keys sorted."""
    return json.dumps(value, sort_keys=True, default=str)


def actions_words(actions: list[dict[str, Any]], mode: str) -> str:
    """A run's actions in a few words: ``none``, ``3 planned, not applied`` (detect mode, or
    nothing applied), ``2 applied``, ``1 applied, 1 failed``."""
    if not actions:
        return "none"
    counts: dict[str, int] = {}
    for a in actions:
        outcome = str(a.get("outcome") or "planned")
        counts[outcome] = counts.get(outcome, 0) + 1
    if mode == "detect" or set(counts) <= {"planned"}:
        return f"{len(actions)} planned, not applied"
    words = {"succeeded": "applied"}
    return ", ".join(f"{n} {words.get(k, outcome_words(k))}" for k, n in counts.items())


# A CloudTrail record's userAgent, as words: the console's calls carry one of these names.
_CONSOLE_AGENTS = ("console.amazonaws.com", "signin.amazonaws.com", "AWS Internal")
_AGENTS = (
    ("aws-cli/", "the AWS CLI"),
    ("aws-sdk-", "an AWS SDK"),
    ("Boto3/", "boto3"),
    ("Botocore/", "botocore"),
    ("APN/1.0 HashiCorp/1.0 Terraform", "Terraform"),
    ("terraform", "Terraform"),
    ("cloudformation.amazonaws.com", "CloudFormation"),
    ("aws-sam-cli", "the SAM CLI"),
    ("aws-cdk", "the CDK"),
)


def agent_words(user_agent: str | None) -> str:
    """Which client made a call, from its CloudTrail ``userAgent``: ``the AWS console``,
    ``the AWS CLI``, ``boto3``... or the agent itself (first 60 characters)."""
    agent = (user_agent or "").strip()
    if not agent:
        return "an unknown client"
    if any(agent.startswith(name) or f"[{name}" in agent for name in _CONSOLE_AGENTS):
        return "the AWS console"
    for prefix, words in _AGENTS:
        if prefix.lower() in agent.lower():
            return words
    return agent[:60]


def actor_words(actor: dict[str, Any] | None) -> str:
    """Who made a change, in one line: ``arn:aws:iam::123456789012:user/alice with the AWS
    console from 203.0.113.9`` (``unknown`` without an actor)."""
    if not actor:
        return "unknown"
    line = str(actor.get("arn") or "an unknown caller")
    line += f" with {agent_words(actor.get('user_agent'))}"
    if actor.get("source_ip"):
        line += f" from {actor['source_ip']}"
    return line


def managed_words(status: str | None) -> str:
    """A managed resource's status as words: ``missing`` is ``not in AWS``."""
    return _MANAGED.get(str(status), str(status or "unknown").replace("_", " "))


def template_words(template: str) -> str:
    """A generated mapping template as people read it: ``generated template, 42 lines``."""
    return f"generated template, {plural(len(template.splitlines()), 'line')}"


def clipped(text: str, limit: int = LONG_VALUE) -> str:
    """``text``, or its first ``limit`` characters and its length when it is longer."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
