"""Fixtures of the targets' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from tests.targets.test_targets import A, B, _seed_account, role, write_target


@pytest.fixture
def two_accounts(clients: AwsClients, tmp_path: Path) -> Path:
    """The example estate in two accounts (and Regions); a spec with a target for each."""
    _seed_account(A, "eu-west-1")
    _seed_account(B, "us-east-1")
    root = tmp_path / "spec"
    write_target(root, "prod-eu", f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\nexternal_id: the-external-id\n')
    write_target(root, "prod-us", f'account_id: "{B}"\nregion: us-east-1\nrole_arn: {role(B)}\n')
    return root
