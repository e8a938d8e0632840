"""The gates of a rollout step: CloudWatch alarms, and the new version's own error rate.

- Alarms: ``DescribeAlarms`` with ``AlarmNames`` (at most 100 a call, "DescribeAlarms" in the
  CloudWatch API reference); an alarm whose ``StateValue`` is ``ALARM`` rolls the rollout back.
- Error rate: Lambda publishes ``Errors`` and ``Invocations`` (namespace ``AWS/Lambda``) with
  the dimensions ``FunctionName``, ``Resource`` (``FUNCTION:ALIAS``) and ``ExecutedVersion``
  for calls made through an alias ("Types of metrics for Lambda functions", "Viewing metrics
  for functions", Lambda developer guide: ExecutedVersion applies to alias invocations only).
  One ``GetMetricData`` call reads both sums over the step (period a multiple of 60 s, as
  GetMetricData requires for data older than 3 hours and allows for any).

Readings are made fresh at each run (never kept between runs: they change while a step waits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.aws.clients import AwsClients

ALARMS_PER_CALL = 100


@dataclass
class Readings:
    """What the gates read for one alias in one run (kept in the history with each step)."""

    alarms: dict[str, str] = field(default_factory=dict)  # alarm name -> OK | ALARM | INSUFFICIENT_DATA | missing
    errors: float | None = None
    invocations: float | None = None

    @property
    def in_alarm(self) -> list[str]:
        return sorted(name for name, state in self.alarms.items() if state == "ALARM")

    @property
    def missing(self) -> list[str]:
        return sorted(name for name, state in self.alarms.items() if state == "missing")

    @property
    def error_rate(self) -> float | None:
        if not self.invocations:
            return None
        return (self.errors or 0.0) / self.invocations

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alarms": dict(self.alarms)}
        if self.invocations is not None:
            out.update(errors=self.errors, invocations=self.invocations, error_rate=self.error_rate)
        return out


class GateReader:
    """Reads alarms and version metrics with the run's clients (every call counted and paced)."""

    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    def alarms(self, names: list[str]) -> dict[str, str]:
        states = dict.fromkeys(names, "missing")
        cloudwatch = self.clients.client("cloudwatch")
        for start in range(0, len(names), ALARMS_PER_CALL):
            batch = names[start : start + ALARMS_PER_CALL]
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"AlarmNames": batch, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
                if token:
                    kwargs["NextToken"] = token
                answer = cloudwatch.describe_alarms(**kwargs)
                for alarm in [*(answer.get("MetricAlarms") or []), *(answer.get("CompositeAlarms") or [])]:
                    if alarm.get("AlarmName") in states:
                        states[alarm["AlarmName"]] = str(alarm.get("StateValue") or "INSUFFICIENT_DATA")
                token = answer.get("NextToken")
                if not token:
                    break
        return states

    def version_metrics(self, function: str, alias: str, version: str, start: float, end: float) -> tuple[float, float]:
        """(errors, invocations) of ``version`` through ``function:alias`` between ``start`` and ``end``."""
        begin = math.floor(start / 60) * 60  # whole minutes: the datapoints that cover the window
        finish = max(begin + 60, math.ceil(end / 60) * 60)
        period = max(60, int(finish - begin))
        dimensions = [
            {"Name": "FunctionName", "Value": function},
            {"Name": "Resource", "Value": f"{function}:{alias}"},
            {"Name": "ExecutedVersion", "Value": version},
        ]
        queries = [
            {
                "Id": metric.lower(),
                "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": dimensions}, "Period": period, "Stat": "Sum"},
                "ReturnData": True,
            }
            for metric in ("Errors", "Invocations")
        ]
        sums = {"errors": 0.0, "invocations": 0.0}
        token: str | None = None
        cloudwatch = self.clients.client("cloudwatch")
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries,
                "StartTime": datetime.fromtimestamp(begin, UTC),
                "EndTime": datetime.fromtimestamp(finish, UTC),
            }
            if token:
                kwargs["NextToken"] = token
            answer = cloudwatch.get_metric_data(**kwargs)
            for result in answer.get("MetricDataResults") or []:
                if result.get("Id") in sums:
                    sums[result["Id"]] += float(sum(result.get("Values") or []))
            token = answer.get("NextToken")
            if not token:
                break
        return sums["errors"], sums["invocations"]
