"""Drift notifications: one Slack / JSON webhook message per state change, sent off the reconcile loop.

``Notifier.observe`` is called after every finished run. It compares the run with the last state it
reported (a fingerprint) and queues at most one event per change; one daemon thread delivers them
with retries, so a dead or slow target never holds up a reconcile.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

import structlog

from controller.loop.history import RunRecord, iso
from controller.views.values import change
from controller.views.words import ARROW, actor_words, plural, short_sha

log = structlog.get_logger("pointsman.notify")

EVENTS = ("drift_found", "healed", "apply_failed", "invalid_commit", "recovered", "error")
# The states "recovered" reports the end of (a healed run is already healthy).
BAD_EVENTS = frozenset({"drift_found", "apply_failed", "invalid_commit", "error"})
ROLLOUT_EVENTS = frozenset({"rollout_started", "rollout_step", "rollout_aborted", "rollout_promoted"})
_EVENT_OF_STATUS = {"drift": "drift_found", "applied": "healed", "failed": "apply_failed", "invalid": "invalid_commit", "error": "error"}
MAX_RESOURCES = 100  # in a JSON payload (the rest are counted in "more")
MAX_SLACK_RESOURCES = 10
MAX_BACKOFF = 60.0

Fingerprint = tuple[str, tuple[str, ...], str | None, str | None]


@dataclass(frozen=True)
class Target:
    url: str
    kind: str  # "slack" or "json"
    secret: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("slack", "json"):
            raise ValueError(f"notification target kind must be 'slack' or 'json', not {self.kind!r}")
        # The messages never repeat the URL: a Slack webhook URL is a secret.
        try:
            parts = urlsplit(self.url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0 and not any(c.isspace() for c in self.url)
        except ValueError:  # a bad port or IPv6 address
            ok = False
        if not ok:
            raise ValueError(f"{self.kind} notification URL must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{self.kind} notification URL must not hold a user or password (the JSON webhook is signed with the secret)")

    @property
    def display(self) -> str:
        """What logs may show: scheme://host[:port], plus the path for a generic webhook (never credentials or query)."""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        return f"{parts.scheme}://{netloc}" + (parts.path if self.kind == "json" else "")


def targets_from(slack_url: str | None, webhook_url: str | None, secret: str | None) -> list[Target]:
    """The targets the settings name (empty strings count as unset); ValueError with one line if one is bad."""
    if secret and not webhook_url:
        raise ValueError("a notification secret signs the JSON webhook, but no webhook URL is set")
    targets = []
    if slack_url:
        targets.append(Target(slack_url, "slack"))
    if webhook_url:
        targets.append(Target(webhook_url, "json", secret or None))
    return targets


@dataclass(frozen=True)
class _Delivery:
    target: Target
    event: str
    body: bytes
    headers: dict[str, str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would resend the payload somewhere else (as a GET, without it)."""

    def redirect_request(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: Any) -> None:
        return None


class Notifier:
    queue_size = 100

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        controller_name: str = "pointsman",
        status_url: str | None = None,
        spec_target: str | None = None,
        attempts: int = 5,
        backoff: float = 1.0,
        timeout: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.targets = list(targets)
        self.spec_target = spec_target  # the spec's target (account and Region) the runs are of
        self.controller_name = f"{controller_name} [{spec_target}]" if spec_target else controller_name
        self.status_url = status_url
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._last: Fingerprint | None = None
        self._state_lock = threading.Lock()
        self._queue: deque[_Delivery] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._worker = threading.Thread(target=self._work, name="pointsman-notify", daemon=True)
        if self.targets:
            self._worker.start()

    # ------------------------------------------------------------------ state changes

    def observe(self, record: RunRecord, head_invalid: bool = False) -> list[str]:
        """Queue the event this finished run is a change to, if any; returns the event names. Never blocks.
        ``head_invalid``: the newest commit is invalid (the run reconciled an older good one).

        A rollout's moves are their own events (``rollout_started``, ``rollout_step``,
        ``rollout_aborted``, ``rollout_promoted``), one per step; the alias a rollout moves is
        not drift news (a step is not a heal)."""
        sent: list[str] = []
        for row in record.rollouts:
            if row.get("event") in ROLLOUT_EVENTS:
                try:
                    self._enqueue(str(row["event"]), record, row)
                except Exception as exc:  # odd run data must not break the reconcile loop that called us
                    log.warning("notification not built", notification=row.get("event"), error=f"{type(exc).__name__}: {exc}")
                sent.append(str(row["event"]))
        rolling = {f"lambda_alias/{row.get('alias')}" for row in record.rollouts}
        status = record.status
        if status == "rolling_out" or (status in ("applied", "drift") and rolling and all(d.get("resource") in rolling for d in record.drift)):
            status = "in_sync"
        return sent + self._observe_state(record, status, head_invalid)

    def _observe_state(self, record: RunRecord, status: str, head_invalid: bool) -> list[str]:
        event = _EVENT_OF_STATUS.get(status)
        if head_invalid and status not in ("error", "failed", "running", "interrupted"):
            event = "invalid_commit"
        if event is None and status != "in_sync":
            return []  # running / interrupted (or unknown): not a state
        ids = tuple(sorted({str(d.get("resource")) for d in record.drift}))
        commit = (record.head_sha or record.commit_sha) if event == "invalid_commit" else None
        fingerprint: Fingerprint = (event or "in_sync", ids, commit, record.error)
        with self._state_lock:
            last, self._last = self._last, fingerprint
        if fingerprint == last:
            return []
        if event is None:  # in sync: news only after a bad state
            if last is None or last[0] not in BAD_EVENTS:
                return []
            event = "recovered"
        try:
            self._enqueue(event, record)
        except Exception as exc:  # odd run data must not break the reconcile loop that called us
            log.warning("notification not built", notification=event, error=f"{type(exc).__name__}: {exc}")
        return [event]

    # ------------------------------------------------------------------ payloads

    def summary(self, event: str, record: RunRecord) -> str:
        name, sha = self.controller_name, _short(record.commit_sha or record.head_sha)
        if event == "drift_found":
            planned = f"; {plural(len(record.actions), 'action')} planned, not applied" if record.mode == "detect" and record.actions else ""
            return f"{name}: drift found on {_count(record.drift)} at {sha} ({record.mode} mode{planned}): {_names(record.drift)}"
        if event == "healed":
            return f"{name}: healed {_count(record.drift)} at {sha}: {_names(record.drift)}"
        if event == "apply_failed":
            failed = [f"{a.get('resource')} {a.get('operation', '')}".strip() for a in record.actions if a.get("outcome") == "failed"]
            return f"{name}: apply failed: {_line(record.error or ', '.join(failed) or 'an action failed')}"
        if event == "invalid_commit":
            first = (record.error or "no details").split("; ")[0]
            return f"{name}: commit {_short(record.head_sha or record.commit_sha)} is invalid: {_line(first)}"
        if event == "recovered":
            return f"{name}: back in sync at {sha}"
        return f"{name}: reconcile error: {_line(record.error or 'unknown error')}"

    def payload(self, event: str, record: RunRecord) -> dict[str, Any]:
        # ``actor``: who made the change (CloudTrail's caller, source IP, user agent), when an event named it.
        resources = [{k: d.get(k) for k in ("resource", "kind", "status", "changes", "actor") if k != "actor" or d.get(k)} for d in record.drift]
        return {
            "event": event,
            "controller": self.controller_name,
            "target": self.spec_target,
            "status_url": self.status_url,
            "run": {
                "id": record.id,
                "trigger": record.trigger,
                "mode": record.mode,
                "status": record.status,
                "commit": (record.head_sha or record.commit_sha) if event == "invalid_commit" else (record.commit_sha or record.head_sha),
                "started": iso(record.started),
                "finished": iso(record.finished),
            },
            "summary": self.summary(event, record),
            "resources": resources[:MAX_RESOURCES],
            "more": max(0, len(resources) - MAX_RESOURCES),
            "error": record.error,
        }

    def slack_payload(self, event: str, record: RunRecord) -> dict[str, Any]:
        summary = self.summary(event, record)
        lines = [f"*{_esc(summary)}*"]
        for d in record.drift[:MAX_SLACK_RESOURCES]:
            changes = ", ".join(_change(c) for c in (d.get("changes") or [])[:5])
            who = f" by {_esc(_line(actor_words(d['actor']), 200))}" if isinstance(d.get("actor"), dict) else ""
            lines.append(f"• `{_esc(str(d.get('resource')))}` ({_esc(str(d.get('status')))})" + (f" {changes}" if changes else "") + who)
        if len(record.drift) > MAX_SLACK_RESOURCES:
            lines.append(f"and {len(record.drift) - MAX_SLACK_RESOURCES} more")
        if self.status_url:
            lines.append(f"<{self.status_url}|status>")
        text = "\n".join(lines)
        if len(text) > 2900:  # Slack caps a section's text at 3000 characters
            text = text[:2900] + "…"
        return {"text": summary, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}

    # ------------------------------------------------------------------ delivery

    def _enqueue(self, event: str, record: RunRecord, rollout: dict[str, Any] | None = None) -> None:
        for target in self.targets:
            headers = {"Content-Type": "application/json", "User-Agent": "pointsman-notify"}
            if rollout is not None:
                line = f"{self.controller_name}: {rollout.get('line')}"
                if target.kind == "slack":
                    body = json.dumps({"text": line, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _esc(line)}}]}).encode()
                else:
                    payload = self.payload(event, record)
                    payload.update(summary=line, rollout=rollout, resources=[], more=0)
                    body = json.dumps(payload, default=str).encode()
            elif target.kind == "slack":
                body = json.dumps(self.slack_payload(event, record), default=str).encode()
            else:
                body = json.dumps(self.payload(event, record), default=str).encode()
            if target.kind != "slack":
                headers["X-Pointsman-Event"] = event
                headers["X-Pointsman-Delivery"] = str(uuid.uuid4())
                if target.secret:
                    headers["X-Pointsman-Signature"] = "sha256=" + hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
            with self._cond:
                if self._closing:
                    log.warning("notification dropped: notifier closed", target=target.display, notification=event)
                    continue
                if len(self._queue) >= self.queue_size:
                    old = self._queue.popleft()
                    self.dropped += 1
                    log.warning("notification queue full; dropped the oldest", target=old.target.display, notification=old.event)
                self._queue.append(_Delivery(target, event, body, headers))
                self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(item)
            except Exception as exc:  # a bug here must not end the worker; the message could hold the URL
                self.failed += 1
                log.warning("notification failed", target=item.target.display, notification=item.event, error=type(exc).__name__)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, item: _Delivery) -> None:
        error, tried = "", 0
        for n in range(self.attempts):
            if n:
                if self._closing:
                    break  # closing: one attempt each for what is left
                self._sleep(min(self.backoff * 2 ** (n - 1), MAX_BACKOFF))
            tried += 1
            request = urllib.request.Request(item.target.url, data=item.body, headers=item.headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read(65536)
            except HTTPError as exc:
                exc.close()
                error = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break  # the target refuses this message: sending it again changes nothing
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, DNS, timeout
                error = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            else:
                self.delivered += 1
                return
        self.failed += 1
        log.warning("notification failed", target=item.target.display, notification=item.event, error=error, attempts=tried)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued notification was sent or given up; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker: what is queued gets one more attempt each, for at most ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout)


def _short(sha: str | None) -> str:
    return short_sha(sha, "?")


def _count(drift: list[dict[str, Any]]) -> str:
    return plural(len(drift), "resource")


def _names(drift: list[dict[str, Any]]) -> str:
    named = [str(d.get("resource")) for d in drift[:MAX_SLACK_RESOURCES]]
    more = len(drift) - len(named)
    return ", ".join(named) + (f" and {more} more" if more else "")


def _line(text: str, limit: int = 300) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _change(c: dict[str, Any]) -> str:
    """One change on one line, as the plan and the status page say it; a long text (a generated
    template) is its summary, ``generated template changed (+3 -1 lines)``, never its body."""
    shown = change(str(c.get("field")), c.get("live"), c.get("desired"))
    if shown.long and not shown.text:
        return f"`{_esc(shown.field)}`: {_esc(shown.summary)}"
    if shown.long:  # on one side: `generated template, 12 lines`
        return f"`{_esc(shown.field)}`: {_esc(shown.live)} {ARROW} {_esc(shown.desired)}"
    return f"`{_esc(shown.field)}`: {_esc(_line(shown.live, 80))} {ARROW} {_esc(_line(shown.desired, 80))}"


def _esc(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
