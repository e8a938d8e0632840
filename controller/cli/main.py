"""`pointsman` command line: validate, plan, apply, import, schema, iam-policy.

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
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from controller.aws.clients import AWS_ERRORS, AwsClients, describe_error
from controller.cli.parser import _RUN_FLAGS, LOG_LEVELS, _apply_aws_flags, _parser
from controller.logs import configure
from controller.loop.history import HistoryError
from controller.loop.settings import StartupError
from controller.spec import SpecInvalid, json_schema, load_spec
from controller.spec.changes import SpecDiffError
from controller.views.words import actor_words, plural, short_sha, status_words, trigger_words

if TYPE_CHECKING:
    from controller.loop.settings import RunSettings

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


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
        if args.target or args.trust:
            return _target_policy(args, spec_dir)
        document = policy_document(load_spec(spec_dir, allow_empty=True) if spec_dir else None, read_only=args.read_only)
        if args.lease_table:
            from controller.engine.iam import with_lease_table

            document = with_lease_table(document, args.lease_table)
        print(json.dumps(document, indent=2))
        return EXIT_OK
    if args.command == "events-rule":
        from controller.loop.events import event_pattern

        print(json.dumps(event_pattern(), indent=2))
        return EXIT_OK
    if args.command == "lease-table":
        return _lease_table(args)
    if args.command == "run":
        from controller.app import build_runner

        if args.log_level is None:
            configure("info")
        settings = _settings(args)
        while True:
            runner = build_runner(settings)
            code = runner.run_forever()
            if not getattr(runner, "restart", False):
                return code  # a fleet (or a runner stopped by a signal) ends the command
    if args.command == "reconcile":
        return _reconcile_once(_settings(args))
    if args.command == "history":
        return _history(args)
    if args.command == "rollout":
        from controller.cli import status as statuscmd

        try:
            print(statuscmd.rollout_control(args.url, args.alias, args.action, target=args.target))
        except statuscmd.StatusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        return EXIT_OK
    if args.command == "status":
        return _status(args)
    if args.command == "approve":
        from controller.cli import status as statuscmd

        try:
            print(statuscmd.approve(args.url, args.run, target=args.target))
        except statuscmd.StatusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        return EXIT_OK
    if args.command == "demo":
        from controller.demo.run import run_demo

        configure(args.log_level or "info")
        return run_demo(args)
    if args.command == "explain":
        return _explain(args)
    if args.command == "import":
        return _import(args)
    from controller.spec.targets import load_targets

    targets = load_targets(args.spec, allow_empty=args.allow_empty, only=getattr(args, "target", None))
    if args.command == "validate" and (len(targets) > 1 or targets[0].name):
        files = sum(len(t.spec.files) for t in targets)
        n = sum(len(t.spec.functions) + len(t.spec.rest_apis) + len(t.spec.domains) for t in targets)
        print(f"{args.spec}: valid ({len(targets)} targets, {files} files, {n} top-level items)")
        return EXIT_OK
    if args.command in ("plan", "apply") and (len(targets) > 1 or targets[0].name):
        return _targets_command(args, targets)
    if len(targets) > 1:
        names = ", ".join(t.name for t in targets)
        print(f"error: the spec declares {len(targets)} targets ({names}): pass --target NAME", file=sys.stderr)
        return EXIT_ERROR
    spec = targets[0].spec
    if args.command == "validate":
        n = len(spec.functions) + len(spec.rest_apis) + len(spec.domains)
        print(f"{args.spec}: valid ({len(spec.files)} files, {n} top-level items)")
        return EXIT_OK
    if args.command == "routes":
        from controller.views.routes_render import command as routes_command

        return routes_command(spec, args)

    from controller.engine.pipeline import reconcile
    from controller.engine.targets import clients_for
    from controller.live.scope import Scope
    from controller.views.report import render

    show_values = args.command == "plan" and args.show_values
    if show_values and args.format != "text":
        print(f"error: --show-values is for the text plan a person reads, not --format {args.format}", file=sys.stderr)
        return EXIT_ERROR
    base_changes = _base_changes(args, spec) if args.command == "plan" else None
    rails = _guardrails(args)
    clients = clients_for(targets[0])
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
        guardrails=rails,
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
    if result.refused:
        verb = "apply would refuse this plan" if mode == "plan" else "plan refused"
        print(f"error: {verb}: {'; '.join(result.refused)}; nothing was applied", file=sys.stderr)
        return EXIT_ERROR
    if result.window and mode == "apply" and result.plan.actions and not result.dry_run:
        print(f"error: {result.window}; nothing was applied", file=sys.stderr)
        return EXIT_ERROR
    if mode == "plan":
        return EXIT_OK if result.in_sync else EXIT_DRIFT
    return EXIT_ERROR if result.failed else EXIT_OK


def _target_policy(args: argparse.Namespace, spec_dir: str | None) -> int:
    """iam-policy --target NAME [--trust PRINCIPAL]: the target role's policy, narrowed to its
    account and Region, or the role's trust policy."""
    from controller.engine.iam import policy_document, scoped, trust_policy
    from controller.spec.targets import load_targets

    if not args.target or spec_dir is None:
        print("error: --trust needs --target NAME, and --target a spec with targets (--spec)", file=sys.stderr)
        return EXIT_ERROR
    (target,) = load_targets(spec_dir, allow_empty=True, only=args.target)
    settings = target.settings
    assert settings is not None  # load_targets found it by name
    if args.trust:
        document = trust_policy(args.trust, external_id=settings.external_id is not None)
    else:
        document = scoped(policy_document(target.spec, read_only=args.read_only), settings.account_id, settings.region)
    print(json.dumps(document, indent=2))
    return EXIT_OK


def _targets_command(args: argparse.Namespace, targets: list[Any]) -> int:
    """plan / apply of several targets: a section each and a total; exit 1 when any target
    failed, else (plan) 2 when any drifted."""
    from controller.engine.targets import reconcile_targets
    from controller.views.targets_report import render_targets, state

    mode = args.command
    if mode == "plan" and (args.show_values or args.base or args.base_spec):
        print("error: --show-values, --base and --base-spec take one target: add --target NAME", file=sys.stderr)
        return EXIT_ERROR
    runs = reconcile_targets(
        targets,
        parallelism=args.parallelism,
        apply=mode == "apply",
        prune=args.prune,
        dry_run=getattr(args, "dry_run", False),
        concurrency=args.concurrency,
        guardrails=_guardrails(args),
    )
    print(render_targets(runs, fmt=args.format, mode=mode))
    states = [state(run) for run in runs]
    for run in runs:
        if run.error is not None:
            print(f"error: target {run.target.label}: {run.error}", file=sys.stderr)
    if any(s in ("failed", "problems", "refused") for s in states):
        return EXIT_ERROR
    if mode == "plan":
        return EXIT_DRIFT if "drifted" in states else EXIT_OK
    return EXIT_OK


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _guardrails(args: argparse.Namespace) -> Any:
    """The guardrails of plan and apply: the flags, else POINTSMAN_ALLOW_PROTECTED,
    POINTSMAN_MAX_CHANGES and POINTSMAN_MAX_DELETIONS (a bad value is a SettingsError)."""
    from controller.engine.guardrails import Guardrails

    allow = args.allow_protected
    if allow is None:
        raw = os.environ.get("POINTSMAN_ALLOW_PROTECTED", "").strip().lower()
        if raw not in _TRUE + _FALSE:
            raise SettingsError(f"POINTSMAN_ALLOW_PROTECTED must be true or false, not {raw!r}")
        allow = raw in _TRUE
    caps: dict[str, int | None] = {}
    for name in ("max_changes", "max_deletions"):
        value = getattr(args, name)
        raw = os.environ.get(f"POINTSMAN_{name.upper()}", "").strip()
        if value is None and raw:
            if not raw.isdigit():
                raise SettingsError(f"POINTSMAN_{name.upper()} must be a whole number of 0 or more, not {raw!r}")
            value = int(raw)
        caps[name] = value
    return Guardrails(allow_protected=bool(allow), max_changes=caps["max_changes"], max_deletions=caps["max_deletions"])


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


def _lease_table(args: argparse.Namespace) -> int:
    """``pointsman lease-table create|cloudformation``."""
    from controller.loop.leases import LeaseTableError, cloudformation, create_table

    if args.action == "cloudformation":
        print(cloudformation(args.table), end="")
        return EXIT_OK
    if not args.table:
        print("error: lease-table create needs --table NAME (or POINTSMAN_LEASE_TABLE)", file=sys.stderr)
        return EXIT_ERROR
    try:
        created = create_table(AwsClients(), args.table)
    except LeaseTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except AWS_ERRORS as exc:
        print(f"error: lease table {args.table}: {describe_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if created:
        print(f"lease table {args.table} created (on-demand, string hash key pk) and ACTIVE")
    else:
        print(f"lease table {args.table} exists with the right key: nothing to do")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from controller.cli import status as statuscmd

    try:
        if args.commit and not args.wait:
            raise statuscmd.StatusError("--commit needs --wait STATE")
        if args.wait:
            document = statuscmd.wait(args.url, args.wait, args.timeout, commit=args.commit, target=args.target)
        else:
            document = statuscmd.fetch(args.url)
            if args.target:
                document = statuscmd.only_target(document, args.target)
    except statuscmd.StatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(document, indent=2) if args.format == "json" else statuscmd.render(document))
    return statuscmd.exit_code(document)


def _explain(args: argparse.Namespace) -> int:
    """Exit 0 a function serves it, 3 the client gets an error status, 1 the question is bad."""
    from controller.engine.targets import clients_for
    from controller.live.scope import Scope
    from controller.spec.targets import load_targets
    from controller.views.explain import DesiredEstate, Estate, ExplainError, LiveEstate, explain, parse_request, render

    try:
        request = parse_request(args.method, args.url, args.header, args.body, api=args.api, stage=args.stage)
        targets = load_targets(args.spec, only=args.target) if args.view == "desired" or args.target else []
        if len(targets) > 1:
            raise ExplainError(f"the spec declares {len(targets)} targets ({', '.join(t.name for t in targets)}): pass --target NAME")
        live = LiveEstate(Scope(clients_for(targets[0]) if targets else AwsClients()))
        estate: Estate = DesiredEstate(targets[0].spec, live) if args.view == "desired" else live
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
    """Exit 0 nothing to do, 2 drift found (healed in apply mode) or a rollout in progress, 1 error.
    A spec split into targets: every target's run in one document, exit 1 when any failed, else 2
    when any found drift, else 0."""
    from controller.loop.fleet import spec_targets
    from controller.loop.once import reconcile_targets_once, run_once
    from controller.loop.runner import Controller

    targets = spec_targets(settings)
    if targets:
        runs = reconcile_targets_once(settings, targets)
        print(json.dumps({"targets": {name: run.document for name, run in runs.items()}}, indent=2, default=str))
        for name, run in runs.items():
            if run.failed:
                print(f"error: target {name}: {run.document.get('error')}", file=sys.stderr)
    else:
        run = run_once(Controller(settings))
        print(json.dumps(run.document, indent=2, default=str))
        if run.failed:
            print(f"error: {run.document.get('error')}", file=sys.stderr)
        runs = {"": run}
    if any(run.failed for run in runs.values()):
        return EXIT_ERROR
    return EXIT_OK if all(run.in_sync for run in runs.values()) else EXIT_DRIFT


def _history(args: argparse.Namespace) -> int:
    from collections import Counter
    from datetime import UTC, datetime
    from pathlib import Path

    from controller.loop.history import History, parse_iso
    from controller.model import DriftStatus
    from controller.views.report import _SIGN
    from controller.views.values import change, text_lines

    state = Path(args.state_dir)
    if args.target:  # reconcile --once of a spec split into targets: one history per target
        state = state / "targets" / (args.target if args.target != "." else "_root")
    if state.exists() and not state.is_dir():
        print(f"error: state dir {state} is not a directory (--state-dir / POINTSMAN_STATE_DIR)", file=sys.stderr)
        return EXIT_ERROR
    path = state / "history.sqlite3"
    if not path.exists():
        hint = (
            f"has `pointsman reconcile --once` reconciled target {args.target} with --state-dir {args.state_dir}?"
            if args.target
            else f"has `pointsman run` used --state-dir {args.state_dir}?"
        )
        print(f"error: no history at {path} ({hint})", file=sys.stderr)
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
                print("\n".join(text_lines(change(str(c.get("field")), c.get("live"), c.get("desired")), "          ", text_up_to=1)))
            if isinstance(d.get("actor"), dict):
                actor = d["actor"]
                when = parse_iso(actor.get("event_time"))
                at = f" at {clock(when, '%Y-%m-%d %H:%M:%S')}Z" if when is not None else ""
                print(f"          changed by {actor_words(actor)} ({actor.get('event')}{at})")
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


class _ProgressBar:
    """On a terminal: a progress bar of what import is reading (tqdm, redrawn at most 5 times a
    second, the total growing as listed aliases add their policies), cleared at the end."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, desc="import: AWS reads", unit=" reads", file=sys.stderr, mininterval=0.2, leave=False, dynamic_ncols=True)
        self._lock = threading.Lock()
        self._what = "AWS reads"

    def __call__(self, what: str, done: int, total: int) -> None:
        with self._lock:
            self._bar.total = total
            if what != self._what or done == total:  # a new phase, or one finished: drawn at once
                self._what = what
                self._bar.set_description(f"import: {what}", refresh=False)
                self._bar.n = done
                self._bar.refresh()
            else:
                self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _import(args: argparse.Namespace) -> int:
    """``pointsman import``: bad input is one ``error:`` line and nothing written."""
    from pathlib import Path

    from controller.live.scope import Scope
    from controller.views.adopt import AdoptError, Scoping, check_out_dir, gather, summary, write

    out = Path(args.out)
    bar = _ProgressBar() if sys.stderr.isatty() else None
    try:
        check_out_dir(out)
        imported = gather(
            Scope(AwsClients(), concurrency=args.concurrency),
            Scoping(tuple(args.functions), tuple(args.apis), tuple(args.domains), tuple(args.tag)),
            observe=args.observe,
            environment=args.environment,
            progress=bar,
        )
        if bar is not None:
            bar.close()
            bar = None
        written = write(out, imported, force=args.force)
    except AdoptError as exc:
        if bar is not None:
            bar.close()
        print(f"error: {exc}; nothing was written.", file=sys.stderr)
        return EXIT_ERROR
    print(summary(imported, written))
    return EXIT_OK
