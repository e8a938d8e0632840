"""Throttling never fails a reconcile before its deadline; parallel reads stay under a bucket's rate;
reads are made only when the plan needs them."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from controller.aws.clients import AwsClients, is_write, write_calls
from controller.aws.ratelimit import HEADROOM, Quota, RateLimiter
from controller.cli.main import main
from tests.conftest import cli, run


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any):
        yield self.body


def _throttled(request: Any, service: str) -> AWSResponse:
    if service == "lambda":
        body = b'{"Type":"User","message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}'
    else:
        body = b'{"message":"Too Many Requests"}'
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}
    return AWSResponse(request.url, 429, headers, _Raw(body))


def throttle(monkeypatch: pytest.MonkeyPatch, should: Any) -> list[str]:
    """moto answers 429 TooManyRequestsException, as AWS does past a quota, to the attempts
    ``should(operation)`` picks, and does nothing else for them (the request never ran)."""
    from moto.core.botocore_stubber import BotocoreStubber

    throttled: list[str] = []
    lock = threading.Lock()
    real = BotocoreStubber.__call__

    def answer(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        with lock:
            pick = self.enabled and should(operation)
            if pick:
                throttled.append(operation)
        if pick:
            return _throttled(request, "lambda" if service == "lambda" else "apigateway")
        return real(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", answer)
    return throttled


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry a throttled call after 1 ms, not the production backoff (the decision is what is tested)."""
    real = AwsClients._throttled_retry

    def quick(self: AwsClients, *args: Any, **kwargs: Any) -> float | None:
        delay = real(self, *args, **kwargs)
        return None if delay is None else 0.001

    monkeypatch.setattr(AwsClients, "_throttled_retry", quick)


# ------------------------------------------------------------------ the deadline


def test_a_call_throttled_past_its_attempts_is_retried_until_it_succeeds(estate: dict[str, Any], clients: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    assert clients.max_attempts == 2
    left = iter(range(7))  # seven 429s in a row, then the answer
    throttled = throttle(monkeypatch, lambda op: op == "GetRestApis" and next(left, None) is not None)
    clients.start_deadline()
    names = [item["name"] for item in clients.apigateway.get_rest_apis()["items"]]
    assert len(throttled) == 7
    assert "products-v1" in names
    assert clients.counter.snapshot()["apigateway.GetRestApis"] == 1  # one call, eight attempts


def test_past_the_deadline_throttling_is_one_line(
    estate: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, spec_dir: Path
) -> None:
    made: list[AwsClients] = []
    real_init = AwsClients.__init__

    def init(self: AwsClients, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(AwsClients, "__init__", init)
    throttle(monkeypatch, lambda op: op == "ListAliases")
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir), "--throttle-deadline", "0.3", "--max-attempts", "2", "--rate-limits", "off")
    assert code == 1
    assert out == ""
    (line,) = [entry for entry in err.splitlines() if entry.startswith("error:")]
    assert line.startswith("ListAliases: TooManyRequestsException: Rate exceeded", len("error: ")), line
    assert "throttling deadline: see --throttle-deadline" in line
    assert line.endswith("; nothing was applied.")
    assert made and made[0].throttle_deadline == 0.3


def test_a_reconcile_with_429s_on_a_tenth_of_requests_converges(
    estate: dict[str, Any], clients: AwsClients, spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = itertools.count()
    throttled = throttle(monkeypatch, lambda op: next(counter) % 10 == 9)
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes if o.error]
    assert len(throttled) >= 8 and any(is_write(op) for op in throttled)  # one request in ten, reads and writes
    after = run(spec_dir, clients)
    assert after.in_sync, [d.as_dict() for d in after.drift]
    assert write_calls(after.api_calls) == {}


def test_flags_stand_for_the_aws_environment(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("POINTSMAN_RATE_LIMITS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "POINTSMAN_THROTTLE_DEADLINE"):
        monkeypatch.delenv(name, raising=False)
    code, _, _ = cli(capsys, "validate", "--spec", "desired_state")  # validate takes no AWS flags: they belong to the commands that call AWS
    assert code == 0
    with pytest.raises(SystemExit):
        main(["plan", "--rate-limits", "lambda=fast"])
    assert "--rate-limits: 'lambda=fast' is not NAME=RATE[:BURST]" in capsys.readouterr().err
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    from controller.cli import main as cli_module

    args = cli_module._parser().parse_args(["plan", "--max-attempts", "3", "--retry-mode", "adaptive", "--throttle-deadline", "60", "--rate-limits", "off"])
    cli_module._apply_aws_flags(args)
    clients = AwsClients(region="us-east-1")
    assert (clients.max_attempts, clients.retry_mode, clients.throttle_deadline, clients.rate_limiter) == (3, "adaptive", 60.0, None)


# ------------------------------------------------------------------ the limiter under parallel load


def test_a_burst_of_200_parallel_reads_stays_under_the_bucket_rate() -> None:
    now = [0.0]
    scheduled: list[float] = []  # when each read may go, as the limiter told its thread
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            scheduled.append(now[0] + seconds)

    limiter = RateLimiter({"lambda.GetPolicy": Quota(15, 15)}, clock=lambda: now[0], sleep=sleep, share=1.0)
    start = threading.Barrier(200)

    def read() -> None:
        start.wait()
        limiter.before("lambda", "GetPolicy")

    threads = [threading.Thread(target=read) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    at = sorted([0.0] * (200 - len(scheduled)) + scheduled)
    assert len(at) == 200 and at.count(0.0) == 15  # the burst goes at once
    # In every window from the start, at most the burst plus the rate times its length.
    for i, when in enumerate(at):
        assert i + 1 <= 15 + 15 * HEADROOM * when + 1e-6, (i, when)
    assert at[-1] == pytest.approx((200 - 15) / (15 * HEADROOM))  # and no slower than the pace allows


# ------------------------------------------------------------------ reads only when needed


def test_a_converged_plan_reads_no_versions(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    result = run(spec_dir, clients)
    assert result.in_sync
    # Every alias serves its declared version and no pin or environment needs resolving.
    assert "lambda.ListVersionsByFunction" not in result.api_calls
    functions = len(load_functions(spec_dir))
    assert result.api_calls["lambda.ListAliases"] == functions


def test_an_alias_that_moves_has_its_versions_read(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    path = spec_dir / "getreport.yaml"
    path.write_text(path.read_text().replace('prod: {version: "1"', 'prod: {version: "2"'))
    result = run(spec_dir, clients)
    assert [d.resource for d in result.drift] == ["lambda_alias/getreport/prod"]
    assert result.api_calls.get("lambda.ListVersionsByFunction") == 1  # getreport's: is version 2 published?
    path.write_text(path.read_text().replace('prod: {version: "2"', 'prod: {version: "99"'))
    result = run(spec_dir, clients)
    assert [str(p) for p in result.problems] == [f"{path}:{line_of(path, 'prod:')}: alias getreport:prod names version 99, which is not published"]


def load_functions(spec_dir: Path) -> dict[str, Any]:
    from controller.spec import load_spec

    return load_spec(spec_dir).functions


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# ------------------------------------------------------------------ waiting says so


def test_waiting_on_throttling_says_so_once_per_interval(
    estate: dict[str, Any], clients: AwsClients, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlog

    left = iter(range(5))  # five 429s in a row, within a fraction of a second
    throttle(monkeypatch, lambda op: op == "GetRestApis" and next(left, None) is not None)
    clients.start_deadline()
    with structlog.testing.capture_logs() as logs:
        clients.apigateway.get_rest_apis()
    waiting = [entry for entry in logs if entry["event"] == "waiting on throttling"]
    assert len(waiting) == 1, logs  # at most one line every 10 s
    assert waiting[0]["operation"] == "GetRestApis" and waiting[0]["code"] == "TooManyRequestsException"
    assert 0 < waiting[0]["seconds_left"] <= clients.throttle_deadline

    # On a terminal, a person sees the line itself on stderr.
    monkeypatch.setattr("controller.aws.clients.WAITING_EVERY", 0.0)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    left = iter(range(2))
    throttle(monkeypatch, lambda op: op == "GetRestApis" and next(left, None) is not None)
    capsys.readouterr()
    clients.apigateway.get_rest_apis()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("waiting: ")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("waiting: AWS throttles GetRestApis (TooManyRequestsException, attempt 1); retrying for ")
    assert lines[0].endswith(" s more before the throttling deadline")


def test_one_shot_commands_give_up_on_throttling_in_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.cli import main as cli_module

    for command, expected in (("plan", "300"), ("apply", "300"), ("run", None), ("validate", None)):
        monkeypatch.delenv("POINTSMAN_THROTTLE_DEADLINE", raising=False)
        argv = [command, "--repo", "x"] if command == "run" else [command]
        cli_module._apply_aws_flags(cli_module._parser().parse_args(argv))
        assert os.environ.get("POINTSMAN_THROTTLE_DEADLINE") == expected, command
    assert AwsClients(region="us-east-1", rate_limiter=False).throttle_deadline == 900.0  # run: the long deadline
    monkeypatch.setenv("POINTSMAN_THROTTLE_DEADLINE", "42")
    cli_module._apply_aws_flags(cli_module._parser().parse_args(["plan"]))
    assert os.environ["POINTSMAN_THROTTLE_DEADLINE"] == "42"  # the variable wins
