"""An https-style git remote that demands a token: `git http-backend` behind a tiny HTTP
server on 127.0.0.1 that checks the Authorization header (plain HTTP on loopback)."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from controller.loop.gitsource import GitSource, GitSourceError
from tests.e2e_support import git

TOKEN = "tok-3f9a-never-logged"


def _handler(project_root: Path) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        seen_auth: list[str | None] = []

        def log_message(self, *args: object) -> None:
            pass

        def _cgi(self) -> None:
            Handler.seen_auth.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "x-access-token",
            }
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _cgi
        do_POST = _cgi

    return Handler


@pytest.fixture
def token_remote(tmp_path: Path) -> Iterator[tuple[str, str, type[BaseHTTPRequestHandler]]]:
    root = tmp_path / "srv"
    bare = root / "estate.git"
    bare.mkdir(parents=True)
    git("init", "--bare", "--initial-branch=main", cwd=bare)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "--initial-branch=main", cwd=work)
    (work / "desired_state").mkdir()
    (work / "desired_state" / "a.yaml").write_text("functions: {}\n")
    git("add", "-A", cwd=work)
    git("commit", "-m", "spec", cwd=work)
    git("push", str(bare), "HEAD:main", cwd=work)
    handler = _handler(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/estate.git", git("rev-parse", "HEAD", cwd=work), handler
    finally:
        server.shutdown()
        server.server_close()


def test_token_is_sent_as_a_header_and_kept_out_of_url_and_config(token_remote, tmp_path):
    url, head, handler = token_remote
    source = GitSource(url=url, branch="main", workdir=tmp_path / "mirror", token=TOKEN)
    assert source.fetch() == head
    assert source.remote_head() == head
    assert handler.seen_auth and all(a and a.startswith("Basic ") for a in handler.seen_auth)
    config = (tmp_path / "mirror" / "config").read_text()
    assert TOKEN not in config and url in config
    spec = source.export(head, "desired_state", tmp_path / "specs")
    assert (spec / "a.yaml").read_text() == "functions: {}\n"


def test_without_the_token_fetch_fails_in_one_line(token_remote, tmp_path):
    url, _, _ = token_remote
    with pytest.raises(GitSourceError) as info:
        GitSource(url=url, branch="main", workdir=tmp_path / "mirror").fetch()
    message = str(info.value)
    assert message.startswith(f"git fetch {url} failed: ") and "\n" not in message


def test_wrong_token_fails_and_is_not_echoed(token_remote, tmp_path):
    url, _, _ = token_remote
    with pytest.raises(GitSourceError) as info:
        GitSource(url=url, branch="main", workdir=tmp_path / "mirror", token="wrong-token-value").fetch()
    assert "wrong-token-value" not in str(info.value) and TOKEN not in str(info.value)
