"""``pointsman run`` of a spec split into targets, and replicas sharing them through leases.

A :class:`Fleet` keeps one :class:`~controller.loop.runner.Controller` per target (its directory
of the spec, its credentials with its account checked, its history under
``STATE_DIR/targets/NAME``), each driven by a :class:`~controller.loop.runner.Runner` of its own
(its schedule, rollout looks, git retries), at most ``--parallelism`` reconciling at once. One
clone serves every target (:class:`SharedSource`); the fleet polls it and re-reads the targets
at every interval, so a target added or removed in git is picked up without a restart.

With ``--lease-table`` each target is a lease (``controller.loop.leases``): a thread ticks the
book every retry period; a target is reconciled only while this replica holds its lease, each
run inside ``LeaseBook.fenced`` (not handed over while it runs), and every write call it sends
asks the lease first (``Controller.fence``). A target taken over is reconciled at once. What a
target's next holder needs (the applied commit, rollouts at their steps, approvals, drift
first-seen times) and the summary every replica's page shows live in the table beside the lease.

One HTTP server and one events consumer serve the whole fleet: the status document puts every
target together (a ``target`` on each entry, a ``targets`` table with their holders), and an
event goes to the target of its account and Region.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from controller.aws.clients import AWS_ERRORS, AwsClients, describe_error
from controller.engine.targets import clients_for_settings
from controller.loop.consumer import EventTarget
from controller.loop.events import Touch
from controller.loop.gitsource import GitSource, GitSourceError, UnsafeSpecTree
from controller.loop.history import History, RunRecord, iso, parse_iso
from controller.loop.leases import FenceError, Holders, LeaseBook, LeaseError, fence_of
from controller.loop.runner import SHARED_KEY, Controller, Runner, git_source, notifier_of, run_until_signalled
from controller.loop.settings import RunSettings, StartupError
from controller.loop.view import HttpServer, LoopView
from controller.spec import SpecProblem
from controller.spec.targets import TargetSpec, read_target_settings

log = structlog.get_logger("pointsman.fleet")

ROOT = "."  # the name of a target whose directory is the spec's root (and of a spec without targets)

# The worst state first: the fleet's state is its worst target's.
STATE_ORDER = ("error", "drifted", "healing", "reconciling", "rolling_out", "starting", "in_sync")

# How long the table's picture (holders and other replicas' summaries) is reused by the page.
PICTURE_FOR_S = 3.0


class SharedSource(GitSource):
    """One clone for every target of a fleet: a fetch made in the last ``fresh_for`` seconds is
    reused (targets triggered together fetch once), and git is used by one thread at a time."""

    def __init__(self, source: GitSource, fresh_for: float = 5.0) -> None:
        super().__init__(source.url, source.branch, source.workdir, source.token, source.ssh_key_file, source.timeout)
        self.fresh_for = fresh_for
        self._lock = threading.RLock()
        self._head: str | None = None
        self._at = float("-inf")

    def fetch(self) -> str:
        with self._lock:
            if self._head is not None and time.monotonic() - self._at < self.fresh_for:
                return self._head
            head = super().fetch()
            self._head, self._at = head, time.monotonic()
            return head

    def refetch(self) -> str:
        """A fetch now, whatever was fetched before (a new commit was seen)."""
        with self._lock:
            self._at = float("-inf")
            return self.fetch()

    def export(self, commit: str, path: str, target_root: Path) -> Path:
        with self._lock:
            return super().export(commit, path, target_root)

    def remote_head(self) -> str | None:
        with self._lock:
            return super().remote_head()

    def commit_info(self, commit: str) -> dict[str, Any] | None:
        with self._lock:
            return super().commit_info(commit)


@dataclass
class Member:
    """One target of the fleet: its runner once its clients are made, else why they cannot be."""

    name: str
    spec: TargetSpec | None  # None: the ambient account (a spec without targets), unless ``problem``
    problem: str | None = None  # the target file's problems: not reconciled until mended
    runner: Runner | None = None
    error: str | None = None
    tried_at: float = 0.0

    @property
    def controller(self) -> Controller | None:
        return self.runner.controller if self.runner is not None else None


@dataclass
class _Picture:
    """The table's view: who holds what, and every target's shared summary."""

    holders: Holders | None = None
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    at: float = float("-inf")


def target_path(spec_path: str, name: str) -> str:
    """The directory of target ``name`` in the repository, the spec being at ``spec_path``."""
    base = spec_path.strip("/")
    if name == ROOT:
        return base or "."
    return f"{base}/{name}" if base and base != "." else name


def target_state_dir(state_dir: Path, name: str) -> Path:
    """Where a target keeps its history and exports (``history --target`` reads it)."""
    return state_dir / "targets" / (name if name != ROOT else "_root")


class _FleetMetrics(Collector):
    """Every target's metrics in one exposition, each sample labelled with its ``target``."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for name, member in sorted(self.fleet.members().items()):
            controller = member.controller
            if controller is None:
                continue
            for family in controller.metrics.registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "target": name}, sample.value, sample.timestamp, sample.exemplar)
        yield from families.values()


class Fleet:
    """The long-running controller of a spec split into targets (or of any spec, with a lease
    table). It provides :class:`~controller.loop.view.LoopView`."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        serve: Callable[[LoopView], HttpServer] | None = None,
        make_clients: Callable[[TargetSpec | None], AwsClients] | None = None,
        book: LeaseBook | None = None,
    ) -> None:
        """``make_clients``: a target's clients from its settings (default: its role assumed, its
        account checked); ``book``: the lease book (default: one on ``settings.lease_table``)."""
        self._settings = settings
        self._serve = serve
        self.state_dir = settings.prepare_state_dir()
        self.source = SharedSource(git_source(settings, self.state_dir))
        self._make_clients = make_clients or (lambda spec: clients_for_settings(spec, timeout_hold=settings.interval / 2, quota_share=settings.quota_share))
        if book is None and settings.lease_table:
            try:
                book = lease_book(settings)
            except LeaseError as exc:
                raise StartupError(str(exc)) from None
        self.book = book
        self._members: dict[str, Member] = {}
        self._members_lock = threading.RLock()
        self._slots = threading.BoundedSemaphore(settings.parallelism)
        self._start_lock = threading.Lock()
        self._notifiers: dict[str, Any] = {}  # the notifiers of targets that could not start (each target's controller has its own)
        self._held: frozenset[str] = frozenset()
        self._picture = _Picture()
        self._picture_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.stopping = threading.Event()
        self._leases_stop = threading.Event()  # set once the runs in flight have finished: their leases are renewed until then
        self._stopped = threading.Event()
        self._lease_thread: threading.Thread | None = None
        self.http: HttpServer | None = None
        self.events: Any = None
        self.head: str | None = None
        self.git_error: str | None = None
        self.targets_error: str | None = None  # the spec's targets cannot be read at the head
        self.registry = CollectorRegistry()
        self.registry.register(_FleetMetrics(self))
        self._held_gauge = Gauge("pointsman_lease_held", "1 if this replica holds the target's lease", ["target"], registry=self.registry)
        self._up_gauge = Gauge(
            "pointsman_target_up", "1 if the target's clients are made (its role assumed, its account checked)", ["target"], registry=self.registry
        )

    # ------------------------------------------------------------------ the targets

    @property
    def settings(self) -> RunSettings:
        return self._settings

    @property
    def replica_id(self) -> str | None:
        return self.book.replica_id if self.book is not None else None

    def _mine(self, name: str) -> bool:
        """This replica reconciles the target: always without leases, else while it holds the
        lease (renewed within the renew deadline)."""
        return self.book is None or self.book.holds(name)

    def members(self) -> dict[str, Member]:
        with self._members_lock:
            return dict(self._members)

    def read_targets(self) -> SpecTargets | None:
        """The targets of the spec at the head of the branch (a spec without targets is the one
        target "."); None when git or the spec cannot be read (the members keep what they have)."""
        try:
            head = self.source.fetch()
        except GitSourceError as exc:
            self.git_error = str(exc)
            return None
        self.git_error, self.head = None, head
        try:
            found = targets_at(self.source, head, self.settings.path)
        except (GitSourceError, UnsafeSpecTree) as exc:
            self.targets_error = str(exc)
            return None
        if found is None:
            self.targets_error = f"commit {head[:12]} has no spec directory {self.settings.path}/"
            return None
        self.targets_error = None
        if not found:
            return [(ROOT, None, [])]
        return found

    def refresh(self) -> None:
        """Read the targets at the head and make the members match: new targets get a controller
        (its clients made now; a failure is retried at the next refresh), removed ones stop."""
        found = self.read_targets()
        if found is None:
            return
        names = {name for name, _, _ in found}
        stopping: list[Runner] = []
        starting: list[Member] = []
        with self._members_lock:
            for name in sorted(set(self._members) - names):
                gone = self._members.pop(name)
                log.info("target removed from the spec; its controller stops", target=name)
                if gone.runner is not None:
                    stopping.append(gone.runner)
            for name, spec, problems in found:
                known = self._members.get(name)
                problem = "; ".join(str(p) for p in problems) or None
                if known is not None and known.spec != spec and problem is None:
                    log.info("target file changed; its controller restarts with the new settings", target=name)
                    if known.runner is not None:
                        stopping.append(known.runner)
                    known = None
                member = known if known is not None else Member(name, spec)
                self._members[name] = member
                member.problem = problem
                if problem is None and self._mine(name):
                    starting.append(member)  # a target file with problems: a running controller keeps the settings it has
        for runner in stopping:
            runner.stop()
        for member in starting:
            self._start(member)

    def _start(self, member: Member) -> None:
        """Make the member's clients and start its runner (once); a failure is its own line."""
        with self._start_lock:  # the lease thread and the refresh may both start a member
            self._start_locked(member)

    def _start_locked(self, member: Member) -> None:
        if member.runner is not None or member.problem is not None or self.stopping.is_set():
            return
        if member.error is not None and time.monotonic() - member.tried_at < min(self.settings.interval, 60.0):
            return
        member.tried_at = time.monotonic()
        sub = self.settings.model_copy(
            update={"path": self._path_of(member.name), "state_dir": target_state_dir(self.settings.state_dir, member.name), "events_queue": None}
        )
        try:
            clients = self._make_clients(member.spec)
            for service in ("lambda", "apigateway"):
                clients.client(service)
        except Exception as exc:  # noqa: BLE001 - one target's failure is its own line
            message = describe_error(exc) if isinstance(exc, AWS_ERRORS) else str(exc)
            error = f"{message}; nothing was read or written"
            if member.error != error:  # a new failure, not the same one tried again
                self._record_failure(member.name, error)
            member.error = error
            self._up_gauge.labels(target=member.name).set(0)
            log.error("target cannot be reconciled", target=member.name, error=message)
            return
        shared = self.book.state(member.name) if self.book is not None else None
        controller = Controller(
            sub,
            clients,
            target=member.name,
            fence=fence_of(self.book, member.name),
            git=self.source,
            shared=shared,
            replica=self.replica_id,
        )
        member.runner = Runner(sub, controller, guard=lambda: self._guard(member.name), member=True)
        member.error = None
        self._up_gauge.labels(target=member.name).set(1)
        member.runner.start()

    def _path_of(self, name: str) -> str:
        return target_path(self.settings.path, name)

    def _record_failure(self, name: str, error: str) -> None:
        """A target whose clients cannot be made: its error is a run of its history too, and a
        notification naming the target."""
        history = History(target_state_dir(self.state_dir, name) / "history.sqlite3", keep=self.settings.history_keep)
        try:
            now = time.time()
            record = history.start(RunRecord(started=now, trigger="start", mode=self.settings.mode.value))
            record.status, record.error, record.finished, record.head_sha = "error", error, now, self.head
            history.finish(record)
        finally:
            history.close()
        notifier = self._notifiers.get(name)
        if notifier is None:
            notifier = self._notifiers[name] = notifier_of(self.settings, name)
        if notifier is not None:
            notifier.observe(record)

    def _guard(self, name: str) -> contextlib.AbstractContextManager[bool]:
        """Around each run of a target: a worker slot, and (with leases) its lease held and not
        handed over while the run goes on."""

        @contextlib.contextmanager
        def guard() -> Iterator[bool]:
            with self._slots:
                if self.stopping.is_set():
                    yield False
                    return
                if self.book is None:
                    yield True
                    return
                if not self.book.holds(name):
                    member = self.members().get(name)
                    if member is not None and member.controller is not None:
                        member.controller.forget_reads()  # its reads stay with the lease
                    yield False
                    return
                try:
                    with self.book.fenced(name):
                        yield True
                except FenceError as exc:
                    log.warning("target not reconciled: its lease is lost", target=name, error=str(exc))
                    yield False

        return guard()

    # ------------------------------------------------------------------ leases

    def lease_tick(self) -> frozenset[str]:
        """One round of the lease book; targets newly held are started and reconciled at once."""
        assert self.book is not None
        with self._members_lock:
            names = sorted(self._members)
        held = self.book.tick(names)
        gained, lost = held - self._held, self._held - held
        self._held = held
        for name in sorted(lost):
            self._held_gauge.labels(target=name).set(0)
            log.info("target's lease no longer held here: its runs stop", target=name)
        for name in sorted(gained):
            self._held_gauge.labels(target=name).set(1)
            with self._members_lock:
                member = self._members.get(name)
            if member is None:
                continue
            if member.runner is None:
                self._start(member)  # its first run starts with it
            elif member.runner is not None:
                member.runner.trigger("lease")
        return held

    def _lease_loop(self) -> None:
        assert self.book is not None
        while not self._leases_stop.is_set():
            try:
                self.lease_tick()
            except Exception:  # noqa: BLE001 - the lease loop never ends while running; a missed tick is logged
                log.exception("lease tick failed")
            self._leases_stop.wait(self.book.next_tick_in())

    # ------------------------------------------------------------------ the picture

    def picture(self) -> _Picture:
        """Who holds what and every target's summary, from the table (reused for a few seconds)."""
        if self.book is None:
            return self._picture
        with self._picture_lock:
            if time.monotonic() - self._picture.at < PICTURE_FOR_S:
                return self._picture
            picture = _Picture(at=time.monotonic())
            try:
                picture.holders = self.book.holders()
                for name in self.members():
                    summary = self.book.state(name).get(SHARED_KEY)
                    if isinstance(summary, dict):
                        picture.summaries[name] = summary
            except AWS_ERRORS as exc:
                log.warning("lease table not read for the status", error=describe_error(exc))
                picture.holders = self._picture.holders
                picture.summaries = self._picture.summaries
            self._picture = picture
            return picture

    # ------------------------------------------------------------------ LoopView

    def ready(self) -> tuple[bool, str]:
        members = self.members()
        if self.book is not None and not self.book.held():
            return True, f"standby: replica {self.replica_id} holds no target's lease"
        mine = [m for name, m in members.items() if self._mine(name)]
        if not mine:
            return False, self.targets_error or self.git_error or "the spec's targets are not read yet"
        waiting = []
        for member in mine:
            controller = member.controller
            if controller is None:
                continue  # a target that cannot be reached is its own error, not the replica's
            ready, why = controller.ready()
            if not ready:
                waiting.append(f"{member.name}: {why}")
        if waiting:
            return False, "; ".join(waiting)
        return True, f"{len(mine)} target{'s' if len(mine) != 1 else ''} reconciled"

    def trigger(self, reason: str) -> None:
        for member in self.members().values():
            if member.runner is not None:
                member.runner.trigger(reason)

    def _member_of(self, target: str | None) -> Member | str:
        members = self.members()
        if target is None:
            running = [m for m in members.values() if m.runner is not None]
            if len(members) == 1 and running:
                return running[0]
            return f"the spec has {len(members)} targets ({', '.join(sorted(members))}): name one (--target)"
        member = members.get(target)
        if member is None:
            return f"no target {target[:80]!r} (known: {', '.join(sorted(members)) or 'none'})"
        if member.runner is None:
            holder = self._holder(target)
            where = f"replica {holder} holds it" if holder else member.error or "it is not reconciled here"
            return f"target {target} is not reconciled by this replica ({where})"
        return member

    def rollout_control(self, alias: str, action: str, target: str | None = None) -> str | None:
        member = self._member_of(target)
        if isinstance(member, str):
            return member
        assert member.runner is not None
        return member.runner.rollout_control(alias, action)

    def approve(self, run_id: int, target: str | None = None) -> str | None:
        member = self._member_of(target)
        if isinstance(member, str):
            return member
        assert member.runner is not None
        return member.runner.approve(run_id)

    def recent_runs(self, limit: int, resource: str | None = None, target: str | None = None) -> list[RunRecord]:
        runs: list[RunRecord] = []
        for name, member in sorted(self.members().items()):
            if target is not None and name != target:
                continue
            with self._history(member) as history:
                found = history.recent(limit, resource=resource) if history is not None else []
            for run in found:
                run.target = name
            runs.extend(found)
            if resource is None:
                runs.extend(self._shared_runs(name))
        runs.sort(key=lambda r: r.last_started or r.started, reverse=True)
        return runs[:limit]

    @contextlib.contextmanager
    def _history(self, member: Member) -> Iterator[History | None]:
        """The target's history: its controller's, else the one a failed start left (opened for
        the call), else None."""
        if member.controller is not None:
            yield member.controller.history
            return
        path = target_state_dir(self.state_dir, member.name) / "history.sqlite3"
        if not path.exists():
            yield None
            return
        history = History(path, keep=self.settings.history_keep)
        try:
            yield history
        finally:
            history.close()

    def _shared_runs(self, name: str) -> list[RunRecord]:
        """The target's runs other replicas made (from the shared state), so the history stays
        whole across replicas: each with its replica, its status and error."""
        summary = self.picture().summaries.get(name) or {}
        runs = []
        for run in summary.get("runs") or []:
            if not isinstance(run, dict) or run.get("replica") == self.replica_id:
                continue
            started = parse_iso(run.get("started"))
            if started is None:
                continue
            record = RunRecord(
                started=started,
                trigger=str(run.get("trigger") or "schedule"),
                mode=self.settings.mode.value,
                status=str(run.get("status") or "unknown"),
                finished=parse_iso(run.get("finished")),
                commit_sha=run.get("commit_sha"),
                error=run.get("error"),
                id=None,
                target=name,
                replica=str(run.get("replica") or "another replica"),
                replica_run=run.get("id") if isinstance(run.get("id"), int) else None,
            )
            runs.append(record)
        return runs

    def run_record(self, run_id: int, target: str | None = None) -> RunRecord | None:
        members = self.members()
        if target is None and len(members) == 1:
            target = next(iter(members))
        member = members.get(target or "")
        if member is None:
            return None
        with self._history(member) as history:
            record = history.get(run_id) if history is not None else None
        if record is not None:
            record.target = member.name
        return record

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def _holder(self, name: str) -> str | None:
        if self.book is None:
            return None
        if self.book.holds(name):
            return self.book.replica_id
        holders = self.picture().holders
        return holders.holder(name) if holders is not None else None

    def status_document(self) -> dict[str, Any]:
        """``/api/status`` of every target together: each entry names its ``target``; ``targets``
        lists them (state, holder, last run), ``replica`` says who holds what."""
        members = self.members()
        picture = self.picture()
        leases = {i.target: i for i in picture.holders.leases} if picture.holders is not None else {}
        docs: dict[str, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        for name, member in sorted(members.items()):
            controller = member.controller
            mine = self._mine(name)  # a lease past its renew deadline is not held, whatever the last tick saw
            here = controller is not None and mine
            lease = leases.get(name)
            row: dict[str, Any] = {
                "name": name,
                "account_id": member.spec.account_id if member.spec is not None else None,
                "region": member.spec.region if member.spec is not None else None,
                "holder": (lease.owner if lease is not None and not lease.expired else None) if self.book is not None else None,
                "here": here,
                "since": iso(lease.since) if lease is not None and lease.since else None,
                "epoch": lease.epoch if lease is not None else None,
            }
            if self.book is not None and mine:
                row["holder"] = self.book.replica_id
            if here and controller is not None:
                doc = controller.status_document()
                docs[name] = doc
                last = dict(doc["last_run"]) if doc.get("last_run") else None
                if last is not None:
                    last["replica"] = self.replica_id
                row.update(
                    state=doc["state"],
                    state_reason=doc["state_reason"],
                    applied_commit=doc["applied_commit"],
                    last_run=last,
                    drift_count=len(doc["drift"]),
                    error=doc["last_error"],
                    updated=doc["now"],
                )
            else:
                summary = picture.summaries.get(name)
                if member.problem is not None and controller is None:
                    row.update(state="error", state_reason=member.problem, error=member.problem)
                elif member.error is not None and mine:
                    row.update(state="error", state_reason=member.error, error=member.error)
                elif summary is not None:
                    row.update(
                        state=summary.get("state") or "starting",
                        state_reason=summary.get("state_reason") or "",
                        applied_commit=summary.get("applied_commit"),
                        last_run=_aged(summary.get("last_run"), time.time()),
                        drift_count=int(summary.get("drift_count") or 0),
                        error=summary.get("error"),
                        updated=summary.get("updated"),
                    )
                else:
                    why = "not reconciled yet" if row["holder"] else "waiting for a replica to take its lease" if self.book is not None else "starting"
                    row.update(state="starting", state_reason=why)
            row.setdefault("applied_commit", None)
            row.setdefault("last_run", None)
            row.setdefault("drift_count", 0)
            row.setdefault("error", None)
            row.setdefault("updated", None)
            rows.append(row)
        return self._together(rows, docs, picture)

    def _together(self, rows: list[dict[str, Any]], docs: dict[str, dict[str, Any]], picture: _Picture) -> dict[str, Any]:
        settings = self.settings
        now = time.time()
        worst = min((r["state"] for r in rows), key=lambda s: STATE_ORDER.index(s) if s in STATE_ORDER else 0, default="starting")
        bad = [r for r in rows if r["state"] == worst and worst != "in_sync"]
        reason = "; ".join(f"{r['name']}: {r['state_reason']}" for r in bad[:5]) if bad else f"every target ({len(rows)}) matches git"

        def tagged(key: str) -> list[Any]:
            out: list[Any] = []
            for name, doc in docs.items():
                for entry in doc.get(key) or []:
                    if isinstance(entry, dict) and key == "rollouts" and "target" in entry:
                        entry = {**entry, "version": entry["target"]}  # a rollout's target is its version: kept as version
                    out.append({**entry, "target": name} if isinstance(entry, dict) else entry)
            return out

        lasts = [(r["name"], r["last_run"]) for r in rows if r["last_run"]]
        last_name, last = max(lasts, key=lambda item: str(item[1].get("started") or ""), default=(None, None))
        running = next(({**d["running"], "target": n} for n, d in docs.items() if d.get("running")), None)
        nexts = [d["next_run_at"] for d in docs.values() if d.get("next_run_at")]
        next_at = min(nexts) if nexts else None
        approval = next(({**d["guardrails"]["approval"], "target": n} for n, d in docs.items() if d["guardrails"].get("approval")), None)
        ready, why = self.ready()
        holders = picture.holders
        replica = None
        if self.book is not None:
            replica = {
                "id": self.book.replica_id,
                "lease_table": self.book.table,
                "holds": sorted(self.book.held()),  # past the renew deadline is not held, whatever the last tick saw
                "replicas": [{"id": r.replica, "alive": r.live, "holds": r.leases, "renewed": iso(r.renewed)} for r in holders.replicas]
                if holders is not None
                else [],
            }
        head_valid = [d.get("head_valid") for d in docs.values()]
        return {
            "repo": settings.repo_display,
            "branch": settings.branch,
            "path": settings.path,
            "mode": settings.mode.value,
            "prune": settings.prune,
            "state": worst,
            "state_reason": reason,
            "now": iso(now),
            "applied_commit": next(iter({r["applied_commit"] for r in rows if r["applied_commit"]}), None),
            "head_commit": self.head,
            "head_valid": None if not head_valid or None in head_valid else all(head_valid),
            "commits": {"desired": None, "head": self.source.commit_info(self.head) if self.head else None},
            "spec_errors": [f"{n}: {e}" for n, d in docs.items() for e in d.get("spec_errors") or []] + ([self.targets_error] if self.targets_error else []),
            "git": {"reachable": self.git_error is None and self.head is not None, "error": self.git_error, "last_ok": None},
            "running": running,
            "last_run": {**last, "target": last_name} if last is not None else None,
            "next_run_at": next_at,
            "next_run_in_s": round(max(0.0, (parse_iso(next_at) or now) - now), 1) if next_at else None,
            "drift": tagged("drift"),
            "drift_found_by_last_run": sum(int(d.get("drift_found_by_last_run") or 0) for d in docs.values()),
            "healed_by_last_run": [f"{n}: {h}" for n, d in docs.items() for h in d.get("healed_by_last_run") or []],
            "rollouts": tagged("rollouts"),
            "healed": tagged("healed"),
            "in_sync": all(d.get("in_sync") for d in docs.values()) if docs and all(d.get("in_sync") is not None for d in docs.values()) else None,
            "routes": tagged("routes"),
            "managed": tagged("managed"),
            "warnings": [f"{n}: {w}" for n, d in docs.items() for w in d.get("warnings") or []],
            "last_error": next((f"{r['name']}: {r['error']}" for r in rows if r["error"]), None),
            "ready": ready,
            "ready_reason": why,
            "guardrails": {
                "allow_protected": settings.allow_protected,
                "max_changes": settings.max_changes,
                "max_deletions": settings.max_deletions,
                "refused": [f"{n}: {x}" for n, d in docs.items() for x in d["guardrails"].get("refused") or []],
                "window": next((f"{n}: {d['guardrails']['window']}" for n, d in docs.items() if d["guardrails"].get("window")), None),
                "approval": approval,
            },
            "targets": rows,
            "replica": replica,
        }

    # ------------------------------------------------------------------ events

    def has_reads(self) -> bool:
        return any(m.controller is not None and m.controller.has_reads() for m in self.members().values())

    def route(self, touch: Touch) -> EventTarget | None:
        """The controller of the target in the event's account and Region, held here."""
        for name, member in self.members().items():
            spec, controller = member.spec, member.controller
            if controller is None or not self._mine(name):
                continue
            if spec is None:
                if len(self._members) == 1:
                    return controller  # a spec without targets: the ambient account takes every event
                continue
            if (not touch.account or touch.account == spec.account_id) and (not touch.region or touch.region == spec.region):
                return controller
        return None

    # ------------------------------------------------------------------ running

    def _poll(self) -> None:
        try:
            remote = self.source.remote_head()
        except GitSourceError:
            return
        if remote and remote != self.head:
            log.info("new commit on the branch", commit=remote[:12])
            try:
                self.source.refetch()
            except GitSourceError:
                return
            self.refresh()
            self.trigger("new-commit")

    def start(self) -> None:
        try:
            self.http = self._serve(self) if self._serve is not None else None
        except (OSError, OverflowError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise StartupError(f"cannot listen on {self.settings.listen}: {reason}") from None
        try:
            if self.book is not None:
                from controller.loop.leases import check_table

                check_table(self.book.clients, self.book.table)
            self.refresh()
            if self.book is not None:
                self.lease_tick()
                self._lease_thread = threading.Thread(target=self._lease_loop, name="leases", daemon=True)
                self._lease_thread.start()
            self.scheduler.add_job(self.refresh, IntervalTrigger(seconds=self.settings.interval), id="targets", max_instances=1, coalesce=True)
            if self.settings.poll_interval > 0:
                self.scheduler.add_job(self._poll, IntervalTrigger(seconds=self.settings.poll_interval), id="poll", max_instances=1, coalesce=True)
            self.scheduler.start()
            if self.settings.events_queue:
                from controller.loop.consumer import EventsConsumer

                principals = [p.strip() for p in self.settings.events_ignore_principals.split(",") if p.strip()]
                self.events = EventsConsumer(self.settings.events_queue, self, wait=self.settings.events_wait, ignore_principals=principals)
                self.events.start()
        except BaseException as exc:
            self.stop()
            if isinstance(exc, AWS_ERRORS):
                raise StartupError(f"lease table {self.settings.lease_table}: {describe_error(exc)}") from None
            if isinstance(exc, LeaseError):
                raise StartupError(str(exc)) from None
            raise
        listen = "{}:{}".format(*self.http.server_address[:2]) if self.http is not None else "(no HTTP server)"
        log.info(
            "pointsman running",
            repo=self.settings.repo_display,
            branch=self.settings.branch,
            mode=self.settings.mode.value,
            listen=listen,
            targets=sorted(self.members()),
            replica=self.replica_id,
            lease_table=self.settings.lease_table,
        )

    def stop(self) -> None:
        """Finish every run in flight, give the leases back, stop everything."""
        if self._stopped.is_set():
            return
        self.stopping.set()
        if self.events is not None:
            self.events.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        runners = [m.runner for m in self.members().values() if m.runner is not None]
        for runner in runners:
            runner.controller.stop_requested.set()
        for runner in runners:
            runner.stop()  # the action in flight finishes, its run is recorded; the leases are still renewed
        self._leases_stop.set()
        if self._lease_thread is not None:
            self._lease_thread.join(30)
        for notifier in self._notifiers.values():
            if notifier is not None:
                notifier.close()
        if self.book is not None:
            self.book.close()  # the leases go back at once: another replica need not wait for them to expire
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        self._stopped.set()
        log.info("pointsman stopped", replica=self.replica_id)

    def run_forever(self) -> int:
        def request_stop() -> None:
            self.stopping.set()
            for member in self.members().values():
                if member.runner is not None:
                    member.runner.controller.stop_requested.set()

        return run_until_signalled(self.start, self.stop, request_stop, "finishing the actions in flight")


def lease_book(settings: RunSettings) -> LeaseBook:
    """This replica's book on ``settings.lease_table``, its clients' attempts and timeouts within
    the renew deadline (a hung endpoint costs a renewal, not the lease)."""
    assert settings.lease_table
    retry = settings.lease_retry_period
    timeout = max(1.0, min(3.0, settings.lease_renew_deadline / 3))
    clients = AwsClients(max_attempts=2, connect_timeout=timeout, read_timeout=timeout, timeout_hold=retry, rate_limiter=False)
    return LeaseBook(
        clients,
        settings.lease_table,
        replica_id=settings.replica_id,
        lease_duration=settings.lease_duration,
        renew_deadline=settings.lease_renew_deadline,
        retry_period=retry,
    )


def _aged(run: Any, now: float) -> dict[str, Any] | None:
    """Another replica's last run of a target, with its age now (as the status's last_run has)."""
    if not isinstance(run, dict):
        return None
    finished = parse_iso(run.get("finished"))
    return {**run, "age_s": round(now - finished, 1) if finished is not None else None}


SpecTargets = list[tuple[str, TargetSpec | None, list[SpecProblem]]]


def targets_at(git: GitSource, commit: str, spec_path: str) -> SpecTargets | None:
    """The targets of the spec at ``commit`` (from a throwaway export), each with its settings or
    the problems of its target file; empty for a spec without targets, None when the commit has
    no spec directory. Git's errors and an unsafe tree are raised."""
    with tempfile.TemporaryDirectory(prefix="pointsman-targets-") as tmp:
        directory = git.export(commit, spec_path.strip("/") or ".", Path(tmp))
        return read_target_settings(directory) if directory.is_dir() else None


def spec_targets(settings: RunSettings) -> SpecTargets:
    """The targets of the spec at the head of the branch (none: a spec without targets, or one
    that cannot be read now, which the controller then reports as it always has)."""
    git = git_source(settings, settings.prepare_state_dir())
    try:
        return targets_at(git, git.fetch(), settings.path) or []
    except (GitSourceError, UnsafeSpecTree):
        return []


def wants_fleet(settings: RunSettings) -> bool:
    """Whether ``pointsman run`` needs a fleet: a lease table, or a spec split into targets at
    the head of the branch."""
    return bool(settings.lease_table) or bool(spec_targets(settings))
