"""Benchmark: reconcile cost on a larger estate, against moto in-process.

Prints figures (no pass/fail): AWS calls per reconcile by operation, write calls on a
converged estate (the target is zero), and wall time of plan/apply. Run: `make bench`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POINTSMAN_RATE_LIMITS", "off")  # figures of the engine, not of AWS quotas (moto has none)
for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[name]

from moto import mock_aws  # noqa: E402

from controller.aws.clients import AwsClients, write_calls  # noqa: E402
from controller.demo.emulator import fix_moto_gaps  # noqa: E402
from controller.demo.estate import alias_uri, handler_zip  # noqa: E402
from controller.engine.pipeline import reconcile  # noqa: E402
from controller.logs import configure  # noqa: E402
from controller.spec import load_spec  # noqa: E402


def build(clients: AwsClients, n_apis: int) -> str:
    """n_apis functions (3 published versions each), one REST API per function, one domain."""
    iam = clients.client("iam")
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    apigw, lam = clients.apigateway, clients.lambda_
    apigw.create_domain_name(domainName="bench.example.com", certificateArn="arn:aws:acm:us-east-1:123456789012:certificate/b")
    lines = ["functions:"]
    apis = ["rest_apis:"]
    maps = ["domains:", "  bench.example.com:", "    mappings:"]
    for i in range(n_apis):
        fn = f"fn{i:03d}"
        arn = lam.create_function(FunctionName=fn, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": handler_zip(fn, 1)})[
            "FunctionArn"
        ]
        for rev in (2, 3, 4):
            lam.publish_version(FunctionName=fn)
            lam.update_function_code(FunctionName=fn, ZipFile=handler_zip(fn, rev))
        api = apigw.create_rest_api(name=f"api{i:03d}")["id"]
        root = apigw.get_resources(restApiId=api)["items"][0]["id"]
        res = apigw.create_resource(restApiId=api, parentId=root, pathPart="x")["id"]
        apigw.put_method(restApiId=api, resourceId=res, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=api, resourceId=res, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST", uri=alias_uri("us-east-1", arn))
        apigw.create_deployment(restApiId=api)
        lines += [
            f"  {fn}:",
            "    aliases:",
            '      prod: {version: "2"}',
            '      canary: {version: "3", routing: {"2": 0.1}}',
            "      dev: {version: $LATEST}",
        ]
        apis += [f"  api{i:03d}:", "    stages:", "      prod: {variables: {lambdaAlias: prod}}", "      dev: {variables: {lambdaAlias: dev}}"]
        maps += [f"      v{i}: {{api: api{i:03d}, stage: prod}}"]
    spec_dir = Path(tempfile.mkdtemp(prefix="pointsman-bench-"))
    (spec_dir / "estate.yaml").write_text("\n".join(lines + apis + maps) + "\n")
    return str(spec_dir)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apis", type=int, default=40)
    args = parser.parse_args()
    configure("warning")
    fix_moto_gaps()
    with mock_aws():
        clients = AwsClients()
        spec_dir = build(clients, args.apis)
        spec = load_spec(spec_dir)
        for label, kwargs in (("first apply", {"apply": True}), ("converged plan", {}), ("converged apply", {"apply": True})):
            clients.counter.reset()
            started = time.perf_counter()
            result = reconcile(spec, clients, **kwargs)
            took = time.perf_counter() - started
            calls = result.api_calls
            writes = sum(write_calls(calls).values())
            print(
                f"{label:16} apis={args.apis:4} drift={len(result.drift):4} actions={len(result.plan.actions):4} "
                f"calls={sum(calls.values()):5} writes={writes:4} time={took:6.2f}s"
            )
            if label != "first apply":
                print("    " + ", ".join(f"{op}={n}" for op, n in calls.items()))


if __name__ == "__main__":
    main()
