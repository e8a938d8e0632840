"""Rollout schedules: CodeDeploy's predefined Lambda configurations, custom step lists, durations.

A schedule is a list of steps, each a canary weight (percent of traffic on the new version)
or a pause; after the last step the new version takes all traffic. The presets are the
predefined deployment configurations of AWS CodeDeploy for Lambda ("Deployment configurations
on an AWS Lambda compute platform", CodeDeploy user guide), by the names SAM's
``DeploymentPreference.Type`` uses:

- ``CanaryNPercentMMinutes``: N % for M minutes, then 100 %;
- ``LinearNPercentEveryMMinute(s)``: N % more every M minutes until 100 %;
- ``AllAtOnce``: 100 % at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION_RE = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?\Z")


@dataclass(frozen=True)
class Step:
    """One step of a schedule: ``weight`` (percent, 0 < w < 100) or ``pause`` (seconds)."""

    weight: float | None = None
    pause: float | None = None

    def __str__(self) -> str:
        return f"{self.weight:g}%" if self.weight is not None else f"pause {duration_text(self.pause or 0)}"


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``1m30s`` -> seconds. A number without a unit is refused."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"duration {text!r} needs a unit: 30s, 5m, 1h or 1m30s")
    return float(int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0))


def duration_text(seconds: float) -> str:
    """Seconds as a person reads a pause: ``5 min``, ``30 s``, ``1 h 30 min``, ``3 min 12 s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _canary(percent: int, minutes: int) -> tuple[Step, ...]:
    return (Step(weight=percent), Step(pause=minutes * 60.0))


def _linear(percent: int, minutes: int) -> tuple[Step, ...]:
    steps: list[Step] = []
    for weight in range(percent, 100, percent):
        steps += [Step(weight=weight), Step(pause=minutes * 60.0)]
    return tuple(steps)


PRESETS: dict[str, tuple[Step, ...]] = {
    "Canary10Percent5Minutes": _canary(10, 5),
    "Canary10Percent10Minutes": _canary(10, 10),
    "Canary10Percent15Minutes": _canary(10, 15),
    "Canary10Percent30Minutes": _canary(10, 30),
    "Linear10PercentEvery1Minute": _linear(10, 1),
    "Linear10PercentEvery2Minutes": _linear(10, 2),
    "Linear10PercentEvery3Minutes": _linear(10, 3),
    "Linear10PercentEvery10Minutes": _linear(10, 10),
    "AllAtOnce": (),
}


def preset_steps(name: str) -> tuple[Step, ...]:
    """The steps of a preset; ``ValueError`` naming the presets for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown rollout preset {name!r}: one of {', '.join(PRESETS)}, or a list of steps")
    return PRESETS[name]


def schedule_text(steps: tuple[Step, ...]) -> str:
    """``10% -> pause 5 min -> 100%``."""
    return " -> ".join([*(str(s) for s in steps), "100%"])
