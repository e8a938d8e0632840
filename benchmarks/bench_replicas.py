"""Benchmark: replicas of ``pointsman run`` sharing targets through a DynamoDB lease table.

Figures, not pass/fail. moto's server (127.0.0.1, in this process) holds N targets, an emulated
account each (a small estate: functions with aliases, a REST API, a domain), and the lease table.
Three ``pointsman run --lease-table`` replicas run as processes, each naming itself in its user
agent (``AWS_SDK_UA_APP_ID``), behind a proxy that keeps a journal of every request it forwards:
who sent it, for which account (learnt from the AssumeRole answers), which operation, when.

A sampler reads the table (each lease's owner) and every replica's ``/api/status`` (the
targets it believes it holds) four times a second. The phases:

1. start: time until every target is held and applied; the leases per replica.
2. SIGKILL one replica: time until another replica holds each of its targets (against lease
   duration + retry period).
3. SIGSTOP another past its lease (its targets are taken over), then drift is made in the
   accounts of the targets it lost and it gets SIGCONT: the writes it sends for them afterwards
   (the journal, by its user agent), and how many times each drift was healed (no double apply).
4. it rejoins: time until the leases are balanced again.

Throughout: samples where a target had two owners in the table or was claimed by two live
replicas at once, and the longest time a target was held by no live replica.

    .venv/bin/python benchmarks/bench_replicas.py                # 3 replicas, 12 targets, 15/10/2 s leases
    .venv/bin/python benchmarks/bench_replicas.py --targets 6 --lease 3 --renew 2 --retry 0.5 --interval 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from benchmarks.bench_scale import REGION, MotoServer, Shape, assumed, aws_env, free_port, function_name, pointsman_command, seed, target_account  # noqa: E402
from benchmarks.quota_proxy import Call, QuotaProxy  # noqa: E402
from controller.aws.clients import is_write  # noqa: E402

TABLE = "pointsman-leases"


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[str]
    log: Path
    stopped: bool = False  # SIGSTOP'd: its page does not answer, its claims are not sampled
    dead: bool = False

    def status(self) -> dict[str, Any] | None:
        if self.stopped or self.dead:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status", timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None


@dataclass
class Sample:
    at: float
    owners: dict[str, str | None]  # the table: target -> owner
    since: dict[str, float]  # the table: target -> when its owner took it (the owner's wall clock, this machine's)
    claims: dict[str, list[str]]  # target -> the live replicas that say they hold it


@dataclass
class Sampler:
    table: Any
    replicas: list[Replica]
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def leases(self) -> list[dict[str, Any]]:
        return [i for i in self.table.scan(TableName=TABLE, ConsistentRead=True)["Items"] if i["pk"]["S"].startswith("lease#")]

    def owners(self) -> dict[str, str | None]:
        return {i["pk"]["S"].split("#", 1)[1]: i.get("owner", {}).get("S") for i in self.leases()}

    def take(self) -> Sample:
        claims: dict[str, list[str]] = {}
        for replica in self.replicas:
            document = replica.status()
            for target in ((document or {}).get("replica") or {}).get("holds") or []:
                claims.setdefault(target, []).append(replica.name)
        items = self.leases()
        owners = {i["pk"]["S"].split("#", 1)[1]: i.get("owner", {}).get("S") for i in items}
        since = {i["pk"]["S"].split("#", 1)[1]: float(i["since"]["N"]) for i in items if "since" in i}
        sample = Sample(time.monotonic(), owners, since, claims)
        self.samples.append(sample)
        return sample

    def run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                self.take()
            except Exception:  # noqa: BLE001 - a failed sample is skipped
                continue


def spread(owners: dict[str, str | None]) -> dict[str, int]:
    """Leases per replica (a lease between two holders, handed over, counted as ``free``)."""
    counts = Counter(owner or "free" for owner in owners.values())
    return dict(sorted(counts.items()))


def wait_until(what: Callable[[], Any], timeout: float, step: float = 0.25) -> float | None:
    """Seconds until ``what()`` is true, None when it never was within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if what():
            return time.monotonic() - started
        time.sleep(step)
    return None


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "b@example.com",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "b@example.com",
        },
    )


def start_replica(name: str, repo: Path, work: Path, proxy_url: str, args: argparse.Namespace) -> Replica:
    port = free_port()
    log = work / f"{name}.log"
    env = {**aws_env(proxy_url), "AWS_SDK_UA_APP_ID": name, "POINTSMAN_RATE_LIMITS": "off"}
    argv = [
        *pointsman_command(),
        "run",
        "--repo", str(repo),
        "--state-dir", str(work / name),
        "--listen", f"127.0.0.1:{port}",
        "--interval", f"{args.interval:g}",
        "--poll-interval", "0",
        "--lease-table", TABLE,
        "--replica-id", name,
        "--lease-duration", f"{args.lease:g}",
        "--lease-renew-deadline", f"{args.renew:g}",
        "--lease-retry-period", f"{args.retry:g}",
        "--parallelism", "4",
    ]  # fmt: skip
    handle = log.open("w")
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, text=True)
    return Replica(name, port, process, log)


@dataclass
class Figures:
    targets: int
    lease: float
    retry: float
    lines: list[str] = field(default_factory=list)
    zero_writes_after_cont: bool | None = None
    double_owner_samples: int = 0
    double_claim_samples: int = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


def writes(calls: list[Call], since: float, app: str | None = None, accounts: set[str] | None = None) -> list[Call]:
    return [
        c
        for c in calls
        if c.at >= since and is_write(c.operation) and not c.operation.startswith(("dynamodb.", "sts.")) and (app is None or c.app == app)
        and (accounts is None or c.account in accounts)
    ]  # fmt: skip


def bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.targets, args.lease, args.retry)
    work = Path(tempfile.mkdtemp(prefix="pointsman-replicas-"))
    shape = Shape.of(args.functions, domains=1, mappings_per_domain=1)
    replicas: list[Replica] = []
    sampler: Sampler | None = None
    try:
        with MotoServer() as moto, QuotaProxy(moto.url, scale=1000.0, per_account=True, journal=True) as proxy:
            spec = work / "repo" / "desired_state"
            accounts: dict[str, str] = {}
            for i in range(args.targets):
                account = target_account(i)
                directory = spec / f"t{i:02d}"
                seed(moto.url, shape, directory, session=assumed(moto.url, account))
                (directory / "target.yaml").write_text(f'account_id: "{account}"\nregion: {REGION}\nrole_arn: arn:aws:iam::{account}:role/pointsman\n')
                accounts[f"t{i:02d}"] = account
                # Drift from the start: every target has one alias to heal on its first run.
                assumed(moto.url, account).client("lambda", endpoint_url=moto.url).update_alias(FunctionName=function_name(0), Name="prod", FunctionVersion="1")
            repo = work / "repo"
            git("init", "--initial-branch=main", cwd=repo)
            git("add", "-A", cwd=repo)
            git("commit", "-m", "targets", cwd=repo)
            direct = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
            subprocess.run([*pointsman_command(), "lease-table", "create", "--table", TABLE], env=aws_env(moto.url), cwd=ROOT, check=True, capture_output=True)
            table = direct.client("dynamodb", endpoint_url=moto.url)
            started = time.monotonic()
            replicas = [start_replica(f"r{k}", repo, work, proxy.url, args) for k in (1, 2, 3)]
            sampler = Sampler(table, replicas)
            threading.Thread(target=sampler.run, daemon=True).start()

            def lambda_of(name: str) -> Any:
                return assumed(moto.url, accounts[name]).client("lambda", endpoint_url=moto.url)

            def healed(names: list[str]) -> bool:
                return all(lambda_of(n).get_alias(FunctionName=function_name(0), Name="prod")["FunctionVersion"] == "2" for n in names)

            def owners() -> dict[str, str | None]:
                return sampler.owners() if sampler is not None else {}

            names = sorted(accounts)
            held = wait_until(lambda: len([o for o in owners().values() if o]) == len(names), 120)
            applied = wait_until(lambda: healed(names), 120)
            counts = spread(owners())
            figures.add(
                f"start            {len(names)} targets, 3 replicas, lease {args.lease:g}s / renew {args.renew:g}s / retry {args.retry:g}s:"
                f" every target held after {held if held is None else f'{held:.1f}s'},"
                f" applied after {'-' if applied is None else f'{(time.monotonic() - started):.1f}s'};"
                f" leases per replica {counts}"
            )
            # Balance: wait for fair shares (ceil(N/3), handovers one per tick).
            fair = -(-len(names) // 3)
            balanced = wait_until(lambda: (lambda c: max(c.values()) <= fair and "free" not in c)(spread(owners())), 120)
            figures.add(
                f"balance          every replica at most {fair} leases after {'never' if balanced is None else f'{balanced:.1f}s more'}: {spread(owners())}"
            )

            # SIGKILL r1.
            victim = replicas[0]
            lost = sorted(t for t, o in owners().items() if o == victim.name)
            killed_at = time.monotonic()
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            victim.dead = True
            took = wait_until(lambda: all(owners().get(t) not in (None, victim.name) for t in lost), 120, step=0.1)
            bound = args.lease + args.retry
            figures.add(
                f"SIGKILL r1       its {len(lost)} targets taken over after {'never' if took is None else f'{took:.1f}s'}"
                f" (lease + retry = {bound:g}s{'' if took is None else f', x{took / bound:.2f}'}); now {spread(owners())}"
            )
            _ = killed_at

            # SIGSTOP r2 past its lease, drift in its targets' accounts, SIGCONT.
            paused = replicas[1]
            taken = sorted(t for t, o in owners().items() if o == paused.name)
            paused.process.send_signal(signal.SIGSTOP)
            paused.stopped = True
            took = wait_until(lambda: all(owners().get(t) not in (None, paused.name) for t in taken), 120, step=0.1)
            drift_at = time.monotonic()
            for name in taken:
                lambda_of(name).update_alias(FunctionName=function_name(0), Name="prod", FunctionVersion="1")
            paused.process.send_signal(signal.SIGCONT)
            paused.stopped = False
            cont_at = time.monotonic()
            heal = wait_until(lambda: healed(taken), 120)
            time.sleep(max(3 * args.interval, 2 * args.lease))  # every replica's next runs, the woken one's included
            lost_accounts = {accounts[t] for t in taken}
            # Writes r2 sent for a target it had lost, before it took the lease again (if it did:
            # the rejoining replica may be handed some back, and then heals them as their holder).
            again = {
                t: min((s.since[t] for s in sampler.samples if s.at >= cont_at and s.owners.get(t) == paused.name and t in s.since), default=None)
                for t in taken
            }
            from_paused = [
                c for t in taken for c in writes(proxy.calls(), cont_at, app=paused.name, accounts={accounts[t]}) if again[t] is None or c.wall < again[t]
            ]
            retaken = sorted(t for t, at in again.items() if at is not None)
            heals = Counter(c.account for c in writes(proxy.calls(), drift_at, accounts=lost_accounts) if c.operation == "lambda.UpdateAlias")
            figures.zero_writes_after_cont = not from_paused
            figures.add(
                f"SIGSTOP r2       its {len(taken)} targets taken over after {'never' if took is None else f'{took:.1f}s'};"
                f" drift made in them, SIGCONT: healed after {'never' if heal is None else f'{heal:.1f}s'},"
                f" writes from r2 for the targets it had lost, while it did not hold them: {len(from_paused)}"
                + (f" ({Counter(c.operation for c in from_paused)})" if from_paused else "")
                + f"; UpdateAlias per drifted target: {sorted(heals.values()) or '[]'} (1 each: no double apply)"
                + (f"; taken back by r2 once it rejoined: {', '.join(retaken)}" if retaken else "")
            )

            # r2 rejoins.
            live = [r.name for r in replicas if not r.dead]
            fair = -(-len(names) // len(live))
            rebalanced = wait_until(lambda: (lambda c: max(c.values()) <= fair and set(c) == set(live))(spread(owners())), 180)
            figures.add(
                f"rejoin           r2 back: at most {fair} leases each after {'never' if rebalanced is None else f'{rebalanced:.1f}s'}: {spread(owners())}"
            )
            sampler.stop.set()
            samples = sampler.samples
            figures.double_claim_samples = sum(1 for s in samples if any(len(c) > 1 for c in s.claims.values()))
            unowned = _longest_unowned(samples, {r.name for r in replicas}, {victim.name: killed_at})
            figures.add(
                f"ownership        {len(samples)} samples: a target claimed by two live replicas at once in {figures.double_claim_samples};"
                f" longest time a target was held by no live replica {unowned:.1f}s (the killed replica's leases until taken over)"
            )
            totals = Counter(c.app for c in writes(proxy.calls(), started))
            figures.add(f"writes           by replica over the whole run: {dict(sorted(totals.items()))}")
            # A graceful stop (SIGTERM) gives the leases back at once.
            stopped_at = time.monotonic()
            codes = stop_replicas(replicas)
            free = sum(1 for owner in owners().values() if owner is None)
            figures.add(
                f"SIGTERM          the live replicas stopped in {time.monotonic() - stopped_at:.1f}s, exit codes {codes};"
                f" leases given back: {free} of {len(names)}"
            )
    finally:
        stop_replicas(replicas)
        if sampler is not None:
            sampler.stop.set()
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def stop_replicas(replicas: list[Replica]) -> dict[str, int | None]:
    """SIGTERM every replica still running (a stopped one is continued first); their exit codes."""
    for replica in replicas:
        if replica.process.poll() is None:
            if replica.stopped:
                replica.process.send_signal(signal.SIGCONT)
            replica.process.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for replica in replicas:
        try:
            codes[replica.name] = replica.process.wait(30)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            codes[replica.name] = None
    return {name: code for name, code in codes.items() if not next(r for r in replicas if r.name == name).dead}


def _longest_unowned(samples: list[Sample], names: set[str], dead_since: dict[str, float]) -> float:
    """The longest run of samples in which a target's owner was nobody or a dead replica."""
    longest = 0.0
    since: dict[str, float] = {}
    for sample in samples:
        for target, owner in sample.owners.items():
            gone = owner is None or (owner in dead_since and sample.at >= dead_since[owner])
            if gone:
                since.setdefault(target, sample.at)
                longest = max(longest, sample.at - since[target])
            else:
                since.pop(target, None)
    return longest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=12, help="targets, an emulated account each (default 12)")
    parser.add_argument("--functions", type=int, default=2, help="functions per target (default 2)")
    parser.add_argument("--lease", type=float, default=15.0, help="lease duration, s (default 15, as controller-runtime)")
    parser.add_argument("--renew", type=float, default=10.0, help="renew deadline, s (default 10)")
    parser.add_argument("--retry", type=float, default=2.0, help="retry period, s (default 2)")
    parser.add_argument("--interval", type=float, default=5.0, help="the replicas' reconcile interval, s (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the replicas' logs and state")
    args = parser.parse_args(argv)
    figures = bench(args)
    return 0 if figures.zero_writes_after_cont else 1


if __name__ == "__main__":
    sys.exit(main())
