"""`pointsman` command line: validate, plan, apply, schema, iam-policy.

Exit codes (scripts rely on them):
  validate  0 valid, 1 invalid
  plan      0 in sync, 2 drift, 1 error
  apply     0 converged, 1 something failed (the report says what)
  explain   0 a function serves the request, 3 the client gets an error status, 1 error

A foreseeable problem with the command line, the environment, the state dir or an AWS
endpoint is one ``error: ...`` line on stderr and exit 1 (argparse's usage errors: 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from controller import __version__
from controller.aws.clients import AWS_ERRORS, ONE_SHOT_THROTTLE_DEADLINE, AwsClients, describe_error
from controller.logs import configure
from controller.loop.history import HistoryError
from controller.loop.settings import StartupError
from controller.spec import SpecInvalid, json_schema, load_spec
from controller.spec.changes import SpecDiffError
from controller.views.words import ARROW, plural, short_sha, status_words, trigger_words

if TYPE_CHECKING:
    from controller.loop.settings import RunSettings

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2
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


# Flags that stand for the AWS environment: given, they win over the variable (set for this process).
_AWS_FLAGS = {
    "rate_limits": "POINTSMAN_RATE_LIMITS",
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
    p.add_argument("--max-attempts", type=_int_between(1, 10), help="attempts per AWS call, default 5 (env AWS_MAX_ATTEMPTS)")
    p.add_argument("--retry-mode", choices=("standard", "adaptive", "legacy"), help="botocore retry mode, default standard (env AWS_RETRY_MODE)")
    p.add_argument(
        "--throttle-deadline",
        type=_seconds,
        help="seconds a reconcile keeps retrying throttled calls before it fails: default 300 for plan, apply, routes, explain and "
        "reconcile --once, 900 for run (env POINTSMAN_THROTTLE_DEADLINE)",
    )


ONE_SHOT_COMMANDS = ("plan", "apply", "routes", "explain", "reconcile")


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

    def aws_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="text (a review), json or markdown (a PR comment); default text")
        p.add_argument("--concurrency", type=_int_between(1, 64), default=8, help="parallel AWS reads per quota bucket, 1 to 64 (default 8)")
        aws_tuning_args(p)

    p = sub.add_parser("validate", help="check the spec files (all problems, file:line)")
    spec_arg(p)
    p = sub.add_parser("plan", help="show drift and the actions apply would take")
    spec_arg(p)
    aws_args(p)
    p.add_argument("--prune", action="store_true", help="plan deletion of extra resources")
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
        "--wait", metavar="STATE", choices=("in_sync", "drifted", "error"), help="first wait for a new run to finish in STATE: in_sync, drifted or error"
    )
    p.add_argument("--commit", metavar="SHA", help="with --wait: also wait until this commit is the one reconciled")
    p.add_argument("--timeout", type=_seconds, default=120.0, help="seconds --wait waits (default 120)")
    p = sub.add_parser("schema", help="print the spec file JSON Schema (or, with --api, that of /api/status)")
    p.add_argument("--api", action="store_true", help="print the JSON Schema of the controller's /api/status document instead (default: the spec file's)")
    p = sub.add_parser("iam-policy", help="print the least-privilege IAM policy Pointsman needs")
    p.add_argument(
        "--spec",
        default=os.environ.get("POINTSMAN_SPEC"),
        help="spec directory: the SSM parameters its environments name are added (default desired_state/ when it exists)",
    )
    sub.add_parser("events-rule", help="print the EventBridge event pattern that forwards console changes to --events-queue")
    _explain_args(sub.add_parser("explain", help="who serves this request? each step from URL to function version"))
    for name, choice in sub.choices.items():  # each command's help opens with what it does and its exit codes
        choice.description = "\n\n".join(textwrap.fill(paragraph, 88) for paragraph in DESCRIPTIONS[name].split("\n\n"))
        choice.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


DESCRIPTIONS = {
    "validate": "Check the spec files: every problem, each with its file:line. Reads no AWS.\n\nExit codes: 0 valid, 1 problems.",
    "plan": "Read live AWS and show the drift from the spec and the actions apply would take (a review: "
    "per field, with the routing changes clients would notice). Makes no write call.\n\n"
    "Exit codes (as terraform plan -detailed-exitcode): 0 in sync, 2 drift (changes planned), 1 error.",
    "apply": "Make AWS match the spec: the planned actions, in order, make-before-break; a failed action skips "
    "what depends on it, and the report says exactly what was and was not done.\n\n"
    "Exit codes: 0 applied or in sync, 1 error or a failed action.",
    "routes": "What clients reach: each custom-domain base path and each stage, to the function versions it serves, "
    "live beside git.\n\n"
    "Exit codes: 0; with --exit-code, 2 when a route differs from git; 1 error.",
    "run": "The controller: follow a git branch and reconcile on a schedule, on a push webhook, on a new commit and "
    "(with --events-queue) on console changes; serves the status page, /api/status and /metrics.\n\n"
    "Exit codes: 0 stopped by SIGTERM or SIGINT, 1 could not start.",
    "reconcile": "One fetch of the git branch and one reconcile, then exit: for cron-style scheduling.\n\n"
    "Exit codes (as plan): 0 in sync, 2 drift found (healed in apply mode), 1 error.",
    "history": "Print the recorded reconciles of a controller's state directory, newest first.\n\nExit codes: 0, 1 error (no readable history).",
    "demo": "Run the controller against an embedded AWS emulator on 127.0.0.1 and a local git repo made from "
    "desired_state/ (the README walks through it).\n\n"
    "Exit codes: 0 stopped, 1 could not start.",
    "status": "The running controller's state, from its /api/status: in sync, drifted and what will be done, "
    "or the last error. With --wait, first wait for a new run to finish in a state.\n\n"
    "Exit codes: 0 in sync, 2 drifted, 1 error or unreachable (or --wait timed out).",
    "schema": "Print the JSON Schema of a spec file (for editors and CI), or with --api that of the controller's "
    "/api/status document (every field described; times are ISO-8601 UTC).\n\nExit codes: 0.",
    "iam-policy": "Print the least-privilege IAM policy Pointsman needs, from what each managed kind calls "
    "(and the SSM parameters the spec names).\n\nExit codes: 0, 1 error.",
    "events-rule": "Print the EventBridge event pattern that forwards Lambda and API Gateway console changes "
    "(CloudTrail) to the queue of --events-queue.\n\nExit codes: 0.",
    "explain": "Who serves this request? Each step from the URL to the function version, as API Gateway and "
    "Lambda would resolve it, live or from the spec.\n\n"
    "Exit codes: 0 a function serves it, 3 the client gets an error (4XX or 5XX, shown), 1 the question cannot be asked.",
}


def _explain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", default=os.environ.get("POINTSMAN_SPEC", "desired_state"), help="spec directory, for --desired (default desired_state/)")
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
    "history_keep",
    "allow_empty",
    "events_queue",
    "events_wait",
    "events_ignore_principals",
    "notify_webhook_url",
    "status_url",
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
        "--notify-webhook-url",
        metavar="URL",
        help="POST a JSON message on each state change (drift found, healed, apply failed, invalid commit, back in sync),"
        " signed with POINTSMAN_NOTIFY_SECRET " + env.format("NOTIFY_WEBHOOK_URL") + "; Slack: env POINTSMAN_NOTIFY_SLACK_URL",
    )
    p.add_argument("--status-url", metavar="URL", help="the status page's address, linked from notifications " + env.format("STATUS_URL"))
    aws_tuning_args(p)


def _settings(args: argparse.Namespace) -> RunSettings:
    from pydantic import ValidationError

    from controller.loop.settings import RunSettings

    given = {name: getattr(args, name) for name in (*_RUN_FLAGS, "prune") if getattr(args, name, None) is not None}
    try:
        return RunSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        flag = "--" + field.replace("_", "-")
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            message = f"required: pass {flag} or set POINTSMAN_{field.upper()}"
        elif field and field not in given:
            shown = "" if "secret" in field or "token" in field else f"={first.get('input')!r}"
            message += f" (from POINTSMAN_{field.upper()}{shown})"
        raise SettingsError(f"{flag}: {message}" if field else message) from None


class SettingsError(Exception):
    pass


def _log_level(args: argparse.Namespace) -> str | None:
    """The --log-level flag, else POINTSMAN_LOG_LEVEL (validated), else None (the command's default)."""
    if args.log_level is not None:
        return str(args.log_level)
    raw = os.environ.get("POINTSMAN_LOG_LEVEL")
    if raw is None:
        return None
    if raw.strip().lower() not in LOG_LEVELS:
        raise SettingsError(f"POINTSMAN_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
    return raw.strip().lower()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.log_level = _log_level(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    configure(args.log_level or "warning")
    _apply_aws_flags(args)
    try:
        return _dispatch(args)
    except SpecInvalid as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{plural(len(exc.problems), 'problem')} in the spec; nothing was applied.", file=sys.stderr)
        return EXIT_ERROR
    except AWS_ERRORS as exc:
        print(f"error: {describe_error(exc)}; nothing was applied.", file=sys.stderr)
        return EXIT_ERROR
    except (SettingsError, StartupError, HistoryError, SpecDiffError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pointsman plan | head`: the reader left; say nothing more
        try:  # and nothing at exit either, when the interpreter flushes stdout
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
            pass
        return EXIT_ERROR
    except OSError as exc:  # the file system: a full disk, a path that went away, permissions
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback only when asked for
        if args.log_level == "debug":
            import traceback

            traceback.print_exc()
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"error: internal error: {text} (--log-level debug shows where)", file=sys.stderr)
        return EXIT_ERROR


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "schema":
        if args.api:
            from controller.loop.status_schema import status_schema

            print(json.dumps(status_schema(), indent=2))
            return EXIT_OK
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    if args.command == "iam-policy":
        from pathlib import Path

        from controller.engine.iam import policy_document

        spec_dir = args.spec or ("desired_state" if Path("desired_state").is_dir() else None)
        print(json.dumps(policy_document(load_spec(spec_dir, allow_empty=True) if spec_dir else None), indent=2))
        return EXIT_OK
    if args.command == "events-rule":
        from controller.loop.events import event_pattern

        print(json.dumps(event_pattern(), indent=2))
        return EXIT_OK
    if args.command == "run":
        from controller.app import build_runner

        if args.log_level is None:
            configure("info")
        return build_runner(_settings(args)).run_forever()
    if args.command == "reconcile":
        return _reconcile_once(_settings(args))
    if args.command == "history":
        return _history(args)
    if args.command == "status":
        return _status(args)
    if args.command == "demo":
        from controller.demo.run import run_demo

        configure(args.log_level or "info")
        return run_demo(args)
    if args.command == "explain":
        return _explain(args)
    spec = load_spec(args.spec, allow_empty=args.allow_empty)
    if args.command == "validate":
        n = len(spec.functions) + len(spec.rest_apis) + len(spec.domains)
        print(f"{args.spec}: valid ({len(spec.files)} files, {n} top-level items)")
        return EXIT_OK
    if args.command == "routes":
        from controller.views.routes_render import command as routes_command

        return routes_command(spec, args)

    from controller.engine.pipeline import reconcile
    from controller.live.scope import Scope
    from controller.views.report import render

    show_values = args.command == "plan" and args.show_values
    if show_values and args.format != "text":
        print(f"error: --show-values is for the text plan a person reads, not --format {args.format}", file=sys.stderr)
        return EXIT_ERROR
    base_changes = _base_changes(args, spec) if args.command == "plan" else None
    clients = AwsClients()
    mode = args.command
    scope = Scope(clients, concurrency=args.concurrency)
    result = reconcile(
        spec,
        clients,
        apply=mode == "apply",
        prune=args.prune,
        dry_run=getattr(args, "dry_run", False),
        concurrency=args.concurrency,
        scope=scope,
    )
    review = None
    if mode == "plan" and (args.format == "markdown" or base_changes is not None) and not result.problems:
        review = _review(args, spec, clients, scope, base_changes)
    elif mode == "plan" and args.format == "text" and not result.in_sync:
        from controller.views.report import Review

        review = Review(routes=_route_rows(spec, scope))  # the routing changes: in sync, none differ
    print(render(result, fmt=args.format, mode=mode, review=review, show_values=show_values))
    if result.problems:
        return EXIT_ERROR
    if mode == "plan":
        return EXIT_OK if result.in_sync else EXIT_DRIFT
    return EXIT_ERROR if result.failed else EXIT_OK


def _base_changes(args: argparse.Namespace, spec: Any) -> tuple[str, str | None, list[Any]] | None:
    """(label, base commit, spec changes) for --base / --base-spec, else None."""
    import tempfile
    from pathlib import Path

    from controller.spec.changes import export_base, spec_changes

    if args.base_spec:
        return f"--base-spec {args.base_spec}", None, spec_changes(load_spec(args.base_spec, allow_empty=True), spec)
    if not args.base:
        return None
    with tempfile.TemporaryDirectory(prefix="pointsman-base-") as tmp:
        directory, commit = export_base(Path(args.spec), args.base, Path(tmp))
        base = load_spec(directory, display_root=f"{args.base}:{args.spec}", allow_empty=True)
    return args.base, commit, spec_changes(base, spec)


def _review(args: argparse.Namespace, spec: Any, clients: AwsClients, scope: Any, base: tuple[str, str | None, list[Any]] | None) -> Any:
    from pathlib import Path

    from controller.spec.changes import head_commit
    from controller.views.report import Review

    review = Review(commit=head_commit(Path(args.spec)))
    if base is not None:
        review.base, review.base_commit, review.spec_changes = base
    try:
        review.region = clients.region
        review.account = str(clients.client("sts").get_caller_identity()["Account"])
    except AWS_ERRORS:
        pass  # the summary says "account ?"
    review.routes = _route_rows(spec, scope)
    return review


def _route_rows(spec: Any, scope: Any) -> list[dict[str, Any]]:
    """The routing view of the plan's reads; a failed read leaves it out, with a warning."""
    from controller.views.routes import route_rows

    try:
        return route_rows(spec, scope)
    except AWS_ERRORS as exc:
        print(f"warning: routing view left out: {describe_error(exc)}", file=sys.stderr)
        return []


def _status(args: argparse.Namespace) -> int:
    from controller.cli import status as statuscmd

    try:
        if args.commit and not args.wait:
            raise statuscmd.StatusError("--commit needs --wait STATE")
        document = statuscmd.wait(args.url, args.wait, args.timeout, commit=args.commit) if args.wait else statuscmd.fetch(args.url)
    except statuscmd.StatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(document, indent=2) if args.format == "json" else statuscmd.render(document))
    return statuscmd.exit_code(document)


def _explain(args: argparse.Namespace) -> int:
    """Exit 0 a function serves it, 3 the client gets an error status, 1 the question is bad."""
    from controller.live.scope import Scope
    from controller.views.explain import DesiredEstate, Estate, ExplainError, LiveEstate, explain, parse_request, render

    try:
        request = parse_request(args.method, args.url, args.header, args.body, api=args.api, stage=args.stage)
        live = LiveEstate(Scope(AwsClients()))
        estate: Estate = DesiredEstate(load_spec(args.spec), live) if args.view == "desired" else live
        explanation = explain(request, estate)
    except ExplainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except AWS_ERRORS as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    print(render(explanation, args.format))
    return explanation.exit_code


def _reconcile_once(settings: RunSettings) -> int:
    """Exit 0 nothing to do, 2 drift found (healed in apply mode), 1 error."""
    from controller.loop.runner import Controller

    controller = Controller(settings)
    try:
        record = controller.reconcile("once")
    finally:
        controller.history.close()
    print(json.dumps({k: v for k, v in record.as_json().items() if k != "api_calls"}, indent=2, default=str))
    if record.status in ("error", "invalid", "failed", "interrupted") or controller.status.head_valid is False:
        print(f"error: {record.error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if record.status == "in_sync" else EXIT_DRIFT


def _history(args: argparse.Namespace) -> int:
    from collections import Counter
    from datetime import UTC, datetime
    from pathlib import Path

    from controller.loop.history import History
    from controller.model import DriftStatus
    from controller.views.report import _SIGN, format_value

    state = Path(args.state_dir)
    if state.exists() and not state.is_dir():
        print(f"error: state dir {state} is not a directory (--state-dir / POINTSMAN_STATE_DIR)", file=sys.stderr)
        return EXIT_ERROR
    path = state / "history.sqlite3"
    if not path.exists():
        print(f"error: no history at {path} (has `pointsman run` used --state-dir {args.state_dir}?)", file=sys.stderr)
        return EXIT_ERROR
    resource = getattr(args, "resource", None)
    if resource is not None and not resource.strip():
        print("error: --resource needs a resource id, e.g. lambda_alias/getProducts/prod", file=sys.stderr)
        return EXIT_ERROR
    history = History(path)
    try:
        runs = history.recent(args.limit, resource=resource)
    finally:
        history.close()
    if args.format == "json":
        print(json.dumps([r.as_json() for r in runs], indent=2, default=str))
        return EXIT_OK

    def clock(ts: float, fmt: str = "%H:%M:%S") -> str:
        return datetime.fromtimestamp(ts, UTC).strftime(fmt)

    def sign(status: object) -> str:
        try:
            return _SIGN.get(DriftStatus(status), "?")
        except ValueError:
            return "?"

    for r in runs:
        took = f"{(r.finished - r.started):.1f}s" if r.finished else "-"
        commit = short_sha(r.commit_sha)
        trigger = trigger_words(r.trigger, r.triggers)
        head = (
            f"#{r.id} {clock(r.started, '%Y-%m-%d %H:%M:%S')}Z {took:>6} {r.mode:6} {trigger:12} {commit:12} {status_words(r.status):14}"
            f" {plural(r.drift_count, 'drifted resource')}, {plural(len(r.actions), 'action')}"
        )
        if r.count > 1:
            last = r.last_started if r.last_started is not None else r.started
            fmt = "%H:%M:%S" if clock(r.started, "%Y-%m-%d") == clock(last, "%Y-%m-%d") else "%Y-%m-%d %H:%M:%S"
            head += f" x{r.count} ({clock(r.started, fmt)}\u2013{clock(last, fmt)}Z)"
        print(head)
        for d in r.drift:
            print(f"      {sign(d.get('status'))} {d.get('resource')}  [{d.get('status')}]")
            if d.get("reason"):
                print(f"          {d['reason']}")
            for c in d.get("changes") or []:
                print(f"          {c.get('field')}: {format_value(c.get('live'))} {ARROW} {format_value(c.get('desired'))}")
        outcomes = Counter(str(a.get("outcome", "")) for a in r.actions)
        if outcomes.keys() & {"succeeded", "failed"}:
            for a in r.actions:
                print(f"      {a.get('outcome', ''):9} {a['operation']}  {a['resource']}" + (f": {a['error']}" if a.get("error") else ""))
        elif r.actions:
            n = len(r.actions)
            if set(outcomes) == {"planned"}:
                print(f"      {plural(n, 'action')} planned, not applied")
            else:
                detail = ", ".join(f"{k} {v or '?'}" for v, k in sorted(outcomes.items()))
                print(f"      {plural(n, 'action')} not applied ({detail})")
        if r.error:
            print(f"      error: {r.error}")
    if not runs:
        print(f"no recorded runs name {resource}" if resource is not None else "no runs recorded yet")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
