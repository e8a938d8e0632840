"""diff -> make_plan -> apply_actions on hand-built resources: no AWS, no moto.

Resources carry the ``context`` keys each kind's converge()/delete() reads:
lambda_version: function; lambda_alias: function, alias (+ pending_version);
lambda_permission: function, alias, statement_id, missing_reason (+ live_sid when live);
rest_stage: api, api_id, stage (+ deployment to create); base_path_mapping: domain,
base_path, api_id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest
import structlog

from controller.engine.apply import apply_actions
from controller.engine.diff import diff
from controller.engine.plan import make_plan
from controller.logs import configure
from controller.model import Action, Call, DriftStatus, FieldChange, OutcomeStatus, Ref, Resource

API_ID = "a1b2c3"
ARN = f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/prod/*/*"
SHA = "Q" * 43 + "="


@pytest.fixture(autouse=True)
def _logs_to_current_stderr() -> Iterator[None]:
    """apply_actions logs; bind structlog to this test's stderr and put it back afterwards."""
    saved = structlog.get_config()
    configure("critical")
    yield
    structlog.configure(**saved)


# --------------------------------------------------------------------------- builders


def alias(fn: str, name: str, version: str = "1", description: str = "", routing: dict[str, float] | None = None, **context: Any) -> Resource:
    return Resource(
        "lambda_alias",
        f"{fn}/{name}",
        {"version": version, "description": description, "routing": dict(routing or {})},
        {"function": fn, "alias": name, **context},
    )


def version(fn: str, sha: str = SHA) -> Resource:
    return Resource("lambda_version", f"{fn}/sha256:{sha}", {"code_sha256": sha}, {"function": fn})


def permission(fn: str, name: str, api: str, *, source_arn: str = ARN, live_sid: str | None = None) -> Resource:
    context: dict[str, Any] = {
        "function": fn,
        "alias": name,
        "api_id": API_ID,
        "statement_id": f"pointsman-{API_ID}",
        "requires": (f"lambda_alias/{fn}/{name}",),
        "missing_reason": f"stage prod of {api} routes to {fn}:{name}, which API Gateway may not invoke",
    }
    if live_sid:
        context["live_sid"] = live_sid
    return Resource(
        "lambda_permission",
        f"{fn}/{name}/{api}",
        {"principal": "apigateway.amazonaws.com", "action": "lambda:InvokeFunction", "source_arn": source_arn},
        context,
    )


def stage(
    api: str,
    name: str,
    variables: dict[str, str],
    description: str = "",
    *,
    deployment: str | None = None,
    requires: tuple[str, ...] = (),
    api_id: str = API_ID,
    **attrs: Any,
) -> Resource:
    context: dict[str, Any] = {"api": api, "api_id": api_id, "stage": name, "requires": requires}
    if deployment:
        context["deployment"] = deployment
    return Resource("rest_stage", f"{api}/{name}", {"variables": dict(variables), "description": description, **attrs}, context)


def live_stage(api: str, name: str, variables: dict[str, str], description: str = "", deployment: str = "dep-live") -> Resource:
    """As RestStage.live() builds it: the deployment is a live attribute."""
    return Resource(
        "rest_stage",
        f"{api}/{name}",
        {"variables": dict(variables), "description": description, "deployment": deployment},
        {"api": api, "api_id": API_ID, "stage": name},
    )


def mapping(domain: str, base_path: str, api: str, stage_name: str, api_id: str = API_ID) -> Resource:
    return Resource(
        "base_path_mapping",
        f"{domain}/{base_path}",
        {"api": api, "stage": stage_name},
        {"domain": domain, "base_path": base_path, "api_id": api_id, "requires": (f"rest_stage/{api}/{stage_name}",)},
    )


def ops(actions: tuple[Action, ...] | list[Action]) -> list[tuple[str, str]]:
    return [(a.operation, a.resource) for a in actions]


# --------------------------------------------------------------------------- diff


def test_diff_reports_missing_modified_extra() -> None:
    desired = [alias("fn", "prod", "2"), alias("fn", "new", "1"), alias("fn", "same", "1")]
    live = [alias("fn", "prod", "1"), alias("fn", "same", "1"), alias("fn", "old", "1")]
    drifts = {d.resource: d for d in diff(desired, live)}
    assert set(drifts) == {"lambda_alias/fn/prod", "lambda_alias/fn/new", "lambda_alias/fn/old"}
    assert drifts["lambda_alias/fn/new"].status is DriftStatus.MISSING
    assert drifts["lambda_alias/fn/old"].status is DriftStatus.EXTRA
    modified = drifts["lambda_alias/fn/prod"]
    assert modified.status is DriftStatus.MODIFIED
    assert modified.changes == (FieldChange("version", "1", "2"),)


def test_diff_only_compares_attributes_the_desired_resource_sets() -> None:
    desired = stage("api", "prod", {"lambdaAlias": "prod"}, "production")
    live = live_stage("api", "prod", {"lambdaAlias": "prod"}, "production", "dep-live")
    assert "deployment" in live.attributes and "deployment" not in desired.attributes
    assert diff([desired], [live]) == []
    # ...but once desired names a deployment, it is compared.
    pinned = stage("api", "prod", {"lambdaAlias": "prod"}, "production", deployment="dep-new")
    pinned = Resource(pinned.kind, pinned.key, {**pinned.attributes, "deployment": "dep-new"}, pinned.context)
    (drift,) = diff([pinned], [live])
    assert drift.status is DriftStatus.MODIFIED
    assert drift.changes == (FieldChange("deployment", "dep-live", "dep-new"),)


def test_diff_compares_routing_weights() -> None:
    desired = alias("fn", "prod", "3", routing={"2": 0.1})
    assert diff([desired], [alias("fn", "prod", "3", routing={"2": 0.1})]) == []
    (drift,) = diff([desired], [alias("fn", "prod", "3", routing={"2": 0.2})])
    assert drift.changes == (FieldChange("routing", {"2": 0.2}, {"2": 0.1}),)


def test_diff_extra_stage_variable_is_its_own_drift() -> None:
    desired = stage("api", "prod", {"lambdaAlias": "prod"})
    live = live_stage("api", "prod", {"lambdaAlias": "prod", "debug": "true"})
    (drift,) = diff([desired], [live])
    assert drift.resource == "stage_variable/api/prod/debug"
    assert drift.kind == "stage_variable"
    assert drift.status is DriftStatus.EXTRA
    assert drift.parent == "rest_stage/api/prod"
    assert drift.changes == (FieldChange("debug", "true", None),)


# --------------------------------------------------------------------------- plan ordering


def _estate_with_every_kind() -> tuple[list[Resource], list[Resource]]:
    """Desired: one of each kind missing (and an alias modified); live: one extra of each deletable kind."""
    pending = f"lambda_version/fn/sha256:{SHA}"
    desired = [
        version("fn"),
        alias("fn", "prod", f"sha256:{SHA} (to be published)", pending_version=pending, requires=(pending,)),
        alias("fn", "dev", "$LATEST"),
        permission("fn", "prod", "api"),
        stage(
            "api",
            "prod",
            {"lambdaAlias": "prod"},
            "production",
            deployment="dep1",
            requires=("lambda_alias/fn/prod", "lambda_permission/fn/prod/api"),
        ),
        mapping("example.com", "v1", "api", "prod"),
    ]
    live = [
        alias("fn", "dev", "1"),  # modified: version 1 -> $LATEST
        alias("fn", "old", "1"),
        permission("fn", "old", "api", live_sid="pointsman-a1b2c3"),
        live_stage("api", "old", {}, "", "dep0"),
        mapping("example.com", "old", "api", "old"),
    ]
    return desired, live


def test_plan_orders_waves_and_deletes_last_in_reverse_kind_order() -> None:
    desired, live = _estate_with_every_kind()
    plan = make_plan(diff(desired, live), prune=True)
    assert ops(plan.actions) == [
        ("lambda.PublishVersion", f"lambda_version/fn/sha256:{SHA}"),
        ("lambda.UpdateAlias", "lambda_alias/fn/dev"),
        ("lambda.CreateAlias", "lambda_alias/fn/prod"),
        ("lambda.AddPermission", "lambda_permission/fn/prod/api"),
        ("apigateway.CreateStage", "rest_stage/api/prod"),
        ("apigateway.CreateBasePathMapping", "base_path_mapping/example.com/v1"),
        ("apigateway.DeleteBasePathMapping", "base_path_mapping/example.com/old"),
        ("apigateway.DeleteStage", "rest_stage/api/old"),
        ("lambda.RemovePermission", "lambda_permission/fn/old/api"),
        ("lambda.DeleteAlias", "lambda_alias/fn/old"),
    ]
    assert [a.verb for a in plan.actions] == ["publish", "update", "create", "create", "create", "create"] + ["delete"] * 4
    assert plan.not_pruned == ()
    by_id = {a.resource: a for a in plan.actions}
    # The alias waiting for a publish uses its result, and requires it.
    create_alias = by_id["lambda_alias/fn/prod"]
    assert create_alias.requires == (f"lambda_version/fn/sha256:{SHA}",)
    assert create_alias.calls[0].params["FunctionVersion"] == Ref(f"lambda_version/fn/sha256:{SHA}", "Version")
    assert by_id["lambda_permission/fn/prod/api"].requires == ("lambda_alias/fn/prod",)
    assert by_id["rest_stage/api/prod"].requires == ("lambda_alias/fn/prod", "lambda_permission/fn/prod/api")
    assert by_id["base_path_mapping/example.com/v1"].requires == ("rest_stage/api/prod",)
    assert by_id["rest_stage/api/prod"].calls[0].params == {
        "restApiId": API_ID,
        "stageName": "prod",
        "deploymentId": "dep1",
        "description": "production",
        "variables": {"lambdaAlias": "prod"},
    }
    assert by_id["base_path_mapping/example.com/old"].calls[0].params == {"domainName": "example.com", "basePath": "old"}
    assert by_id["lambda_permission/fn/old/api"].calls[0].params == {
        "FunctionName": "fn",
        "Qualifier": "old",
        "StatementId": "pointsman-a1b2c3",
    }


def test_plan_order_does_not_depend_on_input_order() -> None:
    desired, live = _estate_with_every_kind()
    forward = make_plan(diff(desired, live), prune=True)
    backward = make_plan(list(reversed(diff(list(reversed(desired)), list(reversed(live))))), prune=True)
    assert ops(forward.actions) == ops(backward.actions)


def test_extra_resources_without_prune_are_not_pruned_and_not_acted_on() -> None:
    desired, live = _estate_with_every_kind()
    plan = make_plan(diff(desired, live), prune=False)
    assert [a.verb for a in plan.actions] == ["publish", "update", "create", "create", "create", "create"]
    assert sorted(d.resource for d in plan.not_pruned) == [
        "base_path_mapping/example.com/old",
        "lambda_alias/fn/old",
        "lambda_permission/fn/old/api",
        "rest_stage/api/old",
    ]
    assert all(d.status is DriftStatus.EXTRA for d in plan.not_pruned)


def test_only_extras_without_prune_plan_nothing() -> None:
    plan = make_plan(diff([], [alias("fn", "old", "1")]), prune=False)
    assert plan.actions == ()
    assert [d.resource for d in plan.not_pruned] == ["lambda_alias/fn/old"]
    pruned = make_plan(diff([], [alias("fn", "old", "1")]), prune=True)
    assert ops(pruned.actions) == [("lambda.DeleteAlias", "lambda_alias/fn/old")]
    assert pruned.actions[0].calls[0].params == {"FunctionName": "fn", "Name": "old"}


# --------------------------------------------------------------------------- stages


def _stage_pair() -> tuple[Resource, Resource]:
    desired = stage("api", "prod", {"lambdaAlias": "prod", "region": "eu"}, "production")
    live = live_stage("api", "prod", {"lambdaAlias": "old", "region": "eu", "debug": "true"}, "prod (old)", "dep9")
    return desired, live


def test_stage_changes_and_pruned_variable_are_one_update_stage() -> None:
    desired, live = _stage_pair()
    plan = make_plan(diff([desired], [live]), prune=True)
    assert len(plan.actions) == 1
    (action,) = plan.actions
    assert (action.operation, action.resource, action.verb) == ("apigateway.UpdateStage", "rest_stage/api/prod", "update")
    (call,) = action.calls
    assert call.params["restApiId"] == API_ID and call.params["stageName"] == "prod"
    patches = call.params["patchOperations"]
    assert sorted(patches, key=lambda p: (p["op"], p["path"])) == [
        {"op": "remove", "path": "/variables/debug"},
        {"op": "replace", "path": "/description", "value": "production"},
        {"op": "replace", "path": "/variables/lambdaAlias", "value": "prod"},
    ]
    assert len(patches) == 3  # no op for the unchanged `region`, none for the unmanaged deployment
    assert "prune variables debug" in action.reason
    assert plan.not_pruned == ()


def test_stage_without_prune_keeps_extra_variable_as_drift() -> None:
    desired, live = _stage_pair()
    drifts = diff([desired], [live])
    by_id = {d.resource: d for d in drifts}
    assert set(by_id) == {"rest_stage/api/prod", "stage_variable/api/prod/debug"}
    assert by_id["stage_variable/api/prod/debug"].status is DriftStatus.EXTRA
    assert by_id["rest_stage/api/prod"].status is DriftStatus.MODIFIED
    plan = make_plan(drifts, prune=False)
    (action,) = plan.actions
    assert action.operation == "apigateway.UpdateStage"
    assert sorted(action.calls[0].params["patchOperations"], key=lambda p: p["path"]) == [
        {"op": "replace", "path": "/description", "value": "production"},
        {"op": "replace", "path": "/variables/lambdaAlias", "value": "prod"},
    ]
    assert [d.resource for d in plan.not_pruned] == ["stage_variable/api/prod/debug"]


def test_stage_in_sync_but_for_an_extra_variable() -> None:
    desired = stage("api", "prod", {"lambdaAlias": "prod"}, "production")
    live = live_stage("api", "prod", {"lambdaAlias": "prod", "a/b~c": "x"}, "production")
    assert make_plan(diff([desired], [live]), prune=False).actions == ()
    (action,) = make_plan(diff([desired], [live]), prune=True).actions
    assert action.operation == "apigateway.UpdateStage"
    # JSON-pointer escaping of the variable name.
    assert action.calls[0].params["patchOperations"] == [{"op": "remove", "path": "/variables/a~1b~0c"}]


# --------------------------------------------------------------------------- aliases, permissions, mappings


def test_alias_version_change_updates_only_the_version() -> None:
    desired = alias("fn", "prod", "4", "stable", {"3": 0.1})
    live = alias("fn", "prod", "3", "stable", {"3": 0.1})
    (action,) = make_plan(diff([desired], [live]), prune=False).actions
    assert (action.operation, action.resource, action.verb) == ("lambda.UpdateAlias", "lambda_alias/fn/prod", "update")
    (call,) = action.calls
    assert call.params == {"FunctionName": "fn", "Name": "prod", "FunctionVersion": "4"}
    assert action.reason == "version 3 -> 4"


def test_alias_description_and_routing_change() -> None:
    desired = alias("fn", "prod", "4", "new", {})
    live = alias("fn", "prod", "4", "old", {"3": 0.5})
    (action,) = make_plan(diff([desired], [live]), prune=False).actions
    assert action.calls[0].params == {
        "FunctionName": "fn",
        "Name": "prod",
        "Description": "new",
        "RoutingConfig": {"AdditionalVersionWeights": {}},
    }


def test_permission_with_narrow_source_arn_is_replaced_make_before_break() -> None:
    wide = ARN.replace("/prod/", "/*/")
    desired = permission("fn", "prod", "api", source_arn=wide)
    live = permission("fn", "prod", "api", source_arn=ARN, live_sid="pointsman-old")
    add, remove = make_plan(diff([desired], [live]), prune=False, desired=[desired]).actions
    # The new statement first, under its own id; the old one only after it, in the deletion wave.
    assert add.operation == "lambda.AddPermission" and add.verb == "update"
    assert add.calls[0].params["StatementId"] == f"pointsman-{API_ID}"
    assert add.calls[0].params["SourceArn"] == wide
    assert add.requires == ("lambda_alias/fn/prod",)
    assert remove.operation == "lambda.RemovePermission" and remove.verb == "delete"
    assert remove.calls[0].params == {"FunctionName": "fn", "Qualifier": "prod", "StatementId": "pointsman-old"}
    assert remove.requires == ("lambda_permission/fn/prod/api",)
    assert remove.wave > add.wave


def test_failed_add_of_a_replacing_statement_keeps_the_old_one() -> None:
    desired = permission("fn", "prod", "api", source_arn=ARN.replace("/prod/", "/*/"))
    live = permission("fn", "prod", "api", source_arn=ARN, live_sid="pointsman-old")
    actions = make_plan(diff([desired], [live]), prune=False, desired=[desired]).actions
    clients = FakeClients(failing("lambda", "add_permission", "ServiceException"))
    add, remove = apply_actions(clients, actions)  # type: ignore[arg-type]
    assert add.status is OutcomeStatus.FAILED
    assert remove.status is OutcomeStatus.SKIPPED
    assert [m for _, m, _ in clients.calls] == ["add_permission"]


def test_deletion_waits_for_every_live_user_and_is_held_when_one_stays() -> None:
    old_alias = Resource(
        "lambda_alias", "fn/old", {"version": "1", "description": "", "routing": {}}, {"function": "fn", "alias": "old", "users": ("rest_stage/api/beta",)}
    )
    beta = Resource(
        "rest_stage",
        "api/beta",
        {"variables": {"lambdaAlias": "old"}, "description": "", "deployment": "d"},
        {"api": "api", "api_id": API_ID, "stage": "beta", "users": ("base_path_mapping/x.org/v1",)},
    )
    beta_mapping = Resource("base_path_mapping", "x.org/v1", {"api": "api", "stage": "beta"}, {"domain": "x.org", "base_path": "v1", "api_id": API_ID})
    live = [old_alias, beta, beta_mapping]
    plan = make_plan(diff([], live), prune=True, desired=[])
    assert ops(plan.actions) == [
        ("apigateway.DeleteBasePathMapping", "base_path_mapping/x.org/v1"),
        ("apigateway.DeleteStage", "rest_stage/api/beta"),
        ("lambda.DeleteAlias", "lambda_alias/fn/old"),
    ]
    requires = {a.resource: a.requires for a in plan.actions}
    assert requires["rest_stage/api/beta"] == ("base_path_mapping/x.org/v1",)
    assert requires["lambda_alias/fn/old"] == ("rest_stage/api/beta",)
    # The mapping's deletion fails: nothing it uses is deleted.
    clients = FakeClients(failing("apigateway", "delete_base_path_mapping", "ServiceException"))
    outcomes = apply_actions(clients, plan.actions)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == [OutcomeStatus.FAILED, OutcomeStatus.SKIPPED, OutcomeStatus.SKIPPED]
    # Without the mapping in the managed scope to act on, the stage (and so the alias) is held.
    held_plan = make_plan(diff([], [old_alias, beta]), prune=True, desired=[])
    assert held_plan.actions == ()
    assert [(h.action.resource, h.reason) for h in held_plan.held] == [
        ("rest_stage/api/beta", "base_path_mapping/x.org/v1 still uses it and is not changed by this plan"),
        ("lambda_alias/fn/old", "rest_stage/api/beta still uses it and is not changed by this plan"),
    ]


def test_deletion_of_something_a_declared_resource_needs_is_held() -> None:
    old_alias = alias("fn", "old", "1")
    declared = stage("api", "prod", {"lambdaAlias": "old"}, requires=("lambda_alias/fn/old",))
    live = [old_alias, live_stage("api", "prod", {"lambdaAlias": "old"}, deployment="dep1")]
    plan = make_plan(diff([declared], live), prune=True, desired=[declared])
    assert plan.actions == ()
    assert [(h.action.resource, h.reason) for h in plan.held] == [("lambda_alias/fn/old", "rest_stage/api/prod, which the spec declares, still uses it")]


def test_mapping_to_another_stage_is_one_patch() -> None:
    desired = mapping("example.com", "(none)", "api", "prod")
    live = mapping("example.com", "(none)", "api", "dev")
    (action,) = make_plan(diff([desired], [live]), prune=False).actions
    assert action.operation == "apigateway.UpdateBasePathMapping"
    assert action.calls[0].params == {
        "domainName": "example.com",
        "basePath": "(none)",
        "patchOperations": [{"op": "replace", "path": "/stage", "value": "prod"}],
    }


def test_mapping_without_base_path_is_created_without_base_path_param() -> None:
    (action,) = make_plan(diff([mapping("example.com", "(none)", "api", "prod")], []), prune=False).actions
    assert action.calls[0].params == {"domainName": "example.com", "restApiId": API_ID, "stage": "prod"}


def test_in_sync_plans_nothing() -> None:
    desired, _ = _estate_with_every_kind()
    in_sync = [r for r in desired if r.kind != "lambda_version"]
    assert diff(in_sync, in_sync) == []
    plan = make_plan([], prune=True)
    assert plan.actions == () and plan.not_pruned == ()


# --------------------------------------------------------------------------- apply


Failure = Callable[[str, str, dict[str, Any]], "str | None"]


class FakeService:
    def __init__(self, name: str, clients: FakeClients) -> None:
        self._name = name
        self._clients = clients

    def __getattr__(self, method: str) -> Any:
        def call(**params: Any) -> dict[str, Any]:
            self._clients.calls.append((self._name, method, params))
            code = self._clients.fail(self._name, method, params)
            if code:
                raise botocore.exceptions.ClientError(
                    {"Error": {"Code": code, "Message": f"{method} said no"}},
                    "".join(part.title() for part in method.split("_")),
                )
            response: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": 200}}
            if method == "publish_version":
                response["Version"] = "7"
            return response

        return call


class FakeClients:
    """Just enough of AwsClients for apply_actions: client(service) -> object with boto3 methods.

    ``fail(service, method, params)`` returns the error code one chosen call raises.
    """

    def __init__(self, fail: Failure = lambda service, method, params: None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def client(self, service: str) -> FakeService:
        return FakeService(service, self)


def failing(service: str, method: str, code: str, **match: Any) -> Failure:
    def fail(s: str, m: str, params: dict[str, Any]) -> str | None:
        hit = (s, m) == (service, method) and all(params.get(k) == v for k, v in match.items())
        return code if hit else None

    return fail


def _two_chains() -> tuple[Action, ...]:
    """fnA and fnB each: alias -> permission -> stage -> mapping, all missing."""
    desired: list[Resource] = []
    for fn, api in (("fnA", "apiA"), ("fnB", "apiB")):
        desired += [
            alias(fn, "prod", "1"),
            permission(fn, "prod", api),
            stage(
                api,
                "prod",
                {"lambdaAlias": "prod"},
                deployment="dep1",
                requires=(f"lambda_alias/{fn}/prod", f"lambda_permission/{fn}/prod/{api}"),
                api_id=f"id-{api}",
            ),
            mapping(f"{api}.example.com", "v1", api, "prod", api_id=f"id-{api}"),
        ]
    return make_plan(diff(desired, []), prune=False).actions


def test_apply_failure_skips_dependents_transitively_and_runs_independent_actions() -> None:
    actions = _two_chains()
    clients = FakeClients(failing("lambda", "create_alias", "AccessDeniedException", FunctionName="fnA"))
    outcomes = apply_actions(clients, actions)  # type: ignore[arg-type]
    status = {o.action.resource: o.status for o in outcomes}
    assert status == {
        "lambda_alias/fnA/prod": OutcomeStatus.FAILED,
        "lambda_permission/fnA/prod/apiA": OutcomeStatus.SKIPPED,
        "rest_stage/apiA/prod": OutcomeStatus.SKIPPED,
        "base_path_mapping/apiA.example.com/v1": OutcomeStatus.SKIPPED,
        "lambda_alias/fnB/prod": OutcomeStatus.SUCCEEDED,
        "lambda_permission/fnB/prod/apiB": OutcomeStatus.SUCCEEDED,
        "rest_stage/apiB/prod": OutcomeStatus.SUCCEEDED,
        "base_path_mapping/apiB.example.com/v1": OutcomeStatus.SUCCEEDED,
    }
    assert len(outcomes) == len(actions) == 8
    # Only the failed call and chain B reached "AWS"; nothing of chain A after the failure.
    assert [(s, m) for s, m, _ in clients.calls] == [
        ("lambda", "create_alias"),
        ("lambda", "create_alias"),
        ("lambda", "add_permission"),
        ("apigateway", "create_stage"),
        ("apigateway", "create_base_path_mapping"),
    ]
    assert clients.calls[0][2]["FunctionName"] == "fnA"
    assert all("A" not in str(params.get("FunctionName", "")) for _, _, params in clients.calls[1:])
    errors = {o.action.resource: o.error for o in outcomes}
    assert (
        errors["lambda_alias/fnA/prod"]
        == "CreateAlias: AccessDeniedException: create_alias said no (check credentials and the IAM policy: `pointsman iam-policy` prints what is needed)"
    )
    assert errors["lambda_permission/fnA/prod/apiA"] == "skipped: lambda_alias/fnA/prod did not converge (failed)"
    # The stage requires both the failed alias and the skipped permission: the first named is the alias.
    assert errors["rest_stage/apiA/prod"] == "skipped: lambda_alias/fnA/prod did not converge (failed)"
    # Transitively: the mapping only requires the (skipped) stage.
    assert errors["base_path_mapping/apiA.example.com/v1"] == "skipped: rest_stage/apiA/prod did not converge (skipped)"
    assert all(errors[r] == "" for r in status if "B" in r)


def test_apply_failure_in_a_later_wave_skips_only_what_follows() -> None:
    actions = _two_chains()
    clients = FakeClients(failing("apigateway", "create_stage", "ThrottlingException", restApiId="id-apiB"))
    outcomes = apply_actions(clients, actions)  # type: ignore[arg-type]
    failed = [o for o in outcomes if o.status is OutcomeStatus.FAILED]
    skipped = [o for o in outcomes if o.status is OutcomeStatus.SKIPPED]
    assert [o.action.resource for o in failed] == ["rest_stage/apiB/prod"]
    assert (
        failed[0].error
        == "CreateStage: ThrottlingException: create_stage said no (still throttled at the reconcile's throttling deadline: see --throttle-deadline and --rate-limits)"
    )
    assert [(o.action.resource, o.error) for o in skipped] == [
        ("base_path_mapping/apiB.example.com/v1", "skipped: rest_stage/apiB/prod did not converge (failed)")
    ]
    assert sum(o.status is OutcomeStatus.SUCCEEDED for o in outcomes) == 6


def test_apply_partial_multi_call_action_says_what_succeeded() -> None:
    calls = (
        Call("lambda", "remove_permission", {"FunctionName": "fn", "Qualifier": "prod", "StatementId": "old"}),
        Call("lambda", "add_permission", {"FunctionName": "fn", "Qualifier": "prod", "StatementId": "new"}),
    )
    action = Action("lambda_permission/fn/prod/api", "lambda_permission", "update", calls, "two calls", 2)
    clients = FakeClients(failing("lambda", "add_permission", "PolicyLengthExceededException"))
    (outcome,) = apply_actions(clients, [action])  # type: ignore[arg-type]
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.error == "AddPermission: PolicyLengthExceededException: add_permission said no (after lambda.RemovePermission succeeded)"
    assert [m for _, m, _ in clients.calls] == ["remove_permission", "add_permission"]


def test_apply_resolves_published_version_into_the_alias() -> None:
    desired, live = _estate_with_every_kind()
    actions = make_plan(diff(desired, live), prune=False).actions
    clients = FakeClients()
    outcomes = apply_actions(clients, actions)  # type: ignore[arg-type]
    assert all(o.status is OutcomeStatus.SUCCEEDED for o in outcomes)
    create_alias = next(p for _, m, p in clients.calls if m == "create_alias")
    assert create_alias["FunctionVersion"] == "7"  # the Version publish_version returned
    assert outcomes[0].result == {"Version": "7"}  # ResponseMetadata is dropped


def test_apply_failed_publish_skips_the_alias_waiting_for_it() -> None:
    desired, live = _estate_with_every_kind()
    actions = make_plan(diff(desired, live), prune=False).actions
    clients = FakeClients(failing("lambda", "publish_version", "CodeStorageExceededException"))
    outcomes = {o.action.resource: o for o in apply_actions(clients, actions)}  # type: ignore[arg-type]
    assert outcomes[f"lambda_version/fn/sha256:{SHA}"].status is OutcomeStatus.FAILED
    assert outcomes["lambda_alias/fn/prod"].status is OutcomeStatus.SKIPPED
    assert outcomes["lambda_alias/fn/prod"].error == f"skipped: lambda_version/fn/sha256:{SHA} did not converge (failed)"
    assert outcomes["lambda_permission/fn/prod/api"].status is OutcomeStatus.SKIPPED
    assert outcomes["rest_stage/api/prod"].status is OutcomeStatus.SKIPPED
    assert outcomes["base_path_mapping/example.com/v1"].status is OutcomeStatus.SKIPPED
    assert outcomes["lambda_alias/fn/dev"].status is OutcomeStatus.SUCCEEDED  # independent
    assert "create_alias" not in [m for _, m, _ in clients.calls]


def test_apply_dry_run_calls_nothing() -> None:
    clients = FakeClients()
    outcomes = apply_actions(clients, _two_chains(), dry_run=True)  # type: ignore[arg-type]
    assert {o.status for o in outcomes} == {OutcomeStatus.DRY_RUN}
    assert clients.calls == []
