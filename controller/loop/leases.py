"""Leases: several controller replicas share the targets through one DynamoDB table.

Each target is a *lease* item. A replica takes free or expired leases, renews its own every
retry period and balances them with the others, like the Kinesis Client Library balances shard
leases; timing and expiry are judged like Kubernetes' client-go leader election:

- **Expiry on the observer's clock.** No machine trusts another's clock. Every write to a lease
  bumps its record version (``rv``); a replica remembers, on *its* monotonic clock, when it first
  saw each version. A lease is expired for it when its version has not changed for the lease
  duration since then. A replica seeing a lease for the first time waits a whole lease duration.
- **The renew deadline.** The holder times each renewal from *before* the write was sent. When it
  has not renewed a lease for the renew deadline (shorter than the lease duration), it considers
  the lease lost and stops working on it: before any other replica can judge it expired.
- **Epochs and fencing.** Every takeover (of a free, expired or handed-over lease) increments the
  lease's epoch. :meth:`LeaseBook.fence` is a conditional write (``owner = me AND epoch = my
  epoch``; it renews the lease too) made right before each write for the target: a replica that
  lost its lease (paused by SIGSTOP, partitioned) fails it and makes no further write.
- **Balance.** Live replicas are those whose heartbeat item (``replica#<id>``, renewed each
  tick) or a lease changed within the lease duration on my clock. The fair share is
  ceil(targets / live replicas). A replica takes free or expired leases up to its fair share;
  under it, it asks the most loaded replica (holding at least two more) for one lease per tick
  (``wanted_by``). The asked replica releases it at its next tick, unless a fenced write on that
  target is in progress, and the asker takes it (epoch + 1): a handover never has two holders.
- **Shared state.** Small JSON values per target (``state#<target>#<key>`` items), readable by
  every replica, written only by the lease's holder at its epoch (a transaction with a
  ``ConditionCheck`` on the lease), so a replica taking over resumes where the last one stopped.

The table has one string hash key, ``pk``; ``pointsman lease-table create`` makes it. Items:
``lease#<target>``, ``replica#<replica id>``, ``state#<target>#<key>``.

Typical use (the runner)::

    book = LeaseBook(clients, "pointsman-leases")   # clients with short timeouts: see LeaseBook
    while running:                                  # every book.timings.retry_period seconds
        mine = book.tick([t.name for t in targets])  # the target names held now
        for name in mine:                           # (a reconcile per target, on a worker)
            state = book.state(name)                # where the last holder stopped
            with book.fenced(name):                 # right before each write; LeaseLost: stop
                write_to_aws(...)
            state.put("rollout", {...})             # fenced on the lease too
    book.close()                                    # release the leases at once (graceful stop)
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import structlog

from controller.aws.clients import AWS_ERRORS, AwsClients, describe_error, error_code
from controller.loop.history import iso

DEFAULT_LEASE_DURATION = 15.0  # as controller-runtime's leader election
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
TABLE_ENV = "POINTSMAN_LEASE_TABLE"
HASH_KEY = "pk"
LEASE, REPLICA, STATE = "lease", "replica", "state"
FORGET_AFTER = 2  # a replica item unchanged for this many lease durations is deleted

log = structlog.get_logger("pointsman.leases")


class LeaseError(Exception):
    """Something about the lease table or a lease; the message is one line."""


class LeaseTableError(LeaseError):
    """The lease table cannot be used: a table of that name with another key, a bad name."""


class FenceError(LeaseError):
    """This replica could not confirm it holds the target's lease: it must not write for it."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(message)
        self.target = target


class LeaseLost(FenceError):
    """The target's lease is not (or no longer) this replica's: stop working on the target."""


@dataclass(frozen=True)
class LeaseTimings:
    """The lease duration, the renew deadline and the retry period, in seconds."""

    lease_duration: float = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD

    def __post_init__(self) -> None:
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if not self.renew_deadline < self.lease_duration:
            raise ValueError(f"the renew deadline ({self.renew_deadline:g} s) must be shorter than the lease duration ({self.lease_duration:g} s)")
        if not self.retry_period < self.renew_deadline:
            raise ValueError(f"the retry period ({self.retry_period:g} s) must be shorter than the renew deadline ({self.renew_deadline:g} s)")


def default_replica_id() -> str:
    """hostname-pid-random: unique per process, readable on a status page."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _check_target(target: str) -> str:
    if not isinstance(target, str) or "#" in target:
        raise ValueError(f"target name {target!r} must be a string without '#'")
    return target


# ---------------------------------------------------------------------------------------------
# The table


def _check_table_name(table: str) -> None:
    if not (3 <= len(table) <= 255) or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in table):
        raise LeaseTableError(f"lease table name {table!r} must be 3 to 255 characters of letters, digits, '_', '.' and '-'")


def _key_problem(description: dict[str, Any]) -> str | None:
    """Why a described table is not a lease table (None: it is)."""
    keys = [(k.get("AttributeName"), k.get("KeyType")) for k in description.get("KeySchema", [])]
    types = {a.get("AttributeName"): a.get("AttributeType") for a in description.get("AttributeDefinitions", [])}
    if keys == [(HASH_KEY, "HASH")] and types.get(HASH_KEY) == "S":
        return None
    shown = ", ".join(f"{name} ({kind.lower()}, {types.get(name, '?')})" for name, kind in keys) or "none"
    return f"its key is {shown}; a lease table has one string hash key named {HASH_KEY}"


def check_table(clients: AwsClients, table: str) -> None:
    """Raise ``LeaseTableError`` unless ``table`` exists with the lease table's key."""
    _check_table_name(table)
    db = clients.client("dynamodb")
    try:
        description = db.describe_table(TableName=table)["Table"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise LeaseTableError(f"lease table {table} does not exist (`pointsman lease-table create --table {table}` makes it)") from None
        raise
    problem = _key_problem(description)
    if problem:
        raise LeaseTableError(f"table {table} exists but is not a lease table: {problem}")


def create_table(clients: AwsClients, table: str, *, wait_delay: float = 2.0, wait_attempts: int = 90) -> bool:
    """Make the lease table (on-demand capacity, one string hash key) and wait until it is ACTIVE.

    Idempotent: True when it was made, False when a table of that name with the right key was
    there already. A table of that name with another key is a ``LeaseTableError``."""
    _check_table_name(table)
    db = clients.client("dynamodb")
    created = False
    try:
        description = db.describe_table(TableName=table)["Table"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        try:
            description = db.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": HASH_KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": "managed-by", "Value": "pointsman"}],
            )["TableDescription"]
            created = True
        except botocore.exceptions.ClientError as exc2:
            if error_code(exc2) != "ResourceInUseException":  # made meanwhile by someone else
                raise
            description = db.describe_table(TableName=table)["Table"]
    problem = _key_problem(description)
    if problem:
        raise LeaseTableError(f"table {table} exists but is not a lease table: {problem}")
    if description.get("TableStatus") != "ACTIVE":
        waiter = db.get_waiter("table_exists")
        waiter.wait(TableName=table, WaiterConfig={"Delay": wait_delay, "MaxAttempts": wait_attempts})
    return created


def cloudformation(table: str | None = None) -> str:
    """A CloudFormation template (YAML) of the lease table."""
    name = f"\n      TableName: {table}" if table else ""
    return f"""AWSTemplateFormatVersion: "2010-09-09"
Description: Pointsman's lease table (replicas share the targets through it)
Resources:
  PointsmanLeases:
    Type: AWS::DynamoDB::Table
    Properties:{name}
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: {HASH_KEY}
          AttributeType: S
      KeySchema:
        - AttributeName: {HASH_KEY}
          KeyType: HASH
      Tags:
        - Key: managed-by
          Value: pointsman
Outputs:
  LeaseTable:
    Description: POINTSMAN_LEASE_TABLE
    Value: !Ref PointsmanLeases
"""


# ---------------------------------------------------------------------------------------------
# What the table holds


@dataclass(frozen=True)
class _Lease:
    target: str
    owner: str | None
    epoch: int
    rv: int
    since: float | None
    renewed: float | None
    duration: float | None
    wanted_by: str | None


@dataclass(frozen=True)
class _Replica:
    replica: str
    rv: int
    renewed: float | None
    started: float | None
    duration: float | None


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if isinstance(value, dict) and "S" in value else None


def _n(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if isinstance(value, dict) and "N" in value else None


def _num(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3)) if isinstance(value, float) else str(value)}


def _lease(item: dict[str, Any]) -> _Lease:
    return _Lease(
        target=_s(item, "target") or "",
        owner=_s(item, "owner"),
        epoch=int(_n(item, "epoch") or 0),
        rv=int(_n(item, "rv") or 0),
        since=_n(item, "since"),
        renewed=_n(item, "renewed"),
        duration=_n(item, "duration"),
        wanted_by=_s(item, "wanted_by"),
    )


def _replica(item: dict[str, Any]) -> _Replica:
    return _Replica(
        replica=_s(item, "replica") or "",
        rv=int(_n(item, "rv") or 0),
        renewed=_n(item, "renewed"),
        started=_n(item, "started"),
        duration=_n(item, "duration"),
    )


@dataclass(frozen=True)
class LeaseInfo:
    """One target's lease as the table holds it. ``since`` and ``renewed`` are the holder's wall
    clock (for people; never used to judge expiry); ``expired`` is judged on the reader's clock."""

    target: str
    owner: str | None
    epoch: int
    since: float | None
    renewed: float | None
    expired: bool
    wanted_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "owner": self.owner,
            "epoch": self.epoch,
            "since": iso(self.since),
            "renewed": iso(self.renewed),
            "expired": self.expired,
            "wanted_by": self.wanted_by,
        }


@dataclass(frozen=True)
class ReplicaInfo:
    """A replica known to the table: its last heartbeat (its wall clock), whether it is live on
    the reader's clock, and how many unexpired leases it holds."""

    replica: str
    renewed: float | None
    started: float | None
    live: bool
    leases: int

    def as_json(self) -> dict[str, Any]:
        return {"replica": self.replica, "renewed": iso(self.renewed), "started": iso(self.started), "live": self.live, "leases": self.leases}


@dataclass(frozen=True)
class Holders:
    """The whole picture from the table: every lease and every known replica; ``me`` is the
    reading replica."""

    me: str
    leases: list[LeaseInfo]
    replicas: list[ReplicaInfo]

    def holder(self, target: str) -> str | None:
        """The replica holding the target's unexpired lease, else None."""
        for lease in self.leases:
            if lease.target == target and lease.owner and not lease.expired:
                return lease.owner
        return None

    def as_json(self) -> dict[str, Any]:
        return {"me": self.me, "leases": [x.as_json() for x in self.leases], "replicas": [r.as_json() for r in self.replicas]}


@dataclass(frozen=True)
class Fence:
    """A confirmed lease: ``epoch``, and ``deadline`` (on the book's clock) after which it is lost
    unless renewed: a write for the target should be done by then."""

    target: str
    epoch: int
    deadline: float


@dataclass
class _Held:
    epoch: int
    renewed_at: float  # my clock, before the last successful write of the lease
    since: float  # wall clock, when taken


@dataclass
class _Seen:
    rv: int
    at: float  # my clock, when this version was first seen


# ---------------------------------------------------------------------------------------------
# The book


class LeaseBook:
    """One replica's leases in the table ``table``.

    ``tick(targets)`` every retry period: heartbeat, renew, read the table, take, hand over and
    ask for leases; it returns the targets this replica holds now. ``fence(target)`` or
    ``with fenced(target):`` right before each write for a target. ``clock`` is monotonic (a
    fake one in tests); ``wall`` is only shown to people. Thread-safe: fences may run on worker
    threads while another thread ticks.

    The clients' timeouts bound how long one call can take: give the book clients whose
    attempts and timeouts fit in the renew deadline, and a short ``timeout_hold`` (without one,
    a timed-out endpoint fails every later call): ``AwsClients(max_attempts=2, connect_timeout=2,
    read_timeout=3, timeout_hold=retry_period)``, so a hung endpoint costs a renewal, not the lease.
    Safety does not depend on it: a renewal still in flight at the renew deadline does not keep
    the lease (``holds`` is judged on the clock at each call)."""

    def __init__(
        self,
        clients: AwsClients,
        table: str,
        *,
        replica_id: str | None = None,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        _check_table_name(table)
        self.clients = clients
        self.table = table
        self.replica_id = replica_id or default_replica_id()
        self.timings = LeaseTimings(lease_duration, renew_deadline, retry_period)
        self._clock = clock
        self._wall = wall
        self._db = clients.client("dynamodb")
        self._lock = threading.RLock()
        self._held: dict[str, _Held] = {}
        self._busy: Counter[str] = Counter()
        self._seen: dict[str, _Seen] = {}
        self._expiries: dict[str, float] = {}  # another replica's lease -> when it expires on my clock, unless renewed
        self._to_judgement = 0.0  # the last tick's time from its start to judging the leases read
        self._random = random.Random(self.replica_id)

    # -- what this replica holds -------------------------------------------------------------

    def _valid(self, held: _Held, now: float) -> bool:
        return now - held.renewed_at < self.timings.renew_deadline

    def holds(self, target: str) -> bool:
        """This replica holds the target's lease, renewed within the renew deadline (no call)."""
        with self._lock:
            held = self._held.get(target)
            return held is not None and self._valid(held, self._clock())

    def held(self) -> frozenset[str]:
        """The targets this replica holds now; those past the renew deadline are dropped."""
        now = self._clock()
        with self._lock:
            for target, held in list(self._held.items()):
                if not self._valid(held, now):
                    self._drop(target, "not renewed within the renew deadline")
            return frozenset(self._held)

    def epoch(self, target: str) -> int | None:
        """The epoch at which this replica holds the target's lease (None: not held)."""
        with self._lock:
            held = self._held.get(target)
            return held.epoch if held is not None and self._valid(held, self._clock()) else None

    def _drop(self, target: str, reason: str) -> None:
        with self._lock:
            held = self._held.pop(target, None)
        if held is not None:
            log.warning("lease lost", target=target, epoch=held.epoch, replica=self.replica_id, reason=reason)

    # -- calls ---------------------------------------------------------------------------------

    def _key(self, pk: str) -> dict[str, Any]:
        return {HASH_KEY: {"S": pk}}

    def _update(self, pk: str, update: str, condition: str | None, names: dict[str, str], values: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": self._key(pk), "UpdateExpression": update, "ExpressionAttributeNames": names}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if condition:
            kwargs["ConditionExpression"] = condition
        self._db.update_item(**kwargs)

    def _scan(self, condition: str, names: dict[str, str], values: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "FilterExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        with self.clients.expecting_shapes():
            while True:
                page = self._db.scan(**kwargs)
                items.extend(page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _read(self) -> tuple[dict[str, _Lease], dict[str, _Replica]]:
        """Every lease and replica item (one consistent scan, state items filtered out)."""
        items = self._scan("#k IN (:l, :r)", {"#k": "kind"}, {":l": {"S": LEASE}, ":r": {"S": REPLICA}})
        leases: dict[str, _Lease] = {}
        replicas: dict[str, _Replica] = {}
        with self.clients.expecting_shapes():
            for item in items:
                if _s(item, "kind") == LEASE:
                    lease = _lease(item)
                    leases[lease.target] = lease
                else:
                    replica = _replica(item)
                    replicas[replica.replica] = replica
        return leases, replicas

    def _observe(self, pk: str, rv: int, now: float) -> float:
        """When (my clock) I first saw this version of the item."""
        with self._lock:
            seen = self._seen.get(pk)
            if seen is None or seen.rv != rv:
                seen = self._seen[pk] = _Seen(rv, now)
            return seen.at

    def _expired(self, pk: str, rv: int, duration: float | None, now: float, times: float = 1.0) -> bool:
        return now - self._observe(pk, rv, now) >= (duration or self.timings.lease_duration) * times

    def _heartbeat(self) -> None:
        wall = self._wall()
        try:
            self._update(
                f"{REPLICA}#{self.replica_id}",
                "SET #k = :kind, #id = :me, #r = :wall, #d = :dur, #st = if_not_exists(#st, :wall) ADD #v :one",
                None,
                {"#k": "kind", "#id": "replica", "#r": "renewed", "#d": "duration", "#st": "started", "#v": "rv"},
                {":kind": {"S": REPLICA}, ":me": {"S": self.replica_id}, ":wall": _num(wall), ":dur": _num(self.timings.lease_duration), ":one": {"N": "1"}},
            )
        except AWS_ERRORS as exc:
            log.warning("lease heartbeat failed", replica=self.replica_id, error=describe_error(exc))

    def _renew(self, target: str, held: _Held) -> tuple[str, BaseException | None]:
        """One conditional renewal: ("ok" | "lost" | "error", the error)."""
        start = self._clock()
        try:
            self._update(
                f"{LEASE}#{target}",
                "SET #r = :wall, #d = :dur ADD #v :one",
                "#o = :me AND #e = :epoch",
                {"#r": "renewed", "#d": "duration", "#v": "rv", "#o": "owner", "#e": "epoch"},
                {
                    ":wall": _num(self._wall()),
                    ":dur": _num(self.timings.lease_duration),
                    ":one": {"N": "1"},
                    ":me": {"S": self.replica_id},
                    ":epoch": {"N": str(held.epoch)},
                },
            )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                with self._lock:
                    if self._held.get(target) is held:
                        self._drop(target, "taken over by another replica")
                return "lost", exc
            return "error", exc
        except AWS_ERRORS as exc:
            return "error", exc
        with self._lock:
            if self._held.get(target) is held:
                held.renewed_at = max(held.renewed_at, start)
        return "ok", None

    def _acquire(self, target: str, lease: _Lease | None) -> bool:
        """Take a free, expired or handed-over lease (epoch + 1), if nobody wrote it since I read it."""
        start, wall = self._clock(), self._wall()
        epoch = (lease.epoch if lease else 0) + 1
        try:
            if lease is None:
                self._db.put_item(
                    TableName=self.table,
                    Item={
                        **self._key(f"{LEASE}#{target}"),
                        "kind": {"S": LEASE},
                        "target": {"S": target},
                        "owner": {"S": self.replica_id},
                        "epoch": {"N": "1"},
                        "rv": {"N": "1"},
                        "since": _num(wall),
                        "renewed": _num(wall),
                        "duration": _num(self.timings.lease_duration),
                    },
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": HASH_KEY},
                )
            else:
                self._update(
                    f"{LEASE}#{target}",
                    "SET #o = :me, #e = :epoch, #s = :wall, #r = :wall, #d = :dur REMOVE #w ADD #v :one",
                    "#v = :rv",
                    {"#o": "owner", "#e": "epoch", "#s": "since", "#r": "renewed", "#d": "duration", "#w": "wanted_by", "#v": "rv"},
                    {
                        ":me": {"S": self.replica_id},
                        ":epoch": {"N": str(epoch)},
                        ":wall": _num(wall),
                        ":dur": _num(self.timings.lease_duration),
                        ":one": {"N": "1"},
                        ":rv": {"N": str(lease.rv)},
                    },
                )
        except AWS_ERRORS as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                log.warning("lease not taken", target=target, replica=self.replica_id, error=describe_error(exc))
            return False
        with self._lock:
            self._held[target] = _Held(epoch, start, wall)
        log.info("lease taken", target=target, epoch=epoch, replica=self.replica_id, previous=lease.owner if lease else None)
        return True

    def release(self, target: str, *, unless_busy: bool = False) -> bool:
        """Stop working on the target and free its lease at once (for the next replica to take
        it without waiting for expiry). False when it was not held, or (``unless_busy``) while a
        ``fenced`` block on the target runs."""
        with self._lock:  # one step with fenced()'s mark: a handover never frees a lease in use
            if unless_busy and self._busy[target] > 0:
                return False
            held = self._held.pop(target, None)
        if held is None:
            return False
        try:
            self._update(
                f"{LEASE}#{target}",
                "SET #r = :wall REMOVE #o, #w ADD #v :one",
                "#o = :me AND #e = :epoch",
                {"#r": "renewed", "#o": "owner", "#w": "wanted_by", "#v": "rv", "#e": "epoch"},
                {":wall": _num(self._wall()), ":one": {"N": "1"}, ":me": {"S": self.replica_id}, ":epoch": {"N": str(held.epoch)}},
            )
        except AWS_ERRORS as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                log.warning("lease not released (it expires)", target=target, replica=self.replica_id, error=describe_error(exc))
            return False
        log.info("lease released", target=target, epoch=held.epoch, replica=self.replica_id)
        return True

    def close(self) -> None:
        """A graceful stop: release every lease and remove this replica's heartbeat."""
        with self._lock:
            targets = sorted(self._held)
        for target in targets:
            self.release(target)
        try:
            self._db.delete_item(TableName=self.table, Key=self._key(f"{REPLICA}#{self.replica_id}"))
        except AWS_ERRORS as exc:
            log.warning("replica heartbeat not removed", replica=self.replica_id, error=describe_error(exc))

    # -- the tick ------------------------------------------------------------------------------

    def tick(self, targets: Iterable[str]) -> frozenset[str]:
        """One round, every retry period: heartbeat, renew the leases held, release those of
        targets no longer given, read the table, take free or expired leases up to the fair
        share, hand over asked-for leases, ask the most loaded replica for one. Returns the
        targets held now. DynamoDB errors are logged, never raised: a lease that could not be
        renewed is dropped at its renew deadline."""
        wanted = sorted({_check_target(t) for t in targets})
        started = self._clock()
        self._heartbeat()
        with self._lock:
            targets_held = sorted(self._held)
        for target in targets_held:
            with self._lock:
                held = self._held.get(target)
            if held is None:
                continue
            if not self._valid(held, self._clock()):
                self._drop(target, "not renewed within the renew deadline")
                continue
            status, exc = self._renew(target, held)
            if status == "error" and exc is not None:
                log.warning("lease not renewed", target=target, replica=self.replica_id, error=describe_error(exc))
        for target in sorted(self.held() - set(wanted)):
            self.release(target)
        try:
            leases, replicas = self._read()
        except AWS_ERRORS as exc:
            log.warning("lease table not read", replica=self.replica_id, error=describe_error(exc))
            return self.held()
        self._to_judgement = self._clock() - started  # how long a tick takes to judge the leases
        self._balance(wanted, leases, replicas)
        return self.held()

    def _balance(self, wanted: list[str], leases: dict[str, _Lease], replicas: dict[str, _Replica]) -> None:
        me = self.replica_id
        now = self._clock()
        wanted_set = set(wanted)
        expired = {t: self._expired(f"{LEASE}#{t}", x.rv, x.duration, now) for t, x in leases.items()}
        with self._lock:
            self._expiries = {
                t: self._observe(f"{LEASE}#{t}", x.rv, now) + (x.duration or self.timings.lease_duration)
                for t, x in leases.items()
                if x.owner and x.owner != me and not expired[t] and t in wanted_set
            }
        for target, lease in leases.items():  # the table says another replica took it
            with self._lock:
                ours = self._held.get(target)
            if ours is not None and (lease.owner != me or lease.epoch != ours.epoch):
                self._drop(target, f"taken over by {lease.owner or 'nobody'} at epoch {lease.epoch}")
        live = {me}
        for rid, replica in replicas.items():
            pk = f"{REPLICA}#{rid}"
            if not self._expired(pk, replica.rv, replica.duration, now):
                live.add(rid)
            elif rid != me and self._expired(pk, replica.rv, replica.duration, now, FORGET_AFTER):
                self._forget(rid, replica.rv)
        counts: Counter[str] = Counter()
        for target, lease in leases.items():
            if target in wanted_set and lease.owner and lease.owner != me and not expired[target]:
                counts[lease.owner] += 1
        live |= set(counts)
        fair = math.ceil(len(wanted) / len(live)) if wanted else 0
        held = self.held()
        # Take free and expired leases (and those still naming me that I dropped) up to the fair share.
        free = [t for t in wanted if t not in held and (t not in leases or not leases[t].owner or leases[t].owner == me or expired[t])]
        self._random.shuffle(free)
        mine = len(held & wanted_set)
        for target in free:
            if mine >= fair:
                break
            if self._acquire(target, leases.get(target)):
                mine += 1
        counts[me] = mine
        # Hand over the leases others asked for, while they hold at least two fewer than me.
        for target in sorted(self.held()):
            asked = leases.get(target)
            thief = asked.wanted_by if asked else None
            if not thief or thief == me:
                continue
            if thief in live and counts[me] - counts[thief] >= 2:
                if self.release(target, unless_busy=True):  # not while a fenced write runs: at a later tick
                    log.info("lease handed over", target=target, to=thief, replica=me)
                    counts[me] -= 1
                    counts[thief] += 1
            else:
                self._clear_request(target, thief)
        # Still under the fair share (every free lease tried): ask the most loaded replica for one.
        if counts[me] < fair:
            self._ask(wanted, leases, expired, counts, live)

    def _ask(self, wanted: list[str], leases: dict[str, _Lease], expired: dict[str, bool], counts: Counter[str], live: set[str]) -> None:
        me = self.replica_id
        if any(x.wanted_by == me and x.owner in live and not expired[t] for t, x in leases.items()):
            return  # one request at a time
        others = [(n, rid) for rid, n in counts.items() if rid != me and rid in live]
        if not others:
            return
        most, victim = max(others)
        if most - counts[me] < 2:
            return
        theirs = [t for t in wanted if t in leases and leases[t].owner == victim and not expired[t] and not leases[t].wanted_by]
        if not theirs:
            return
        target = self._random.choice(theirs)
        lease = leases[target]
        try:
            self._update(
                f"{LEASE}#{target}",
                "SET #w = :me",
                "#o = :victim AND #e = :epoch",
                {"#w": "wanted_by", "#o": "owner", "#e": "epoch"},
                {":me": {"S": me}, ":victim": {"S": victim}, ":epoch": {"N": str(lease.epoch)}},
            )
        except AWS_ERRORS as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                log.warning("lease not asked for", target=target, replica=me, error=describe_error(exc))
            return
        log.info("lease asked for", target=target, holder=victim, replica=me, held=counts[me], most=most)

    def _clear_request(self, target: str, thief: str) -> None:
        """A request this replica will not honour (the asker is gone or no longer under-loaded)."""
        with self._lock:
            held = self._held.get(target)
        if held is None:
            return
        try:
            self._update(
                f"{LEASE}#{target}",
                "REMOVE #w",
                "#o = :me AND #e = :epoch AND #w = :thief",
                {"#w": "wanted_by", "#o": "owner", "#e": "epoch"},
                {":me": {"S": self.replica_id}, ":epoch": {"N": str(held.epoch)}, ":thief": {"S": thief}},
            )
        except AWS_ERRORS:
            pass  # asked again meanwhile, or the table is unreachable: looked at again next tick

    def _forget(self, replica: str, rv: int) -> None:
        """Delete a dead replica's heartbeat item, unless it came back meanwhile."""
        try:
            self._db.delete_item(
                TableName=self.table,
                Key=self._key(f"{REPLICA}#{replica}"),
                ConditionExpression="#v = :rv",
                ExpressionAttributeNames={"#v": "rv"},
                ExpressionAttributeValues={":rv": {"N": str(rv)}},
            )
        except AWS_ERRORS:
            return
        with self._lock:
            self._seen.pop(f"{REPLICA}#{replica}", None)

    # -- fencing -------------------------------------------------------------------------------

    def next_tick_in(self) -> float:
        """Seconds until the next tick is due: the retry period, or sooner when another replica's
        lease expires before then (a dead replica's targets are taken at its lease's end, not up
        to a retry period later)."""
        period = self.timings.retry_period
        with self._lock:
            soonest = min(self._expiries.values(), default=None)
        if soonest is None:
            return period
        # Started that much before the expiry, the tick judges the leases right after it.
        return max(0.01, min(period, soonest - self._clock() - self._to_judgement + 0.01))

    def fence(self, target: str) -> Fence:
        """Confirm, with a conditional write to the table (owner = me AND epoch = my epoch,
        renewing the lease), that this replica still holds the target's lease: call it right
        before each write for the target. Raises ``LeaseLost`` when it does not (taken over, or
        not renewed within the renew deadline), ``FenceError`` when the table cannot confirm it:
        either way, make no write."""
        with self._lock:
            held = self._held.get(target)
        if held is None:
            raise LeaseLost(target, f"target {target}: this replica ({self.replica_id}) does not hold its lease")
        if not self._valid(held, self._clock()):
            self._drop(target, "not renewed within the renew deadline")
            raise LeaseLost(
                target,
                f"target {target}: lease (epoch {held.epoch}) not renewed within the renew deadline ({self.timings.renew_deadline:g} s); "
                "another replica may hold it now",
            )
        status, exc = self._renew(target, held)
        if status == "lost":
            raise LeaseLost(target, f"target {target}: lease (epoch {held.epoch}) taken over by another replica; no write made")
        if status == "error":
            raise FenceError(target, f"target {target}: cannot confirm the lease (epoch {held.epoch}): {describe_error(exc or Exception())}; no write made")
        return Fence(target, held.epoch, held.renewed_at + self.timings.renew_deadline)

    @contextmanager
    def fenced(self, target: str) -> Iterator[Fence]:
        """``fence(target)``, then the block: a lease asked for by another replica is not handed
        over while a fenced block on its target runs."""
        with self._lock:
            self._busy[target] += 1
        try:
            yield self.fence(target)
        finally:
            with self._lock:
                self._busy[target] -= 1
                if self._busy[target] <= 0:
                    del self._busy[target]

    # -- status --------------------------------------------------------------------------------

    def holders(self) -> Holders:
        """Who holds which target, since when, at which epoch, and the known replicas: the whole
        picture from the table (expiry and liveness judged on this replica's clock)."""
        leases, replicas = self._read()
        now = self._clock()
        infos = [
            LeaseInfo(t, x.owner, x.epoch, x.since, x.renewed, self._expired(f"{LEASE}#{t}", x.rv, x.duration, now), x.wanted_by)
            for t, x in sorted(leases.items())
        ]
        counts = Counter(i.owner for i in infos if i.owner and not i.expired)
        known = [
            ReplicaInfo(rid, r.renewed, r.started, not self._expired(f"{REPLICA}#{rid}", r.rv, r.duration, now), counts.get(rid, 0))
            for rid, r in sorted(replicas.items())
        ]
        for owner in sorted(set(counts) - set(replicas)):  # holds a lease without a heartbeat item
            known.append(ReplicaInfo(owner, None, None, True, counts[owner]))
        return Holders(self.replica_id, infos, known)

    # -- shared state --------------------------------------------------------------------------

    def state(self, target: str) -> TargetState:
        """The target's shared key-value store."""
        return TargetState(self, _check_target(target))


@dataclass
class TargetState:
    """A target's small key-value store in the lease table: JSON values every replica reads,
    written only by the holder of the target's lease at its epoch."""

    book: LeaseBook
    target: str
    _prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self._prefix = f"{STATE}#{self.target}#"

    def _pk(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValueError(f"a state key is a non-empty string, not {key!r}")
        return self._prefix + key

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (strongly consistent read), else ``default``."""
        book = self.book
        with book.clients.expecting_shapes():
            item = book._db.get_item(TableName=book.table, Key=book._key(self._pk(key)), ConsistentRead=True).get("Item")
            return default if item is None else json.loads(item["value"]["S"])

    def items(self) -> dict[str, Any]:
        """Every key of the target and its value."""
        book = self.book
        found = book._scan("begins_with(#pk, :prefix)", {"#pk": HASH_KEY}, {":prefix": {"S": self._prefix}})
        with book.clients.expecting_shapes():
            return {item[HASH_KEY]["S"][len(self._prefix) :]: json.loads(item["value"]["S"]) for item in sorted(found, key=lambda i: i[HASH_KEY]["S"])}

    def put(self, key: str, value: Any) -> None:
        """Write ``key`` (a JSON value) if this replica holds the lease at its epoch; else
        ``LeaseLost`` (or ``FenceError``) and nothing written."""
        body = json.dumps(value, sort_keys=True, separators=(",", ":"))
        book = self.book
        held = self._held()
        item = {
            **book._key(self._pk(key)),
            "kind": {"S": STATE},
            "target": {"S": self.target},
            "key": {"S": key},
            "value": {"S": body},
            "epoch": {"N": str(held.epoch)},
            "writer": {"S": book.replica_id},
            "updated": _num(book._wall()),
        }
        self._write({"Put": {"TableName": book.table, "Item": item}}, held)

    def delete(self, key: str) -> None:
        """Remove ``key`` under the same condition as ``put``."""
        held = self._held()
        self._write({"Delete": {"TableName": self.book.table, "Key": self.book._key(self._pk(key))}}, held)

    def _held(self) -> _Held:
        book = self.book
        with book._lock:
            held = book._held.get(self.target)
        if held is None or not book._valid(held, book._clock()):
            if held is not None:
                book._drop(self.target, "not renewed within the renew deadline")
            raise LeaseLost(self.target, f"target {self.target}: this replica ({book.replica_id}) does not hold its lease; state not written")
        return held

    def _write(self, operation: dict[str, Any], held: _Held) -> None:
        book = self.book
        check = {
            "ConditionCheck": {
                "TableName": book.table,
                "Key": book._key(f"{LEASE}#{self.target}"),
                "ConditionExpression": "#o = :me AND #e = :epoch",
                "ExpressionAttributeNames": {"#o": "owner", "#e": "epoch"},
                "ExpressionAttributeValues": {":me": {"S": book.replica_id}, ":epoch": {"N": str(held.epoch)}},
            }
        }
        try:
            book._db.transact_write_items(TransactItems=[check, operation])
        except botocore.exceptions.ClientError as exc:
            reasons = [str(r.get("Code", "")) for r in exc.response.get("CancellationReasons", [])]
            if error_code(exc) == "TransactionCanceledException" and reasons[:1] == ["ConditionalCheckFailed"]:
                with book._lock:
                    if book._held.get(self.target) is held:
                        book._drop(self.target, "taken over by another replica")
                raise LeaseLost(self.target, f"target {self.target}: lease (epoch {held.epoch}) taken over by another replica; state not written") from None
            raise FenceError(self.target, f"target {self.target}: state not written: {describe_error(exc)}") from None
        except AWS_ERRORS as exc:
            raise FenceError(self.target, f"target {self.target}: state not written: {describe_error(exc)}") from None


def fence_of(book: LeaseBook | None, target: str) -> Callable[[], bool] | None:
    """What a controller asks before each write call (its ``fence``): does this replica still hold
    the target's lease? (None without leases.) A lost or unconfirmed lease is logged and False."""
    if book is None:
        return None
    lease_book = book

    def fence() -> bool:
        try:
            lease_book.fence(target)
        except FenceError as exc:
            log.warning("the target's lease is lost: no further write", target=target, error=str(exc))
            return False
        return True

    return fence
