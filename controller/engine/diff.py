"""Generic diff of desired vs live resources: missing / modified (per field) / extra.

Only attributes present in the desired resource are compared (an attribute the spec does
not set is not managed). Map attributes named in a kind's ``entry_kinds`` are compared
entry by entry, and live entries the spec does not declare are reported as ``extra``
drift of their own (``stage_variable/API/STAGE/NAME``); those in ``entry_fields`` entry by
entry within the resource (``environment.DEBUG``: a live entry the spec leaves out is removed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controller.kinds import BY_NAME
from controller.model import Drift, DriftStatus, FieldChange, Resource, freeze


def diff(desired: Iterable[Resource], live: Iterable[Resource]) -> list[Drift]:
    want = {r.id: r for r in desired}
    have = {r.id: r for r in live}
    drifts: list[Drift] = []
    for rid in sorted(want.keys() | have.keys()):
        d, lv = want.get(rid), have.get(rid)
        if d is not None and lv is None:
            added = tuple(FieldChange(name, None, value) for name, value in sorted(d.attributes.items()))
            reason = str(d.context.get("missing_reason", ""))
            drifts.append(Drift(rid, d.kind, DriftStatus.MISSING, added, reason, desired=d))
        elif d is None and lv is not None:
            removed = tuple(FieldChange(name, value, None) for name, value in sorted(lv.attributes.items()))
            reason = str(lv.context.get("extra_reason", ""))
            drifts.append(Drift(rid, lv.kind, DriftStatus.EXTRA, removed, reason, live=lv))
        elif d is not None and lv is not None:
            changes, extras = _compare(d, lv)
            if changes:
                drifts.append(Drift(rid, d.kind, DriftStatus.MODIFIED, tuple(changes), desired=d, live=lv))
            drifts.extend(extras)
    return drifts


def _compare(desired: Resource, live: Resource) -> tuple[list[FieldChange], list[Drift]]:
    entry_kinds = BY_NAME[desired.kind].entry_kinds if desired.kind in BY_NAME else {}
    entry_fields = BY_NAME[desired.kind].entry_fields if desired.kind in BY_NAME else frozenset()
    changes: list[FieldChange] = []
    extras: list[Drift] = []
    for name in sorted(desired.attributes):
        want: Any = desired.attributes[name]
        have: Any = live.attributes.get(name)
        if name in entry_kinds:
            want, have = dict(want or {}), dict(have or {})
            for entry in sorted(want):
                if want[entry] != have.get(entry):
                    changes.append(FieldChange(f"{name}.{entry}", have.get(entry), want[entry]))
            for entry in sorted(have.keys() - want.keys()):
                extras.append(
                    Drift(
                        f"{entry_kinds[name]}/{desired.key}/{entry}",
                        entry_kinds[name],
                        DriftStatus.EXTRA,
                        (FieldChange(entry, have[entry], None),),
                        parent=desired.id,
                        desired=desired,
                        live=live,
                    )
                )
        elif name in entry_fields:
            want, have = dict(want or {}), dict(have or {})
            for entry in sorted(want.keys() | have.keys()):
                if want.get(entry) != have.get(entry):
                    changes.append(FieldChange(f"{name}.{entry}", have.get(entry), want.get(entry)))
        elif freeze(want) != freeze(have):
            changes.append(FieldChange(name, have, want))
    return changes, extras
