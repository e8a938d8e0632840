"""The guardrails in the spec: protect, approve and sync windows are read, and a bad window or
time zone is a problem at its file:line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.spec import SpecInvalid, load_spec
from controller.spec.windows import Window, verdict


def test_protect_approve_and_windows_are_read(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "windows:\n"
        "  - {deny: 'Fri 16:00-Mon 08:00', timezone: Europe/Paris, allow_heal: true}\n"
        "functions:\n"
        "  f:\n"
        "    aliases:\n"
        "      prod: {version: 1, protect: true, approve: manual}\n"
        "rest_apis:\n"
        "  api:\n"
        "    protect: true\n"
        "    stages: {prod: {protect: true, approve: manual}}\n"
        "domains:\n"
        "  d.com: {mappings: {v1: {api: api, stage: prod, protect: true}}}\n"
    )
    spec = load_spec(tmp_path)
    alias = spec.functions["f"].spec.aliases["prod"]
    assert alias.protect and alias.approve == "manual"
    assert spec.rest_apis["api"].spec.protect and spec.rest_apis["api"].spec.stages["prod"].approve == "manual"
    assert spec.domains["d.com"].spec.mappings["v1"].protect
    assert spec.windows == [Window("deny", "Fri 16:00-Mon 08:00", "Europe/Paris", True, f"{tmp_path / 'a.yaml'}:2")]


@pytest.mark.parametrize(
    "window, message",
    [
        ("{deny: 'Fri 16-Mon 08:00'}", "window 'Fri 16-Mon 08:00' is not 'DAY HH:MM-DAY HH:MM'"),
        ("{deny: 'Fri 16:00-Mon 08:00', timezone: Mars/Olympus}", "time zone 'Mars/Olympus' is not an IANA time zone name"),
        ("{deny: '10:00-10:00'}", "starts and ends at the same time"),
        ("{deny: '10:00-11:00', allow: '12:00-13:00'}", "a window is either {deny: ...} or {allow: ...}"),
        ("{timezone: UTC}", "a window is either"),
    ],
)
def test_a_bad_window_is_a_problem_at_its_line(tmp_path, window, message):
    (tmp_path / "a.yaml").write_text(f"functions: {{}}\nwindows:\n  - {{deny: '10:00-11:00'}}\n  - {window}\n")
    with pytest.raises(SpecInvalid) as info:
        load_spec(tmp_path)
    (problem,) = info.value.problems
    assert (problem.line, problem.field) == (4, "windows.1") and message in problem.message, str(problem)


def test_a_window_that_wraps_over_midnight_and_follows_daylight_saving():
    w = Window("deny", "22:00-06:00", "Europe/Paris")
    # 30 March 2026: Paris is UTC+2 (summer time since the 29th).
    assert w.is_open(datetime(2026, 3, 30, 21, 0, tzinfo=UTC))  # 23:00 in Paris
    assert not w.is_open(datetime(2026, 3, 30, 19, 0, tzinfo=UTC))  # 21:00
    v = verdict([w], datetime(2026, 3, 30, 21, 0, tzinfo=UTC))
    assert v.until == datetime(2026, 3, 31, 4, 0, tzinfo=UTC)  # 06:00 summer time
    assert v.message(datetime(2026, 3, 30, 21, 0, tzinfo=UTC)) == "sync window: applies wait until Tue 06:00 Europe/Paris (in 7 h)"


def test_windows_that_follow_one_another_end_together():
    a, b = Window("deny", "Fri 16:00-Sat 00:00", "UTC"), Window("deny", "Sat 00:00-Mon 08:00", "UTC")
    v = verdict([a, b], datetime(2026, 3, 6, 17, 0, tzinfo=UTC))
    assert v.until == datetime(2026, 3, 9, 8, 0, tzinfo=UTC) and not v.heal_allowed
