"""HTTP endpoints: /healthz, /readyz, /metrics, /api/status, /api/history, /webhook, and / (a status page)."""

from __future__ import annotations

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from controller import webhook

if TYPE_CHECKING:
    from controller.runner import Runner

log = structlog.get_logger("pointsman.http")
MAX_BODY = 1 << 20


def _handler(runner: "Runner") -> type[BaseHTTPRequestHandler]:
    controller = runner.controller
    settings = runner.settings

    class Handler(BaseHTTPRequestHandler):
        server_version = "pointsman"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("http", client=self.client_address[0], request=format % args)

        def _send(self, code: int, body: bytes | str | dict[str, Any] | list[Any], content_type: str = "application/json") -> None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body, indent=2, default=str).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = body
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._guarded(self._get)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self._guarded(self._post)

        def _guarded(self, handle: Any) -> None:
            try:
                handle()
            except Exception as exc:  # one line in the log, a 500 for the client, the server lives on
                log.error("http handler failed", path=self.path, error=f"{type(exc).__name__}: {exc}")
                try:
                    self._send(500, {"error": "internal error"})
                except OSError:
                    pass

        def _get(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self._send(200, "ok\n", "text/plain")
            elif url.path == "/readyz":
                ready, why = controller.ready()
                self._send(200 if ready else 503, why + "\n", "text/plain")
            elif url.path == "/metrics":
                self._send(200, controller.metrics.render(), CONTENT_TYPE_LATEST)
            elif url.path == "/api/status":
                self._send(200, controller.status_document())
            elif url.path == "/api/history":
                raw = (parse_qs(url.query).get("limit") or ["20"])[0]
                limit = int(raw) if raw.isdigit() else 20
                self._send(200, [r.as_dict() for r in controller.history.recent(max(1, min(limit, 500)))])
            elif url.path == "/":
                self._send(200, _page(controller.status_document()), "text/html; charset=utf-8")
            else:
                self._send(404, {"error": "not found"})

        def _post(self) -> None:
            if urlsplit(self.path).path != "/webhook":
                self._send(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "payload too large"})
                return
            body = self.rfile.read(length) if length else b""
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
            if not secret:
                self._send(404, {"error": "webhook disabled: set POINTSMAN_WEBHOOK_SECRET or POINTSMAN_WEBHOOK_SECRET_FILE"})
                return
            sender = webhook.verify(secret, dict(self.headers.items()), body)
            if sender is None:
                log.warning("webhook rejected: bad or missing signature", client=self.client_address[0])
                self._send(401, {"error": "bad or missing signature"})
                return
            branch = webhook.pushed_branch(body)
            if branch is not None and branch != settings.branch:
                self._send(202, {"triggered": False, "reason": f"push to {branch}, following {settings.branch}"})
                return
            log.info("webhook accepted; reconciling now", sender=sender)
            runner.trigger(f"webhook:{sender}")
            self._send(202, {"triggered": True})

    return Handler


def serve(runner: "Runner") -> ThreadingHTTPServer:
    host, port = runner.settings.listen_address
    server = ThreadingHTTPServer((host, port), _handler(runner))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="pointsman-http", daemon=True).start()
    return server


def _page(status: dict[str, Any]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(d['resource'])}</code></td><td>{esc(d['status'])}</td><td>"
        + "<br>".join(esc(f"{c['field']}: {c['live']} -> {c['desired']}") for c in d["changes"])
        + "</td></tr>"
        for d in status.get("drift") or []
    )
    errors = "".join(f"<li><code>{esc(e)}</code></li>" for e in status.get("spec_errors") or [])
    last = status.get("last_run") or {}
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Pointsman</title>
<meta http-equiv="refresh" content="5"></head><body style="font-family:sans-serif;max-width:60em">
<h1>Pointsman</h1>
<p>Following <code>{esc(status['repo'])}</code> branch <code>{esc(status['branch'])}</code>, path <code>{esc(status['path'])}</code>,
mode <b>{esc(status['mode'])}</b>{' with prune' if status['prune'] else ''}.</p>
<p>Applied commit: <code>{esc(str(status.get('applied_commit') or '-'))}</code>; newest commit: <code>{esc(str(status.get('head_commit') or '-'))}</code>
{'' if status.get('head_valid') is not False else ' <b>(invalid, not applied)</b>'}</p>
<p>Last run: {esc(str(last.get('status', '-')))} ({esc(str(last.get('trigger', '')))}); ready: {esc(str(status['ready']))} ({esc(status['ready_reason'])})</p>
{f'<h2>Spec errors</h2><ul>{errors}</ul>' if errors else ''}
{f"<p>Last error: <code>{esc(status['last_error'])}</code></p>" if status.get('last_error') else ''}
<h2>Drift</h2>{f'<table border="1" cellpadding="4"><tr><th>resource</th><th>status</th><th>changes</th></tr>{rows}</table>' if rows else '<p>None: live AWS matches the spec.</p>'}
<p><a href="/api/status">/api/status</a> · <a href="/api/history">/api/history</a> · <a href="/metrics">/metrics</a></p>
</body></html>"""
