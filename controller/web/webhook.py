"""Push-notification signatures: GitHub, GitLab and generic HMAC-SHA256. Pure functions."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

GENERIC_HEADER = "X-Pointsman-Signature-256"
SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Gitlab-Token", GENERIC_HEADER)
# The id each sender gives a delivery (kept the same when it sends the delivery again).
DELIVERY_HEADERS = {"github": "X-GitHub-Delivery", "gitlab": "X-Gitlab-Event-UUID", "generic": "X-Pointsman-Delivery"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _hmac_ok(secret: str, body: bytes, given: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    candidate = given.strip() if given.strip().startswith("sha256=") else f"sha256={given.strip()}"
    # Bytes, not str: a header with non-ASCII characters is just a wrong signature.
    return hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> str | None:
    """Return the sender kind ('github', 'gitlab', 'generic') if signed with ``secret``, else None."""
    if not secret:
        return None
    github = _header(headers, "X-Hub-Signature-256")
    if github is not None:
        return "github" if _hmac_ok(secret, body, github) else None
    gitlab = _header(headers, "X-Gitlab-Token")
    if gitlab is not None:
        return "gitlab" if hmac.compare_digest(gitlab.encode(), secret.encode()) else None
    generic = _header(headers, GENERIC_HEADER)
    if generic is not None:
        return "generic" if _hmac_ok(secret, body, generic) else None
    return None


def has_signature(headers: Mapping[str, str]) -> bool:
    """Whether any signature header is there at all (checked before reading a body)."""
    return any(_header(headers, name) is not None for name in SIGNATURE_HEADERS)


def delivery_id(sender: str, headers: Mapping[str, str]) -> str | None:
    """The delivery id the sender put in its header (``DELIVERY_HEADERS``), if any."""
    name = DELIVERY_HEADERS.get(sender)
    value = _header(headers, name) if name else None
    return value.strip() or None if value is not None else None


def delivery_key(sender: str, delivery: str, body: bytes) -> bytes:
    """What makes a delivery a repeat: same sender, same delivery id, same body."""
    digest = hashlib.sha256()
    for part in (sender.encode(), delivery.encode("utf-8", "replace"), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def pushed_branch(body: bytes) -> str | None:
    """The branch a push payload names (GitHub and GitLab both send ``ref``), if any."""
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return None
