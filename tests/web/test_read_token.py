"""POINTSMAN_UI_READ_TOKEN: reading the page, the runs, the API and the metrics needs the token;
the probes and the icon stay open; without it, everything reads as before."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.loop.runner import Controller, Runner
from controller.loop.settings import RunSettings
from controller.web import server as http
from tests.fuzz_http import exchange
from tests.fuzz_http import request as http_request

TOKEN = "read-s3cret"
PROTECTED = ("/", "/runs/1", "/api/status", "/api/history", "/metrics")
OPEN = ("/healthz", "/favicon.ico")


@pytest.fixture
def port(tmp_path: Path, clients: AwsClients, request: pytest.FixtureRequest) -> Iterator[int]:
    settings = RunSettings(repo=str(tmp_path / "no-repo"), state_dir=tmp_path / "state", listen="127.0.0.1:0", poll_interval=0, ui_read_token=request.param)
    controller = Controller(settings, clients)
    server = http.serve(Runner(settings, controller))
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        controller.history.close()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int | None:
    return exchange(port, http_request("GET", path, headers or {}), timeout=8).status


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("port", [TOKEN], indirect=True)
def test_with_a_read_token_every_page_and_api_needs_it(port: int) -> None:
    for path in PROTECTED:
        reply = exchange(port, http_request("GET", path, {}), timeout=8)
        assert reply.status == 401, path
        assert reply.headers.get("www-authenticate", "").startswith('Basic realm="pointsman"'), path
        assert TOKEN.encode() not in reply.body
        assert _get(port, path, {"Authorization": "Bearer wrong"}) == 401, path
        assert _get(port, path, _basic("me", "wrong")) == 401, path
        assert _get(port, path, {"Authorization": "Basic !!!not-base64"}) == 401, path
        # A browser's Basic prompt (any user name) or a bearer token reads it.
        expected = 404 if path == "/runs/1" else 200  # no run yet: the run page says so, once allowed in
        assert _get(port, path, {"Authorization": f"Bearer {TOKEN}"}) == expected, path
        assert _get(port, path, _basic("anyone", TOKEN)) == expected, path
    for path in OPEN:
        assert _get(port, path) == 200, path


@pytest.mark.parametrize("port", [None], indirect=True)
def test_without_a_read_token_everything_reads_as_before(port: int) -> None:
    for path in ("/", "/api/status", "/api/history", "/metrics", *OPEN):
        assert _get(port, path) == 200, path


@pytest.mark.parametrize("port", [TOKEN], indirect=True)
def test_pointsman_status_sends_the_read_token(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.cli.status import StatusError, fetch

    url = f"http://127.0.0.1:{port}"
    monkeypatch.delenv("POINTSMAN_UI_READ_TOKEN", raising=False)
    with pytest.raises(StatusError, match="needs its read token: set POINTSMAN_UI_READ_TOKEN"):
        fetch(url)
    monkeypatch.setenv("POINTSMAN_UI_READ_TOKEN", TOKEN)
    assert "state" in fetch(url)
