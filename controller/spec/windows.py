"""Sync windows: when applies may run, in a time zone's wall-clock time.

A window is ``DAY HH:MM-DAY HH:MM`` (weekly, may wrap over the weekend: ``Fri 16:00-Mon 08:00``)
or ``HH:MM-HH:MM`` (every day, may wrap over midnight: ``22:00-06:00``). A ``deny`` window stops
applies while it is open; with ``allow`` windows, applies run only while one of them is open
(and no deny window is). ``allow_heal`` lets drift healing through a window that blocks.
Times are read in the window's ``timezone`` (IANA name, ``zoneinfo``), so a window follows
daylight saving time as the clocks on the wall do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEK = 7 * 24 * 60  # minutes
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_DAY = "|".join(DAYS)
WINDOW_PATTERN = rf"(?:{_DAY}) {_TIME}-(?:{_DAY}) {_TIME}|{_TIME}-{_TIME}"  # the JSON Schema's, whole
_WEEKLY = re.compile(rf"^({_DAY}) ({_TIME})-({_DAY}) ({_TIME})\Z")
_DAILY = re.compile(rf"^({_TIME})-({_TIME})\Z")


class WindowError(ValueError):
    """A window or time zone that cannot be read (one line)."""


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class Span:
    """The minutes of the week (or of the day, ``period`` 1440) a window covers: [start, end)."""

    start: int
    end: int
    period: int

    def contains(self, minute: int) -> bool:
        minute %= self.period
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps (over the weekend or midnight)

    def to_end(self, minute: int) -> int:
        """Minutes from ``minute`` (inside) to the window's end."""
        return (self.end - minute % self.period) % self.period or self.period

    def to_start(self, minute: int) -> int:
        """Minutes from ``minute`` (outside) to the window's next start."""
        return (self.start - minute % self.period) % self.period or self.period


def parse_span(text: str) -> Span:
    weekly = _WEEKLY.fullmatch(text)
    if weekly:
        d1, t1, d2, t2 = weekly.groups()
        start, end = DAYS.index(d1) * 1440 + _minutes(t1), DAYS.index(d2) * 1440 + _minutes(t2)
        period = WEEK
    else:
        daily = _DAILY.fullmatch(text)
        if not daily:
            raise WindowError(f"window {text!r} is not 'DAY HH:MM-DAY HH:MM' (days Mon..Sun, e.g. 'Fri 16:00-Mon 08:00') or 'HH:MM-HH:MM'")
        start, end, period = _minutes(daily.group(1)), _minutes(daily.group(2)), 1440
    if start == end:
        raise WindowError(f"window {text!r} starts and ends at the same time")
    return Span(start, end, period)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WindowError(f"time zone {name!r} is not an IANA time zone name like Europe/Paris or UTC") from None


@dataclass(frozen=True)
class Window:
    """One window of the spec, read: ``kind`` deny or allow."""

    kind: str
    text: str
    timezone: str
    allow_heal: bool = False
    source: str = ""

    def _minute(self, now: datetime) -> tuple[datetime, int]:
        local = now.astimezone(zone(self.timezone))
        return local, local.weekday() * 1440 + local.hour * 60 + local.minute

    def is_open(self, now: datetime) -> bool:
        return parse_span(self.text).contains(self._minute(now)[1])

    def closes_at(self, now: datetime) -> datetime:
        """When this (open) window closes, in UTC."""
        local, minute = self._minute(now)
        return _later(local, parse_span(self.text).to_end(minute))

    def opens_at(self, now: datetime) -> datetime:
        """When this (closed) window next opens, in UTC."""
        local, minute = self._minute(now)
        return _later(local, parse_span(self.text).to_start(minute))


def _later(local: datetime, minutes: int) -> datetime:
    # Wall-clock arithmetic in the window's zone (a window ends at 08:00 on the wall, DST or not).
    naive = local.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=minutes)
    return naive.replace(tzinfo=local.tzinfo).astimezone(UTC)


@dataclass(frozen=True)
class Verdict:
    """Whether applies may run now; when not, until when (``until``, UTC, None: never) and why."""

    blocked: bool
    heal_allowed: bool = True
    until: datetime | None = None
    windows: tuple[Window, ...] = ()  # the windows that block now

    def message(self, now: datetime) -> str:
        if not self.blocked:
            return ""
        if self.until is None:
            return "sync window: applies are blocked and no window lets them through"
        tz = self.windows[0].timezone if self.windows else "UTC"
        local = self.until.astimezone(zone(tz))
        return f"sync window: applies wait until {DAYS[local.weekday()]} {local:%H:%M} {tz} (in {duration_words(self.until - now)})"


def duration_words(delta: timedelta) -> str:
    minutes = max(0, int((delta.total_seconds() + 59) // 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


def _blocking(windows: tuple[Window, ...], now: datetime) -> tuple[Window, ...]:
    deny = tuple(w for w in windows if w.kind == "deny" and w.is_open(now))
    allow = [w for w in windows if w.kind == "allow"]
    closed_allow = tuple(allow) if allow and not any(w.is_open(now) for w in allow) else ()
    return deny + closed_allow


def verdict(windows: tuple[Window, ...] | list[Window], now: datetime) -> Verdict:
    """May applies run at ``now`` (aware)? When not, the first time after ``now`` they may."""
    windows = tuple(windows)
    blocking = _blocking(windows, now)
    if not blocking:
        return Verdict(False)
    heal = all(w.allow_heal for w in blocking)
    at = now
    for _ in range(64):  # windows that follow one another: walk to the first time none blocks
        still = _blocking(windows, at)
        if not still:
            return Verdict(True, heal, at, blocking)
        at = min(w.closes_at(at) if w.kind == "deny" else w.opens_at(at) for w in still)
    return Verdict(True, heal, None, blocking)
