"""Focused event runs: a CloudTrail event re-plans only what it touched, against moto's server on
127.0.0.1 with the example estate converged. The controller runs in-process; every AWS call it
makes is caught with its parameters, so a test can say which functions, APIs and domains a run read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients, is_write, write_calls
from controller.demo.estate import handler_zip
from controller.engine.focus import Focus
from controller.loop.events import Touch, parse_event
from controller.loop.history import RunRecord
from controller.loop.runner import Controller
from controller.loop.settings import RunSettings
from tests.e2e_support import git
from tests.loop.test_events_parse import envelope, record
from tests.loop.test_status_schema import check

pytestmark = pytest.mark.server


class Calls:
    """Every AWS call a controller makes: (operation, parameters)."""

    def __init__(self, clients: AwsClients) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        for service in ("lambda", "apigateway"):
            clients.client(service).meta.events.register(f"provide-client-params.{service}.*", self._seen(service))

    def _seen(self, service: str) -> Any:
        def seen(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.made.append((f"{service}.{model.name}", dict(params)))

        return seen

    def reads(self) -> list[tuple[str, dict[str, Any]]]:
        return [(op, params) for op, params in self.made if not is_write(op)]

    def named(self, field: str) -> set[str]:
        """The values of ``field`` (FunctionName, restApiId, domainName) the reads named."""
        return {str(params[field]) for _, params in self.reads() if field in params}


def controller(world: dict[str, Any], name: str, **settings: Any) -> tuple[Controller, Calls]:
    run = RunSettings(
        repo=str(world["repo"]),
        state_dir=world["tmp"] / f"state-{name}",
        listen="127.0.0.1:0",
        interval=3600,
        jitter=0,
        poll_interval=0,
        **{"mode": "apply", **settings},
    )
    made = Controller(run, clients=AwsClients(rate_limiter=False))
    return made, Calls(made.clients)


def touch(source: str, name: str, parameters: dict[str, Any]) -> Touch:
    event = parse_event(envelope(record(source.removeprefix("aws."), name, parameters), source))
    assert isinstance(event, Touch), event
    return event


def on_event(ctl: Controller, calls: Calls, *events: Touch) -> RunRecord:
    """What the events consumer does with these events: the run they bring."""
    calls.made.clear()
    changed = ctl.managed_reads([key for event in events for key in event.keys])
    assert changed
    return ctl.reconcile("event", changed, events=list(events))


def api_id(world: dict[str, Any], name: str) -> str:
    return next(i["id"] for i in world["clients"].apigateway.get_rest_apis()["items"] if i["name"] == name)


def resources(document: dict[str, Any], key: str) -> list[str]:
    return sorted(entry["resource"] if key == "managed" else entry["entry"] + str(entry["methods"]) for entry in document[key])


def update_prod(world: dict[str, Any], function: str = "getProducts", version: str = "1") -> Touch:
    """A console change of ``function``:prod, and its event."""
    world["clients"].lambda_.update_alias(FunctionName=function, Name="prod", FunctionVersion=version)
    return touch("aws.lambda", "UpdateAlias20150331", {"functionName": function, "name": "prod", "functionVersion": version})


@pytest.fixture
def estate(world: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield world


def test_an_alias_event_is_healed_with_only_its_functions_reads_and_the_status_keeps_the_whole_estate(estate: dict[str, Any]) -> None:
    ctl, calls = controller(estate, "alias")
    full = ctl.reconcile("schedule")
    assert full.status == "in_sync"
    before = ctl.status_document()
    run = on_event(ctl, calls, update_prod(estate))
    assert run.status == "applied"
    assert [d["resource"] for d in run.drift] == ["lambda_alias/getProducts/prod"]
    assert ctl._focus == Focus(frozenset({"getProducts"}), frozenset({"products-v1"}), frozenset())
    # Only the touched function is read again (its aliases, its policy, the versions it moves
    # to; its aliases once more for the routing view after the heal): no other function, no API.
    assert calls.named("FunctionName") == {"getProducts"}
    assert write_calls(run.api_calls) == {"lambda.UpdateAlias": 1}
    assert {op for op, _ in calls.reads()} == {"lambda.ListAliases", "lambda.GetPolicy", "lambda.ListVersionsByFunction"}
    assert estate["clients"].lambda_.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "3"
    # The status still lists the whole estate: every managed resource and route, in sync.
    after = ctl.status_document()
    check(after)
    assert resources(after, "managed") == resources(before, "managed") and len(after["managed"]) > 20
    assert resources(after, "routes") == resources(before, "routes")
    assert after["in_sync"] is True and after["drift"] == [] and after["state"] == "in_sync"
    (healed,) = after["healed"]
    assert healed["resource"] == "lambda_alias/getProducts/prod" and healed["run"] == run.id


def add_functions(world: dict[str, Any], count: int) -> None:
    """``count`` more functions, each with prod and dev aliases, created and declared (a commit)."""
    lam = world["clients"].lambda_
    role = lam.get_function_configuration(FunctionName="getreport")["Role"]
    declared: dict[str, Any] = {}
    for n in range(count):
        name = f"extra{n:03d}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": handler_zip(name, 1)})
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
        lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="$LATEST")
        declared[name] = {"aliases": {"prod": {"version": "1"}, "dev": {"version": "$LATEST"}}}
    repo: Path = world["repo"]
    (repo / "desired_state" / "extra.yaml").write_text(yaml.safe_dump({"functions": declared}), encoding="utf-8")
    git("add", "-A", cwd=repo)
    git("commit", "-m", f"{count} more functions", cwd=repo)


def test_an_event_makes_the_same_reads_whatever_the_estate_size(estate: dict[str, Any]) -> None:
    def event_reads(name: str) -> tuple[dict[str, int], list[tuple[str, dict[str, Any]]]]:
        ctl, calls = controller(estate, name)
        assert ctl.reconcile("schedule").status == "in_sync"
        run = on_event(ctl, calls, update_prod(estate))
        assert run.status == "applied" and [d["resource"] for d in run.drift] == ["lambda_alias/getProducts/prod"]
        return run.api_calls, sorted(calls.made, key=lambda c: json.dumps(c, sort_keys=True, default=str))

    small = event_reads("small")
    add_functions(estate, 50)
    large = event_reads("large")
    assert large == small  # the same calls, with the same parameters
    assert sum(n for op, n in small[0].items() if not is_write(op)) == 4


def test_a_stage_event_replans_its_api_with_its_permissions_and_the_mappings_pointing_at_it(estate: dict[str, Any]) -> None:
    ctl, calls = controller(estate, "stage", mode="detect")
    assert ctl.reconcile("schedule").status == "in_sync"
    products = api_id(estate, "products-v1")
    patch = [{"op": "replace", "path": "/variables/lambdaAlias", "value": "dev"}]
    estate["clients"].apigateway.update_stage(restApiId=products, stageName="prod", patchOperations=patch)
    run = on_event(ctl, calls, touch("aws.apigateway", "UpdateStage", {"restApiId": products, "stageName": "prod", "patchOperations": patch}))
    assert run.status == "drift" and [d["resource"] for d in run.drift] == ["rest_stage/products-v1/prod"]
    # The API's stages, methods and permissions, the function it routes to, and both domains mapping to it.
    assert ctl._focus == Focus(frozenset({"getProducts"}), frozenset({"products-v1"}), frozenset({"myapi.com", "dev.myapi.com"}))
    assert run.api_calls == {"apigateway.GetStages": 1}
    assert calls.named("restApiId") == {products}
    # A permission of the API is planned with it: a statement removed by hand (and its event) is re-added.
    policy = json.loads(estate["clients"].lambda_.get_policy(FunctionName="getProducts", Qualifier="prod")["Policy"])
    (sid,) = [s["Sid"] for s in policy["Statement"] if s["Sid"].startswith(f"pointsman-{products}-prod-")]  # moto keeps dev's here too
    estate["clients"].lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=sid)
    removed = touch("aws.lambda", "RemovePermission20150331v2", {"functionName": "getProducts", "qualifier": "prod", "statementId": sid})
    run = on_event(ctl, calls, removed)
    assert sorted(d["resource"] for d in run.drift) == ["lambda_permission/getProducts/prod/products-v1", "rest_stage/products-v1/prod"]
    assert calls.named("FunctionName") == {"getProducts"}
    # A mapping changed by hand on a domain mapping to the API is planned with it.
    estate["clients"].apigateway.update_base_path_mapping(
        domainName="myapi.com", basePath="v1", patchOperations=[{"op": "replace", "path": "/stage", "value": "dev"}]
    )
    run = on_event(ctl, calls, touch("aws.apigateway", "UpdateBasePathMapping", {"domainName": "myapi.com", "basePath": "v1"}))
    assert ctl._focus == Focus(frozenset(), frozenset(), frozenset({"myapi.com"}))
    assert [d["resource"] for d in run.drift] == ["base_path_mapping/myapi.com/v1"]
    # Each focused run replaced only what it planned: the status has all three, with who made them.
    status = ctl.status_document()
    check(status)
    assert sorted(d["resource"] for d in status["drift"]) == [
        "base_path_mapping/myapi.com/v1",
        "lambda_permission/getProducts/prod/products-v1",
        "rest_stage/products-v1/prod",
    ]
    assert status["state"] == "drifted" and status["in_sync"] is False
    # A full run finds the same.
    ctl.reconcile("schedule")
    assert sorted(d["resource"] for d in ctl.status_document()["drift"]) == sorted(d["resource"] for d in status["drift"])


def test_a_focused_run_keeps_the_drift_it_did_not_look_at(estate: dict[str, Any]) -> None:
    estate["clients"].lambda_.update_alias(FunctionName="getreport", Name="prod", FunctionVersion="$LATEST")  # before the full run
    ctl, calls = controller(estate, "keep", mode="detect")
    assert ctl.reconcile("schedule").status == "drift"
    run = on_event(ctl, calls, update_prod(estate))
    assert run.status == "drift" and [d["resource"] for d in run.drift] == ["lambda_alias/getProducts/prod"]
    status = ctl.status_document()
    assert sorted(d["resource"] for d in status["drift"]) == ["lambda_alias/getProducts/prod", "lambda_alias/getreport/prod"]
    assert status["drift_found_by_last_run"] == 2
    managed = {m["resource"]: m["status"] for m in status["managed"]}
    assert managed["lambda_alias/getreport/prod"] == "differs" and managed["lambda_alias/getProducts/prod"] == "differs"
    # Healing the touched one leaves the other in view.
    estate["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="3")
    run = on_event(ctl, calls, update_prod(estate, version="3"))
    assert run.status == "in_sync"
    status = ctl.status_document()
    assert [d["resource"] for d in status["drift"]] == ["lambda_alias/getreport/prod"] and status["state"] == "drifted"


def test_prune_never_deletes_outside_the_focus_and_widens_to_the_whole_spec_for_an_extra(estate: dict[str, Any]) -> None:
    ctl, calls = controller(estate, "prune", prune=True)
    assert ctl.reconcile("schedule").status == "in_sync"
    lam = estate["clients"].lambda_
    lam.create_alias(FunctionName="getreport", Name="byhand", FunctionVersion="1")  # no event for it
    # The event of getProducts re-reads getreport too (as if its read were stale): still, the
    # focused run plans getProducts alone and deletes nothing of getreport.
    event = update_prod(estate)
    calls.made.clear()
    run = ctl.reconcile("event", [*ctl.managed_reads(event.keys), ("function", "getreport")], events=[event])
    assert run.status == "applied" and write_calls(run.api_calls) == {"lambda.UpdateAlias": 1}
    assert "byhand" in {a["Name"] for a in lam.list_aliases(FunctionName="getreport")["Aliases"]}
    assert [d["resource"] for d in ctl.status_document()["drift"]] == []
    # An extra alias on a function in focus: prune deletes it, through a run over the whole spec
    # (which then sees the other extra too, as a full run would).
    lam.create_alias(FunctionName="getProducts", Name="byhand", FunctionVersion="1")
    run = on_event(ctl, calls, touch("aws.lambda", "CreateAlias20150331", {"functionName": "getProducts", "name": "byhand", "functionVersion": "1"}))
    runs = [r for r in ctl.history.recent(3) if r.trigger == "event"]
    assert runs[0].id == run.id and ctl._focus is None
    assert write_calls(run.api_calls) == {"lambda.DeleteAlias": 2}
    assert sorted(d["resource"] for d in run.drift) == ["lambda_alias/getProducts/byhand", "lambda_alias/getreport/byhand"]
    focused = runs[1]
    assert write_calls(focused.api_calls) == {} and [d["resource"] for d in focused.drift] == ["lambda_alias/getProducts/byhand"]


def test_an_event_the_spec_cannot_place_runs_over_the_whole_spec(estate: dict[str, Any]) -> None:
    ctl, calls = controller(estate, "whole")
    assert ctl.reconcile("schedule").status == "in_sync"
    event = touch("aws.apigateway", "CreateRestApi", {"createRestApiInput": {"name": "someone-elses"}})
    run = on_event(ctl, calls, event)
    assert ctl._focus is None and run.status == "in_sync"
    assert run.api_calls == {"apigateway.GetRestApis": 1}
