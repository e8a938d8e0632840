"""The ``pointsman`` command line's parser: every command, its options, its help and exit codes.

Each command's help opens with what it does and its exit codes (:data:`DESCRIPTIONS`); every
option has a help line with its default and its valid values (``tests/cli/test_help.py``).
The AWS tuning flags stand for the AWS and Pointsman variables of the same meaning.
"""

from __future__ import annotations

import argparse
import math
import os
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from controller import __version__
from controller.aws.clients import ONE_SHOT_THROTTLE_DEADLINE

if TYPE_CHECKING:
    pass


LOG_LEVELS = ("debug", "info", "warning", "error")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number of seconds")
    return value


def _host_port(text: str) -> str:
    _, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT with a port from 1 to 65535")
    return text


def _rate_limits(text: str) -> str:
    from controller.aws.ratelimit import RateLimitError, parse_limits

    try:
        parse_limits(text)
    except RateLimitError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("POINTSMAN_RATE_LIMITS: ")) from None
    return text


def _quota_share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share above 0 and at most 1 (0.5: half of each quota)")
    return value


# Flags that stand for the AWS environment: given, they win over the variable (set for this process).
_AWS_FLAGS = {
    "rate_limits": "POINTSMAN_RATE_LIMITS",
    "quota_share": "POINTSMAN_QUOTA_SHARE",
    "max_attempts": "AWS_MAX_ATTEMPTS",
    "retry_mode": "AWS_RETRY_MODE",
    "throttle_deadline": "POINTSMAN_THROTTLE_DEADLINE",
}


def aws_tuning_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rate-limits",
        type=_rate_limits,
        metavar="NAME=RATE[:BURST],...|off",
        help="requests per second per AWS quota bucket, over AWS's published quotas (env POINTSMAN_RATE_LIMITS)",
    )
    p.add_argument(
        "--quota-share",
        type=_quota_share,
        metavar="SHARE",
        help="share of each AWS quota bucket reads are paced to, above 0 and at most 1, default 0.5; writes an apply or rollout "
        "makes use the full quota (env POINTSMAN_QUOTA_SHARE)",
    )
    p.add_argument("--max-attempts", type=_int_between(1, 10), help="attempts per AWS call, default 5 (env AWS_MAX_ATTEMPTS)")
    p.add_argument("--retry-mode", choices=("standard", "adaptive", "legacy"), help="botocore retry mode, default standard (env AWS_RETRY_MODE)")
    p.add_argument(
        "--throttle-deadline",
        type=_seconds,
        help="seconds a reconcile keeps retrying throttled calls before it fails: default 300 for plan, apply, routes, explain and "
        "reconcile --once, 900 for run (env POINTSMAN_THROTTLE_DEADLINE)",
    )


def guardrail_args(p: argparse.ArgumentParser, *, from_env: bool = True) -> None:
    """--allow-protected, --max-changes, --max-deletions (README "Guardrails"). ``from_env``: plan
    and apply read the POINTSMAN_* variables in main; run and reconcile through their settings."""
    env = " (env POINTSMAN_{})"
    p.add_argument(
        "--allow-protected",
        action=argparse.BooleanOptionalAction if not from_env else "store_true",
        default=None,
        help="allow updating and deleting resources declared with protect: true; default off" + env.format("ALLOW_PROTECTED"),
    )
    p.add_argument(
        "--max-changes",
        type=_int_between(0, 1_000_000),
        metavar="N",
        help="refuse a plan of more than N actions before any write call; default no cap" + env.format("MAX_CHANGES"),
    )
    p.add_argument(
        "--max-deletions",
        type=_int_between(0, 1_000_000),
        metavar="N",
        help="refuse a plan of more than N deletions before any write call; default no cap" + env.format("MAX_DELETIONS"),
    )


ONE_SHOT_COMMANDS = ("plan", "apply", "routes", "explain", "reconcile", "import")


def _apply_aws_flags(args: argparse.Namespace) -> None:
    for name, variable in _AWS_FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            os.environ[variable] = f"{value:g}" if isinstance(value, float) else str(value)
    # A one-shot command (a CI job, a person at a terminal) gives up on throttling in minutes;
    # the long-running controller keeps the long deadline. The flag or the variable wins.
    if args.command in ONE_SHOT_COMMANDS and not os.environ.get("POINTSMAN_THROTTLE_DEADLINE"):
        os.environ["POINTSMAN_THROTTLE_DEADLINE"] = f"{ONE_SHOT_THROTTLE_DEADLINE:g}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pointsman", description="GitOps for Lambda aliases, API Gateway stages and domain mappings.")
    parser.add_argument("--version", action="version", version=f"pointsman {__version__}")
    parser.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default=None, help="debug|info|warning|error (default warning; env POINTSMAN_LOG_LEVEL)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--spec", default=os.environ.get("POINTSMAN_SPEC", "desired_state"), help="spec directory (default desired_state/)")
        p.add_argument("--allow-empty", action="store_true", help="a spec directory without *.yaml files is valid (manages nothing)")

    def target_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", metavar="NAME", help="only this target (a directory of the spec with a target.yaml); default every target")

    def aws_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="text (a review), json or markdown (a PR comment); default text")
        p.add_argument("--concurrency", type=_int_between(1, 64), default=8, help="parallel AWS reads per quota bucket, 1 to 64 (default 8)")
        p.add_argument("--parallelism", type=_int_between(1, 64), default=4, help="targets reconciled at once, 1 to 64 (default 4; a spec with targets)")
        target_arg(p)
        aws_tuning_args(p)

    p = sub.add_parser("validate", help="check the spec files (all problems, file:line)")
    spec_arg(p)
    target_arg(p)
    p = sub.add_parser("plan", help="show drift and the actions apply would take")
    spec_arg(p)
    aws_args(p)
    p.add_argument("--prune", action="store_true", help="plan deletion of extra resources")
    guardrail_args(p)
    p.add_argument(
        "--show-values",
        action="store_true",
        help="print environment values (default: names and digests only); text format, for a person at a terminal",
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument("--base", metavar="REV", help="also show what the spec changes against this git revision (a PR's base branch)")
    base.add_argument("--base-spec", metavar="DIR", help="also show what the spec changes against the spec in DIR")
    p = sub.add_parser("apply", help="converge AWS to the spec")
    spec_arg(p)
    aws_args(p)
    p.add_argument("--prune", action="store_true", help="delete extra resources in the managed scope")
    p.add_argument("--dry-run", action="store_true", help="plan and report, call nothing that writes")
    guardrail_args(p)
    p = sub.add_parser("routes", help="what clients reach: each domain base path and stage to its function versions, live and in git")
    spec_arg(p)
    aws_args(p)
    view = p.add_mutually_exclusive_group()
    view.add_argument("--live", dest="view", action="store_const", const="live", help="only the live chains")
    view.add_argument("--desired", dest="view", action="store_const", const="desired", help="only git's chains")
    p.set_defaults(view="both")
    p.add_argument("--exit-code", action="store_true", help="exit 2 when a route differs from git (default: 0)")
    p = sub.add_parser("run", help="follow a git branch and reconcile continuously (the controller)")
    _run_args(p)
    p = sub.add_parser("reconcile", help="one fetch + reconcile, then exit (for cron-style scheduling)")
    _run_args(p)
    p.add_argument("--once", action="store_true", required=True, help="run once and exit with plan's exit codes")
    p = sub.add_parser("history", help="print recorded reconciles")
    p.add_argument(
        "--state-dir",
        default=os.environ.get("POINTSMAN_STATE_DIR", ".pointsman"),
        help="the controller's state directory (default .pointsman; env POINTSMAN_STATE_DIR)",
    )
    p.add_argument("--limit", type=_int_between(1, 100_000), default=20, help="the newest runs to print, 1 to 100000 (default 20)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text or json (default text)")
    p.add_argument(
        "--resource", metavar="ID", help="only runs whose drift or actions name this resource (its id or key, or a prefix of either up to ':' or '/')"
    )
    p.add_argument("--target", metavar="NAME", help="the runs of this target (reconcile --once of a spec split into targets keeps them apart)")
    p = sub.add_parser("demo", help="run against an embedded AWS emulator and a local git repo (see README)")
    p.add_argument("--workdir", default=".pointsman-demo", help="where the demo keeps its repo and state (default .pointsman-demo)")
    p.add_argument("--aws-port", type=_int_between(1, 65535), default=4599, help="the emulator's port on 127.0.0.1 (default 4599)")
    p.add_argument("--listen", type=_host_port, default="127.0.0.1:8080", help="HOST:PORT of the status page and API (default 127.0.0.1:8080)")
    p.add_argument("--interval", type=_seconds, default=10.0, help="seconds between reconciles (default 10)")
    p.add_argument("--mode", choices=("apply", "detect"), default="apply", help="apply (heal drift) or detect (report only); default apply")
    p.add_argument("--keep", action="store_true", help="keep the repo and history of the last start (default: make them afresh, as the emulator starts empty)")
    p = sub.add_parser("status", help="the running controller's state: in sync, drifted, what will be done (exit 0 in sync, 2 drift, 1 error)")
    p.add_argument(
        "--url", default=os.environ.get("POINTSMAN_STATUS_URL") or "http://127.0.0.1:8080", help="the controller's address (default http://127.0.0.1:8080)"
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="text or json (default text)")
    p.add_argument(
        "--wait",
        metavar="STATE",
        choices=("in_sync", "drifted", "rolling_out", "error"),
        help="first wait for a new run to finish in STATE: in_sync, drifted, rolling_out or error",
    )
    p.add_argument("--commit", metavar="SHA", help="with --wait: also wait until this commit is the one reconciled")
    p.add_argument("--timeout", type=_seconds, default=120.0, help="seconds --wait waits (default 120)")
    p.add_argument("--target", metavar="NAME", help="only this target, of a controller whose spec is split into targets (with --wait: wait on its state)")
    p = sub.add_parser("rollout", help="abort, promote or retry an alias's rollout at the running controller (needs POINTSMAN_UI_TOKEN)")
    p.add_argument(
        "action",
        choices=("abort", "promote", "retry"),
        help="abort: roll back to the stable version; promote: skip the remaining steps; retry: start an aborted rollout again",
    )
    p.add_argument("alias", metavar="ALIAS", help="the alias, FUNCTION:ALIAS (getProducts:prod)")
    p.add_argument("--target", metavar="NAME", help="the target the alias is in, of a controller whose spec is split into targets")
    p.add_argument(
        "--url", default=os.environ.get("POINTSMAN_STATUS_URL") or "http://127.0.0.1:8080", help="the controller's address (default http://127.0.0.1:8080)"
    )
    p = sub.add_parser("approve", help="approve the actions a controller's run left waiting (approve: manual); it applies them at once")
    p.add_argument("run", metavar="RUN_ID", type=_int_between(1, 10**12), help="the run waiting for approval (its id on the status page or in /api/status)")
    p.add_argument("--target", metavar="NAME", help="the target whose run it is (each target numbers its own runs), of a spec split into targets")
    p.add_argument(
        "--url", default=os.environ.get("POINTSMAN_STATUS_URL") or "http://127.0.0.1:8080", help="the controller's address (default http://127.0.0.1:8080)"
    )
    p = sub.add_parser("schema", help="print the spec file JSON Schema (or, with --api, that of /api/status)")
    p.add_argument("--api", action="store_true", help="print the JSON Schema of the controller's /api/status document instead (default: the spec file's)")
    p = sub.add_parser("iam-policy", help="print the least-privilege IAM policy Pointsman needs")
    p.add_argument(
        "--read-only",
        action="store_true",
        help="only the reads (plan, routes, explain, detect mode, import): no write action (default: reads and writes)",
    )
    p.add_argument(
        "--spec",
        default=os.environ.get("POINTSMAN_SPEC"),
        help="spec directory: the SSM parameters its environments name are added (default desired_state/ when it exists)",
    )
    p.add_argument("--target", metavar="NAME", help="the policy of this target's role: every resource narrowed to its account and Region")
    p.add_argument(
        "--lease-table", metavar="TABLE", help="add what replicas sharing the targets through this DynamoDB table need on it (see pointsman lease-table)"
    )
    p.add_argument(
        "--trust",
        metavar="PRINCIPAL_ARN",
        help="print instead the trust policy of --target's role: PRINCIPAL_ARN (the controller's role, or the hub of a chain) may assume it",
    )
    p = sub.add_parser("import", help="write the spec of the live estate (functions, REST APIs, domains); reads AWS, writes nothing to it")
    p.add_argument("--out", required=True, metavar="DIR", help="the directory the spec files are written to (made when missing)")
    p.add_argument(
        "--functions", action="append", default=[], metavar="GLOB", help="functions whose name matches GLOB (repeatable); default all, when no scope is given"
    )
    p.add_argument(
        "--apis",
        action="append",
        default=[],
        metavar="GLOB",
        help="REST APIs whose name matches GLOB, or the API with that id (repeatable); default all, when no scope is given",
    )
    p.add_argument("--domains", action="append", default=[], metavar="NAME", help="custom domain names (repeatable); default all, when no scope is given")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        type=_tag,
        metavar="KEY=VALUE",
        help="functions, REST APIs and domains tagged KEY=VALUE (repeatable: every tag must match); default none",
    )
    p.add_argument("--force", action="store_true", help="overwrite files that exist (default: refuse, and write nothing)")
    p.add_argument(
        "--environment",
        action="store_true",
        help="also manage each function's $LATEST environment: names written, values as SSM Parameter Store references to fill in (default: not managed)",
    )
    p.add_argument(
        "--observe",
        action="store_true",
        help="write manage: observe on every function, API and domain: drift is reported, nothing written, until a PR sets manage: full (default: managed)",
    )
    p.add_argument("--concurrency", type=_int_between(1, 64), default=8, help="parallel AWS reads per quota bucket, 1 to 64 (default 8)")
    aws_tuning_args(p)
    sub.add_parser("events-rule", help="print the EventBridge event pattern that forwards console changes to --events-queue")
    p = sub.add_parser("lease-table", help="make the DynamoDB table replicas share the targets through, or print its CloudFormation")
    p.add_argument(
        "action",
        choices=("create", "cloudformation"),
        help="create: make the table (idempotent) and wait until it is ACTIVE; cloudformation: print a template of it",
    )
    p.add_argument("--table", default=os.environ.get("POINTSMAN_LEASE_TABLE") or None, metavar="NAME", help="the table's name (env POINTSMAN_LEASE_TABLE)")
    aws_tuning_args(p)
    _explain_args(sub.add_parser("explain", help="who serves this request? each step from URL to function version"))
    for name, choice in sub.choices.items():  # each command's help opens with what it does and its exit codes
        choice.description = "\n\n".join(textwrap.fill(paragraph, 88) for paragraph in DESCRIPTIONS[name].split("\n\n"))
        choice.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


DESCRIPTIONS = {
    "validate": "Check the spec files: every problem, each with its file:line. Reads no AWS.\n\nExit codes: 0 valid, 1 problems.",
    "plan": "Read live AWS and show the drift from the spec and the actions apply would take (a review: "
    "per field, with the routing changes clients would notice). Makes no write call.\n\n"
    "Exit codes (as terraform plan -detailed-exitcode): 0 in sync, 2 drift (changes planned), 1 error "
    "(or apply would refuse the plan: a protected resource, --max-changes, --max-deletions).",
    "apply": "Make AWS match the spec: the planned actions, in order, make-before-break; a failed action skips "
    "what depends on it, and the report says exactly what was and was not done.\n\n"
    "Exit codes: 0 applied or in sync, 1 error, a failed action, or nothing applied because a guardrail refused "
    "the plan (protected resource, --max-changes, --max-deletions) or a sync window is closed.",
    "routes": "What clients reach: each custom-domain base path and each stage, to the function versions it serves, "
    "live beside git.\n\n"
    "Exit codes: 0; with --exit-code, 2 when a route differs from git; 1 error.",
    "run": "The controller: follow a git branch and reconcile on a schedule, on a push webhook, on a new commit and "
    "(with --events-queue) on console changes; serves the status page, /api/status and /metrics. A spec split "
    "into targets (directories with a target.yaml) is one controller per target, each with its own credentials, "
    "--parallelism at once; with --lease-table, replicas share the targets through DynamoDB leases.\n\n"
    "Exit codes: 0 stopped by SIGTERM or SIGINT, 1 could not start.",
    "reconcile": "One fetch of the git branch and one reconcile, then exit: for cron-style scheduling.\n\n"
    "Exit codes (as plan): 0 in sync, 2 drift found (healed in apply mode) or a rollout in progress, 1 error.",
    "history": "Print the recorded reconciles of a controller's state directory, newest first.\n\nExit codes: 0, 1 error (no readable history).",
    "demo": "Run the controller against an embedded AWS emulator on 127.0.0.1 and a local git repo made from "
    "desired_state/ (the README walks through it).\n\n"
    "Exit codes: 0 stopped, 1 could not start.",
    "status": "The running controller's state, from its /api/status: in sync, drifted and what will be done, "
    "or the last error. With --wait, first wait for a new run to finish in a state. A spec split into targets: "
    "a line per target (account and Region, state, the replica holding it, drift); --target NAME shows that one alone.\n\n"
    "Exit codes: 0 in sync, 2 drifted or rolling out, 1 error or unreachable (or --wait timed out, or no such target); "
    "with --target, of that target.",
    "rollout": "Act on an alias's rollout without a commit, at the running controller (as the status page's buttons): "
    "abort rolls back to the stable version at once, promote skips the remaining steps, retry starts an aborted "
    "rollout again on the same commit. Sends POINTSMAN_UI_TOKEN.\n\n"
    "Exit codes: 0 asked for (the controller runs it now), 1 refused or unreachable.",
    "approve": "Approve what a run of the running controller left waiting for approval (aliases and stages "
    "declared with approve: manual): POST /approve/RUN_ID with the UI token (POINTSMAN_UI_TOKEN or "
    "POINTSMAN_UI_TOKEN_FILE). The controller applies those actions at once; an approval covers exactly the "
    "actions that run showed.\n\nExit codes: 0 approved, 1 not approved (another run is waiting, bad token, unreachable).",
    "schema": "Print the JSON Schema of a spec file (for editors and CI), or with --api that of the controller's "
    "/api/status document (every field described; times are ISO-8601 UTC).\n\nExit codes: 0.",
    "iam-policy": "Print the least-privilege IAM policy Pointsman needs, from what each managed kind calls "
    "(and the SSM parameters the spec names).\n\nExit codes: 0, 1 error.",
    "import": "Write the spec of what AWS holds: one file per REST API (its stages and the functions it routes to), "
    "functions.yaml and domains.yaml, sorted and byte-identical on a re-run; a plan right after is in sync. Reads "
    "only (no write call to AWS). What the spec cannot say yet is listed at the end and in `# not managed:` comments.\n\n"
    "Exit codes: 0 written, 1 error (a glob matching nothing, nothing in scope, --out not writable, a file that "
    "exists without --force: nothing written).",
    "lease-table": "Make the DynamoDB table through which several controller replicas share the targets (a "
    "lease per target, replica heartbeats, each target's shared state): on-demand capacity, one string hash key "
    "pk; wait until it is ACTIVE. Idempotent: a table of that name with that key is fine. Or print a CloudFormation "
    "template of it.\n\nExit codes: 0 the table is there (made, or already there) or the template printed, 1 error "
    "(a table of that name with another key, AWS unreachable or refusing).",
    "events-rule": "Print the EventBridge event pattern that forwards Lambda and API Gateway console changes "
    "(CloudTrail) to the queue of --events-queue.\n\nExit codes: 0.",
    "explain": "Who serves this request? Each step from the URL to the function version, as API Gateway and "
    "Lambda would resolve it, live or from the spec.\n\n"
    "Exit codes: 0 a function serves it, 3 the client gets an error (4XX or 5XX, shown), 1 the question cannot be asked.",
}


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value.strip()


def _explain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", default=os.environ.get("POINTSMAN_SPEC", "desired_state"), help="spec directory, for --desired (default desired_state/)")
    p.add_argument("--target", metavar="NAME", help="the target (account and Region) to ask, in a spec split into targets")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--live", dest="view", action="store_const", const="live", help="answer from the live account (default)")
    view.add_argument("--desired", dest="view", action="store_const", const="desired", help="answer from the spec (live reads for what it leaves out)")
    p.set_defaults(view="live")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text or json (default text)")
    p.add_argument("--api", help="REST API name (with --stage; then give a PATH instead of a URL)")
    p.add_argument("--stage", help="stage name (with --api)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="a request header (repeatable)")
    p.add_argument("--body", default="", help="the request body")
    p.add_argument("method", metavar="METHOD", help="the HTTP method: GET, POST, ...")
    p.add_argument(
        "url", metavar="URL", help="https://myapi.com/v1/products, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}/..., or a PATH with --api"
    )


_RUN_FLAGS = (
    "repo",
    "branch",
    "path",
    "interval",
    "jitter",
    "poll_interval",
    "mode",
    "state_dir",
    "listen",
    "concurrency",
    "parallelism",
    "lease_table",
    "lease_duration",
    "lease_renew_deadline",
    "lease_retry_period",
    "replica_id",
    "history_keep",
    "allow_empty",
    "events_queue",
    "events_wait",
    "events_ignore_principals",
    "rollout_poll",
    "ignore_alarms_at_start",
    "notify_webhook_url",
    "status_url",
    "allow_protected",
    "max_changes",
    "max_deletions",
)


def _run_args(p: argparse.ArgumentParser) -> None:
    env = "(env POINTSMAN_{})"
    p.add_argument("--repo", help="git URL or local path " + env.format("REPO"))
    p.add_argument("--branch", help="branch to follow, default main " + env.format("BRANCH"))
    p.add_argument("--path", help="spec directory in the repo, default desired_state " + env.format("PATH"))
    p.add_argument("--interval", type=float, help="seconds between reconciles, default 60 " + env.format("INTERVAL"))
    p.add_argument("--jitter", type=float, help="extra random delay as a fraction of the interval, default 0.1 " + env.format("JITTER"))
    p.add_argument("--poll-interval", type=float, help="seconds between checks for a new commit, default 15, 0 off " + env.format("POLL_INTERVAL"))
    p.add_argument("--mode", choices=("apply", "detect"), help="apply (self-heal) or detect (report only), default apply " + env.format("MODE"))
    p.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None, help="delete extra resources " + env.format("PRUNE"))
    p.add_argument(
        "--allow-empty",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a spec directory without *.yaml files is valid (manages nothing) " + env.format("ALLOW_EMPTY"),
    )
    p.add_argument("--state-dir", help="clone, history and exports, default .pointsman " + env.format("STATE_DIR"))
    p.add_argument("--listen", help="HTTP HOST:PORT, default 127.0.0.1:8080 " + env.format("LISTEN"))
    p.add_argument("--concurrency", type=int, help="parallel AWS reads per quota bucket, default 8 " + env.format("CONCURRENCY"))
    p.add_argument("--parallelism", type=int, help="targets reconciled at once (a spec split into targets), default 4 " + env.format("PARALLELISM"))
    p.add_argument(
        "--lease-table",
        metavar="TABLE",
        help="DynamoDB lease table (pointsman lease-table create): reconcile only the targets whose lease this replica takes, "
        "every write fenced by it " + env.format("LEASE_TABLE"),
    )
    p.add_argument("--lease-duration", type=float, help="seconds a lease lasts unrenewed, default 15 " + env.format("LEASE_DURATION"))
    p.add_argument(
        "--lease-renew-deadline",
        type=float,
        help="seconds without renewal before a replica stops on a target, default 10 " + env.format("LEASE_RENEW_DEADLINE"),
    )
    p.add_argument("--lease-retry-period", type=float, help="seconds between lease rounds, default 2 " + env.format("LEASE_RETRY_PERIOD"))
    p.add_argument("--replica-id", help="this replica's name in the lease table, default hostname-pid-random " + env.format("REPLICA_ID"))
    p.add_argument("--history-keep", type=int, help="runs kept in history, default 1000 " + env.format("HISTORY_KEEP"))
    p.add_argument(
        "--events-queue",
        metavar="URL",
        help="SQS queue of CloudTrail events (see `pointsman events-rule`): console changes reconciled at once " + env.format("EVENTS_QUEUE"),
    )
    p.add_argument("--events-wait", type=float, help="seconds one long poll of the queue waits, 0 to 20, default 20 " + env.format("EVENTS_WAIT"))
    p.add_argument(
        "--events-ignore-principals",
        metavar="ARN,...",
        help="role or user ARNs whose events are Pointsman's own, besides its user agent " + env.format("EVENTS_IGNORE_PRINCIPALS"),
    )
    p.add_argument(
        "--rollout-poll", type=float, help="seconds between looks at a rollout's gates while it is in progress, default 30 " + env.format("ROLLOUT_POLL")
    )
    p.add_argument(
        "--ignore-alarms-at-start",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start a rollout even while one of its gate alarms is in ALARM, default off " + env.format("IGNORE_ALARMS_AT_START"),
    )
    p.add_argument(
        "--notify-webhook-url",
        metavar="URL",
        help="POST a JSON message on each state change (drift found, healed, apply failed, invalid commit, back in sync),"
        " signed with POINTSMAN_NOTIFY_SECRET " + env.format("NOTIFY_WEBHOOK_URL") + "; Slack: env POINTSMAN_NOTIFY_SLACK_URL",
    )
    p.add_argument("--status-url", metavar="URL", help="the status page's address, linked from notifications " + env.format("STATUS_URL"))
    guardrail_args(p, from_env=False)
    aws_tuning_args(p)
