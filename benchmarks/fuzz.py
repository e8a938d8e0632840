"""Reliability figures: bad input, bad command lines, faults during apply, attacks on HTTP.

Runs the full sets (``make test`` runs a fast slice of each) and prints, per set and in all:
cases tried, tracebacks, hangs, harmful half-applied states, converged on rerun. The target
is 0 / 0 / 0 and 100 % converged; the exit code is 1 when a set misses it. Run: `make fuzz`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Never a real account: moto in-process, fake credentials, no endpoint from the caller.
for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n.startswith("POINTSMAN_")]:
    del os.environ[name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "fuzz",
        "AWS_SECRET_ACCESS_KEY": "fuzz",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POINTSMAN_RATE_LIMITS": "off",  # the emulator has no quotas
    }
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.logs import configure  # noqa: E402
from tests.fuzz_cli import run_cli_cases  # noqa: E402
from tests.fuzz_faults import run_fault_matrix  # noqa: E402
from tests.fuzz_http import run_http_attacks  # noqa: E402
from tests.fuzz_spec import run_spec_corpus  # noqa: E402

COLUMNS = ("cases", "tracebacks", "hangs", "harmful", "converged")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec-cases", type=int, default=3000, help="generated bad spec inputs (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configure("critical")
    rows: dict[str, dict[str, object]] = {}
    details: dict[str, object] = {}

    def timed(name: str, run: object) -> dict:
        started = time.monotonic()
        print(f"{name} ...", flush=True)
        figures = run()  # type: ignore[operator]
        figures["seconds"] = round(time.monotonic() - started, 1)
        details[name] = figures
        return figures

    spec = timed("bad spec input", lambda: run_spec_corpus(cases=args.spec_cases, seed=args.seed))
    rows["bad spec input"] = {"cases": spec["cases"], "tracebacks": spec["tracebacks"], "hangs": spec["hangs"]}
    cli = timed("bad command lines and environments", run_cli_cases)
    rows["bad command lines and environments"] = {"cases": cli["cases"], "tracebacks": cli["tracebacks"] + cli.get("wrong_exit", 0), "hangs": cli["hangs"]}
    faults = timed("faults during apply", lambda: run_fault_matrix(log=print))
    rows["faults during apply"] = {
        "cases": faults["cases"],
        "tracebacks": faults["tracebacks"],
        "hangs": 0,
        "harmful": faults["harmful_states"],
        "converged": f"{faults['converged_on_rerun']}/{faults['cases']}",
    }
    http = timed("attacks on HTTP", run_http_attacks)
    rows["attacks on HTTP"] = {
        "cases": http["cases"],
        "tracebacks": http["tracebacks"] + http.get("server_errors", 0),
        "hangs": http["hangs"],
        "harmful": http.get("unauthenticated_triggers", 0) + http.get("resets", 0),
    }

    print()
    print(f"{'set':38} " + " ".join(f"{c:>11}" for c in COLUMNS))
    totals = {c: 0 for c in COLUMNS[:4]}
    for name, row in rows.items():
        print(f"{name:38} " + " ".join(f"{str(row.get(c, '-')):>11}" for c in COLUMNS))
        for c in totals:
            totals[c] += int(row.get(c, 0) or 0)  # type: ignore[call-overload]
    converged = f"{faults['converged_on_rerun'] / max(1, faults['cases']):.0%}"
    print(f"{'all':38} " + " ".join(f"{totals[c]:>11}" for c in COLUMNS[:4]) + f" {converged:>11}")
    print()
    print("details: " + json.dumps({k: {n: v for n, v in d.items() if n != "failures"} for k, d in details.items()}))  # type: ignore[union-attr]
    failures = faults.get("failures") or []
    for failure in failures[:10]:
        print("fault case failed:", json.dumps(failure))
    ok = totals["tracebacks"] == totals["hangs"] == totals["harmful"] == 0 and faults["not_converged"] == 0
    print("target met: 0 tracebacks, 0 hangs, 0 harmful states, 100 % converged" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
