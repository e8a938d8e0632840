"""The ``pointsman`` command line: every command, its flags, its exit codes.

:mod:`controller.cli.main` parses the command line and calls the layers below (validate, plan,
apply, routes, explain, run, demo...); :mod:`controller.cli.status` prints a running
controller's state for a terminal. ``python -m controller`` runs the same command.
"""
