"""A fair share of the quotas: reads at --quota-share of each bucket, writes at the full quota;
buckets per account and Region."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.aws import ratelimit
from controller.aws.clients import AwsClients, AwsConfigError
from controller.aws.ratelimit import DEFAULT_QUOTA_SHARE, Bucket, Quota, RateLimiter, RateLimitError, quota_share
from controller.cli.main import main
from tests.aws.test_ratelimit import FakeClock


def limiter(clock: FakeClock, share: float = 0.5, **quotas: Quota) -> RateLimiter:
    return RateLimiter(quotas or {"lambda": Quota(10, 10)}, clock=clock, sleep=clock.sleep, headroom=1.0, share=share)


def test_reads_are_paced_at_the_share_of_the_bucket() -> None:
    clock = FakeClock()
    paced = limiter(clock)
    bucket = paced.buckets["lambda"]
    assert (bucket.rate, bucket.read_rate, bucket.capacity, bucket.read_capacity) == (10, 5, 10, 5)
    for _ in range(10):
        paced.before("lambda", "ListAliases")
    # Half the burst at once, then one every 0.2 s: 5 per second, half the quota.
    assert clock.slept == pytest.approx([0.2] * 5)
    assert bucket.read_tokens == pytest.approx(-1)  # the last read's token, taken ahead of its 0.2 s wait


def test_writes_use_the_full_quota_even_when_reads_have_used_their_share() -> None:
    clock = FakeClock()
    paced = limiter(clock)
    bucket = paced.buckets["lambda"]
    for _ in range(5):
        paced.before("lambda", "GetPolicy")  # the reads' share of the burst
    assert clock.slept == []
    assert (bucket.tokens, bucket.read_tokens) == (5, 0)
    for _ in range(5):
        paced.before("lambda", "UpdateAlias")  # the rest of the bucket, at once
    assert clock.slept == []
    assert (bucket.tokens, bucket.read_tokens) == (0, 0)
    for _ in range(10):
        paced.before("lambda", "UpdateAlias")
    assert clock.now == pytest.approx(1.0)  # then the full rate: 10 per second, not 5


def test_reads_and_writes_together_stay_under_the_quota() -> None:
    clock = FakeClock()
    paced = limiter(clock)
    bucket = paced.buckets["lambda"]
    bucket.tokens = bucket.read_tokens = 0.0  # a busy spell: both empty
    for _ in range(20):
        paced.before("lambda", "CreateAlias")
        paced.before("lambda", "ListAliases")
    # 40 calls from an empty bucket: never faster than its 10 per second.
    assert clock.now >= 40 / 10 - 1e-9
    # And the 20 reads alone could not have gone faster than their share allows (20 at 5 per second).
    assert clock.now >= 20 / 5 - 1e-9


def test_a_share_of_one_is_the_whole_quota_for_reads_too() -> None:
    clock = FakeClock()
    paced = limiter(clock, share=1.0)
    for _ in range(20):
        paced.before("lambda", "ListAliases")
    assert clock.now == pytest.approx(1.0)


def test_throttling_slows_reads_and_writes_alike() -> None:
    bucket = Bucket("lambda", Quota(16, 16), FakeClock(), share=0.5)
    bucket.throttled()
    assert (bucket.rate, bucket.read_rate) == (8, 4)
    for _ in range(100):
        bucket.succeeded()
    assert (bucket.rate, bucket.read_rate) == (16, 8)


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5, float("nan")])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(RateLimitError, match="share must be above 0 and at most 1"):
        RateLimiter(share=share)


def test_the_share_from_the_environment() -> None:
    assert quota_share({}) == DEFAULT_QUOTA_SHARE == 0.5
    assert quota_share({"POINTSMAN_QUOTA_SHARE": " 0.25 "}) == 0.25
    assert quota_share({"POINTSMAN_QUOTA_SHARE": "1"}) == 1.0
    for bad in ("0", "1.01", "half", "nan", "-1"):
        with pytest.raises(RateLimitError, match=f"POINTSMAN_QUOTA_SHARE must be a number above 0 and at most 1, not '{bad}'"):
            quota_share({"POINTSMAN_QUOTA_SHARE": bad})


# ------------------------------------------------------------------ per account and Region


def test_buckets_are_per_account_and_region() -> None:
    env = {"POINTSMAN_RATE_LIMITS": ""}
    one = ratelimit.shared("us-east-1", "111111111111", env)
    assert one is not None and one.share == DEFAULT_QUOTA_SHARE
    assert ratelimit.shared("us-east-1", "111111111111", env) is one  # every client of that account and Region
    others = [ratelimit.shared("eu-west-1", "111111111111", env), ratelimit.shared("us-east-1", "222222222222", env), ratelimit.shared("us-east-1", None, env)]
    assert len({id(one), *map(id, others)}) == 4
    # Two accounts' buckets are independent: emptying one leaves the other full.
    second = others[1]
    assert second is not None
    for _ in range(30):
        one.buckets["lambda"].reserve(read=False)
    assert one.buckets["lambda"].tokens < 0
    assert second.buckets["lambda"].tokens == second.buckets["lambda"].capacity
    # Other settings, another limiter; pacing off, none.
    assert ratelimit.shared("us-east-1", "111111111111", env, share=1.0) is not one
    assert ratelimit.shared("us-east-1", "111111111111", {"POINTSMAN_RATE_LIMITS": "off"}) is None


def test_clients_of_one_account_and_region_share_their_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POINTSMAN_RATE_LIMITS")
    first, second = AwsClients(region="us-east-1"), AwsClients(region="us-east-1")
    assert first.rate_limiter is not None and first.rate_limiter is second.rate_limiter
    assert AwsClients(region="eu-west-1").rate_limiter is not first.rate_limiter
    assert AwsClients(region="us-east-1", account="222222222222").rate_limiter is not first.rate_limiter
    assert AwsClients(region="us-east-1", rate_limiter=False).rate_limiter is None


# ------------------------------------------------------------------ the option and the variable


def test_the_variable_and_the_option_reach_the_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.cli import main as cli_module

    monkeypatch.delenv("POINTSMAN_RATE_LIMITS")
    clients = AwsClients(region="us-east-1")
    assert clients.rate_limiter is not None and clients.rate_limiter.share == 0.5  # the default: half
    monkeypatch.setenv("POINTSMAN_QUOTA_SHARE", "0.75")
    clients = AwsClients(region="us-east-1")
    assert clients.rate_limiter is not None and clients.rate_limiter.share == 0.75
    assert clients.rate_limiter.buckets["lambda"].read_rate == pytest.approx(15 * ratelimit.HEADROOM * 0.75)
    args = cli_module._parser().parse_args(["plan", "--quota-share", "0.25"])
    cli_module._apply_aws_flags(args)  # the flag wins over the variable
    clients = AwsClients(region="us-east-1")
    assert clients.rate_limiter is not None and clients.rate_limiter.share == 0.25
    assert AwsClients(region="us-east-1", quota_share=1.0).rate_limiter.share == 1.0  # type: ignore[union-attr]


def test_the_controller_paces_reads_at_its_settings_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from controller.loop.runner import Controller
    from controller.loop.settings import RunSettings

    monkeypatch.delenv("POINTSMAN_RATE_LIMITS")
    monkeypatch.setenv("POINTSMAN_QUOTA_SHARE", "0.3")
    settings = RunSettings(repo=str(tmp_path), state_dir=tmp_path / "state", listen="127.0.0.1:0")
    assert settings.quota_share == 0.3
    limiter = Controller(settings).clients.rate_limiter
    assert limiter is not None and limiter.share == 0.3


@pytest.mark.parametrize("bad", ["0", "1.5", "half"])
def test_a_bad_quota_share_flag_is_one_line(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    with pytest.raises(SystemExit):
        main(["plan", "--quota-share", bad])
    (line,) = [entry for entry in capsys.readouterr().err.splitlines() if "--quota-share" in entry and "error" in entry]
    assert line.endswith(f"argument --quota-share: {bad!r} is not a share above 0 and at most 1 (0.5: half of each quota)"), line


def test_a_bad_quota_share_variable_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("POINTSMAN_RATE_LIMITS")
    monkeypatch.setenv("POINTSMAN_QUOTA_SHARE", "2")
    with pytest.raises(AwsConfigError, match=r"^POINTSMAN_QUOTA_SHARE must be a number above 0 and at most 1, not '2'$"):
        AwsClients(region="us-east-1")
    code = main(["run", "--repo", str(tmp_path), "--state-dir", str(tmp_path / "state"), "--listen", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == ["error: --quota-share: Input should be less than or equal to 1 (from POINTSMAN_QUOTA_SHARE='2')"], err
