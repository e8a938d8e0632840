"""``pointsman run`` of a spec split into targets: a controller per target in one process, and
replicas sharing the targets through leases (moto's DynamoDB, in process)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.aws.targets import assumed_session
from controller.loop.events import Touch
from controller.loop.fleet import Fleet, wants_fleet
from controller.loop.leases import LeaseBook, create_table
from controller.loop.settings import RunSettings
from controller.web.pages import status_page
from tests.loop.test_status_schema import check
from tests.targets.test_targets import A, B, _repo_of, role, write_target


def wait_for(what: Callable[[], Any], timeout: float = 60.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message or what}")


def alias_version(account: str, region: str) -> str:
    lam = assumed_session(region, [role(account)]).client("lambda")
    return str(lam.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"])


@pytest.fixture
def repo(two_accounts: Path, tmp_path: Path) -> Path:
    """A repository whose spec has two targets, in two accounts and Regions, their estates drifted."""
    return _repo_of(two_accounts, tmp_path / "repo")


def settings_of(repo: Path, state: Path, **extra: Any) -> RunSettings:
    return RunSettings(repo=str(repo), state_dir=state, poll_interval=0, interval=3600, **extra)


@pytest.fixture
def fleets() -> Iterator[list[Fleet]]:
    made: list[Fleet] = []
    yield made
    for fleet in made:
        fleet.stop()


def test_run_reconciles_every_target_with_its_own_credentials_and_shows_them_together(repo: Path, tmp_path: Path, fleets: list[Fleet]) -> None:
    settings = settings_of(repo, tmp_path / "state")
    assert wants_fleet(settings)
    fleet = Fleet(settings)
    fleets.append(fleet)
    fleet.start()
    wait_for(lambda: all(m.controller is not None and m.controller.status.last_run for m in fleet.members().values()), message="both targets' first runs")
    assert alias_version(A, "eu-west-1") == "3" and alias_version(B, "us-east-1") == "3"
    document = fleet.status_document()
    rows = {row["name"]: row for row in document["targets"]}
    assert sorted(rows) == ["prod-eu", "prod-us"]
    assert rows["prod-eu"]["account_id"] == A and rows["prod-us"]["region"] == "us-east-1" and rows["prod-eu"]["here"] is True
    assert rows["prod-eu"]["last_run"]["status"] == "applied" and document["last_run"]["target"] in rows
    assert {entry["target"] for entry in document["managed"]} == {"prod-eu", "prod-us"}
    assert document["replica"] is None and document["ready"] is True
    check(document)  # the schema of /api/status
    page = status_page(document, [r.as_json() for r in fleet.recent_runs(15)], can_reconcile=False)
    assert 'id="target-filter"' in page and "prod-us" in page
    # Each target's history is its own, and the runs name their target.
    runs = fleet.recent_runs(10)
    assert sorted(r.target for r in runs) == ["prod-eu", "prod-us"]
    assert [r.target for r in fleet.recent_runs(10, target="prod-us")] == ["prod-us"]
    assert (tmp_path / "state" / "targets" / "prod-eu" / "history.sqlite3").is_file()
    record = fleet.run_record(runs[0].id or 0, target=runs[0].target)
    assert record is not None and record.target == runs[0].target
    assert fleet.run_record(1) is None  # which target's run #1? none without a name
    # A console click in one account is drift of that target alone, healed by its next run.
    lam = assumed_session("us-east-1", [role(B)]).client("lambda")
    lam.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    fleet.trigger("test")
    wait_for(lambda: alias_version(B, "us-east-1") == "3", message="prod-us healed")
    # Metrics carry the target.
    text = fleet.metrics_text().decode()
    assert 'pointsman_reconciles_total{status="applied",target="prod-us"}' in text
    assert 'pointsman_target_up{target="prod-eu"} 1.0' in text
    # Rollout controls and approvals name their target.
    assert "name one (--target)" in (fleet.approve(1) or "")
    assert "no target 'nope'" in (fleet.rollout_control("getProducts:prod", "abort", target="nope") or "")


def test_a_target_in_the_wrong_account_is_its_own_error_and_the_others_go_on(repo: Path, tmp_path: Path, fleets: list[Fleet]) -> None:
    from tests.e2e_support import git
    from tests.loop.test_notify import Receiver

    receiver = Receiver()

    write_target(repo / "desired_state", "wrong", f'account_id: "{A}"\nregion: eu-west-1\n')  # the ambient account is not A
    git("add", "-A", cwd=repo)
    git("commit", "-m", "a third target", cwd=repo)
    fleet = Fleet(settings_of(repo, tmp_path / "state", notify_webhook_url=receiver.url("/hook")))
    fleets.append(fleet)
    fleet.start()
    wait_for(lambda: all(m.controller is not None and m.controller.status.last_run for n, m in fleet.members().items() if n != "wrong"))
    rows = {row["name"]: row for row in fleet.status_document()["targets"]}
    assert rows["wrong"]["state"] == "error" and f"not the declared {A}; nothing was read or written" in rows["wrong"]["error"]
    assert rows["prod-eu"]["state"] != "error" and alias_version(A, "eu-west-1") == "3"
    # Its error is a run of its own history, and a metric.
    (failed,) = fleet.recent_runs(10, target="wrong")
    assert failed.status == "error" and "not the declared" in (failed.error or "")
    assert 'pointsman_target_up{target="wrong"} 0.0' in fleet.metrics_text().decode()
    # And a notification naming it (the others notify their own news, each naming its target).
    receiver.wait(3)
    payloads = [json.loads(body) for _, _, body in receiver.requests]
    (wrong,) = [p for p in payloads if p["target"] == "wrong"]
    assert wrong["event"] == "error" and wrong["summary"].startswith("pointsman [wrong]: reconcile error: the credentials are for account")
    assert {p["target"] for p in payloads} == {"wrong", "prod-eu", "prod-us"}
    receiver.close()


def test_events_go_to_the_target_of_their_account_and_region(repo: Path, tmp_path: Path, fleets: list[Fleet]) -> None:
    fleet = Fleet(settings_of(repo, tmp_path / "state"))
    fleets.append(fleet)
    fleet.start()
    wait_for(lambda: all(m.controller is not None and m.controller.has_reads() for m in fleet.members().values()))
    members = fleet.members()
    us = Touch(reason="x", keys=(("function", "getProducts"),), account=B, region="us-east-1")
    eu = Touch(reason="x", keys=(("function", "getProducts"),), account=A, region="eu-west-1")
    elsewhere = Touch(reason="x", keys=(("function", "getProducts"),), account=B, region="eu-west-1")
    assert fleet.route(us) is members["prod-us"].controller
    assert fleet.route(eu) is members["prod-eu"].controller
    assert fleet.route(elsewhere) is None


def _book(table: str, replica: str) -> LeaseBook:
    clients = AwsClients(rate_limiter=False)
    return LeaseBook(clients, table, replica_id=replica, lease_duration=6.0, renew_deadline=4.0, retry_period=0.5)


def test_two_replicas_share_the_targets_and_one_takes_over_what_the_other_gives_back(repo: Path, tmp_path: Path, fleets: list[Fleet]) -> None:
    create_table(AwsClients(rate_limiter=False), "leases", wait_delay=0)
    one = Fleet(settings_of(repo, tmp_path / "one", lease_table="leases"), book=_book("leases", "one"))
    two = Fleet(settings_of(repo, tmp_path / "two", lease_table="leases"), book=_book("leases", "two"))
    fleets.extend([one, two])
    one.start()
    two.start()
    # Each replica holds one target (its fair share), never both the same.
    wait_for(lambda: len(one._held) == 1 and len(two._held) == 1, message="one lease each")
    assert not one._held & two._held
    wait_for(lambda: alias_version(A, "eu-west-1") == "3" and alias_version(B, "us-east-1") == "3", message="both targets applied")
    # No double apply: each target was applied by one run, whichever replica held it then.
    for name in ("prod-eu", "prod-us"):
        runs = [r for fleet in (one, two) for r in fleet.recent_runs(20, target=name) if r.id is not None]
        assert [r.status for r in runs].count("applied") == 1, [(r.status, r.triggers) for r in runs]
    # Every replica's page shows the whole picture from the table.
    wait_for(lambda: all(r["holder"] for r in two.status_document()["targets"]), message="holders in the picture")
    document = one.status_document()
    assert {r["name"]: r["holder"] for r in document["targets"]} == {n: ("one" if n in one._held else "two") for n in ("prod-eu", "prod-us")}
    assert sorted(r["id"] for r in document["replica"]["replicas"]) == ["one", "two"]
    check(document)
    (theirs,) = two._held
    wait_for(
        lambda: ({r["name"]: r for r in one.status_document()["targets"]}[theirs]["last_run"] or {}).get("replica") == "two",
        message="the other replica's summary of its run",
        timeout=30,
    )
    # The history stays whole: replica one lists replica two's runs of its target, from the table.
    remote = [r for r in one.recent_runs(20, target=theirs) if r.id is None]
    assert remote and remote[0].replica == "two" and remote[0].replica_run is not None
    page = status_page(one.status_document(), [r.as_json() for r in one.recent_runs(15)], can_reconcile=False)
    assert f"two #{remote[0].replica_run}" in page
    # A graceful stop gives the leases back: the other replica takes over at its next tick and
    # carries on from the shared state (the commit the last holder applied).
    (given,) = one._held
    one.stop()
    wait_for(lambda: two._held == {"prod-eu", "prod-us"}, timeout=30, message="takeover")
    wait_for(lambda: (c := two.members()[given].controller) is not None and c.status.last_run, message="the taken target's first run here")
    taken = two.members()[given].controller
    assert taken is not None and taken.status.applied_commit == one.members()[given].controller.status.applied_commit  # type: ignore[union-attr]
    assert taken.status.last_run["status"] == "in_sync"  # nothing re-applied


def test_run_with_a_lease_table_that_does_not_exist_is_one_line(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import cli

    argv = ("run", "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "--listen", "127.0.0.1:0", "--lease-table", "no-such-table")
    code, _, err = cli(capsys, *argv)
    assert code == 1 and "lease table no-such-table does not exist (`pointsman lease-table create --table no-such-table` makes it)" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1 and "Traceback" not in err


def test_a_target_whose_lease_is_gone_forgets_its_reads_and_is_not_reconciled(repo: Path, tmp_path: Path, fleets: list[Fleet]) -> None:
    create_table(AwsClients(rate_limiter=False), "leases", wait_delay=0)
    book = _book("leases", "solo")
    fleet = Fleet(settings_of(repo, tmp_path / "solo", lease_table="leases"), book=book)
    fleets.append(fleet)
    fleet.start()
    wait_for(lambda: all(m.controller is not None and m.controller.has_reads() for m in fleet.members().values()), message="both targets read")
    controller = fleet.members()["prod-eu"].controller
    assert controller is not None
    runs = len(controller.history.recent(10))
    fleet._leases_stop.set()  # no tick takes it back meanwhile
    assert fleet._lease_thread is not None
    fleet._lease_thread.join(10)
    assert book.release("prod-eu")
    with fleet._guard("prod-eu") as allowed:
        assert allowed is False
    assert not controller.has_reads()  # the reads kept for events went with the lease
    fleet.members()["prod-eu"].runner.trigger("test")  # type: ignore[union-attr]
    time.sleep(1.0)
    assert len(controller.history.recent(10)) == runs  # no run while another replica may hold it
