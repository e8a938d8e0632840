"""``pointsman reconcile --once``: one fetch and reconcile, then exit; for a spec split into
targets, every target (or, with a lease table, those whose lease this replica takes).

Each target is a :class:`~controller.loop.runner.Controller` of its own: its directory of the
spec, its credentials (its account checked), its history under ``STATE_DIR/targets/NAME``,
``--parallelism`` at once. With ``--lease-table``, the leases this replica can take are renewed
on a thread of their own while the runs go on, not handed over while a target's run goes on,
asked before every write call a run sends (``Controller``'s fence), and given back at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

from controller.aws.clients import AWS_ERRORS, describe_error
from controller.engine.targets import clients_for_settings
from controller.loop.fleet import SharedSource, SpecTargets, lease_book, target_path, target_state_dir
from controller.loop.leases import FenceError, LeaseBook, fence_of
from controller.loop.runner import Controller, git_source
from controller.loop.settings import RunSettings
from controller.spec import SpecProblem
from controller.spec.targets import TargetSpec

log = structlog.get_logger("pointsman.once")


@dataclass(frozen=True)
class OnceRun:
    """One run's JSON document; ``failed``, else ``in_sync`` (False: drift found, healed, or a rollout in progress)."""

    document: dict[str, Any]
    failed: bool
    in_sync: bool


def run_once(controller: Controller) -> OnceRun:
    """One reconcile of ``controller``, its history closed after."""
    try:
        record = controller.reconcile("once")
    finally:
        controller.history.close()
    document = {k: v for k, v in record.as_json().items() if k != "api_calls"}
    failed = record.status in ("error", "invalid", "failed", "interrupted") or controller.status.head_valid is False
    return OnceRun(document, failed, record.status == "in_sync")


def reconcile_targets_once(settings: RunSettings, targets: SpecTargets) -> dict[str, OnceRun]:
    """Every target's run (with a lease table, the others ``held elsewhere``), by name."""
    book, held, renewing = _take_leases(settings, [name for name, _, _ in targets])
    source = SharedSource(git_source(settings, settings.prepare_state_dir()))  # one clone (the one the targets were read from) for every target

    def one(name: str, target: TargetSpec | None, problems: list[SpecProblem]) -> tuple[str, OnceRun]:
        if target is None:
            return name, OnceRun({"status": "invalid", "error": "; ".join(str(p) for p in problems)}, True, False)
        sub = settings.model_copy(update={"path": target_path(settings.path, name), "state_dir": target_state_dir(settings.state_dir, name)})
        try:
            clients = clients_for_settings(target, timeout_hold=settings.interval / 2, quota_share=settings.quota_share)
            controller = Controller(sub, clients, target=name, fence=fence_of(book, name), git=source)
        except Exception as exc:  # noqa: BLE001 - one target's failure is its own line
            message = describe_error(exc) if isinstance(exc, AWS_ERRORS) else str(exc)
            return name, OnceRun({"status": "error", "error": f"{message}; nothing was read or written"}, True, False)
        if book is None:
            return name, run_once(controller)
        try:
            with book.fenced(name):  # the lease is not handed over while its run goes on
                return name, run_once(controller)
        except FenceError as exc:  # the lease lost before the run began
            controller.history.close()
            return name, OnceRun({"status": "error", "error": f"{exc}; nothing was written"}, True, False)

    elsewhere = {name: OnceRun({"status": "held elsewhere", "holder": holder}, False, True) for name, holder in held.items() if holder is not None}
    try:
        with ThreadPoolExecutor(max(1, settings.parallelism)) as pool:
            runs = dict(pool.map(lambda item: one(*item), [t for t in targets if t[0] not in elsewhere]))
    finally:
        if book is not None:
            renewing.set()
            book.close()  # the leases go back at once: the next replica need not wait for them to expire
    return dict(sorted({**runs, **elsewhere}.items()))


def _take_leases(settings: RunSettings, names: Sequence[str]) -> tuple[LeaseBook | None, dict[str, str | None], threading.Event]:
    """Without a lease table: every target, no book. With it: the leases this replica can take
    now (the others' holders named), renewed every retry period until the returned event is set."""
    done = threading.Event()
    if not settings.lease_table:
        return None, dict.fromkeys(names), done

    book = lease_book(settings)
    mine = book.tick(names)
    holders = book.holders()
    held = {name: None if name in mine else holders.holder(name) or "(none: not taken by this replica)" for name in names}

    def renew() -> None:
        while not done.wait(book.timings.retry_period):
            book.tick(sorted(mine))

    threading.Thread(target=renew, name="lease-renewal", daemon=True).start()
    return book, held, done
