"""Where a rollout stands, and what the alias should serve in this run.

A rollout moves an alias from its live primary version (the stable one) to the declared
version (the target) through the steps of its schedule, each a canary weight
(``RoutingConfig.AdditionalVersionWeights``) or a pause; after the last, the target is the
primary with no routing. Progress is derived from the live alias plus the persisted
``RolloutRecord`` (when each step began), never from memory:

- a weight step whose weight is live is done: its pause begins when it was set;
- a pause ends ``pause`` seconds after it began, once the gates pass;
- gates are read before every step and while pausing: an alarm in ALARM, or an error rate
  above the limit, rolls back at once (the stable version, no routing) and the rollout is
  ``aborted``: it is not tried again on the same commit (``retry`` does);
- too few invocations to judge holds the step (``on_no_data: hold``), until ``deadline``.

``decide`` is pure: the gate readings come from a callable, time from ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from controller.rollout.gates import Readings
from controller.spec.rollouts import Step, duration_text, parse_duration
from controller.spec.schema import RolloutSpec

PROGRESSING, WAITING, ABORTED, PROMOTED = "progressing", "waiting", "aborted", "promoted"
CONTROLS = ("abort", "promote", "retry")


@dataclass
class RolloutRecord:
    """A rollout as persisted between runs (the history database), one per alias."""

    alias: str  # "getProducts/prod"
    stable: str
    target: str
    commit: str | None
    step: int  # the current step's index; len(steps) is the end (the target takes all traffic)
    step_started: float  # when the current step began
    status: str = PROGRESSING
    reason: str = ""
    started: float = 0.0
    held_since: float | None = None  # when the step could have ended but its gate held it
    gates: dict[str, Any] = field(default_factory=dict)  # the last readings
    log: list[dict[str, Any]] = field(default_factory=list)  # each step as it began, with the readings before it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Decision:
    """What the alias should serve now, and the rollout's state once that is applied."""

    version: str
    routing: dict[str, float]
    record: RolloutRecord | None
    line: str  # "rolling out getProducts:prod 7 -> 8: step 2 of 4 (10%), next step in 3 min 12 s, alarms OK, ..."
    event: str | None = None  # rollout_started | rollout_step | rollout_aborted | rollout_promoted (for notifications)
    total: int = 0  # the schedule's steps
    # When the controller should look again: now after a weight step (its pause begins), when a
    # pause ends; None while waiting or holding (the gates are read every --rollout-poll seconds).
    next_check: float | None = None

    def summary(self, alias: str) -> dict[str, Any]:
        """For reports and ``/api/status``: the alias, the line, the event, and where the rollout stands
        (``weight``: the share of traffic the new version gets once this run's step is applied, in %)."""
        out: dict[str, Any] = {"alias": alias, "line": self.line, "event": self.event}
        record = self.record
        if record is not None:
            if self.version == record.target and not self.routing:
                weight = 100.0
            else:
                weight = round(self.routing.get(record.target, 0.0) * 100, 4)
            out.update(
                status=record.status,
                stable=record.stable,
                target=record.target,
                step=record.step,
                total=self.total,
                weight=weight,
                reason=record.reason,
                gates=dict(record.gates),
            )
        return out


Gates = Callable[[float], Readings]  # the readings over [since, now] of the target version


def _weight_before(steps: tuple[Step, ...], index: int) -> float:
    """The canary weight in force during step ``index`` (that of the last weight step before it)."""
    for step in reversed(steps[:index]):
        if step.weight is not None:
            return step.weight
    return 0.0


def _routing(target: str, weight: float) -> dict[str, float]:
    return {target: round(weight / 100, 6)} if weight > 0 else {}


def _gate_text(readings: Readings | None, rollout: RolloutSpec) -> str:
    if readings is None:
        return ""
    parts: list[str] = []
    if rollout.alarms:
        bad = readings.in_alarm
        parts.append(f"alarm {', '.join(bad)} in ALARM" if bad else "alarms OK")
        if readings.missing:
            parts.append(f"no alarm named {', '.join(readings.missing)}")
    if rollout.analysis is not None and readings.invocations is not None:
        rate = readings.error_rate
        shown = f"{round(rate * 100, 2):g}%" if rate is not None else "-"
        parts.append(f"error rate {shown} of {readings.invocations:g} invocations")
    return ", ".join(parts)


def _verdict(rollout: RolloutSpec, readings: Readings, *, judging: bool) -> tuple[str, str]:
    """("pass" | "hold" | "abort", why). ``judging``: the step is due to end (too little data
    then matters; while it pauses only a breach does)."""
    if readings.in_alarm:
        return "abort", f"alarm {', '.join(readings.in_alarm)} in ALARM"
    if readings.missing:
        return "hold", f"no CloudWatch alarm named {', '.join(readings.missing)}"
    analysis = rollout.analysis
    if analysis is None or readings.invocations is None:
        return "pass", ""
    enough = readings.invocations >= max(1, analysis.min_invocations)
    rate = readings.error_rate
    if enough and rate is not None and rate > analysis.max_error_rate:
        return "abort", f"error rate {round(rate * 100, 2):g}% of {readings.invocations:g} invocations is above {round(analysis.max_error_rate * 100, 4):g}%"
    if not enough and judging:
        why = f"{readings.invocations:g} of the {analysis.min_invocations} invocations needed to judge the error rate"
        if analysis.on_no_data == "fail":
            return "abort", why
        if analysis.on_no_data == "hold":
            return "hold", why
    return "pass", ""


def decide(
    *,
    alias: str,
    rollout: RolloutSpec,
    target: str,
    live_version: str,
    live_routing: dict[str, float],
    record: RolloutRecord | None,
    commit: str | None,
    now: float,
    gates: Gates,
    control: str | None = None,
    ignore_alarms_at_start: bool = False,
) -> Decision:
    """The alias's desired version and routing for this run, with the rollout's new record.

    ``alias`` is ``FUNCTION/ALIAS``; ``live_version``/``live_routing`` what it serves now;
    ``record`` the persisted rollout (None when none); ``gates(since)`` reads the gates;
    ``control`` an abort, promote or retry asked for."""
    decision = _decide(
        alias=alias,
        rollout=rollout,
        target=target,
        live_version=live_version,
        live_routing=live_routing,
        record=record,
        commit=commit,
        now=now,
        gates=gates,
        control=control,
        ignore_alarms_at_start=ignore_alarms_at_start,
    )
    decision.total = len(rollout.schedule())  # every decision says how many steps its schedule has
    return decision


def _decide(
    *,
    alias: str,
    rollout: RolloutSpec,
    target: str,
    live_version: str,
    live_routing: dict[str, float],
    record: RolloutRecord | None,
    commit: str | None,
    now: float,
    gates: Gates,
    control: str | None = None,
    ignore_alarms_at_start: bool = False,
) -> Decision:
    """``decide``, but for the number of steps each decision carries."""
    steps = rollout.schedule()
    name = alias.replace("/", ":")
    total = len(steps)

    def plain(line: str, rec: RolloutRecord | None, event: str | None = None) -> Decision:
        return Decision(target, {}, rec, line, event)

    if control == "retry" and record is not None and record.status == ABORTED:
        record = None
    if live_version == target:
        if record is not None and record.target == target and record.status == PROGRESSING:
            done = replace(record, status=PROMOTED, step=total, step_started=now, reason="the new version takes all traffic")
            return plain(f"rolled out {name} {record.stable} -> {target}", done, "rollout_promoted")
        return plain("", record)
    if record is not None and record.status == ABORTED and record.target == target and record.stable == live_version and record.commit == commit:
        line = f"rollout of {name} {record.stable} -> {target} aborted ({record.reason}); not retried on this commit (`pointsman rollout retry {name}`)"
        return Decision(live_version, {}, record, line)
    fresh = record is None or record.target != target or record.stable != live_version or record.status != PROGRESSING
    if fresh:
        # A new rollout (or one waiting to start): it starts from what is live, once no gate alarm is in ALARM.
        record = _resume(alias, steps, target, live_version, live_routing, commit, now)
        if control != "promote" and rollout.alarms and not ignore_alarms_at_start:
            at_start = gates(now)
            if at_start.in_alarm:
                reason = f"alarm {', '.join(at_start.in_alarm)} is in ALARM already: the rollout waits for it to clear (--ignore-alarms-at-start starts anyway)"
                waiting = replace(record, status=WAITING, reason=reason, gates=at_start.as_dict())
                return Decision(live_version, dict(live_routing), waiting, f"rollout of {name} {live_version} -> {target} waits: {reason}")
    assert record is not None
    started_event = "rollout_started" if fresh else None
    record = replace(record, status=PROGRESSING, reason="", log=list(record.log))
    if control == "abort":
        return _abort(record, name, "by request", now, None)
    if control == "promote":
        record = replace(record, step=total, step_started=now)
        record.log.append({"step": total, "began": now, "weight": 100.0, "by": "promote"})
        line = f"promoting {name} {record.stable} -> {target} on request: the remaining steps are skipped"
        return Decision(target, {}, replace(record, status=PROMOTED, reason="promoted by request"), line, "rollout_promoted")
    event = started_event
    readings: Readings | None = None
    while True:
        if record.step >= total:  # the end: the target takes all traffic, once the gates pass
            if total and record.log and record.log[-1].get("step") != total:
                readings = gates(_since(record))
                verdict, why = _verdict(rollout, readings, judging=False)
                if verdict == "abort":
                    return _abort(record, name, why, now, readings)
                if verdict == "hold":
                    return _hold(record, rollout, name, target, steps, why, now, readings)
            record.log.append({"step": total, "began": now, "weight": 100.0, "gates": readings.as_dict() if readings else {}})
            line = f"rolling out {name} {record.stable} -> {target}: last step, 100%" + (f", {_gate_text(readings, rollout)}" if readings else "")
            return Decision(target, {}, replace(record, status=PROMOTED, step_started=now, reason=""), line, "rollout_promoted")
        step = steps[record.step]
        if step.weight is not None:
            want = _routing(target, step.weight)
            if live_routing == want and live_version == record.stable:
                # Set by an earlier run: its pause (the next step) began when it was set.
                record = replace(record, step=record.step + 1)
                continue
            if record.step > 0:
                readings = gates(_since(record))
                verdict, why = _verdict(rollout, readings, judging=True)
                if verdict == "abort":
                    return _abort(record, name, why, now, readings)
                if verdict == "hold":
                    return _hold(record, rollout, name, target, steps, why, now, readings)
            record = replace(record, step_started=now, held_since=None, gates=readings.as_dict() if readings else {})
            record.log.append({"step": record.step, "began": now, "weight": step.weight, "gates": readings.as_dict() if readings else {}})
            line = f"rolling out {name} {record.stable} -> {target}: step {record.step + 1} of {total} ({step.weight:g}%)"
            if readings is not None:
                line += f", {_gate_text(readings, rollout)}"
            return Decision(record.stable, want, record, line, event or "rollout_step", next_check=now)
        # A pause: look at the gates; end it when its time has come.
        pause = step.pause or 0.0
        readings = gates(_since(record))
        due = now >= record.step_started + pause
        verdict, why = _verdict(rollout, readings, judging=due)
        if verdict == "abort":
            return _abort(record, name, why, now, readings)
        if due and verdict == "hold":
            return _hold(record, rollout, name, target, steps, why, now, readings)
        if not due:
            weight = _weight_before(steps, record.step)
            left = record.step_started + pause - now
            gate = _gate_text(readings, rollout)
            line = f"rolling out {name} {record.stable} -> {target}: step {record.step + 1} of {total} ({weight:g}%), next step in {duration_text(left)}" + (
                f", {gate}" if gate else ""
            )
            record = replace(record, gates=readings.as_dict())
            return Decision(record.stable, _routing(target, weight), record, line, event, next_check=record.step_started + pause)
        record = replace(record, step=record.step + 1, step_started=record.step_started + pause, held_since=None, gates=readings.as_dict())


def _since(record: RolloutRecord) -> float:
    """Where the error-rate window starts: when the canary weight now live was set."""
    for entry in reversed(record.log):
        if entry.get("weight") is not None and entry.get("step") is not None and entry["step"] < record.step + 1:
            return float(entry["began"])
    return record.started


def _abort(record: RolloutRecord, name: str, why: str, now: float, readings: Readings | None) -> Decision:
    gates = readings.as_dict() if readings else {}
    aborted = replace(record, status=ABORTED, reason=why, step_started=now, gates=gates, log=[*record.log, {"step": record.step, "began": now, "aborted": why}])
    line = f"rollout of {name} {record.stable} -> {record.target} aborted ({why}): rolled back to {record.stable}"
    return Decision(record.stable, {}, aborted, line, "rollout_aborted")


def _hold(record: RolloutRecord, rollout: RolloutSpec, name: str, target: str, steps: tuple[Step, ...], why: str, now: float, readings: Readings) -> Decision:
    held_since = record.held_since if record.held_since is not None else now
    deadline = parse_duration(rollout.analysis.deadline) if rollout.analysis is not None and rollout.analysis.deadline else None
    if deadline is not None and now - held_since >= deadline:
        return _abort(
            record, name, f"held {duration_text(now - held_since)} for want of data ({why}); the deadline is {duration_text(deadline)}", now, readings
        )
    weight = _weight_before(steps, min(record.step, len(steps)))
    held = replace(record, held_since=held_since, gates=readings.as_dict(), reason=f"holding: {why}")
    step_no = min(record.step + 1, len(steps))
    line = f"rolling out {name} {record.stable} -> {target}: step {step_no} of {len(steps)} ({weight:g}%) holds: {why}"
    if deadline is not None:
        line += f"; rolls back in {duration_text(held_since + deadline - now)} without it"
    return Decision(record.stable, _routing(target, weight), held, line)


def _resume(
    alias: str, steps: tuple[Step, ...], target: str, live_version: str, live_routing: dict[str, float], commit: str | None, now: float
) -> RolloutRecord:
    """A new rollout from what is live. A live canary weight on the target (a record lost, a
    controller moved) resumes at the step with that weight; on another version it goes."""
    step = 0
    live_weight = round(live_routing.get(target, 0.0) * 100, 4)
    if live_weight and set(live_routing) == {target}:
        for index, candidate in enumerate(steps):
            if candidate.weight is not None and round(candidate.weight, 4) <= live_weight:
                step = index  # the weight step already live: it counts as done from now
    record = RolloutRecord(alias=alias, stable=live_version, target=target, commit=commit, step=step, step_started=now, started=now)
    if step:
        record.log.append({"step": step, "began": now, "weight": steps[step].weight, "resumed": True})
    return record
