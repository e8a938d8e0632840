"""Fixtures of the import tests."""

from __future__ import annotations

import pytest

from controller.aws.clients import AwsClients


@pytest.fixture
def importing(clients: AwsClients, monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    """The CLI's clients are the fixture's, so the test sees every call import makes."""
    monkeypatch.setattr("controller.cli.main.AwsClients", lambda: clients)
    return clients
