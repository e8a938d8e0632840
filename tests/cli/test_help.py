"""Help that explains: every command says what it does and its exit codes; every option has a
help line, with its default when it has one, and its valid values when they are a fixed set."""

from __future__ import annotations

import argparse

import pytest

from controller.cli.parser import DESCRIPTIONS, _parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_has_a_description() -> None:
    assert set(_commands()) == set(DESCRIPTIONS)


@pytest.mark.parametrize("name", sorted(DESCRIPTIONS))
def test_a_command_help_says_what_it_does_and_its_exit_codes(name: str) -> None:
    command = _commands()[name]
    text = command.format_help()
    assert "Exit codes" in " ".join(text.split()), text
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"pointsman {name} {flag} has no help line"
        default = action.default
        # A flag that sets a constant (--live, --desired) shares its group's default: no default of its own.
        documented = default in (None, False, [], "", argparse.SUPPRESS) or action.required or isinstance(action, argparse._StoreConstAction)
        if not documented:
            assert "default" in action.help, f"pointsman {name} {flag}: the help does not give the default ({default!r})"
        if action.choices and action.option_strings and not action.metavar:
            for choice in action.choices:
                assert str(choice) in text, f"pointsman {name} {flag}: {choice} is not listed"


def test_plan_help_names_the_drift_exit_code() -> None:
    text = " ".join(_commands()["plan"].format_help().split())
    assert "2 drift" in text and "0 in sync" in text


def test_status_help_lists_the_states_it_can_wait_for() -> None:
    text = " ".join(_commands()["status"].format_help().split())
    assert "in_sync, drifted, rolling_out or error" in text
