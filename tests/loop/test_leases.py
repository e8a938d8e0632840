"""Leases in DynamoDB (moto in-process), on a fake monotonic clock: never a sleep, never a timed
assertion. Every replica has clients of its own, so the calls each one makes are counted apart."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
import yaml

from controller.aws.clients import AwsClients, write_calls
from controller.loop.leases import (
    DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
    FenceError,
    LeaseBook,
    LeaseLost,
    LeaseTableError,
    LeaseTimings,
    check_table,
    cloudformation,
    create_table,
    default_replica_id,
)
from tests.conftest import cli, free_port

TABLE = "pointsman-leases"
TARGETS = [f"acct-{i:02d}/eu-west-1" for i in range(12)]


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clients: AwsClients) -> str:
    create_table(clients, TABLE)
    return TABLE


def replica(name: str, clock: FakeClock, **options: Any) -> LeaseBook:
    """A replica with clients of its own (moto is in-process: they all reach the same table)."""
    return LeaseBook(AwsClients(max_attempts=1), TABLE, replica_id=name, clock=clock, wall=lambda: 1_800_000_000.0 + clock.now, **options)


def writes(book: LeaseBook) -> dict[str, int]:
    return write_calls(book.clients.counter.snapshot())


def break_dynamodb(book: LeaseBook) -> None:
    """From now on every DynamoDB call of this replica fails as if the endpoint were unreachable."""

    def unreachable(**_: Any) -> None:
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    book.clients.client("dynamodb").meta.events.register("before-call.dynamodb.*", unreachable)


def assert_exclusive(books: list[LeaseBook]) -> None:
    """No target held by two replicas at once, in their own eyes and in the table's."""
    seen: dict[str, str] = {}
    for book in books:
        for target in book.held():
            assert target not in seen, f"{target} held by both {seen[target]} and {book.replica_id}"
            seen[target] = book.replica_id
    picture = books[0].holders()
    for target, owner in seen.items():
        assert picture.holder(target) == owner


# -- the table ---------------------------------------------------------------------------------


def test_create_table_is_idempotent_on_demand_with_a_string_hash_key(clients: AwsClients) -> None:
    assert create_table(clients, TABLE) is True
    assert create_table(clients, TABLE) is False
    described = clients.client("dynamodb").describe_table(TableName=TABLE)["Table"]
    assert described["TableStatus"] == "ACTIVE"
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    check_table(clients, TABLE)
    assert clients.counter.snapshot()["dynamodb.CreateTable"] == 1


def test_a_table_with_another_key_is_refused(clients: AwsClients) -> None:
    clients.client("dynamodb").create_table(
        TableName="other",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(LeaseTableError, match=r"table other exists but is not a lease table: its key is id \(hash, N\)"):
        create_table(clients, "other")
    with pytest.raises(LeaseTableError, match="does not exist"):
        check_table(clients, "missing")
    with pytest.raises(LeaseTableError, match="must be 3 to 255 characters"):
        create_table(clients, "a b")


def test_cli_creates_the_table_from_the_flag_or_the_environment(
    clients: AwsClients, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = cli(capsys, "lease-table", "create", "--table", TABLE)
    assert (code, err) == (0, "")
    assert out.strip() == f"lease table {TABLE} created (on-demand, string hash key pk) and ACTIVE"
    monkeypatch.setenv("POINTSMAN_LEASE_TABLE", TABLE)
    code, out, err = cli(capsys, "lease-table", "create")
    assert (code, err) == (0, "")
    assert out.strip() == f"lease table {TABLE} exists with the right key: nothing to do"
    assert clients.client("dynamodb").describe_table(TableName=TABLE)["Table"]["TableStatus"] == "ACTIVE"


def test_cli_a_wrong_existing_table_is_one_error_line(clients: AwsClients, capsys: pytest.CaptureFixture[str]) -> None:
    clients.client("dynamodb").create_table(
        TableName="wrong",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    code, out, err = cli(capsys, "lease-table", "create", "--table", "wrong")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: table wrong exists but is not a lease table: its key is pk (hash, S), sk (range, S); a lease table has one string hash key named pk"
    ]


def test_cli_without_a_table_name_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "lease-table", "create")
    assert code == 1 and out == ""
    assert err.splitlines() == ["error: lease-table create needs --table NAME (or POINTSMAN_LEASE_TABLE)"]


def test_cli_an_unreachable_endpoint_is_one_error_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    code, out, err = cli(capsys, "lease-table", "create", "--table", TABLE, "--max-attempts", "1")
    assert code == 1 and out == ""
    assert err.splitlines() == [f"error: lease table {TABLE}: cannot reach AWS endpoint http://127.0.0.1:{port}/"]


def test_cli_prints_a_cloudformation_template(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "lease-table", "cloudformation", "--table", TABLE)
    assert (code, err) == (0, "")

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!Ref", lambda loader, node: {"Ref": loader.construct_scalar(node)})
    template = yaml.load(out, Loader=Loader)
    props = template["Resources"]["PointsmanLeases"]["Properties"]
    assert props["TableName"] == TABLE
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert "TableName" not in cloudformation(None)


# -- settings ----------------------------------------------------------------------------------


def test_defaults_are_controller_runtimes_and_are_checked() -> None:
    assert (DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD) == (15.0, 10.0, 2.0)
    assert LeaseTimings() == LeaseTimings(15.0, 10.0, 2.0)
    with pytest.raises(ValueError, match="renew deadline .* shorter than the lease duration"):
        LeaseTimings(lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="retry period .* shorter than the renew deadline"):
        LeaseTimings(retry_period=10)
    with pytest.raises(ValueError, match="positive"):
        LeaseTimings(retry_period=0)
    name = default_replica_id()
    assert name.count("-") >= 2 and name != default_replica_id()


# -- taking and keeping ------------------------------------------------------------------------


def test_one_replica_takes_every_free_lease_and_renewal_keeps_them(table: str, clock: FakeClock) -> None:
    a = replica("a", clock)
    assert a.tick(TARGETS) == set(TARGETS)
    assert {a.epoch(t) for t in TARGETS} == {1}
    for _ in range(30):  # 60 s: four lease durations, renewed every retry period
        clock.advance(2)
        assert a.tick(TARGETS) == set(TARGETS)
    picture = a.holders()
    assert {lease.owner for lease in picture.leases} == {"a"} and {lease.epoch for lease in picture.leases} == {1}
    assert not any(lease.expired for lease in picture.leases)


def test_a_second_replica_does_not_take_unexpired_leases(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    assert a.tick(["only"]) == {"only"}
    for _ in range(50):
        clock.advance(2)
        assert b.tick(["only"]) == set()  # fair share 1: b holds none, a one; nothing to hand over
        assert a.tick(["only"]) == {"only"}
    assert b.holders().holder("only") == "a"
    assert "dynamodb.PutItem" not in writes(b)
    assert a.epoch("only") == 1


def test_expiry_is_judged_on_the_observers_clock(table: str, clock: FakeClock) -> None:
    """The holder's wall clock says it renewed in the far future; b ignores it. b first sees the
    lease long after a stopped, and still waits a whole lease duration from then."""
    a = LeaseBook(AwsClients(max_attempts=1), TABLE, replica_id="a", clock=clock, wall=lambda: 4_000_000_000.0)
    assert a.tick(["t"]) == {"t"}
    clock.advance(100)  # a stopped renewing long ago
    b = replica("b", clock)
    first_seen = clock.now
    while clock.now - first_seen < DEFAULT_LEASE_DURATION:
        assert b.tick(["t"]) == set(), f"taken {clock.now - first_seen:g} s after b first saw the lease"
        clock.advance(DEFAULT_RETRY_PERIOD)
    assert b.tick(["t"]) == {"t"}
    assert clock.now - first_seen <= DEFAULT_LEASE_DURATION + DEFAULT_RETRY_PERIOD
    assert b.epoch("t") == 2
    picture = b.holders()
    assert picture.holder("t") == "b" and picture.leases[0].epoch == 2


def test_a_renewing_holder_is_never_expired_even_with_a_stopped_wall_clock(table: str, clock: FakeClock) -> None:
    a = LeaseBook(AwsClients(max_attempts=1), TABLE, replica_id="a", clock=clock, wall=lambda: 0.0)
    b = replica("b", clock)
    for _ in range(60):
        a.tick(["t"])
        b.tick(["t"])
        clock.advance(DEFAULT_RETRY_PERIOD)
    assert a.holds("t") and not b.holds("t")


# -- fencing -----------------------------------------------------------------------------------


def test_after_a_takeover_the_old_holder_cannot_write(table: str, clock: FakeClock) -> None:
    """a is paused (its own clock stands still, so in its eyes the lease is fresh); b takes the
    lease over. a's fence and its shared-state writes fail on the table's condition."""
    a_clock = FakeClock(clock.now)
    a = replica("a", a_clock)
    b = replica("b", clock)
    assert a.tick(["t"]) == {"t"}
    a.state("t").put("progress", {"step": 1})
    while not b.holds("t"):
        clock.advance(DEFAULT_RETRY_PERIOD)
        b.tick(["t"])
    assert b.epoch("t") == 2
    b.state("t").put("progress", {"step": 7})
    assert a.holds("t")  # a's clock did not move: only the table can stop it
    a.clients.counter.reset()
    with pytest.raises(LeaseLost, match=r"target t: lease \(epoch 1\) taken over by another replica; no write made"):
        a.fence("t")
    assert not a.holds("t") and a.held() == set()
    with pytest.raises(LeaseLost):
        a.fence("t")  # and from now on without asking the table
    with pytest.raises(LeaseLost), a.fenced("t"):
        pytest.fail("the block ran without the lease")
    with pytest.raises(LeaseLost):
        a.state("t").put("progress", {"step": 2})
    assert a.clients.counter.snapshot() == {"dynamodb.UpdateItem": 1}  # the one conditional check that failed
    assert b.state("t").get("progress") == {"step": 7}
    assert b.fence("t").epoch == 2


def test_state_writes_are_conditional_on_the_lease_in_the_table(table: str, clock: FakeClock) -> None:
    a_clock = FakeClock(clock.now)
    a, b = replica("a", a_clock), replica("b", clock)
    a.tick(["t"])
    while not b.holds("t"):
        clock.advance(DEFAULT_RETRY_PERIOD)
        b.tick(["t"])
    a.clients.counter.reset()
    with pytest.raises(LeaseLost, match=r"taken over by another replica; state not written"):
        a.state("t").put("approval", "yes")
    assert a.clients.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}
    assert b.state("t").items() == {}
    assert not a.holds("t")


def test_a_paused_holder_fails_its_fence_without_a_call(table: str, clock: FakeClock) -> None:
    """SIGSTOP: the monotonic clock runs on while the process is stopped."""
    a = replica("a", clock)
    a.tick(["t"])
    clock.advance(DEFAULT_RENEW_DEADLINE)
    a.clients.counter.reset()
    with pytest.raises(LeaseLost, match=r"not renewed within the renew deadline \(10 s\)"):
        a.fence("t")
    assert a.clients.counter.snapshot() == {}


def test_fence_renews_and_a_fence_that_cannot_reach_the_table_refuses(table: str, clock: FakeClock) -> None:
    a = replica("a", clock)
    a.tick(["t"])
    clock.advance(8)
    fence = a.fence("t")
    assert (fence.epoch, fence.deadline) == (1, clock.now + DEFAULT_RENEW_DEADLINE)
    clock.advance(8)  # 16 s after the tick, 8 after the fence
    assert a.holds("t")
    break_dynamodb(a)
    with pytest.raises(FenceError, match="cannot confirm the lease") as caught:
        a.fence("t")
    assert not isinstance(caught.value, LeaseLost)
    with pytest.raises(FenceError, match="state not written"):
        a.state("t").put("k", 1)


def test_a_replica_that_cannot_renew_drops_the_target_before_others_may_take_it(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    a.tick(["t"])
    b.tick(["t"])
    clock.advance(DEFAULT_RETRY_PERIOD)
    a.tick(["t"])
    renewed = clock.now  # a's last renewal
    b.tick(["t"])
    break_dynamodb(a)
    dropped = taken = None
    while taken is None:
        clock.advance(1)
        if clock.now % DEFAULT_RETRY_PERIOD == 0:
            a.tick(["t"])  # fails: no renewal, no read
            b.tick(["t"])
        if dropped is None and not a.holds("t"):
            dropped = clock.now
        if b.holds("t"):
            taken = clock.now
        assert not (a.holds("t") and b.holds("t"))
    assert dropped == renewed + DEFAULT_RENEW_DEADLINE
    assert taken >= renewed + DEFAULT_LEASE_DURATION > dropped
    assert a.held() == set() and b.epoch("t") == 2


def test_two_replicas_that_read_the_same_free_or_expired_lease_cannot_both_take_it(table: str, clock: FakeClock) -> None:
    """The race a tick cannot show in one thread: both decided from the same read; the
    conditional write (no item yet, or the record version read) lets one of them through."""
    a, b = replica("a", clock), replica("b", clock)
    assert [a._acquire("t", None), b._acquire("t", None)] == [True, False]
    clock.advance(DEFAULT_RENEW_DEADLINE)
    c, d = replica("c", clock), replica("d", clock)
    seen = c._read()[0]["t"]
    assert seen == d._read()[0]["t"]
    assert [d._acquire("t", seen), c._acquire("t", seen)] == [True, False]
    assert (d.epoch("t"), c.holds("t"), b.holds("t")) == (2, False, False)
    with pytest.raises(LeaseLost):
        a.fence("t")


def test_a_lease_dropped_at_the_deadline_is_taken_again_at_a_new_epoch(table: str, clock: FakeClock) -> None:
    a = replica("a", clock)
    a.tick(["t"])
    clock.advance(DEFAULT_RENEW_DEADLINE + 1)  # the tick thread was stuck
    assert a.tick(["t"]) == {"t"}  # nobody else wrote the lease: a takes it again at once
    assert a.epoch("t") == 2


def test_a_graceful_stop_frees_the_leases_at_once(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    assert a.tick(["t", "u"]) == {"t", "u"}
    b.tick(["t", "u"])  # b asks a for one of them
    a.close()
    assert a.held() == set()
    assert b.tick(["t", "u"]) == {"t", "u"}
    assert {b.epoch("t"), b.epoch("u")} == {2}
    assert [r.replica for r in b.holders().replicas] == ["b"]


def test_a_target_no_longer_given_is_released(table: str, clock: FakeClock) -> None:
    a = replica("a", clock)
    a.tick(["t", "u"])
    assert a.tick(["t"]) == {"t"}
    assert a.holders().holder("u") is None


# -- balance -----------------------------------------------------------------------------------


def test_three_replicas_share_twelve_targets_and_take_over_a_stopped_one(table: str, clock: FakeClock) -> None:
    books = [replica(name, clock) for name in ("a", "b", "c")]
    order = random.Random(7)
    rounds = 0
    # The first round, then at most two rounds per lease a newcomer gets (it asks, the holder
    # hands over at its next tick, the newcomer takes it at its next): 4 leases each.
    while sorted(len(book.held()) for book in books) != [4, 4, 4]:
        rounds += 1
        assert rounds <= 1 + 2 * 4, [sorted(book.held()) for book in books]
        for book in order.sample(books, len(books)):
            book.tick(TARGETS)
            assert_exclusive(books)
        clock.advance(DEFAULT_RETRY_PERIOD)
    for _ in range(20):  # and it stays so
        for book in order.sample(books, len(books)):
            assert len(book.tick(TARGETS)) == 4
            assert_exclusive(books)
        clock.advance(DEFAULT_RETRY_PERIOD)
    picture = books[0].holders()
    assert {r.replica: (r.live, r.leases) for r in picture.replicas} == {"a": (True, 4), "b": (True, 4), "c": (True, 4)}

    a, b, c = books
    orphans = c.held()
    epochs = {lease.target: lease.epoch for lease in picture.leases}
    stopped = clock.now - DEFAULT_RETRY_PERIOD  # c's last tick
    while a.held() | b.held() != set(TARGETS):
        assert clock.now - stopped <= DEFAULT_LEASE_DURATION + DEFAULT_RETRY_PERIOD
        for book in order.sample([a, b], 2):
            book.tick(TARGETS)
            assert len(book.held()) <= 6
            assert not a.held() & b.held()
        clock.advance(DEFAULT_RETRY_PERIOD)
    assert sorted([len(a.held()), len(b.held())]) == [6, 6]
    after = {lease.target: lease.epoch for lease in a.holders().leases}
    assert all(after[t] == epochs[t] + 1 for t in orphans)
    assert all(after[t] == epochs[t] for t in set(TARGETS) - orphans)


def test_no_replica_holds_more_than_its_fair_share_plus_one_once_all_are_up(table: str, clock: FakeClock) -> None:
    targets = TARGETS + ["extra"]  # 13 over 3: a fair share of 5
    books = [replica(name, clock) for name in ("a", "b", "c")]
    books[0].tick(targets)  # a alone at first: it takes all 13
    order = random.Random(3)
    for _ in range(30):
        for book in order.sample(books, len(books)):
            book.tick(targets)
            assert_exclusive(books)
        clock.advance(DEFAULT_RETRY_PERIOD)
    counts = sorted(len(book.held()) for book in books)
    assert counts == [4, 4, 5] and sum(counts) == 13


def test_a_lease_asked_for_is_not_handed_over_during_a_fenced_write(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    a.tick(["t", "u"])
    b.tick(["t", "u"])  # b asks for one
    asked = next(lease.target for lease in a.holders().leases if lease.wanted_by == "b")
    with a.fenced(asked) as fence:
        assert fence.epoch == 1
        assert a.tick(["t", "u"]) == {"t", "u"}
        assert b.tick(["t", "u"]) == set()
    assert a.tick(["t", "u"]) == {"t", "u"} - {asked}
    assert b.tick(["t", "u"]) == {asked} and b.epoch(asked) == 2


def test_a_fenced_write_on_a_worker_thread_holds_off_the_handover(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    a.tick(["t", "u"])
    b.tick(["t", "u"])
    asked = next(lease.target for lease in a.holders().leases if lease.wanted_by == "b")
    inside, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with a.fenced(asked):
                inside.set()
                assert done.wait(60)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    worker = threading.Thread(target=write)
    worker.start()
    assert inside.wait(60)
    assert a.tick(["t", "u"]) == {"t", "u"}  # the write is in progress: not handed over
    done.set()
    worker.join(60)
    assert not failures
    assert a.tick(["t", "u"]) == {"t", "u"} - {asked}
    assert b.tick(["t", "u"]) == {asked}


# -- shared state and the status view ----------------------------------------------------------


def test_shared_state_round_trip_and_resumed_after_a_takeover(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    a.tick(["prod/eu-west-1", "dev"])
    state = a.state("prod/eu-west-1")
    state.put("rollout", {"alias": "getProducts:prod", "step": 2, "weights": [0.1, 0.5]})
    state.put("last_good_commit", "0123abc")
    state.put("drift#first_seen", {"lambda_alias/x/prod": 1_800_000_000})
    a.state("dev").put("rollout", None)
    assert state.get("rollout") == {"alias": "getProducts:prod", "step": 2, "weights": [0.1, 0.5]}
    assert state.get("missing", "none") == "none"
    assert b.state("prod/eu-west-1").items() == {
        "drift#first_seen": {"lambda_alias/x/prod": 1_800_000_000},
        "last_good_commit": "0123abc",
        "rollout": {"alias": "getProducts:prod", "step": 2, "weights": [0.1, 0.5]},
    }
    assert b.state("dev").items() == {"rollout": None}
    state.delete("last_good_commit")
    assert b.state("prod/eu-west-1").get("last_good_commit") is None
    with pytest.raises(LeaseLost, match="does not hold its lease"):
        b.state("prod/eu-west-1").put("rollout", {})
    a.close()
    b.tick(["prod/eu-west-1", "dev"])
    assert b.state("prod/eu-west-1").get("rollout")["step"] == 2
    b.state("prod/eu-west-1").put("rollout", {"step": 3})
    assert a.state("prod/eu-west-1").get("rollout") == {"step": 3}
    with pytest.raises(ValueError):
        a.state("bad#name")


def test_holders_shows_the_whole_picture(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    a.tick(["t", "u"])
    clock.advance(DEFAULT_RETRY_PERIOD)
    b.tick(["t", "u"])
    picture = b.holders()
    assert picture.me == "b"
    assert [(x.target, x.owner, x.epoch, x.expired) for x in picture.leases] == [("t", "a", 1, False), ("u", "a", 1, False)]
    assert picture.leases[0].since == 1_800_000_000.0 + 1000.0
    assert {(r.replica, r.live, r.leases) for r in picture.replicas} == {("a", True, 2), ("b", True, 0)}
    document = picture.as_json()
    assert document["leases"][0]["since"] == "2027-01-15T08:16:40Z"
    assert {r["replica"] for r in document["replicas"]} == {"a", "b"}
    assert sum(1 for x in document["leases"] if x["wanted_by"] == "b") == 1  # b asked for one


def test_a_dead_replicas_heartbeat_is_forgotten(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    a.tick(["t"])
    b.tick(["t"])
    for _ in range(20):  # 40 s: a's heartbeat is unchanged for more than two lease durations
        clock.advance(DEFAULT_RETRY_PERIOD)
        b.tick(["t"])
    assert [r.replica for r in b.holders().replicas] == ["b"]
    assert b.held() == {"t"}


@pytest.fixture
def raw_dynamodb(clients: AwsClients) -> Iterator[Any]:
    yield boto3.client("dynamodb")


def test_items_are_readable_by_other_tools(table: str, clock: FakeClock, raw_dynamodb: Any) -> None:
    a = replica("a", clock)
    a.tick(["t"])
    a.state("t").put("k", [1, 2])
    items = {i["pk"]["S"]: i for i in raw_dynamodb.scan(TableName=TABLE)["Items"]}
    assert set(items) == {"lease#t", "replica#a", "state#t#k"}
    assert items["lease#t"]["owner"] == {"S": "a"} and items["lease#t"]["epoch"] == {"N": "1"}
    assert items["state#t#k"]["value"] == {"S": "[1,2]"} and items["state#t#k"]["epoch"] == {"N": "1"}


def test_a_replica_ticks_at_the_moment_another_replicas_lease_expires(table: str, clock: FakeClock) -> None:
    a, b = replica("a", clock), replica("b", clock)
    assert a.tick(["t1", "t2"]) == frozenset({"t1", "t2"})
    assert b.tick(["t1", "t2"]) == frozenset()  # b sees a's leases now: they expire on b's clock 15 s from now, unless renewed
    assert b.next_tick_in() == b.timings.retry_period  # nothing expires within a retry period
    clock.advance(14.0)  # a is gone: no renewal
    due = b.next_tick_in()
    assert 0.0 < due < b.timings.retry_period and abs(due - 1.01) < 1e-6
    clock.advance(due)
    assert b.tick(["t1", "t2"]) == frozenset({"t1", "t2"})  # taken at the end of a's lease, not a retry period later
    assert b.next_tick_in() == b.timings.retry_period  # b holds them: no other replica's lease to wait for
