"""The long-running controller: follow a git branch, reconcile on a schedule and on push.

``Controller.reconcile`` is one run: fetch -> pick the desired commit -> reconcile -> record.
``Runner`` drives it with apscheduler (never two at once, missed runs coalesce), polls the
remote for new commits, serves HTTP, and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from controller.aws.clients import AWS_ERRORS, AwsClients, describe_error
from controller.engine.focus import Dependencies, Focus, Owner, focus, owner
from controller.engine.guardrails import Guardrails, fingerprint
from controller.engine.pipeline import Result, reconcile
from controller.live.scope import Scope
from controller.loop.events import Touch, blame
from controller.loop.gitsource import GitSource, GitSourceError, UnsafeSpecTree
from controller.loop.history import History, RunRecord, iso
from controller.loop.metrics import Metrics
from controller.loop.settings import Mode, RunSettings, StartupError
from controller.loop.view import HttpServer, LoopView
from controller.model import OutcomeStatus
from controller.rollout import ABORTED, CONTROLS, PROGRESSING, WAITING, RolloutBook, RolloutRecord
from controller.spec import Spec, SpecInvalid, SpecProblem, load_spec
from controller.spec.targets import target_dirs
from controller.views.managed import managed_entries
from controller.views.words import noun, plural, status_words, trigger_words

log = structlog.get_logger("pointsman.controller")

# The key of a target's shared state (``SharedStore``): what its next holder needs, and its summary.
SHARED_KEY = "controller"
SHARED_RUNS = 20  # the newest runs kept there, whichever replica made them


class SharedStore(Protocol):
    """A target's small JSON store every replica reads, written only by its lease's holder
    (``controller.loop.leases.TargetState``)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def put(self, key: str, value: Any) -> None: ...


class SharedStateError(Exception):
    """The shared state cannot be read: the run writes nothing (it would not know the rollouts' steps)."""


@dataclass
class Status:
    head_commit: str | None = None
    head_valid: bool | None = None
    spec_errors: list[str] = field(default_factory=list)
    applied_commit: str | None = None
    git_error: str | None = None
    git_ok_at: float | None = None
    last_error: str | None = None
    last_run: dict[str, Any] | None = None  # the last run as in /api/history (ISO times), without drift, calls, warnings
    last_run_finished: float | None = None  # when it finished (its age is computed from this)
    # What differs from git now: the drift the last run found, less what it healed.
    drift: list[dict[str, Any]] = field(default_factory=list)
    # The drift the last run found when it started (healed since if it was applied).
    found: list[dict[str, Any]] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)  # resources the last run healed
    planned: list[dict[str, Any]] = field(default_factory=list)  # actions not done, with their outcome
    first_seen: dict[str, float] = field(default_factory=dict)  # drifted resource -> when first found
    last_finished_at: float | None = None
    running: dict[str, Any] | None = None  # the run in progress: {"id", "trigger", "started"}
    routes: list[dict[str, Any]] = field(default_factory=list)  # the routing view after the last full run
    warnings: list[str] = field(default_factory=list)  # what the last reconcile warned of (not drift)
    # Every resource git declares, with its file:line and live value, after the last run that planned.
    managed: list[dict[str, Any]] = field(default_factory=list)
    # The drift healed in the last HEALED_KEPT_S seconds, newest first: each with its field
    # changes, when it was first seen, when and by which run it was healed, and who made it
    # (``actor``, from CloudTrail) when an event named it.
    heals: list[dict[str, Any]] = field(default_factory=list)
    # The rollouts of the last run: each alias's step, the line people read, the gate readings.
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    # Guardrails of the last run: why its plan was refused, the sync window that deferred it,
    # and the actions waiting for approval ({"run": id, "actions": [...]}).
    refused: list[str] = field(default_factory=list)
    window: str | None = None
    approval: dict[str, Any] | None = None


# How long the status page keeps a healed drift in view (an hour), and at most how many.
HEALED_KEPT_S = 3600.0
HEALED_KEPT_MAX = 200


def healed_by(record: RunRecord) -> list[str]:
    """The resources ``record`` healed. A rollout's step moves its alias on purpose: not a heal
    (the rollout's line says what happened)."""
    _, healed = remaining_drift(record.drift, record.actions)
    stepped = {f"lambda_alias/{r.get('alias')}" for r in record.rollouts}
    return [h for h in healed if h not in stepped]


def heals_of(record: RunRecord, first_seen: dict[str, float], healed_at: float) -> list[dict[str, Any]]:
    """What ``record`` healed, as the status page keeps it: the drift entries it found and healed,
    newest first, each with ``first_seen``, ``healed_at`` (epoch seconds) and the run's id."""
    names = set(healed_by(record))
    out = []
    for d in record.drift:
        if d["resource"] in names:
            out.append({**d, "first_seen": first_seen.get(d["resource"], record.started), "healed_at": healed_at, "run": record.id})
    return out


def remaining_drift(drift: list[dict[str, Any]], actions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The drift a run found, split into what still differs after it and what it healed (every
    action on the resource, or on the resource it belongs to, succeeded)."""
    succeeded = {a["resource"] for a in actions if a.get("outcome") == OutcomeStatus.SUCCEEDED.value}
    unfinished = {a["resource"] for a in actions if a.get("outcome") != OutcomeStatus.SUCCEEDED.value}
    remaining, healed = [], []
    for d in drift:
        owners = {d["resource"], d.get("parent") or d["resource"]}
        if owners & succeeded and not owners & unfinished:
            healed.append(d["resource"])
        else:
            remaining.append(d)
    return remaining, healed


def git_source(settings: RunSettings, state: Path) -> GitSource:
    """The branch the settings follow, mirrored in ``state``/repo.git."""
    return GitSource(
        url=settings.repo,
        branch=settings.branch,
        workdir=state / "repo.git",
        token=settings.git_token.get_secret_value() if settings.git_token else None,
        ssh_key_file=settings.git_ssh_key_file,
    )


class Controller:
    def __init__(
        self,
        settings: RunSettings,
        clients: AwsClients | None = None,
        target: str | None = None,
        fence: Callable[[], bool] | None = None,
        *,
        git: GitSource | None = None,
        shared: SharedStore | None = None,
        replica: str | None = None,
    ) -> None:
        """``target``: the name of the target whose directory ``settings.path`` is (its own
        ``target.yaml`` at the root, ``clients`` made with its credentials); None: a spec without
        targets. ``fence()``: asked before each write call a run sends (a conditional check of this
        replica's lease); False stops the run's writes there, as a stop request does. ``git``: the
        clone to read (shared by a fleet's targets; default: its own under the state dir).
        ``shared``: where replicas keep what a target's next holder needs (the lease table):
        read before each run, written after it; ``replica``: this replica's id, kept with the runs."""
        self.settings = settings
        self.target = target
        self.fence = fence
        if clients is None:
            # A hung endpoint fails the rest of a reconcile at once, and the next scheduled
            # reconcile tries it again.
            clients = AwsClients(timeout_hold=settings.interval / 2, quota_share=settings.quota_share)
            for service in ("lambda", "apigateway"):
                clients.client(service)  # a bad endpoint URL or region stops the start, not each reconcile
        self.clients = clients
        state = settings.prepare_state_dir()
        self.history = History(state / "history.sqlite3", keep=settings.history_keep)
        interrupted = self.history.mark_unfinished_as_interrupted()
        if interrupted:
            log.warning("closed runs left unfinished by the previous process", runs=interrupted)
        self.git = git if git is not None else git_source(settings, state)
        self.shared = shared
        self.replica = replica
        self._shared_applied: str | None = None  # the commit the last holder applied (shared state)
        self.exports = state / "specs"
        self.metrics = Metrics()
        self.notifier = notifier_of(settings, target)
        self.status = Status(applied_commit=self.history.last_good_commit())
        self.status.heals = self._heals_from_history()
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._good: tuple[str, Spec] | None = None
        self._invalid: dict[str, list[str]] = {}
        self.git_failures = 0
        self._scope: Scope | None = None  # the reads of the last full run, kept for events
        self._scope_commit: str | None = None
        # Who routes to whom in the kept reads (None: an event's run plans the whole spec), and the
        # status's routing view and managed resources by declaration, so a focused run replaces
        # only what it planned (``controller.engine.focus``).
        self._deps: Dependencies | None = None
        self._route_groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._managed_groups: dict[Owner | tuple[str, str], list[dict[str, Any]]] = {}
        self._focus: Focus | None = None  # the focus of the run in progress (None: the whole spec)
        self._widen = False  # a focused run left extra resources that prune would delete
        self._commits: dict[str, dict[str, Any]] = {}
        # When the next scheduled reconcile runs (the Runner knows; None without one).
        self.next_run_at: Callable[[], float | None] = lambda: None
        self.clock: Callable[[], float] = time.time  # rollouts' steps and pauses (tests move it)
        self.rollout_controls: dict[str, str] = {}  # alias -> abort | promote | retry, for the next run
        self.rollout_due_at: float | None = None  # when a rollout in progress wants the next run
        # Guardrails: the commit (and spec) last applied with no guardrail holding it back (its
        # protection outlives a removal; re-applying it is healing), the approved actions
        # (fingerprints), and those the last run left waiting for approval.
        self._applied: tuple[str, Spec] | None = None
        self._approved: frozenset[str] = frozenset()
        self._waiting: list[str] = []
        self._shared_runs: list[dict[str, Any]] = []  # the target's newest runs in the shared state, any replica's
        # Called with the head commit when it splits the spec into targets (a Runner restarts as a fleet).
        self.on_targets: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ one run

    def reconcile(
        self, trigger: str = "schedule", changed: Collection[tuple[str, ...]] | None = None, events: Sequence[Touch] = (), *, whole: bool = False
    ) -> RunRecord:
        """One run. ``changed``: the reads an event says changed (``("function", F)``...):
        only those are read again, against the spec and the reads of the last full run.
        ``events``: the CloudTrail events that brought the run; the drift each explains is
        kept with who made it (``actor``). With both, the run is focused: it plans only the
        declarations the events touched and what depends on them (``controller.engine.focus``),
        unless ``whole`` or the touch cannot be mapped. When a focused run leaves extra
        resources that prune would delete, a run over the whole spec follows at once."""
        record = self._reconcile_once(trigger, changed, events, whole)
        if self._widen:
            self._widen = False
            log.info("prune is on and the focused run found extra resources: planning the whole spec", run=record.id)
            record = self._reconcile_once(trigger, [], events, True)
        return record

    def _reconcile_once(self, trigger: str, changed: Collection[tuple[str, ...]] | None, events: Sequence[Touch], whole: bool) -> RunRecord:
        with self._lock:  # never two reconciles at once, whoever asks
            record = self.history.start(RunRecord(started=time.time(), trigger=trigger, mode=self.settings.mode.value))
            self.status.running = {"id": record.id, "trigger": trigger, "started": record.started}
            run_id = record.id  # logged at the start and the finish, whatever entry the run folds into
            log.info("reconcile started", run=run_id, trigger=trigger)
            started = time.monotonic()
            self._focus = None
            loaded = False
            self.clients.counter.reset()
            try:
                self._load_shared()
                loaded = True
                self._run(record, changed, events, whole)
            except SharedStateError as exc:
                record.status, record.error = "error", f"{exc}; nothing was read or written"
            except AWS_ERRORS as exc:
                record.status, record.error = "error", describe_error(exc)
            except Exception as exc:  # never crash the loop; say what happened
                log.exception("reconcile crashed")
                record.status, record.error = "error", f"internal error: {type(exc).__name__}: {exc}"
            finally:
                record.finished = time.time()
                record.api_calls = self.clients.counter.snapshot()
                self.history.finish(record)
                waiting = [a for a in record.actions if a.get("outcome") == "waiting"]
                self.status.approval = {"run": record.id, "actions": waiting} if record.status == "waiting" else None
                self.status.running = None
                self._publish(record, time.monotonic() - started)
                if loaded:
                    self._save_shared(record)
                if self.notifier is not None:
                    self.notifier.observe(self._as_state(record), head_invalid=self.status.head_valid is False)
            folded = {"folded_into": record.id, "count": record.count} if record.id != run_id else {}
            focused: dict[str, Any] = {"focus": self._focus_words()} if self._focus is not None else {}
            log.info("reconcile finished", run=run_id, status=record.status, drift=record.drift_count, error=record.error, **folded, **focused)
            return record

    def _load_shared(self) -> None:
        """Take over what the target's last holder left (the shared state): the commit it applied,
        drift first-seen times, approvals, and the rollouts at their steps. Nothing there yet:
        this replica's own state stands."""
        if self.shared is None:
            return
        try:
            state = self.shared.get(SHARED_KEY)
        except Exception as exc:  # noqa: BLE001 - the table's errors, whatever they are, are one line
            raise SharedStateError(f"the target's shared state cannot be read: {describe_error(exc) if isinstance(exc, AWS_ERRORS) else exc}") from None
        if not isinstance(state, dict):
            return
        applied = state.get("applied_commit")
        self._shared_applied = applied if isinstance(applied, str) else None
        if self._shared_applied:
            self.status.applied_commit = self._shared_applied
        if self._applied is not None and self._applied[0] != self._shared_applied:
            self._applied = None  # another replica applied since: its commit is the one to protect
        self.status.first_seen = {str(k): float(v) for k, v in (state.get("first_seen") or {}).items() if isinstance(v, int | float)}
        self._approved = frozenset(str(a) for a in state.get("approved") or [])
        self._waiting = [str(a) for a in state.get("waiting") or []]
        rollouts = state.get("rollouts")
        if isinstance(rollouts, dict):
            self.history.replace_rollouts({str(k): v for k, v in rollouts.items() if isinstance(v, dict)})
        self._shared_runs = [r for r in state.get("runs") or [] if isinstance(r, dict)]

    def _save_shared(self, record: RunRecord) -> None:
        """Leave what the target's next holder needs, and the summary every replica's status page
        shows, in the shared state (a write fenced on this replica's lease)."""
        if self.shared is None:
            return
        state_word, reason = self.state()
        whole = record.as_json()
        run = {k: whole.get(k) for k in ("id", "started", "finished", "trigger", "status", "commit_sha", "drift_count", "error", "count")}
        run["replica"] = self.replica
        runs = [run] + [r for r in self._shared_runs if r.get("replica") != self.replica or r.get("id") != record.id]
        self._shared_runs = runs[:SHARED_RUNS]
        value = {
            "applied_commit": self.status.applied_commit,
            "first_seen": self.status.first_seen,
            "approved": sorted(self._approved),
            "waiting": list(self._waiting),
            "rollouts": self.history.load_rollouts(),
            "replica": self.replica,
            "state": state_word,
            "state_reason": reason,
            "drift_count": len(self.status.drift),
            "error": record.error if record.status in ("error", "invalid", "failed") else None,
            "runs": self._shared_runs,
            "last_run": {**self.status.last_run, "replica": self.replica} if self.status.last_run else None,
            "updated": iso(time.time()),
        }
        try:
            self.shared.put(SHARED_KEY, value)
        except Exception as exc:  # noqa: BLE001 - a lost lease or an unreachable table: the next holder starts from the last state written
            log.warning("shared state not written", target=self.target, error=describe_error(exc) if isinstance(exc, AWS_ERRORS) else str(exc))

    def _focus_words(self) -> list[str]:
        f = self._focus
        assert f is not None
        return [f"function {n}" for n in sorted(f.functions)] + [f"REST API {n}" for n in sorted(f.apis)] + [f"domain {n}" for n in sorted(f.domains)]

    def _as_state(self, record: RunRecord) -> RunRecord:
        """The run as notifications see it: a focused run that changed nothing says what the whole
        estate is now (its drift merged with what the last full run found), not only its part."""
        if self._focus is None or record.status not in ("in_sync", "drift"):
            return record
        return dataclasses.replace(record, status="drift" if self.status.drift else "in_sync", drift=list(self.status.drift))

    def forget_reads(self) -> None:
        """Drop the reads kept for events (another replica holds the target now: its next run
        here, if the lease comes back, reads everything again)."""
        self._scope, self._scope_commit, self._deps = None, None, None

    def has_reads(self) -> bool:
        """Has a full run read the managed scope (so events can be matched against it)?"""
        return self._scope is not None

    def managed_reads(self, keys: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """Those of ``keys`` the last full run read: what an event can have changed for Pointsman.
        An empty answer means the event touched nothing managed (and costs no AWS read)."""
        scope = self._scope
        return [key for key in keys if scope is not None and scope.was_read(key)]

    def _run(self, record: RunRecord, changed: Collection[tuple[str, ...]] | None = None, events: Sequence[Touch] = (), whole: bool = False) -> None:
        if changed is not None and self._scope is not None and self._good is not None and self._good[0] == self._scope_commit:
            self._scope.invalidate(changed)
            # The commit the last run used: no fetch, no full scan; and, when the events can be
            # mapped to declarations, a plan of those alone.
            self._focus = None if whole else self._focus_of(self._scope, events)
            self._reconcile(record, self._scope, events, self._focus)
            return
        head = self._fetch()
        record.head_sha = head or self.status.head_commit
        if head is not None:
            self._consider(head)
        if self._good is None and self.status.applied_commit:
            self._consider(self.status.applied_commit, remember_invalid=False)
        if self._good is None:
            record.status = "invalid" if self.status.spec_errors else "error"
            record.error = self.status.git_error or "; ".join(self.status.spec_errors[:5]) or "no valid commit yet"
            return
        scope = Scope(self.clients, concurrency=self.settings.concurrency)
        self._deps = None
        self._reconcile(record, scope)
        # Events reuse these reads, for this commit, until the next full run.
        self._scope, self._scope_commit = scope, self._good[0]
        if record.status not in ("error", "refused", "deferred") and self.status.applied_commit == self._good[0]:
            try:
                self._deps = Dependencies.of(self._good[1], scope)  # the routing view read what it needs
            except AWS_ERRORS as exc:
                log.warning("events will plan the whole spec: the routes could not be read", error=describe_error(exc))

    def _focus_of(self, scope: Scope, events: Sequence[Touch]) -> Focus | None:
        """What the events' run plans (``controller.engine.focus``); None for the whole spec: the
        events name something the spec and the reads cannot place, or a REST API was created or
        deleted, or a person's word waits for the next run (an approval, a rollout control)."""
        if not events or self._deps is None or self._good is None or self._waiting or self.rollout_controls:
            return None
        if any(("rest_apis",) in touch.keys for touch in events):
            return None
        functions = {f for t in events for f in t.functions}
        api_ids = {a for t in events for a in t.api_ids}
        domains = {d for t in events for d in t.domains}
        return focus(self._good[1], scope, self._deps, functions, api_ids, domains)

    def _reconcile(self, record: RunRecord, scope: Scope, events: Sequence[Touch] = (), part: Focus | None = None) -> None:
        assert self._good is not None
        commit, whole = self._good
        if self._applied is None and self._shared_applied == commit:
            self._applied = (commit, whole)  # applied in full by the target's last holder
        spec = part.spec(whole, self._deps) if part is not None and self._deps is not None else whole
        applied_before = self._applied[1] if self._applied is not None else None
        if part is not None and applied_before is not None:
            applied_before = applied_before.part(part.functions, part.apis, part.domains)  # the protection of what the plan can touch
        record.commit_sha = commit
        head_ok = self.status.head_valid is not False
        write = self.settings.mode is Mode.APPLY and head_ok
        controls, self.rollout_controls = self.rollout_controls, {}
        book = RolloutBook(
            records={alias: RolloutRecord.from_dict(r) for alias, r in self.history.load_rollouts().items()},
            controls=controls if write else {},
            commit=commit,
            now=self.clock,
            ignore_alarms_at_start=self.settings.ignore_alarms_at_start,
        )
        rails = Guardrails(
            allow_protected=self.settings.allow_protected,
            max_changes=self.settings.max_changes,
            max_deletions=self.settings.max_deletions,
            now=datetime.fromtimestamp(self.clock(), UTC),
            heal=self._applied is not None and self._applied[0] == commit,
            approvals=True,
            approved=self._approved,
            protected_before=applied_before,
        )
        result = reconcile(
            spec,
            self.clients,
            apply=write,
            prune=self.settings.prune and part is None,  # what a part of the spec leaves out is not extra
            concurrency=self.settings.concurrency,
            should_stop=self.stop_requested.is_set,
            fence=self.fence,
            scope=scope,
            on_plan=self._planned,
            rollouts=book,
            guardrails=rails,
        )
        self._guarded(commit, whole, result, write)
        self._record_result(record, result, head_ok)
        self._rollouts(record, result, write, part)
        self._attribute(record, result, events)
        remaining, _ = remaining_drift(record.drift, record.actions)
        healed = healed_by(record)
        planned = [a for a in record.actions if a.get("outcome") != OutcomeStatus.SUCCEEDED.value]
        found, warnings = record.drift, list(record.warnings)
        if part is not None:
            # A focused run's findings replace what earlier runs found of what it planned; the
            # rest of the estate stays as the last full run (and later focused runs) saw it.
            def kept(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [e for e in entries if not part.covers(e["resource"], whole)]

            remaining, found, planned = kept(self.status.drift) + remaining, kept(self.status.found) + found, kept(self.status.planned) + planned
            warnings = [w for w in self.status.warnings if w.split(":", 1)[0] not in part.functions and w not in warnings] + warnings
            if result.plan.not_pruned and self.settings.prune:
                self._widen = True
        self.metrics.observe_result(result, remaining, warnings=len(warnings))
        now = time.time()
        # Drift is healed when the commit was applied already: a new commit's changes are a deployment, not a heal.
        healing = self.status.applied_commit == commit
        fresh = heals_of(record, self.status.first_seen, now) if healing else []
        self.status.heals = [h for h in fresh + self.status.heals if h["healed_at"] > now - HEALED_KEPT_S][:HEALED_KEPT_MAX]
        self.status.first_seen = {d["resource"]: self.status.first_seen.get(d["resource"], record.started) for d in remaining}
        self.status.drift, self.status.found, self.status.healed = remaining, found, healed
        self.status.planned = planned
        self.status.warnings = warnings
        self._routes(whole, scope, part)
        if not result.problems and not (write and (result.refused or result.window)):
            entries = managed_entries(result.managed, record.drift, remaining)
            if part is None:
                self.status.applied_commit = commit
                self.status.managed = entries
                self._managed_groups = _grouped(entries, _managed_owner)
            else:
                self._managed_groups.update(dict.fromkeys(part.owners(), []))
                self._managed_groups.update(_grouped(entries, _managed_owner))
                self.status.managed = [entry for group in self._managed_groups.values() for entry in group]
            if part is not None and self._deps is not None:
                # What this run read again (routes, mappings) keeps the next focus right.
                self._deps.refresh(whole, scope, part.apis, part.domains)

    def _rollouts(self, record: RunRecord, result: Result, write: bool, part: Focus | None = None) -> None:
        """Keep each rollout's step: persisted once its action is applied (a failed or skipped
        UpdateAlias leaves the step where it was, and the next run tries it again); detect mode
        never moves a rollout, so nothing is persisted. A focused run decides the rollouts of its
        functions only: the others stay as the last run left them."""
        failed = {o.action.resource for o in result.outcomes if o.status is not OutcomeStatus.SUCCEEDED}
        planned = {a.resource for a in result.plan.actions}
        keep: dict[str, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        due: list[float] = []
        for alias, decision in result.rollouts.decisions.items():
            resource = f"lambda_alias/{alias}"
            done = write and resource not in failed and (resource not in planned or any(o.action.resource == resource for o in result.outcomes))
            row = decision.summary(alias)
            row["applied"] = done
            row["next_check"] = iso(decision.next_check) if decision.record is not None and decision.record.status in (PROGRESSING, WAITING) else None
            if not done:
                row["event"] = None  # nothing moved: no step to announce
            rows.append(row)
            if done and decision.record is not None:
                keep[alias] = decision.record.as_dict()
            if decision.record is not None and decision.record.status in (PROGRESSING, WAITING):
                due.append(decision.next_check if decision.next_check is not None else self.clock() + self.settings.rollout_poll)
        if write:
            self.history.save_rollouts(keep)
        record.rollouts = [r for r in rows if r.get("line")]
        rolling = bool(due)
        others: list[dict[str, Any]] = []
        if part is not None:
            others = [r for r in self.status.rollouts if str(r.get("alias")).split("/", 1)[0] not in part.functions]
            if self.rollout_due_at is not None and any(r.get("status") in (PROGRESSING, WAITING) for r in others):
                due.append(self.rollout_due_at)
        self.status.rollouts = others + record.rollouts
        self.rollout_due_at = min(due) if due and write else None
        if rolling and record.status == "in_sync":
            record.status = "rolling_out"  # nothing differs from this step, but git's version does not take all traffic yet
        for row in record.rollouts:
            if row.get("event") == "rollout_aborted":
                self.metrics.rollout_aborts.inc()
        self.metrics.observe_rollouts(self.status.rollouts)

    def rollout_control(self, alias: str, action: str) -> str | None:
        """Ask the next run to ``abort``, ``promote`` or ``retry`` the rollout of ``alias``
        (``getProducts:prod`` or ``getProducts/prod``); the reason it cannot, or None."""
        if action not in CONTROLS:
            return f"unknown rollout action {action[:40]!r}: abort, promote or retry"
        if self.settings.mode is not Mode.APPLY:
            return "detect mode never moves a rollout"
        key = alias.strip().replace(":", "/", 1)
        known = {alias: {"status": r.get("status")} for alias, r in self.history.load_rollouts().items()}
        known.update({r["alias"]: r for r in self.status.rollouts if r.get("status")})  # the last run's word is the newest
        row = known.get(key)
        if row is None:
            return f"no rollout of {alias[:140]!r}: an alias with a rollout in progress, waiting or aborted"
        status = row.get("status")
        if action == "retry" and status != ABORTED:
            return f"the rollout of {alias[:140]} is {status}: only an aborted rollout is retried"
        if action in ("abort", "promote") and status not in (PROGRESSING, WAITING):
            return f"the rollout of {alias[:140]} is {status}: only one in progress (or waiting) can be {'aborted' if action == 'abort' else 'promoted'}"
        self.rollout_controls[key] = action
        return None

    def _guarded(self, commit: str, spec: Spec, result: Result, write: bool) -> None:
        """Keep what the guardrails decided: the commit applied in full, the approvals used up,
        the actions left waiting, and the refusal or sync window the status shows."""
        self.status.refused = list(result.refused)
        self.status.window = result.window or None
        done = {fingerprint(o.action) for o in result.outcomes if o.status is OutcomeStatus.SUCCEEDED}
        self._approved = self._approved - done
        self._waiting = [fingerprint(a) for a in result.waiting]
        if write and not result.problems and not result.refused and not result.window and not result.failed:
            self._applied = (commit, spec)

    def approve(self, run_id: int) -> str | None:
        """Approve the actions run ``run_id`` left waiting; the next run applies them (None), or why not."""
        approval = self.status.approval
        if approval is None or not self._waiting:
            return "no run is waiting for approval"
        if approval["run"] != run_id:
            return f"run #{run_id} is not the one waiting for approval (run #{approval['run']} is)"
        self._approved = self._approved | frozenset(self._waiting)
        log.info("approved", run=run_id, actions=len(self._waiting))
        return None

    def _attribute(self, record: RunRecord, result: Result, events: Sequence[Touch]) -> None:
        """Say who made each drift: the event that explains it (``actor``: ARN, source IP, user
        agent, the call and its time); a drift that is still the same as the last run saw keeps
        the actor found then (a scheduled run in detect mode, after the event's run)."""
        before = {d["resource"]: d for d in self.status.drift}
        for entry, drift in zip(record.drift, result.drift, strict=True):
            touch = blame(drift, events) if events else None
            if touch is not None:
                entry["actor"] = touch.who()
                continue
            earlier = before.get(entry["resource"])
            if earlier is not None and earlier.get("actor") and earlier.get("changes") == entry.get("changes"):
                entry["actor"] = earlier["actor"]

    def _heals_from_history(self) -> list[dict[str, Any]]:
        """The heals of the last hour from the history, so a restart keeps them in view."""
        since = time.time() - HEALED_KEPT_S
        heals: list[dict[str, Any]] = []
        runs = self.history.recent(51)
        for run, before in zip(runs, runs[1:], strict=False):  # newest first; ``before`` ran just before ``run``
            if run.started < since:
                break
            if run.status == "applied" and run.finished and run.commit_sha and before.commit_sha == run.commit_sha:
                heals.extend(heals_of(run, {}, run.finished))
        return heals[:HEALED_KEPT_MAX]

    def _planned(self, drift: int, actions: int) -> None:
        running = self.status.running
        if running is not None:
            running["drift"], running["actions"] = drift, actions

    def _routes(self, spec: Spec, scope: Scope, part: Focus | None = None) -> None:
        """The routing view of this run's reads (kept in the status; a failed read is logged). A
        focused run makes again the routes it can have changed (``Focus.routes_spec``): the
        stages of its APIs and of those its domains map to, its domains and those mapping to its APIs."""
        from controller.views.routes import routes

        shown = spec if part is None or self._deps is None else part.routes_spec(spec, self._deps)
        try:
            rows = [r.as_dict() for r in routes(shown, scope)]
        except AWS_ERRORS as exc:
            log.warning("routing view not updated", error=describe_error(exc))
            return
        if shown is spec:
            self._route_groups = _grouped(rows, _route_owner)
            self.status.routes = rows
            return
        self._route_groups.update(dict.fromkeys([("domain", d) for d in shown.domains] + [("stage", a) for a in shown.rest_apis], []))
        self._route_groups.update(_grouped(rows, _route_owner))
        groups = self._route_groups.items()
        self.status.routes = [row for key, group in groups if key[0] == "domain" for row in group] + [
            row for key, group in groups if key[0] != "domain" for row in group
        ]

    def _fetch(self) -> str | None:
        try:
            head = self.git.fetch()
        except GitSourceError as exc:
            self.git_failures += 1
            self.status.git_error = str(exc)
            log.warning("git unreachable; keeping the last good commit", error=str(exc), failures=self.git_failures)
            return None
        self.git_failures = 0
        self.status.git_error = None
        self.status.git_ok_at = time.time()
        self.status.head_commit = head
        return head

    def _consider(self, commit: str, remember_invalid: bool = True) -> None:
        """Load the spec at ``commit``; valid -> it becomes the desired state."""
        if self._good and self._good[0] == commit:
            if remember_invalid:
                self.status.head_valid, self.status.spec_errors = True, []
            return
        if commit in self._invalid:
            if remember_invalid:
                self.status.head_valid, self.status.spec_errors = False, self._invalid[commit]
            return
        path = self.settings.path.strip("/") or "."
        try:
            directory = self.git.export(commit, path, self.exports)
            if not directory.is_dir():
                raise SpecInvalid([SpecProblem(path, 0, "", f"commit {commit[:12]} has no spec directory {path}/")])
            declared = [d for d in target_dirs(directory) if self.target is None or d != directory]
            if declared:
                names = ", ".join(d.relative_to(directory).as_posix() if d != directory else "." for d in declared)
                then = "restart `pointsman run` to reconcile every target with its own credentials"
                if self.on_targets is not None and remember_invalid:
                    self.on_targets(commit)
                    then = "the controller restarts as a controller of targets, each with its own credentials"
                raise SpecInvalid([SpecProblem(path, 0, "", f"the spec is split into targets ({names}) since this controller started: {then}")])
            spec = load_spec(directory, display_root=path, allow_empty=self.settings.allow_empty)
        except (SpecInvalid, UnsafeSpecTree) as exc:  # a symlink out of the spec directory, too
            errors = [str(p) for p in exc.problems]
            self._invalid[commit] = errors
            if remember_invalid:
                self.status.head_valid, self.status.spec_errors = False, errors
            log.error("commit has an invalid spec; nothing from it is applied", commit=commit[:12], problems=errors)
            return
        except GitSourceError as exc:
            self.status.git_error = str(exc)
            return
        self._good = (commit, spec)
        if remember_invalid:
            self.status.head_valid, self.status.spec_errors = True, []
        self.git.prune_exports(self.exports, keep={commit})

    def _record_result(self, record: RunRecord, result: Result, head_ok: bool) -> None:
        record.drift = [d.as_dict() for d in result.drift]
        record.warnings = list(result.warnings)
        outcomes = {o.action.resource + o.action.operation: o for o in result.outcomes}
        record.actions = []
        for action in result.plan.actions:
            entry = {"resource": action.resource, "operation": action.operation, "reason": action.reason}
            outcome = outcomes.get(action.resource + action.operation)
            entry["outcome"] = outcome.status.value if outcome else "planned"
            if outcome and outcome.error:
                entry["error"] = outcome.error
            record.actions.append(entry)
        for action in result.waiting:
            record.actions.append({"resource": action.resource, "operation": action.operation, "reason": action.reason, "outcome": "waiting"})
        if result.refused or result.window:
            held_by = "refused" if result.refused else "deferred"
            for entry in record.actions:
                if entry["outcome"] == "planned" and self.settings.mode is Mode.APPLY:
                    entry["outcome"] = held_by
        for observed in result.observed:
            record.actions.append(
                {
                    "resource": observed.action.resource,
                    "operation": observed.action.operation,
                    "reason": observed.action.reason,
                    "outcome": "observed",
                    "error": observed.reason,
                }
            )
        for held in result.plan.held:
            record.actions.append(
                {
                    "resource": held.action.resource,
                    "operation": held.action.operation,
                    "reason": held.action.reason,
                    "outcome": "held",
                    "error": f"held back: {held.reason}",
                }
            )
        if result.problems:
            record.status, record.error = "error", "; ".join(str(p) for p in result.problems)
        elif any(o.error == "skipped: stopping on request" for o in result.outcomes):
            record.status, record.error = "interrupted", "stopped on request before every action ran"
        elif result.failed:
            record.status = "failed"
            record.error = "; ".join(f"{o.action.resource}: {o.error}" for o in result.outcomes if o.status is OutcomeStatus.FAILED)
        elif result.refused and self.settings.mode is Mode.APPLY:
            record.status, record.error = "refused", f"plan refused: {'; '.join(result.refused)}; nothing was applied"
        elif result.window and self.settings.mode is Mode.APPLY:
            record.status, record.error = "deferred", result.window
        elif result.waiting and self.settings.mode is Mode.APPLY:
            record.status = "waiting"
            record.error = f"waiting for approval: {plural(len(result.waiting), 'action')} (`pointsman approve RUN_ID` or the status page's Approve button)"
        elif result.applied:
            record.status = "applied"
        elif result.drift:
            record.status = "drift"
        else:
            record.status = "in_sync"
        if not head_ok:
            note = f"newest commit {(self.status.head_commit or '')[:12]} is invalid; reconciled against {record.commit_sha[:12] if record.commit_sha else '?'} in detect mode"
            record.error = f"{record.error}; {note}" if record.error else note

    def _publish(self, record: RunRecord, seconds: float) -> None:
        self.metrics.duration.observe(seconds)
        self.metrics.runs.labels(status=record.status).inc()
        self.metrics.git_up.set(0 if self.status.git_error else 1)
        if self.status.head_valid is not None:
            self.metrics.spec_valid.set(1 if self.status.head_valid else 0)
        if self.status.applied_commit:
            self.metrics.commit.info({"commit": self.status.applied_commit, "branch": self.settings.branch})
        self.status.last_error = record.error
        self.status.last_run = {k: v for k, v in record.as_json().items() if k not in ("drift", "api_calls", "warnings", "rollouts")}
        self.status.last_run_finished = record.finished
        if record.status not in ("error", "invalid"):
            self.status.last_finished_at = record.finished
            self.metrics.last_success.set(record.finished or time.time())

    # ------------------------------------------------------------------ views

    def ready(self) -> tuple[bool, str]:
        if self.status.last_finished_at is None:
            return False, "no reconcile has finished yet"
        age = time.time() - self.status.last_finished_at
        if age > self.settings.ready_window:
            return False, f"last reconcile finished {age:.0f}s ago"
        if self.status.git_error:
            return False, self.status.git_error
        return True, "ok"

    def commit_info(self, commit: str | None) -> dict[str, Any] | None:
        """Short sha, subject, author and time of a commit (cached; None when unknown)."""
        if not commit:
            return None
        if commit not in self._commits:
            info = self.git.commit_info(commit)
            if info is None:
                return {"sha": commit, "short": commit[:12], "subject": "", "author": "", "time": None}
            self._commits[commit] = info
        return dict(self._commits[commit])

    def state(self) -> tuple[str, str]:
        """The controller's state in one word and one line: reconciling, healing, in_sync,
        drifted, error or starting."""
        s, last = self.status, self.status.last_run
        if s.running is not None:
            found = s.running.get("drift")
            if found and self.settings.mode is Mode.APPLY and s.head_valid is not False:
                return "healing", f"applying {plural(s.running.get('actions', 0), 'action')} for {plural(found, 'drifted resource')}"
            return "reconciling", f"a reconcile ({trigger_words(s.running['trigger'])}) is running"
        if last is None:
            return "starting", "no reconcile has finished yet"
        if last["status"] in ("error", "failed", "interrupted", "refused") or (last["status"] == "invalid" and not s.applied_commit):
            return "error", s.last_error or status_words(last["status"])
        aborted = [r for r in s.rollouts if r.get("status") == ABORTED]
        if aborted and not s.drift:
            return "drifted", "; ".join(r["line"] for r in aborted[:3]) + (f" and {len(aborted) - 3} more" if len(aborted) > 3 else "")
        active = [r for r in s.rollouts if r.get("status") in (PROGRESSING, WAITING)]
        if active and not s.drift:
            return "rolling_out", "; ".join(r["line"] for r in active[:3]) + (f" and {len(active) - 3} more" if len(active) > 3 else "")
        if s.drift:
            observed = {a["resource"] for a in s.planned if a.get("outcome") == "observed"}
            why = "detect mode: drift is reported, not healed" if self.settings.mode is Mode.DETECT else "not all of it could be healed"
            if s.head_valid is False:
                why = "the newest commit is invalid, so nothing is applied"
            elif all(d["status"] == "extra" for d in s.drift) and not self.settings.prune:
                why = "extra resources are kept: prune is off"
            elif s.window and self.settings.mode is Mode.APPLY:
                why = s.window
            elif s.approval is not None:
                why = f"waiting for approval of run #{s.approval['run']}"
            elif self.settings.mode is Mode.APPLY and all(d["resource"] in observed or d.get("parent") in observed for d in s.drift):
                why = "observe-only resources (manage: observe): reported, never written"
            return "drifted", f"{plural(len(s.drift), 'resource')} {noun(len(s.drift), 'differs')} from git ({why})"
        return "in_sync", "live AWS matches git" + (f" (healed {plural(len(s.healed), 'resource')} in the last run)" if s.healed else "")

    def status_document(self) -> dict[str, Any]:
        """``/api/status``: its shape is ``loop.status_schema.STATUS_SCHEMA`` (``pointsman schema --api``); every time is ISO-8601 UTC."""
        ready, why = self.ready()
        s = self.status
        state, state_reason = self.state()
        now = time.time()
        planned: dict[str, list[dict[str, Any]]] = {}
        for action in s.planned:
            planned.setdefault(action["resource"], []).append(action)
        drift = []
        for d in s.drift:
            entry = dict(d)
            entry["first_seen"] = iso(s.first_seen.get(d["resource"]))
            entry["actions"] = planned.get(d["resource"]) or planned.get(d.get("parent") or "") or []
            if not entry["actions"] and d["status"] == "extra" and not self.settings.prune:
                entry["actions"] = [{"operation": "none", "outcome": "not pruned", "reason": "prune is off: extra resources are kept"}]
            drift.append(entry)
        last = dict(s.last_run) if s.last_run else None
        if last is not None:
            last["age_s"] = round(now - s.last_run_finished, 1) if s.last_run_finished else None
        next_at = self.next_run_at()
        return {
            "repo": self.settings.repo_display,
            "branch": self.settings.branch,
            "path": self.settings.path,
            "mode": self.settings.mode.value,
            "prune": self.settings.prune,
            "state": state,
            "state_reason": state_reason,
            "now": iso(now),
            "applied_commit": s.applied_commit,
            "head_commit": s.head_commit,
            "head_valid": s.head_valid,
            "commits": {"desired": self.commit_info(s.applied_commit), "head": self.commit_info(s.head_commit)},
            "spec_errors": s.spec_errors,
            "git": {"reachable": s.git_error is None and s.git_ok_at is not None, "error": s.git_error, "last_ok": iso(s.git_ok_at)},
            "running": {**s.running, "started": iso(s.running["started"])} if s.running else None,
            "last_run": last,
            "next_run_at": iso(next_at),
            "next_run_in_s": round(max(0.0, next_at - now), 1) if next_at else None,
            "drift": drift,
            "drift_found_by_last_run": len(s.found),
            "healed_by_last_run": s.healed,
            "rollouts": s.rollouts,
            "healed": [{**h, "first_seen": iso(h["first_seen"]), "healed_at": iso(h["healed_at"])} for h in s.heals if h["healed_at"] > now - HEALED_KEPT_S],
            "in_sync": (not s.drift and not any(r.get("status") in (PROGRESSING, WAITING, ABORTED) for r in s.rollouts)) if s.last_run else None,
            "routes": s.routes,
            "managed": s.managed,
            "warnings": s.warnings,
            "last_error": s.last_error,
            "ready": ready,
            "ready_reason": why,
            "guardrails": {
                "allow_protected": self.settings.allow_protected,
                "max_changes": self.settings.max_changes,
                "max_deletions": self.settings.max_deletions,
                "refused": s.refused,
                "window": s.window,
                "approval": s.approval,
            },
        }


def _route_owner(row: dict[str, Any]) -> tuple[str, str]:
    """The declaration a routing view row belongs to: its domain, or the REST API of its stage."""
    entry = str(row.get("entry") or "")
    return ("domain", entry.split("/", 1)[0]) if row.get("entry_kind") == "domain" else ("stage", entry.rsplit("/", 1)[0])


def _managed_owner(entry: dict[str, Any]) -> tuple[str, str]:
    return owner(str(entry.get("resource") or "")) or ("other", "")


def _grouped(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def notifier_of(settings: RunSettings, target: str | None = None) -> Any:
    """The notifier for the configured targets (None without any); a bad URL stops the start.
    ``target``: the spec's target the controller reconciles, named in every notification."""
    from controller.loop.notify import Notifier, targets_from

    slack = settings.notify_slack_url.get_secret_value() if settings.notify_slack_url else None
    secret = settings.notify_secret.get_secret_value() if settings.notify_secret else None
    try:
        targets = targets_from(slack or None, settings.notify_webhook_url, secret or None)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    return Notifier(targets, status_url=settings.status_url, spec_target=target) if targets else None


class Runner:
    """Scheduling, polling, HTTP and signals around a Controller.

    It provides :class:`~controller.loop.view.LoopView`; ``serve`` makes the HTTP server it
    starts first and stops last (``controller.web.server.serve``; none when not given).
    """

    def __init__(
        self,
        settings: RunSettings,
        controller: Controller | None = None,
        *,
        serve: Callable[[LoopView], HttpServer] | None = None,
        guard: Callable[[], AbstractContextManager[bool]] | None = None,
        member: bool = False,
    ) -> None:
        """``guard()``: entered around each reconcile; it yields whether the run may go on (a
        fleet's worker slot and the target's lease), and a run it refuses is dropped. ``member``:
        one target of a fleet, which polls git, consumes events and announces itself for all."""
        self._settings = settings
        self._serve = serve
        self._guard = guard
        self._member = member
        self.restart = False  # run_forever ended to start again as a fleet: the spec is split into targets now
        self._wake = threading.Event()  # ends run_forever (a signal, or a restart)
        self.controller = controller or Controller(settings)
        if not member and self.controller.target is None:
            self.controller.on_targets = self._restart_for_targets
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        # Held while a job changes the schedule, and by stop() while it asks the loop to stop: the
        # scheduler's shutdown waits for running jobs while holding its job store lock, so a job
        # must never start a schedule change once a stop is under way (it would wait forever).
        self._schedule_lock = threading.Lock()
        self._stopped = threading.Event()
        self._last_remote: str | None = None
        self.http: HttpServer | None = None
        self.events: Any = None  # the EventsConsumer, with --events-queue

    @property
    def settings(self) -> RunSettings:
        return self._settings

    def ready(self) -> tuple[bool, str]:
        return self.controller.ready()

    def status_document(self) -> dict[str, Any]:
        return self.controller.status_document()

    def recent_runs(self, limit: int, resource: str | None = None, target: str | None = None) -> list[RunRecord]:
        if target is not None and target != self.controller.target:
            return []
        return self.controller.history.recent(limit, resource=resource)

    def run_record(self, run_id: int, target: str | None = None) -> RunRecord | None:
        if target is not None and target != self.controller.target:
            return None
        return self.controller.history.get(run_id)

    def metrics_text(self) -> bytes:
        return self.controller.metrics.render()

    def approve(self, run_id: int, target: str | None = None) -> str | None:
        """Approve what run ``run_id`` left waiting and reconcile at once (None), or why not."""
        if target is not None and target != self.controller.target:
            return f"no target {target[:80]!r} here"
        refused = self.controller.approve(run_id)
        if refused is None:
            self.trigger("approve")
        return refused

    def trigger(self, reason: str) -> None:
        """Reconcile at once (or right after the one in flight)."""
        with self._pending_lock:
            self._pending.append(reason)
        with self._schedule_lock:
            if self.controller.stop_requested.is_set():
                return
            job = self.scheduler.get_job("reconcile")
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def rollout_control(self, alias: str, action: str, target: str | None = None) -> str | None:
        if target is not None and target != self.controller.target:
            return f"no target {target[:80]!r} here"
        refused = self.controller.rollout_control(alias, action)
        if refused is None:
            self.trigger("ui")
        return refused

    def _tick(self) -> None:
        reason = "schedule"
        while not self.controller.stop_requested.is_set():
            with self._pending_lock:
                if self._pending:
                    reason = ",".join(dict.fromkeys(self._pending))
                    self._pending.clear()
            if self._guard is None:
                self.controller.reconcile(reason)
            else:
                with self._guard() as allowed:
                    if not allowed:
                        with self._pending_lock:
                            self._pending.clear()
                        return
                    self.controller.reconcile(reason)
            self._schedule_git_retry()
            self._schedule_rollout()
            with self._pending_lock:
                if not self._pending:
                    return

    def _schedule_git_retry(self) -> None:
        failures = self.controller.git_failures
        if not failures:
            return
        delay = min(self.settings.interval, 2 ** min(failures, 10))
        if delay < self.settings.interval:
            self._trigger_in(delay, "git-retry")

    def _schedule_rollout(self) -> None:
        """While a rollout is in progress, look again when its pause ends, and at least every
        ``rollout_poll`` seconds (its gates are read at each look)."""
        due = self.controller.rollout_due_at
        if due is None:
            return
        now = self.controller.clock()
        delay = min(max(due - now, 1.0), self.settings.rollout_poll)
        if delay < self.settings.interval:
            self._trigger_in(delay, "rollout")

    def _trigger_in(self, delay: float, reason: str) -> None:
        """A reconcile ``delay`` seconds from now (one pending per ``reason``); none once stopping."""
        with self._schedule_lock:
            if self.controller.stop_requested.is_set():
                return
            self.scheduler.add_job(
                self.trigger,
                "date",
                args=[reason],
                run_date=datetime.now(UTC) + timedelta(seconds=delay),
                id=reason,
                replace_existing=True,
            )

    def _poll(self) -> None:
        try:
            remote = self.controller.git.remote_head()
        except GitSourceError:
            return  # the reconcile reports git errors; polling stays quiet
        known = self.controller.status.head_commit
        if remote and remote != known and remote != self._last_remote:
            self._last_remote = remote
            log.info("new commit on the branch", commit=remote[:12])
            self.trigger("new-commit")

    def start(self) -> None:
        """Serve HTTP and start the schedule; on failure nothing is left running (``StartupError``)."""
        try:
            self.http = self._serve(self) if self._serve is not None else None
        except (OSError, OverflowError, UnicodeError) as exc:  # in use, no such address, a bad host name
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise StartupError(f"cannot listen on {self.settings.listen}: {reason}") from None
        try:
            interval = self.settings.interval
            self.scheduler.add_job(
                self._tick,
                IntervalTrigger(seconds=interval, jitter=interval * self.settings.jitter or None),
                id="reconcile",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )
            if self.settings.poll_interval > 0 and not self._member:
                self.scheduler.add_job(self._poll, IntervalTrigger(seconds=self.settings.poll_interval), id="poll", max_instances=1, coalesce=True)
            self.scheduler.start()
            self.controller.next_run_at = self._next_run_at
            if self.settings.events_queue and not self._member:
                from controller.loop.consumer import EventsConsumer

                principals = [p.strip() for p in self.settings.events_ignore_principals.split(",") if p.strip()]
                self.events = EventsConsumer(self.settings.events_queue, self.controller, wait=self.settings.events_wait, ignore_principals=principals)
                self.events.start()
        except BaseException:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            if self.http is not None:
                self.http.shutdown()
                self.http.server_close()
                self.http = None
            raise
        if self._member:
            return
        listen = "{}:{}".format(*self.http.server_address[:2]) if self.http is not None else "(no HTTP server)"
        log.info("pointsman running", repo=self.settings.repo_display, branch=self.settings.branch, mode=self.settings.mode.value, listen=listen)

    def _next_run_at(self) -> float | None:
        try:
            job = self.scheduler.get_job("reconcile")
        except Exception:  # noqa: BLE001 - the scheduler is shutting down
            return None
        return job.next_run_time.timestamp() if job is not None and job.next_run_time is not None else None

    def stop(self) -> None:
        """Finish the action in flight, record the run, stop everything; safe after a failed start."""
        if self._stopped.is_set():
            return
        started = self.scheduler.running
        with self._schedule_lock:  # no job is changing the schedule, and none will start to
            self.controller.stop_requested.set()
        if self.events is not None:
            self.events.stop()
        if started:
            self.scheduler.shutdown(wait=True)  # waits for the reconcile in flight to record itself
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        self.controller.history.close()
        if self.controller.notifier is not None:
            self.controller.notifier.close()
        self._stopped.set()
        if started and not self._member:
            log.info("pointsman stopped")

    def _restart_for_targets(self, commit: str) -> None:
        """The head commit splits the spec into targets: end ``run_forever`` (the run in flight
        records itself) so that the command starts again as a controller of targets."""
        if self.restart:
            return
        log.warning("the spec is split into targets now: restarting as a controller of targets", commit=commit[:12])
        self.restart = True
        self.controller.stop_requested.set()
        self._wake.set()

    def run_forever(self) -> int:
        return run_until_signalled(self.start, self.stop, self.controller.stop_requested.set, "finishing the action in flight", done=self._wake)


def run_until_signalled(
    start: Callable[[], None], stop: Callable[[], None], request_stop: Callable[[], None], finishing: str, done: threading.Event | None = None
) -> int:
    """``start()``, then wait for SIGTERM or SIGINT (``request_stop()`` at once, logged with
    ``finishing``) or for ``done``, then ``stop()``; the previous signal handlers are put back.
    Returns 0."""
    done = done or threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info(f"signal received; {finishing}", signal=signal.Signals(signum).name)
        request_stop()
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        start()
        while not done.wait(0.5):
            pass
    finally:
        stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
