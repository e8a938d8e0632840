"""The events consumer: console changes reconciled within seconds, from CloudTrail via SQS.

AWS records every control-plane write in CloudTrail; an EventBridge rule (``pointsman
events-rule`` prints its pattern, ``examples/events-queue.yaml`` deploys it with the queue)
forwards those of Lambda and API Gateway to an SQS queue. ``pointsman run --events-queue URL``
long-polls the queue. Each event names what it changed (``controller.loop.events``); when that is
something the last full run read (a managed alias, stage, mapping...), the controller
forgets just those reads and reconciles at once, reading only them again. Everything else
is logged and deleted: a malformed or unrelated event, Pointsman's own writes (its user agent
or a principal given with ``--events-ignore-principals``), an unmanaged resource (no AWS read).

The full scan on ``--interval`` stays the safety net (events can be late, lost or filtered),
so it can then be long. Messages are deleted once handled; a crash in between means they
are handled again, which is harmless (a reconcile is idempotent).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import structlog

from controller.aws.clients import AWS_ERRORS, AwsClients, describe_error
from controller.loop.events import Ignored, MalformedEvent, Touch, parse_event
from controller.loop.history import RunRecord

log = structlog.get_logger("pointsman.events")

BATCH = 10  # the most SQS hands out per ReceiveMessage


class EventTarget(Protocol):
    """What the consumer needs of the controller (``controller.loop.runner.Controller`` is one)."""

    def has_reads(self) -> bool:
        """Whether a full run has read the managed scope (before it, events wait)."""
        ...

    def managed_reads(self, keys: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """Those of ``keys`` the last full run read (empty: the event touched nothing managed)."""
        ...

    def reconcile(self, trigger: str = "schedule", changed: Collection[tuple[str, ...]] | None = None, events: Sequence[Touch] = ()) -> RunRecord:
        """One run; with ``changed``, only those reads are made again."""
        ...


@runtime_checkable
class Controlled(Protocol):
    """One controller (it has ``reconcile``), not a router."""

    def reconcile(self, trigger: str = "schedule", changed: Collection[tuple[str, ...]] | None = None, events: Sequence[Touch] = ()) -> RunRecord: ...


class EventRouter(Protocol):
    """Several controllers behind one queue (a spec split into targets): which one an event is for."""

    def has_reads(self) -> bool:
        """Whether any controller can take events yet."""
        ...

    def route(self, touch: Touch) -> EventTarget | None:
        """The controller of the target in the event's account and Region (None: no target of
        this replica's is there; the event is deleted, the target's holder, if any, has its own)."""
        ...


class _One:
    """Every event goes to the one controller."""

    def __init__(self, controller: EventTarget) -> None:
        self.controller = controller

    def has_reads(self) -> bool:
        return self.controller.has_reads()

    def route(self, touch: Touch) -> EventTarget | None:
        return self.controller


class EventsConsumer:
    def __init__(
        self,
        queue_url: str,
        controller: EventTarget | EventRouter,
        *,
        wait: float = 20.0,
        ignore_principals: Collection[str] = (),
        clients: AwsClients | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.router: EventRouter = _One(controller) if isinstance(controller, Controlled) else controller
        self.wait = wait
        self.ignore_principals = tuple(ignore_principals)
        # Its own clients: queue calls are not reconcile calls (nor paced by AWS's Lambda and
        # API Gateway quotas), and a long poll needs a read timeout longer than its wait.
        self.clients = clients or AwsClients(rate_limiter=False, read_timeout=wait + 10)
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0  # messages taken off the queue, for /api/status and the tests

    def start(self) -> None:
        self.clients.client("sqs")  # a bad endpoint stops the start, not each poll
        self._thread = threading.Thread(target=self._loop, name="events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            if not self.router.has_reads():
                self.stopping.wait(0.2)  # the first full run is still reading: it will see every change so far
                continue
            try:
                self.poll_once()
                failures = 0
            except AWS_ERRORS as exc:
                failures += 1
                delay = min(60.0, 2.0 ** min(failures, 6))
                log.warning("cannot read the events queue; trying again", queue=self.queue_url, error=describe_error(exc), retry_in=delay)
                self.stopping.wait(delay)
            except Exception:  # noqa: BLE001 - never end the loop; the full scan goes on regardless
                log.exception("events consumer failed on a batch; going on")
                self.stopping.wait(1.0)

    def poll_once(self) -> int:
        """One long poll: handle what arrived, reconcile what it changed, delete it. Returns
        how many messages were handled."""
        sqs = self.clients.client("sqs")
        answer = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=int(self.wait), AttributeNames=["All"])
        messages: list[dict[str, Any]] = [m for m in answer.get("Messages") or [] if isinstance(m, dict)]
        # What changed, and the events, of each controller the events are routed to.
        work: dict[int, tuple[EventTarget, dict[tuple[str, ...], None], list[Touch]]] = {}
        for message in messages:
            self._consider(message, work)
        for controller, changed, touches in work.values():
            reasons = [t.reason for t in touches]
            record = controller.reconcile("event", list(changed), events=touches)
            log.info("event reconciled", events=reasons, status=record.status, drift=[d.get("resource") for d in record.drift], run=record.id)
        self._delete(messages)
        return len(messages)

    def _consider(self, message: dict[str, Any], work: dict[int, tuple[EventTarget, dict[tuple[str, ...], None], list[Touch]]]) -> None:
        message_id = str(message.get("MessageId", ""))
        try:
            event = parse_event(message.get("Body") or "", ignore_principals=self.ignore_principals)
        except MalformedEvent as exc:
            log.warning("malformed event deleted", message=message_id, error=str(exc))
            return
        if isinstance(event, Ignored):
            log.info("event ignored", message=message_id, reason=event.reason)
            return
        controller = self.router.route(event)
        if controller is None:
            log.info("event for no target of this replica", message=message_id, change=event.reason, account=event.account, region=event.region)
            return
        keys = controller.managed_reads(event.keys)
        if not keys:
            log.info("event for nothing Pointsman manages", message=message_id, change=event.reason)
            return
        _, changed, touches = work.setdefault(id(controller), (controller, {}, []))
        changed.update(dict.fromkeys(keys))
        touches.append(event)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if m.get("ReceiptHandle")]
        if entries:
            answer = self.clients.client("sqs").delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failed in answer.get("Failed") or []:
                log.warning("cannot delete an event from the queue; it will be handled again", entry=failed)
        self.handled += len(messages)
