"""The request ``pointsman explain`` is asked about: method, URL or API and stage, headers, body."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_METHOD_RE = re.compile(r"[A-Za-z]{1,16}")
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")


class ExplainError(Exception):
    """The question cannot be asked: a bad URL, method or header, an ambiguous API name (one line, exit 1)."""


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request: by URL, or by path on ``--api NAME --stage STAGE``."""

    method: str
    path: str  # as sent, without the query string: "/v1/products"
    host: str = ""  # a custom domain or an execute-api host; "" with --api
    url: str = ""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    api: str | None = None
    stage: str | None = None

    def describe(self) -> str:
        if self.api is not None:
            return f"{self.method} {self.path} on stage {self.stage} of {self.api}"
        return f"{self.method} {self.url}"

    def header(self, name: str) -> str | None:
        """A header's value, its name in any letter case (the last spelling wins)."""
        found = None
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                found = value
        return found

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "url": self.url or None, "host": self.host or None, "path": self.path}
        if self.api is not None:
            out.update(api=self.api, stage=self.stage)
        out.update(query=self.query, headers=self.headers, body=self.body)
        return out


def parse_headers(items: Iterable[str]) -> dict[str, str]:
    """``["Version: 2022-05-03"]`` -> ``{"Version": "2022-05-03"}`` (curl's ``-H`` syntax)."""
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not _HEADER_NAME_RE.fullmatch(name):
            raise ExplainError(f"header {item!r} is not 'Name: value' with a valid header name")
        value = value.strip(" \t")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value if ch != "\t"):
            raise ExplainError(f"header {name} has a control character in its value")
        headers[name] = value
    return headers


def _method(text: str) -> str:
    if not _METHOD_RE.fullmatch(text) or text.upper() == "ANY":
        raise ExplainError(f"{text!r} is not an HTTP method (GET, POST, PUT, ...)")
    return text.upper()


def _query(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


def parse_request(
    method: str,
    target: str,
    headers: Iterable[str] = (),
    body: str = "",
    *,
    api: str | None = None,
    stage: str | None = None,
) -> Request:
    """The request from the command line: ``target`` is a URL, or a path with ``api`` and ``stage``."""
    verb, parsed_headers = _method(method), parse_headers(headers)
    if (api is None) != (stage is None):
        raise ExplainError("--api and --stage go together (or give a URL without either)")
    if api is not None:
        path, _, query = target.partition("?")
        if not path.startswith("/"):
            raise ExplainError(f"with --api, {target!r} must be a path that starts with '/' (like /users)")
        return Request(verb, path, query=_query(query), headers=parsed_headers, body=body, api=api, stage=stage)
    try:
        parts = urlsplit(target)
        host = (parts.hostname or "").lower()
    except ValueError as exc:
        raise ExplainError(f"{target!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ExplainError(f"{target!r} is not an http(s) URL like https://myapi.com/v1/products (or use --api NAME --stage STAGE PATH)")
    return Request(verb, parts.path or "/", host=host, url=target, query=_query(parts.query), headers=parsed_headers, body=body)
