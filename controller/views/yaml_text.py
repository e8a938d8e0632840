"""YAML text as a person writes it, for the files ``pointsman import`` writes: plain words where
they read back as the same string, double quotes otherwise, flow mappings for short entries."""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN_RE = re.compile(r"^[A-Za-z_$/][A-Za-z0-9_.$/-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: object) -> str:
    """A YAML scalar that reads back as the same text (quoted unless plainly a word)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN_RE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def flow(value: dict[str, Any] | list[Any]) -> str:
    """``{version: "3", description: "v1 production"}`` (keys in the given order), ``[dev, prod]``."""
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return "{" + ", ".join(f"{scalar(key)}: {_shown(item)}" for key, item in value.items()) + "}"


def _shown(value: object) -> str:
    return flow(value) if isinstance(value, dict | list) else scalar(value)


def comment(text: str) -> str:
    """``# text`` on one line."""
    return "# " + " ".join(text.split())
