"""The shape of ``/api/status`` (``Controller.status_document``) as a JSON Schema.

``pointsman schema --api`` prints it. Objects refuse fields they do not name, so a field added to
the document and not here fails the test that validates real documents against this schema
(``tests/loop/test_status_schema.py``). Every time is ISO-8601 UTC to the second
(``2026-12-02T18:40:12Z``, ``loop.history.iso``); durations and ages are seconds (``_s``).
"""

from __future__ import annotations

import copy
from typing import Any

STATES = ("in_sync", "drifted", "rolling_out", "healing", "reconciling", "error", "starting")
RUN_STATUSES = ("running", "in_sync", "rolling_out", "drift", "applied", "failed", "invalid", "error", "interrupted", "refused", "deferred", "waiting")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "description": schema.get("description", "")}


def _time(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", "description": description + " (ISO-8601 UTC)"}


def _object(description: str, properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


def _str(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _int(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


def _seconds(description: str) -> dict[str, Any]:
    return {"type": "number", "description": description + " (seconds)"}


# On each entry of drift, healed, managed and routes of a spec split into targets: whose it is.
_TARGET_NAME = _str("the target it is in (a spec split into targets: the directory with its target.yaml); absent without targets")


_VERSIONS = _nullable(
    {
        "type": "array",
        "description": "function versions and their traffic weights (0..1); null when not known",
        "items": _object("one version", {"version": _str("the function version"), "weight": {"type": "number", "description": "its share of traffic"}}),
    }
)

_ACTION = _object(
    "an action of the last run's plan, with its outcome",
    {
        "resource": _str("the resource the action is on (kind/key)"),
        "operation": _str("what is done (the AWS operation, or none)"),
        "reason": _str("why, in one line"),
        "outcome": _str(
            "succeeded, failed, skipped, planned (detect mode or not reached), held, not pruned, "
            "waiting (for approval), refused (a guardrail refused the plan), deferred (a sync window) or observed (manage: observe: never written)"
        ),
        "error": _str("why it failed, was skipped, is held or is observe-only"),
    },
    optional=("resource", "error"),
)

_CHANGE = _object(
    "one field that differs",
    {"field": _str("the field"), "live": {"description": "its value in AWS"}, "desired": {"description": "its value in git"}},
)

_ACTOR = _object(
    "who made the change, from the CloudTrail event that named it (events configured: --events-queue)",
    {
        "arn": _str("the caller: userIdentity.arn (a role session's ARN for an assumed role)"),
        "source_ip": _str("sourceIPAddress: the caller's address, or the AWS service that called"),
        "user_agent": _str("userAgent: the console, the AWS CLI, an SDK..."),
        "event": _str("the call, e.g. lambda UpdateAlias"),
        "event_time": _str("eventTime, as CloudTrail wrote it (ISO-8601 UTC)"),
        "event_id": _str("eventID, to find the record in CloudTrail"),
    },
)

_DRIFT = _object(
    "a resource that differs from git after the last run",
    {
        "resource": _str("the resource (kind/key)"),
        "kind": _str("its kind (lambda_alias, api_stage, ...)"),
        "status": {"enum": ["missing", "modified", "extra"], "description": "missing in AWS, modified, or extra (in AWS, not in git)"},
        "changes": {"type": "array", "items": _CHANGE, "description": "the fields that differ (modified)"},
        "reason": _str("why it differs, when the fields do not say"),
        "parent": _str("the resource an extra entry is inside of (a stage variable's stage)"),
        "first_seen": _nullable(_time("when a run first found it differing")),
        "actions": {"type": "array", "items": _ACTION, "description": "what heals it, with each action's outcome"},
        "actor": _ACTOR,
        "target": _TARGET_NAME,
    },
    optional=("reason", "parent", "actor", "target"),
)

_HEALED = _object(
    "a drift a run healed in the last hour",
    {
        "resource": _str("the resource (kind/key)"),
        "kind": _str("its kind"),
        "status": {"enum": ["missing", "modified", "extra"], "description": "how it differed: missing in AWS, modified, or extra"},
        "changes": {"type": "array", "items": _CHANGE, "description": "the fields that differed (live: what someone set; desired: git's value, restored)"},
        "reason": _str("why it differed, when the fields do not say"),
        "parent": _str("the resource an extra entry was inside of"),
        "first_seen": _time("when a run first found it differing"),
        "healed_at": _time("when the run that healed it finished applying"),
        "run": _int("the id of the run that healed it (/runs/ID; of its target's history: /runs/ID?target=NAME)"),
        "actor": _ACTOR,
        "target": _TARGET_NAME,
    },
    optional=("reason", "parent", "actor", "target"),
)

_ROLLOUT = _object(
    "a rollout the last run drove: where it stands and what its gates read",
    {
        "alias": _str("the alias (FUNCTION/ALIAS)"),
        "line": _str("where it stands, in one line (as the plan and the page say it)"),
        "event": _nullable(
            {"enum": ["rollout_started", "rollout_step", "rollout_aborted", "rollout_promoted"], "description": "what the run did to it, if anything"}
        ),
        "status": {
            "enum": ["progressing", "waiting", "aborted", "promoted"],
            "description": "progressing, waiting to start (a gate alarm in ALARM), aborted (rolled back) or promoted",
        },
        "stable": _str("the version that served before (rolled back to on abort)"),
        "target": _str("the version being rolled out; in a document of targets, the target's name (the version is then in version)"),
        "version": _str("in a document of targets: the version being rolled out"),
        "step": _int("the current step (0-based; total once promoted)"),
        "total": _int("the schedule's steps (the new version takes all traffic after them)"),
        "weight": {"type": "number", "minimum": 0, "maximum": 100, "description": "the new version's share of traffic once the run's step is applied (%)"},
        "reason": _str("why it waits, holds or was aborted"),
        "gates": {"type": "object", "description": "the last gate readings: alarms (name -> state), errors, invocations, error_rate"},
        "applied": {"type": "boolean", "description": "was the run's step applied (false in detect mode, or when its UpdateAlias failed)"},
        "next_check": _nullable(_time("when the controller looks again (a pause ends, the gates are polled)")),
    },
    optional=("status", "stable", "target", "version", "step", "total", "weight", "reason", "gates"),
)

_COMMIT = _nullable(
    _object(
        "a commit of the followed branch; null when there is none",
        {
            "sha": _str("the full sha"),
            "short": _str("the short sha"),
            "subject": _str("the first line of its message"),
            "author": _str("its author"),
            "time": _nullable(_time("when it was committed; null when the commit is not fetched")),
        },
    )
)

_CHAIN = _nullable(
    _object(
        "one side's path from the entry to the function versions; null when that side has none",
        {
            "api": _nullable(_str("the REST API")),
            "stage": _nullable(_str("the stage")),
            "variable": _nullable(_str("the stage variable that picks the alias")),
            "value": _nullable(_str("its value")),
            "selector": _nullable(_str("the API version selector (header or media type)")),
            "function": _nullable(_str("the function")),
            "alias": _nullable(_str("the alias")),
            "versions": _VERSIONS,
            "declared": {"type": "boolean", "description": "is the alias declared in git"},
            "problem": _nullable(_str("why the route stops here")),
        },
    )
)

_ROUTE = _object(
    "one entry's route to a function alias, live and in git (as `pointsman routes --format json`)",
    {
        "entry": _str("the custom domain path or stage the client calls"),
        "entry_kind": {"enum": ["domain", "stage"], "description": "a custom domain mapping or a stage"},
        "methods": {"type": "array", "items": {"type": "string"}, "description": "the methods and resources routed"},
        "api": _nullable(_str("the REST API")),
        "stage": _nullable(_str("the stage")),
        "variable": _nullable(_str("the stage variable that picks the alias")),
        "value": _nullable(_str("its value")),
        "selector": _nullable(_str("the API version selector")),
        "function": _nullable(_str("the function")),
        "alias": _nullable(_str("the alias")),
        "live": _VERSIONS,
        "desired": _VERSIONS,
        "differs": {"type": "boolean", "description": "would applying git move this route's clients"},
        "in_git": {"type": "boolean", "description": "is the entry in git"},
        "text": _str("the route in one line"),
        "chain": _str("the hops from the entry to the alias"),
        "live_text": _str("what clients get now"),
        "desired_text": _str("what git says they get"),
        "live_chain": _CHAIN,
        "git_chain": _CHAIN,
        "target": _TARGET_NAME,
    },
    optional=("target",),
)

_MANAGED = _object(
    "a resource git declares, as the last run found it",
    {
        "resource": _str("the resource (kind/key)"),
        "kind": _str("its kind (lambda_alias, rest_stage, ...)"),
        "source": _nullable(_str("the spec file:line that declares it (desired_state/products.yaml:7); null when derived from no one line")),
        "status": {
            "enum": ["in_sync", "differs", "missing", "healed"],
            "description": "in_sync, differs from git, missing in AWS, or healed by the last run",
        },
        "live": _nullable(
            {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "the fields git sets, each as people read it (JSON for strings, lists and maps;"
                " an environment value is its digest; a generated mapping template is 'generated template, N lines';"
                " a value over 200 characters is cut), as read before the run applied anything; for a healed"
                " resource, the values written; null when it is not in AWS",
            }
        ),
        "target": _TARGET_NAME,
    },
    optional=("target",),
)

_LAST_RUN = _nullable(
    _object(
        "the last finished run, as in /api/history without drift, AWS calls, warnings and rollouts (see rollouts); null before the first",
        {
            "id": _int("the run's id (/runs/ID); a folded entry keeps its first run's"),
            "started": _time("when it started (the first of folded runs)"),
            "finished": _nullable(_time("when it finished")),
            "duration_s": _nullable(_seconds("how long it took")),
            "age_s": _nullable(_seconds("how long ago it finished")),
            "trigger": _str("what started it: schedule, webhook, new-commit, event, manual, git-retry, once"),
            "triggers": {"type": "array", "items": {"type": "string"}, "description": "the distinct triggers of the runs folded into the entry"},
            "mode": {"enum": ["detect", "apply"], "description": "the mode it ran in"},
            "status": {"enum": list(RUN_STATUSES), "description": "its result"},
            "commit_sha": _nullable(_str("the commit reconciled as desired state")),
            "head_sha": _nullable(_str("the newest commit fetched (may be invalid)")),
            "drift_count": _int("resources that differed when it started"),
            "actions": {"type": "array", "items": _ACTION, "description": "its plan, with each action's outcome"},
            "error": _nullable(_str("what went wrong")),
            "count": {"type": "integer", "minimum": 1, "description": "identical consecutive runs folded into this entry"},
            "last_started": _nullable(_time("when the newest folded run started; null for one run")),
            "last_finished": _nullable(_time("when the newest folded run finished; null for one run")),
            "target": _str("the target whose run it is (a spec split into targets; its run ids are its own: /runs/ID?target=NAME)"),
            "replica": _nullable(_str("the replica that ran it (a target's last run, with a lease table)")),
        },
        optional=("target", "replica"),
    )
)

_RUNNING = _nullable(
    _object(
        "the run in progress; null when none",
        {
            "id": _int("its id"),
            "trigger": _str("what started it"),
            "started": _time("when it started"),
            "drift": _int("resources found differing (once planned)"),
            "actions": _int("actions planned (once planned)"),
        },
        optional=("drift", "actions"),
    )
)

_GUARDRAILS = _object(
    "the guardrails (README: Guardrails): the limits set, and what they held back in the last run",
    {
        "allow_protected": {"type": "boolean", "description": "may a plan change resources declared with protect: true (--allow-protected)"},
        "max_changes": _nullable(_int("a plan of more actions is refused (--max-changes); null: no cap")),
        "max_deletions": _nullable(_int("a plan of more deletions is refused (--max-deletions); null: no cap")),
        "refused": {"type": "array", "items": {"type": "string"}, "description": "why the last run's plan was refused (nothing was applied), one line each"},
        "window": _nullable(_str("the sync window that deferred the last run's applies, and when it ends")),
        "approval": _nullable(
            _object(
                "the run waiting for approval: `pointsman approve RUN` or the page's Approve button applies its actions",
                {
                    "run": _int("the run's id"),
                    "actions": {"type": "array", "items": _ACTION, "description": "the actions waiting"},
                    "target": _str("the target whose run it is (a spec split into targets)"),
                },
                optional=("target",),
            )
        ),
    },
)

_TARGET = _object(
    "one target of a spec split into targets (an AWS account and Region, a directory with its target.yaml), as its last run left it",
    {
        "name": _str("the target's name (its directory)"),
        "account_id": _nullable(_str("the AWS account it is in; null when target.yaml does not say")),
        "region": _nullable(_str("its AWS Region; null when target.yaml does not say")),
        "state": {"enum": list(STATES), "description": "its state in one word"},
        "state_reason": _str("its state in one line"),
        "holder": _nullable(_str("the replica holding its lease; null without a lease table, or when nobody holds it")),
        "here": {"type": "boolean", "description": "does this replica reconcile it"},
        "since": _nullable(_time("when the holder took its lease")),
        "epoch": _nullable(_int("the lease's epoch (taken over: one more)")),
        "applied_commit": _nullable(_str("the commit its last run reconciled without problems")),
        "last_run": _LAST_RUN,
        "drift_count": _int("its resources that differ from git"),
        "error": _nullable(_str("what went wrong in its last run")),
        "updated": _nullable(_time("when this summary was written (of a target another replica holds: read from the lease table)")),
    },
)

_REPLICA = _nullable(
    _object(
        "the replicas sharing the targets through a lease table (this one and the others); null without a lease table",
        {
            "id": _str("this replica's id"),
            "lease_table": _nullable(_str("the DynamoDB lease table; null without one")),
            "holds": {"type": "array", "items": {"type": "string"}, "description": "the targets this replica holds (none: a standby)"},
            "replicas": {
                "type": "array",
                "description": "every replica known to the lease table, this one included",
                "items": _object(
                    "one replica",
                    {
                        "id": _str("its id"),
                        "alive": {"type": "boolean", "description": "did it renew its heartbeat in time"},
                        "holds": _int("how many targets it holds"),
                        "renewed": _nullable(_time("when it last renewed its heartbeat")),
                    },
                ),
            },
        },
    )
)


STATUS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Pointsman /api/status",
    **_object(
        "The controller's state: what it follows, whether live AWS matches git, what differs and what will be done."
        " Every time is ISO-8601 UTC to the second; fields ending in _s are seconds.",
        {
            "repo": _str("the git repository followed (credentials removed)"),
            "branch": _str("the branch followed"),
            "path": _str("the spec directory in the repository"),
            "mode": {"enum": ["detect", "apply"], "description": "detect reports drift, apply heals it"},
            "prune": {"type": "boolean", "description": "are extra resources (in AWS, not in git) deleted"},
            "state": {"enum": list(STATES), "description": "the state in one word"},
            "state_reason": _str("the state in one line"),
            "now": _time("when the document was made"),
            "applied_commit": _nullable(_str("the commit last reconciled without problems (the desired state)")),
            "head_commit": _nullable(_str("the newest commit fetched")),
            "head_valid": _nullable({"type": "boolean", "description": "is the newest commit's spec valid; null before a fetch"}),
            "commits": _object("the desired and newest commits", {"desired": _COMMIT, "head": _COMMIT}),
            "spec_errors": {"type": "array", "items": {"type": "string"}, "description": "why the newest commit is invalid, each with file:line"},
            "git": _object(
                "the git remote",
                {
                    "reachable": {"type": "boolean", "description": "did the last fetch succeed"},
                    "error": _nullable(_str("why the last fetch failed")),
                    "last_ok": _nullable(_time("when a fetch last succeeded")),
                },
            ),
            "running": _RUNNING,
            "last_run": _LAST_RUN,
            "next_run_at": _nullable(_time("when the next scheduled run starts")),
            "next_run_in_s": _nullable(_seconds("how soon the next scheduled run starts")),
            "drift": {"type": "array", "items": _DRIFT, "description": "what differs from git after the last run"},
            "drift_found_by_last_run": _int("resources that differed when the last run started"),
            "healed_by_last_run": {"type": "array", "items": {"type": "string"}, "description": "the resources the last run healed"},
            "rollouts": {"type": "array", "items": _ROLLOUT, "description": "the rollouts the last run drove (none when no alias is rolling out)"},
            "healed": {"type": "array", "items": _HEALED, "description": "the drift healed in the last hour, newest first, with who made it when events say"},
            "in_sync": _nullable({"type": "boolean", "description": "does live AWS match git; null before the first run"}),
            "routes": {"type": "array", "items": _ROUTE, "description": "the routing view after the last full run"},
            "managed": {
                "type": "array",
                "items": _MANAGED,
                "description": "every resource git declares, with its file:line and live value, after the last run that planned without problems",
            },
            "warnings": {"type": "array", "items": {"type": "string"}, "description": "what the last run warned of: not drift, apply does not fix it"},
            "last_error": _nullable(_str("the last run's error")),
            "ready": {"type": "boolean", "description": "is the controller ready (/readyz)"},
            "ready_reason": _str("why (not) ready"),
            "guardrails": _GUARDRAILS,
            "targets": {
                "type": "array",
                "items": _TARGET,
                "description": "a spec split into targets: each target, sorted by name (state is then the worst of theirs, last_run the newest of any);"
                " absent for a spec of one target",
            },
            "replica": _REPLICA,
        },
        optional=("targets", "replica"),
    ),
}


def status_schema() -> dict[str, Any]:
    """The JSON Schema of ``/api/status`` (``pointsman schema --api``)."""
    return copy.deepcopy(STATUS_SCHEMA)
