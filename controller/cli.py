"""`pointsman` command line: validate, plan, apply, schema, iam-policy.

Exit codes (scripts rely on them):
  validate  0 valid, 1 invalid
  plan      0 in sync, 2 drift, 1 error
  apply     0 converged, 1 something failed (the report says what)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from controller import __version__
from controller.aws import AWS_ERRORS, AwsClients, describe_error
from controller.logs import configure
from controller.spec import SpecInvalid, json_schema, load_spec

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pointsman", description="GitOps for Lambda aliases, API Gateway stages and domain mappings.")
    parser.add_argument("--version", action="version", version=f"pointsman {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("POINTSMAN_LOG_LEVEL", "warning"), help="debug|info|warning|error (default warning)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--spec", default=os.environ.get("POINTSMAN_SPEC", "desired_state"), help="spec directory (default desired_state/)")

    def aws_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
        p.add_argument("--concurrency", type=int, default=8, help="parallel AWS reads (default 8)")

    p = sub.add_parser("validate", help="check the spec files (all problems, file:line)")
    spec_arg(p)
    p = sub.add_parser("plan", help="show drift and the actions apply would take")
    spec_arg(p)
    aws_args(p)
    p.add_argument("--prune", action="store_true", help="plan deletion of extra resources")
    p = sub.add_parser("apply", help="converge AWS to the spec")
    spec_arg(p)
    aws_args(p)
    p.add_argument("--prune", action="store_true", help="delete extra resources in the managed scope")
    p.add_argument("--dry-run", action="store_true", help="plan and report, call nothing that writes")
    sub.add_parser("schema", help="print the spec file JSON Schema")
    sub.add_parser("iam-policy", help="print the least-privilege IAM policy Pointsman needs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure(args.log_level)
    try:
        return _dispatch(args)
    except SpecInvalid as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the spec; nothing was applied.", file=sys.stderr)
        return EXIT_ERROR
    except AWS_ERRORS as exc:
        print(f"error: {describe_error(exc)}; nothing was applied.", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    if args.command == "iam-policy":
        from controller.iam import policy_document

        print(json.dumps(policy_document(), indent=2))
        return EXIT_OK
    spec = load_spec(args.spec)
    if args.command == "validate":
        n = len(spec.functions) + len(spec.rest_apis) + len(spec.domains)
        print(f"{args.spec}: valid ({len(spec.files)} files, {n} top-level items)")
        return EXIT_OK

    from controller.engine import reconcile
    from controller.report import render

    clients = AwsClients()
    mode = args.command
    result = reconcile(
        spec,
        clients,
        apply=mode == "apply",
        prune=args.prune,
        dry_run=getattr(args, "dry_run", False),
        concurrency=args.concurrency,
    )
    print(render(result, fmt=args.format, mode=mode))
    if result.problems:
        return EXIT_ERROR
    if mode == "plan":
        return EXIT_OK if result.in_sync else EXIT_DRIFT
    return EXIT_ERROR if result.failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
