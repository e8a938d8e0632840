"""What Pointsman manages, resource by resource, as the status page lists it.

Each resource git declares, with the file:line that declares it, its live value as the last run
read it (only the fields git sets: those are the ones compared) and whether it is in sync.
Values read as the plan prints them (``format_value``): an environment value is its digest, a
generated mapping template its length (``generated template, 42 lines``), never its text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.engine.pipeline import Managed
from controller.views.report import format_value
from controller.views.words import clipped, template_words


def is_template(name: str) -> bool:
    """Is the field a generated mapping template (``integration.request_template``, ``response.200.template``)?"""
    return name == "integration.request_template" or (name.startswith("response.") and name.endswith(".template"))


def value_text(name: str, value: Any) -> str:
    """One field's value for people: a template by its length, a long value cut."""
    if is_template(name) and isinstance(value, str):
        return template_words(value)
    return clipped(format_value(value))


def fields_text(attributes: Mapping[str, Any], names: Iterable[str]) -> dict[str, str]:
    return {name: value_text(name, attributes.get(name)) for name in names}


def _owners(drift: Iterable[Mapping[str, Any]]) -> set[str]:
    """The resources drift is on: each drifted resource, and the one an extra entry is inside of."""
    return {str(owner) for d in drift for owner in (d["resource"], d.get("parent") or d["resource"])}


def managed_entries(managed: Iterable[Managed], found: Iterable[Mapping[str, Any]], remaining: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``managed`` as ``/api/status`` lists it. ``found``: the drift the run found (as
    ``Drift.as_dict``); ``remaining``: what still differs after it (``loop.runner.remaining_drift``).

    ``live`` holds the fields git sets, as the run read them before applying anything; for a
    resource the run healed, the values it wrote. None when the resource is not in AWS."""
    differs = _owners(remaining)
    healed = _owners(found) - differs
    out: list[dict[str, Any]] = []
    for m in managed:
        names = list(m.desired.attributes)
        if m.id in healed:
            status, live = "healed", fields_text(m.desired.attributes, names)
        elif m.live is None:
            status, live = "missing", None
        else:
            status, live = ("differs" if m.id in differs else "in_sync"), fields_text(m.live.attributes, names)
        out.append({"resource": m.id, "kind": m.kind, "source": m.source, "status": status, "live": live})
    return out
