"""Fault injection: fail each write call of a plan in turn and check what clients would see.

For every scenario (a spec change against the example estate in moto), the change is first
applied cleanly to count its write calls; then, for each write call N and each fault mode,
a fresh estate gets the same change with call N failing:

- ``before``: the call never reaches AWS (a 500, a refused connection);
- ``after``: AWS made the change but the answer was lost (a reset after the write).

After every write call that reached AWS, and at the end, the invariants are checked against
live state: every stage routes each alias-selecting integration to an alias that exists and
whose resource policy lets API Gateway invoke it from that stage, and every base path
mapping points at a stage that exists. Then a second apply, without faults, must converge
and a plan must find nothing to do with zero write calls.

``run_fault_matrix()`` returns the figures; ``make fuzz`` prints them, and a fast slice runs
in ``make test`` (tests/engine/test_fault_injection.py).
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions
import yaml

from controller.aws.clients import AwsClients, is_write
from controller.demo.emulator import fix_moto_gaps
from controller.demo.estate import seed
from controller.engine.pipeline import Result, reconcile
from controller.kinds.lambda_permission import covers
from controller.spec import load_spec

EXAMPLE_SPEC = Path(__file__).resolve().parent.parent / "desired_state"
_ROUTE_RE = re.compile(r"function:([A-Za-z0-9_-]+):\$\{stageVariables\.([A-Za-z0-9_]+)\}")
MODES = ("before", "after")

Spec = dict[str, Any]


def example_spec() -> Spec:
    merged: Spec = {"functions": {}, "rest_apis": {}, "domains": {}}
    for path in sorted(EXAMPLE_SPEC.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        for section in merged:
            merged[section].update(data.get(section) or {})
    return merged


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    change: Callable[[Spec, dict[str, Any]], None]  # edits the spec (given the seeded estate's info)
    prune: bool = False
    from_scratch: bool = False  # start from the seeded estate without a first apply


def _nothing(spec: Spec, info: dict[str, Any]) -> None:
    pass


def _promote(spec: Spec, info: dict[str, Any]) -> None:
    spec["functions"]["getreport"]["aliases"]["prod"]["version"] = "2"


def _second_stage_same_alias(spec: Spec, info: dict[str, Any]) -> None:
    # A new stage routed to an alias that already has a statement: the statement widens.
    spec["rest_apis"]["getreport-api"]["stages"]["beta"] = {"variables": {"lambdaAlias": "prod"}}


def _reroute_to_new_alias_and_prune_old(spec: Spec, info: dict[str, Any]) -> None:
    aliases = spec["functions"]["getProducts"]["aliases"]
    aliases["live"] = {"version": "3", "description": "v1 production"}
    del aliases["prod"]
    spec["rest_apis"]["products-v1"]["stages"]["prod"]["variables"]["lambdaAlias"] = "live"


def _prune_chain(spec: Spec, info: dict[str, Any]) -> None:
    # The mapping, its stage and that stage's alias all leave the spec.
    del spec["domains"]["dev.myapi.com"]["mappings"]["v1"]
    del spec["rest_apis"]["products-v1"]["stages"]["dev"]
    del spec["functions"]["getProducts"]["aliases"]["dev"]


def _repoint_mapping_to_new_stage(spec: Spec, info: dict[str, Any]) -> None:
    spec["rest_apis"]["products-v1"]["stages"]["next"] = {"variables": {"lambdaAlias": "prod"}}
    spec["domains"]["myapi.com"]["mappings"]["v1"] = {"api": "products-v1", "stage": "next"}


def _swap_aliases_between_stages(spec: Spec, info: dict[str, Any]) -> None:
    stages = spec["rest_apis"]["getreport-api"]["stages"]
    stages["prod"]["variables"]["lambdaAlias"] = "dev"
    stages["dev"]["variables"]["lambdaAlias"] = "prod"


def _publish_latest(spec: Spec, info: dict[str, Any]) -> None:
    spec["functions"]["getreport"]["aliases"]["prod"]["version"] = f"sha256:{info['latest_sha']['getreport']}"


def _reroute_and_prune_stage_with_mapping(spec: Spec, info: dict[str, Any]) -> None:
    # dev.myapi.com/v2 moves to a new stage; the old stage and its alias are pruned.
    spec["rest_apis"]["products-v2"]["stages"]["edge"] = {"variables": {"lambdaAlias": "edge"}}
    del spec["rest_apis"]["products-v2"]["stages"]["dev"]
    aliases = spec["functions"]["getProductsV2"]["aliases"]
    aliases["edge"] = {"version": "$LATEST"}
    del aliases["dev"]
    spec["domains"]["dev.myapi.com"]["mappings"]["v2"] = {"api": "products-v2", "stage": "edge"}


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("create everything", _nothing, from_scratch=True),
    Scenario("promote an alias", _promote),
    Scenario("second stage on the same alias", _second_stage_same_alias),
    Scenario("reroute a stage, prune its old alias", _reroute_to_new_alias_and_prune_old, prune=True),
    Scenario("prune mapping -> stage -> alias", _prune_chain, prune=True),
    Scenario("repoint a mapping to a new stage", _repoint_mapping_to_new_stage),
    Scenario("swap aliases between stages", _swap_aliases_between_stages),
    Scenario("publish $LATEST for an alias", _publish_latest),
    Scenario("move a mapping, prune stage and alias", _reroute_and_prune_stage_with_mapping, prune=True),
)
FAST_SLICE = (
    "second stage on the same alias",
    "prune mapping -> stage -> alias",
    "reroute a stage, prune its old alias",
    "move a mapping, prune stage and alias",
)


# --------------------------------------------------------------------------- invariants


def broken_paths(clients: AwsClients) -> list[str]:
    """What a client would hit now: stages routing to a missing or uninvokable alias,
    mappings to a missing stage. Reads live state (moto) directly."""
    lam, apigw = clients.lambda_, clients.apigateway
    problems: list[str] = []
    stages_by_api: dict[str, set[str]] = {}
    for api in apigw.get_rest_apis(limit=500)["items"]:
        api_id = api["id"]
        routes: list[tuple[str, str, str, str]] = []
        for resource in apigw.get_resources(restApiId=api_id, embed=["methods"], limit=500)["items"]:
            for method, body in (resource.get("resourceMethods") or {}).items():
                uri = ((body or {}).get("methodIntegration") or {}).get("uri") or ""
                for function, variable in _ROUTE_RE.findall(uri):
                    routes.append((function, variable, method, resource["path"]))
        stages = apigw.get_stages(restApiId=api_id)["item"]
        stages_by_api[api_id] = {s["stageName"] for s in stages}
        for stage in stages:
            variables = stage.get("variables") or {}
            for function, variable, method, path in routes:
                where = f"{api['name']}/{stage['stageName']} {method} {path}"
                alias = variables.get(variable)
                if alias is None:
                    problems.append(f"{where}: no stage variable {variable}")
                    continue
                try:
                    alias_arn = lam.get_alias(FunctionName=function, Name=alias)["AliasArn"]
                except lam.exceptions.ResourceNotFoundException:
                    problems.append(f"{where}: routes to {function}:{alias}, which does not exist")
                    continue
                try:
                    policy = json.loads(lam.get_policy(FunctionName=function, Qualifier=alias)["Policy"])
                    statements = [s for s in policy["Statement"] if s.get("Resource") == alias_arn]
                except lam.exceptions.ResourceNotFoundException:
                    statements = []
                account, region = alias_arn.split(":")[4], alias_arn.split(":")[3]
                invoke_arn = f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage['stageName']}/{method}{path}"
                if not any(covers(s, invoke_arn) for s in statements):
                    problems.append(f"{where}: routes to {function}:{alias}, which API Gateway may not invoke")
    for domain in apigw.get_domain_names()["items"]:
        name = domain["domainName"]
        for mapping in apigw.get_base_path_mappings(domainName=name).get("items", []):
            if mapping.get("stage") not in stages_by_api.get(mapping["restApiId"], set()):
                problems.append(f"{name}/{mapping.get('basePath')}: points at stage {mapping.get('stage')}, which does not exist")
    return problems


# --------------------------------------------------------------------------- one case


class InjectedFault(Exception):
    pass


@dataclass
class Injector:
    """Counts write calls; fails call number ``target`` (``before`` or ``after`` it reaches AWS);
    checks the invariants after every write that reached AWS."""

    clients: AwsClients
    target: int = 0
    mode: str = "before"
    checker: AwsClients | None = None
    writes: int = 0
    harmful: list[str] = field(default_factory=list)
    writes_seen: list[str] = field(default_factory=list)

    def install(self) -> None:
        for service in ("lambda", "apigateway"):
            events = self.clients.client(service).meta.events
            events.register_first("before-call.*.*", self._before)
            events.register_first("after-call.*.*", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        if not is_write(model.name):
            return
        self.writes += 1
        self.writes_seen.append(model.name)
        if self.writes == self.target and self.mode == "before":
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "ServiceException", "Message": f"injected failure of write call {self.target}"},
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                },
                model.name,
            )

    def _after(self, model: Any, http_response: Any = None, **_: Any) -> None:
        if not is_write(model.name) or http_response is None or http_response.status_code >= 400:
            return
        if self.checker is not None:
            for problem in broken_paths(self.checker):
                self.harmful.append(f"after {model.name} (write {self.writes}): {problem}")
        if self.writes == self.target and self.mode == "after":
            raise botocore.exceptions.ConnectionClosedError(endpoint_url=f"injected reset after write call {self.target}")


@dataclass
class CaseResult:
    scenario: str
    target: int
    mode: str
    writes: list[str]
    harmful: list[str]
    traceback: str = ""
    converged: bool = False
    rerun_failures: list[str] = field(default_factory=list)


def _write_spec(spec: Spec, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "estate.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))
    return directory


def run_case(scenario: Scenario, target: int, mode: str, workdir: Path) -> CaseResult:
    """One fresh estate, the scenario's change applied with write ``target`` failing (0: none)."""
    from moto import mock_aws

    fix_moto_gaps()
    with mock_aws():
        clients = AwsClients(max_attempts=1)
        checker = AwsClients(max_attempts=1)
        info = seed(clients)
        info["latest_sha"] = {name: clients.lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"] for name in info["functions"]}
        base = example_spec()
        base_dir = _write_spec(base, workdir / "base")
        if not scenario.from_scratch:
            first = reconcile(load_spec(base_dir), clients, apply=True)
            assert not first.failed, [o.as_dict() for o in first.outcomes]
        before = broken_paths(checker)
        changed = copy.deepcopy(base)
        scenario.change(changed, info)
        spec_dir = _write_spec(changed, workdir / "changed")
        injector = Injector(clients, target, mode, checker)
        injector.install()
        case = CaseResult(scenario.name, target, mode, [], [f"before the change: {p}" for p in before])
        try:
            faulted = reconcile(load_spec(spec_dir), clients, apply=True, prune=scenario.prune)
        except Exception as exc:  # an apply must report failures, never raise
            case.traceback = f"{type(exc).__name__}: {exc}"
            return case
        case.writes = injector.writes_seen
        case.harmful = injector.harmful + [f"at the end: {p}" for p in broken_paths(checker)]
        injector.target = 0  # no more faults
        if target and not faulted.failed and target <= injector.writes:
            case.rerun_failures.append("the injected failure was not reported as a failure")
        rerun = reconcile(load_spec(spec_dir), clients, apply=True, prune=scenario.prune)
        case.rerun_failures += [f"{o.action.resource}: {o.error}" for o in rerun.outcomes if o.error]
        check = reconcile(load_spec(spec_dir), clients, prune=scenario.prune)
        if not check.in_sync:
            case.rerun_failures.append(f"not in sync after the rerun: {[d.resource for d in check.drift]}")
        if check.plan.held:
            case.rerun_failures.append(f"held: {[h.action.resource for h in check.plan.held]}")
        case.harmful += [f"after the rerun: {p}" for p in broken_paths(checker)]
        case.converged = not case.rerun_failures
        return case


# --------------------------------------------------------------------------- the matrix


def run_fault_matrix(scenarios: Iterable[str] | None = None, modes: Iterable[str] = MODES, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every scenario x every write call x every mode. Returns the figures and the failures."""
    chosen = [s for s in SCENARIOS if scenarios is None or s.name in set(scenarios)]
    figures: dict[str, Any] = {
        "scenarios": len(chosen),
        "cases": 0,
        "tracebacks": 0,
        "harmful_states": 0,
        "converged_on_rerun": 0,
        "not_converged": 0,
        "failures": [],
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pointsman-faults-") as tmp:
        for scenario in chosen:
            clean = run_case(scenario, 0, "before", Path(tmp) / f"{scenario.name}-clean")
            cases = [clean] + [
                run_case(scenario, n, mode, Path(tmp) / f"{scenario.name}-{n}-{mode}") for n in range(1, len(clean.writes) + 1) for mode in modes
            ]
            for case in cases:
                figures["cases"] += 1
                figures["tracebacks"] += bool(case.traceback)
                figures["harmful_states"] += bool(case.harmful)
                figures["converged_on_rerun"] += case.converged
                figures["not_converged"] += not case.converged
                if case.traceback or case.harmful or not case.converged:
                    figures["failures"].append(
                        {
                            "scenario": case.scenario,
                            "write": case.target,
                            "mode": case.mode,
                            "traceback": case.traceback,
                            "harmful": case.harmful[:5],
                            "rerun": case.rerun_failures[:5],
                        }
                    )
            if log:
                log(f"  {scenario.name}: {len(clean.writes)} write calls ({', '.join(clean.writes)}), {len(cases)} cases")
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def results_for(result: Result) -> list[str]:
    return [f"{o.action.operation} {o.action.resource}: {o.status.value}" for o in result.outcomes]
