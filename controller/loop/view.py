"""The loop as the layers above it see it: a small typed interface, so they need not know the runner.

The HTTP server (``controller.web``) serves the status page, the API, the webhook and the
metrics of whatever provides :class:`LoopView`; :class:`controller.loop.runner.Runner` does, and
starts the server it is given (:class:`HttpServer`), so the loop never imports the web layer.
"""

from __future__ import annotations

from typing import Any, Protocol

from controller.loop.history import RunRecord
from controller.loop.settings import RunSettings


class LoopView(Protocol):
    """What the HTTP server needs of the running loop."""

    @property
    def settings(self) -> RunSettings:
        """The settings the loop runs with (listen address, webhook secret, UI token, branch)."""
        ...

    def trigger(self, reason: str) -> None:
        """Reconcile at once (or right after the run in flight)."""
        ...

    def rollout_control(self, alias: str, action: str, target: str | None = None) -> str | None:
        """Abort, promote or retry ``alias``'s rollout at the next run (started now); the reason
        it cannot be done, or None. ``target``: the target the alias is in (a spec split into targets)."""
        ...

    def ready(self) -> tuple[bool, str]:
        """Ready to serve (a first run finished), and why not."""
        ...

    def status_document(self) -> dict[str, Any]:
        """``/api/status``: the state after the last run, commits, drift, warnings."""
        ...

    def recent_runs(self, limit: int, resource: str | None = None, target: str | None = None) -> list[RunRecord]:
        """The newest runs of the history, newest first (those touching ``resource`` only, those
        of ``target`` only, when given); a target's runs carry its name (``RunRecord.target``)."""
        ...

    def run_record(self, run_id: int, target: str | None = None) -> RunRecord | None:
        """One run of the history (of ``target``'s history: each target numbers its own runs)."""
        ...

    def metrics_text(self) -> bytes:
        """The Prometheus exposition of the loop's metrics."""
        ...

    def approve(self, run_id: int, target: str | None = None) -> str | None:
        """Approve the actions run ``run_id`` (of ``target``) left waiting for approval and reconcile (None), or why not."""
        ...


class HttpServer(Protocol):
    """The server a runner starts and stops (``controller.web.server.serve`` makes one)."""

    server_address: Any

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...
