"""Targets: a spec split by account and Region, each target's role assumed (through a chain),
its account checked, reconciled on its own; one target's failure is its own line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.aws.clients import AwsClients, write_calls
from controller.aws.targets import TargetIdentityError, assumed_session, check_account
from controller.demo.estate import seed
from controller.spec import SpecInvalid
from controller.spec.targets import load_targets
from tests.conftest import EXAMPLE_SPEC, cli

A, B = "111122223333", "444455556666"


def role(account: str, name: str = "pointsman") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def write_target(root: Path, name: str, body: str, *, spec: bool = True) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "target.yaml").write_text(body)
    if spec:
        for file in EXAMPLE_SPEC.glob("*.yaml"):
            shutil.copy(file, directory / file.name)
    return directory


# ------------------------------------------------------------------ the spec


def test_a_spec_without_targets_is_one_unnamed_target() -> None:
    (only,) = load_targets(EXAMPLE_SPEC)
    assert only.name == "" and only.settings is None and "getProducts" in only.spec.functions


def test_targets_are_directories_with_a_target_file(tmp_path: Path) -> None:
    write_target(tmp_path, "prod-eu", f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\nexternal_id: s3cr3t-id\n')
    write_target(tmp_path, "dev/us", f"account_id: {B}\nregion: us-east-1\n")
    targets = load_targets(tmp_path)
    assert [t.name for t in targets] == ["dev/us", "prod-eu"]
    prod = targets[1]
    assert prod.settings is not None and prod.settings.account_id == A and prod.settings.region == "eu-west-1"
    assert "s3cr3t" not in prod.settings.describe() and "s3cr3t" not in repr(prod.settings)
    assert prod.settings.external_id is not None and prod.settings.external_id.reveal() == "s3cr3t-id"
    assert [t.name for t in load_targets(tmp_path, only="prod-eu")] == ["prod-eu"]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("region: eu-west-1\n", 1, "required field 'account_id' is missing"),
        (f'account_id: "{A}"\nregion: europe\n', 2, "region 'europe' is not a Region name"),
        (f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(B)}\n', 1, f"role_arn is in account {B}, not the target's account_id {A}"),
        (f'account_id: "{A}"\nregion: eu-west-1\nvia: [{role(B, "hub")}]\n', 1, "via needs role_arn"),
        (
            f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\nvia: [{role(B)}]\nduration_seconds: 7200\n',
            1,
            "a chained role session lasts at most 3600",
        ),
        (f'account_id: "{A}"\nregion: eu-west-1\nexternal_id: "no spaces allowed"\n', 3, "its value is not shown"),
        (f'account_id: "{A}"\nregion: eu-west-1\nrole: x\n', 3, "unknown field 'role'"),
    ],
)
def test_a_bad_target_file_is_a_problem_at_its_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    write_target(tmp_path, "prod", body)
    with pytest.raises(SpecInvalid) as caught:
        load_targets(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(tmp_path / "prod" / "target.yaml"), line) and message in problem.message, problem
    assert "no spaces allowed" not in str(problem)


def test_every_file_belongs_to_one_target(tmp_path: Path) -> None:
    write_target(tmp_path, "prod", f'account_id: "{A}"\nregion: eu-west-1\n')
    write_target(tmp_path, "prod/inner", f'account_id: "{B}"\nregion: eu-west-1\n', spec=False)
    (tmp_path / "stray.yaml").write_text("functions: {}\n")
    with pytest.raises(SpecInvalid) as caught:
        load_targets(tmp_path)
    text = "\n".join(map(str, caught.value.problems))
    assert f"{tmp_path}/stray.yaml:1: this spec file belongs to no target" in text
    assert "target prod/inner is inside target prod: targets do not nest" in text
    with pytest.raises(SpecInvalid, match="--target nope: no such target"):
        load_targets(tmp_path / "prod", only="nope")


# ------------------------------------------------------------------ credentials


def test_a_chain_of_roles_lands_in_the_last_account_and_is_refreshed_before_it_expires(clients: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    session = assumed_session("eu-west-1", [role(B, "hub"), role(A)], external_id=lambda: "ext-id", duration_seconds=900)
    assert session.client("sts").get_caller_identity()["Account"] == A
    first = session.get_credentials().get_frozen_credentials().access_key
    # 20 minutes later the 15-minute session is inside botocore's refresh window: the chain is walked again.
    import datetime

    import botocore.credentials

    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20)
    monkeypatch.setattr(botocore.credentials, "_local_now", lambda: later)
    second = session.get_credentials().get_frozen_credentials().access_key
    assert second != first
    check_account(session.client("sts"), A)
    with pytest.raises(TargetIdentityError, match=f"the credentials are for account {A}, not the declared {B}"):
        check_account(session.client("sts"), B)


# ------------------------------------------------------------------ plan and apply of several targets


def _seed_account(account: str, region: str) -> None:
    session = assumed_session(region, [role(account)])
    seed(AwsClients(session, rate_limiter=False))


def test_apply_converges_every_target_in_its_own_account_then_plan_is_in_sync(two_accounts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "apply", "--spec", str(two_accounts))
    assert code == 0, err
    assert f"== target prod-eu: {A} eu-west-1 as {role(A)}" in out and f"== target prod-us: {B} us-east-1 as {role(B)}" in out
    assert "the-external-id" not in out + err
    for account, region in ((A, "eu-west-1"), (B, "us-east-1")):
        lam = assumed_session(region, [role(account)]).client("lambda")
        assert lam.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "3"
    code, out, _ = cli(capsys, "plan", "--spec", str(two_accounts))
    assert code == 0 and out.rstrip().endswith("Total: 2 targets: 2 in sync"), out
    # The ambient account holds nothing: every write went to the targets' accounts.
    assert boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"] == []


def test_one_target_failing_is_its_own_line_and_the_others_are_applied(two_accounts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Declared for account A, but with no role: the ambient credentials are for another account.
    write_target(two_accounts, "wrong", f'account_id: "{A}"\nregion: eu-west-1\n')
    code, out, err = cli(capsys, "apply", "--spec", str(two_accounts), "--format", "json")
    assert code == 1
    document = json.loads(out)
    by_name = {t["name"]: t for t in document["targets"]}
    assert by_name["wrong"]["state"] == "failed" and f"not the declared {A}; nothing was read or written" in by_name["wrong"]["error"]
    assert by_name["prod-eu"]["state"] == "applied" and by_name["prod-us"]["state"] == "applied"
    assert document["total"]["targets"] == 3 and document["total"]["states"] == {"applied": 2, "failed": 1}
    assert f"error: target wrong: the credentials are for account 123456789012, not the declared {A}" in err
    code, out, _ = cli(capsys, "plan", "--spec", str(two_accounts), "--target", "prod-us")
    assert code == 0 and "== target prod-us" in out and "prod-eu" not in out


def test_a_single_target_command_needs_target_and_validate_counts_targets(two_accounts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "routes", "--spec", str(two_accounts))
    assert code == 1 and "the spec declares 2 targets (prod-eu, prod-us): pass --target NAME" in err
    code, out, _ = cli(capsys, "validate", "--spec", str(two_accounts))
    assert code == 0 and "valid (2 targets," in out
    code, out, _ = cli(capsys, "routes", "--spec", str(two_accounts), "--target", "prod-eu")
    assert code == 0, out


def test_the_writes_of_each_target_are_its_own(two_accounts: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.engine import targets as engine_targets

    made: dict[str, AwsClients] = {}
    real = engine_targets.clients_for

    def recording(target: Any, **options: Any) -> AwsClients:
        made[target.name] = real(target, **options)
        return made[target.name]

    monkeypatch.setattr(engine_targets, "clients_for", recording)
    monkeypatch.setattr("controller.cli.main.AwsClients", lambda: pytest.fail("no ambient clients with targets"))
    code, _, _ = cli(capsys, "apply", "--spec", str(two_accounts))
    assert code == 0
    for name in ("prod-eu", "prod-us"):
        writes = write_calls(made[name].counter.snapshot())
        assert writes.get("lambda.UpdateAlias", 0) + writes.get("lambda.CreateAlias", 0) > 0, (name, writes)


def test_the_iam_policy_of_a_target_is_narrowed_to_its_account_and_region_and_its_trust_policy_names_the_principal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_target(tmp_path, "prod-eu", f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\nexternal_id: the-external-id\n')
    code, out, _ = cli(capsys, "iam-policy", "--spec", str(tmp_path), "--target", "prod-eu")
    assert code == 0
    resources = json.dumps([s["Resource"] for s in json.loads(out)["Statement"]])
    assert f"arn:aws:lambda:eu-west-1:{A}:function:*" in resources and "arn:aws:apigateway:eu-west-1::/restapis" in resources
    assert "arn:aws:lambda:*:*:" not in resources and "arn:aws:apigateway:*::" not in resources
    hub = "arn:aws:iam::999988887777:role/pointsman-controller"
    code, out, _ = cli(capsys, "iam-policy", "--spec", str(tmp_path), "--target", "prod-eu", "--trust", hub)
    (statement,) = json.loads(out)["Statement"]
    assert code == 0 and statement["Principal"] == {"AWS": hub} and statement["Action"] == "sts:AssumeRole"
    assert "sts:ExternalId" in json.dumps(statement) and "the-external-id" not in out


def _repo_of(spec_root: Path, repo: Path) -> Path:
    from tests.e2e_support import git

    shutil.copytree(spec_root, repo / "desired_state")
    git("init", "--initial-branch=main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-m", "targets", cwd=repo)
    return repo


def test_reconcile_once_reconciles_every_target_with_its_own_credentials_and_history(
    two_accounts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_target(two_accounts, "wrong", f'account_id: "{A}"\nregion: eu-west-1\n')  # the ambient account is not A
    repo = _repo_of(two_accounts, tmp_path / "repo")
    state = tmp_path / "state"
    argv = ("reconcile", "--once", "--repo", str(repo), "--state-dir", str(state), "--poll-interval", "0", "--parallelism", "3")
    code, out, err = cli(capsys, *argv)
    document = json.loads(out)["targets"]
    assert code == 1 and sorted(document) == ["prod-eu", "prod-us", "wrong"]
    assert document["prod-eu"]["status"] == "applied" and document["prod-us"]["status"] == "applied"
    assert document["wrong"]["status"] == "error" and f"not the declared {A}; nothing was read or written" in document["wrong"]["error"]
    assert f"error: target wrong: the credentials are for account 123456789012, not the declared {A}" in err
    for account, region in ((A, "eu-west-1"), (B, "us-east-1")):
        lam = assumed_session(region, [role(account)]).client("lambda")
        assert lam.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "3"
    assert (state / "targets" / "prod-eu" / "history.sqlite3").is_file() and (state / "targets" / "prod-us" / "history.sqlite3").is_file()
    assert (state / "repo.git").is_dir() and not (state / "targets" / "prod-eu" / "repo.git").exists()  # one clone for every target
    code, out, _ = cli(capsys, "history", "--state-dir", str(state), "--target", "prod-eu", "--format", "json")
    assert code == 0 and [run["status"] for run in json.loads(out)] == ["applied"]
    code, _, err = cli(capsys, "history", "--state-dir", str(state), "--target", "wrong")
    assert code == 1 and "has `pointsman reconcile --once` reconciled target wrong" in err
    # Once converged, the targets that can be reached are in sync.
    code, out, _ = cli(capsys, *argv)
    document = json.loads(out)["targets"]
    assert code == 1 and document["prod-eu"]["status"] == "in_sync" and document["prod-us"]["status"] == "in_sync"


def test_the_long_running_controller_refuses_a_spec_split_into_targets_and_writes_nothing(
    clients: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.loop.runner import Controller
    from controller.loop.settings import RunSettings

    root = tmp_path / "spec"
    write_target(root, "prod-eu", f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\n')
    repo = _repo_of(root, tmp_path / "repo")
    clients.counter.reset()
    controller = Controller(RunSettings(repo=str(repo), state_dir=tmp_path / "state", poll_interval=0), clients)
    try:
        record = controller.reconcile("schedule")
    finally:
        controller.history.close()
    assert record.status == "invalid"
    assert "the spec is split into targets (prod-eu) since this controller started: restart `pointsman run`" in " ".join(controller.status.spec_errors)
    assert write_calls(clients.counter.snapshot()) == {}


def test_a_command_reading_one_spec_says_the_spec_has_targets(two_accounts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "explain", "GET", "https://myapi.com/v1/products", "--desired", "--spec", str(two_accounts))
    assert code == 1 and "the spec declares 2 targets (prod-eu, prod-us): pass --target NAME" in err
    code, out, err = cli(capsys, "explain", "GET", "https://myapi.com/v1/products", "--desired", "--spec", str(two_accounts), "--target", "prod-eu")
    assert code in (0, 3), err
    with pytest.raises(SpecInvalid, match="a target's settings: this spec is split into targets"):
        from controller.spec import load_spec

        load_spec(two_accounts)


def test_the_iam_policy_with_a_lease_table_names_what_replicas_need_on_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "iam-policy", "--lease-table", "pointsman-leases")
    (statement,) = [s for s in json.loads(out)["Statement"] if s["Sid"] == "PointsmanLeaseTable"]
    assert code == 0 and statement["Resource"] == "arn:aws:dynamodb:*:*:table/pointsman-leases"
    assert {"dynamodb:ConditionCheckItem", "dynamodb:UpdateItem", "dynamodb:Scan", "dynamodb:GetItem"} <= set(statement["Action"])


def test_with_a_lease_table_a_replica_reconciles_only_the_targets_whose_lease_it_takes(
    two_accounts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controller.loop.leases import LeaseBook

    assert cli(capsys, "lease-table", "create", "--table", "pointsman-leases")[0] == 0
    other = LeaseBook(AwsClients(rate_limiter=False), "pointsman-leases", replica_id="replica-b")
    assert other.tick(["prod-eu"]) == frozenset({"prod-eu"})  # another replica holds prod-eu
    repo = _repo_of(two_accounts, tmp_path / "repo")
    argv = ("reconcile", "--once", "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "--poll-interval", "0")
    code, out, err = cli(capsys, *argv, "--lease-table", "pointsman-leases")
    document = json.loads(out)["targets"]
    assert code == 2, err
    assert document["prod-eu"] == {"status": "held elsewhere", "holder": "replica-b"}
    assert document["prod-us"]["status"] == "applied"
    eu = assumed_session("eu-west-1", [role(A)]).client("lambda")
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        eu.get_alias(FunctionName="getProducts", Name="prod")  # not this replica's: never written
    # Its leases went back at the end: the other replica takes prod-us at once.
    assert other.tick(["prod-eu", "prod-us"]) == frozenset({"prod-eu", "prod-us"})


def test_a_fence_that_fails_stops_every_write_even_one_completing_another(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    from controller.engine.pipeline import reconcile
    from controller.model import OutcomeStatus
    from controller.spec import load_spec

    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    clients.lambda_.update_alias(FunctionName="getreport", Name="prod", FunctionVersion="2")
    asked: list[int] = []

    def fence() -> bool:  # the lease holds for the first action only
        asked.append(1)
        return len(asked) == 1

    clients.counter.reset()
    result = reconcile(load_spec(spec_dir), clients, apply=True, fence=fence)
    assert write_calls(clients.counter.snapshot()) == {"lambda.UpdateAlias": 1}
    skipped = [o for o in result.outcomes if o.status is OutcomeStatus.SKIPPED]
    assert skipped and all("no longer holds the target's lease" in (o.error or "") for o in skipped)


def test_a_spec_whose_root_is_one_target_is_reconciled_in_that_account(clients: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_account(A, "eu-west-1")
    root = tmp_path / "spec"
    root.mkdir()
    for file in EXAMPLE_SPEC.glob("*.yaml"):
        shutil.copy(file, root / file.name)
    (root / "target.yaml").write_text(f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\n')
    repo = _repo_of(root, tmp_path / "repo")
    code, out, err = cli(capsys, "reconcile", "--once", "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "--poll-interval", "0")
    assert code == 2 and json.loads(out)["targets"]["."]["status"] == "applied", err
    lam = assumed_session("eu-west-1", [role(A)]).client("lambda")
    assert lam.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "3"
    code, out, _ = cli(capsys, "plan", "--spec", str(root))
    assert code == 0 and "== target .:" in out


def test_a_lease_lost_between_two_calls_of_one_action_stops_the_second(converged: dict[str, Any], clients: AwsClients) -> None:
    from controller.engine.apply import apply_actions
    from controller.model import Action, Call, OutcomeStatus

    calls = (
        Call("lambda", "update_alias", {"FunctionName": "getProducts", "Name": "prod", "FunctionVersion": "1"}),
        Call("lambda", "update_alias", {"FunctionName": "getProducts", "Name": "prod", "FunctionVersion": "2"}),
    )
    action = Action("lambda_alias/getProducts/prod", "lambda_alias", "update", calls, "test", 0)
    asked: list[int] = []

    def fence() -> bool:  # held for the action's first call only
        asked.append(1)
        return len(asked) == 1

    clients.counter.reset()
    (outcome,) = apply_actions(clients, [action], fence=fence)
    assert len(asked) == 2 and write_calls(clients.counter.snapshot()) == {"lambda.UpdateAlias": 1}
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.error == "this replica no longer holds the target's lease: lambda.UpdateAlias not sent (after lambda.UpdateAlias succeeded)"
    assert clients.lambda_.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "1"
