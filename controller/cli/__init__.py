"""The ``pointsman`` command line: every command, its flags, its exit codes.

:mod:`controller.cli.parser` declares every command, its options, help and exit codes;
:mod:`controller.cli.main` dispatches a parsed command line to the layers below (validate, plan,
apply, routes, explain, run, demo...); :mod:`controller.cli.status` prints a running
controller's state for a terminal. ``python -m controller`` runs the same command.
"""
