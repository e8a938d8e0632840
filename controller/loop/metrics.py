"""Prometheus metrics of the controller (one registry per controller, served on /metrics)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from controller.engine.pipeline import Result


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.duration = Histogram(
            "pointsman_reconcile_duration_seconds",
            "Duration of a reconcile (git fetch, observe, plan, apply)",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.runs = Counter("pointsman_reconciles_total", "Reconciles by final status", ["status"], registry=r)
        self.drift = Gauge(
            "pointsman_drift_resources", "Resources that differ from git after the last reconcile (found and not healed)", ["kind", "status"], registry=r
        )
        self.actions = Counter("pointsman_actions_total", "Applied actions by outcome", ["outcome"], registry=r)
        self.aws_calls = Counter("pointsman_aws_calls_total", "AWS API calls by operation", ["operation"], registry=r)
        self.commit = Info("pointsman_applied_commit", "Commit whose spec is the desired state", registry=r)
        self.last_success = Gauge("pointsman_last_reconcile_success_timestamp_seconds", "End of the last reconcile that ran to completion", registry=r)
        self.git_up = Gauge("pointsman_git_reachable", "1 if the last git fetch succeeded", registry=r)
        self.warnings = Gauge(
            "pointsman_warnings", "Warnings of the last reconcile: what apply cannot fix (not drift), shown in the plan and the status", registry=r
        )
        self.spec_valid = Gauge("pointsman_head_commit_valid", "1 if the newest fetched commit's spec is valid", registry=r)
        self.rollout_step = Gauge(
            "pointsman_rollout_step", "Step of each rollout in progress (1-based; the schedule's steps + 1 once promoted)", ["alias", "version"], registry=r
        )
        self.rollout_weight = Gauge("pointsman_rollout_weight_percent", "Share of traffic on the new version of each rollout", ["alias", "version"], registry=r)
        self.rollout_aborts = Counter("pointsman_rollout_aborts_total", "Rollouts rolled back (a gate tripped, or aborted by request)", registry=r)

    def observe_result(self, result: Result, remaining: list[dict[str, Any]] | None = None, warnings: int | None = None) -> None:
        """``remaining``: the drift left after the run (``result.drift`` less what it healed);
        ``warnings``: how many the status holds (a focused run's merged with the last full run's)."""
        self.drift.clear()
        counts: dict[tuple[str, str], int] = {}
        left = remaining if remaining is not None else [d.as_dict() for d in result.drift]
        for d in left:
            counts[(d["kind"], d["status"])] = counts.get((d["kind"], d["status"]), 0) + 1
        for (kind, status), n in counts.items():
            self.drift.labels(kind=kind, status=status).set(n)
        self.warnings.set(len(result.warnings) if warnings is None else warnings)
        for outcome in result.outcomes:
            self.actions.labels(outcome=outcome.status.value).inc()
        for operation, n in result.api_calls.items():
            self.aws_calls.labels(operation=operation).inc(n)

    def observe_rollouts(self, rows: list[dict[str, Any]]) -> None:
        """The rollouts of the last run (``controller.rollout.Decision.summary`` rows)."""
        self.rollout_step.clear()
        self.rollout_weight.clear()
        for row in rows:
            if "step" not in row:
                continue
            labels = {"alias": str(row["alias"]), "version": str(row.get("target"))}
            self.rollout_step.labels(**labels).set(int(row["step"]) + 1)
            self.rollout_weight.labels(**labels).set(float(row.get("weight") or 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
