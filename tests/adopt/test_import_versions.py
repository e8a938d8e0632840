"""`pointsman import` of versioned REST APIs: Pointsman's own (header, media type, http-proxy)
written back as the versions blocks that generate them, and the http-proxy layout built by hand
as the header-versioning article describes (``proxy: unmanaged``). The round trip of the whole
estate: import, in sync with zero writes, wipe what Pointsman manages, apply restores it, and
import again gives the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients, write_calls
from controller.demo.estate import ROLE_NAME, ExampleFunction, create_function
from controller.engine.pipeline import reconcile
from controller.spec import load_spec
from tests.adopt.test_import import assert_in_sync, files, run_import

JSON = "application/json"
# The article's proxy request template: the Version header (a default when absent) becomes the
# path parameter of the route behind the proxy; the API key is passed on.
ARTICLE_REQUEST = """#set($version = $method.request.header.Version)
#set($apiKey = $method.request.header.x-api-key)

#if(!$version ||$version == "")
  #set($version = "2022-01-01")
#end

#set($context.requestOverride.path.version = $version)
#set($context.requestOverride.header.x-api-key = $apiKey)

$input.json("$")"""
# The article's 403 response: an unknown version called a route that does not exist.
ARTICLE_403 = """#set($APIExposedVersions = ['2022-01-01', '2022-05-03'])

#set($version = $method.request.header.Version)

#if($version != "" and !$APIExposedVersions.contains($version))
  #set($context.responseOverride.status = 400)
  {message: "your custom version not found message"}
#else
  {message: "forbidden"}
#end"""


def _function(clients: AwsClients, name: str, versions: int) -> str:
    role = clients.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    return create_function(clients.lambda_, role, ExampleFunction(name, published=versions), moved_on=False)


def _lambda_proxy_uri(arn: str, alias: str) -> str:
    return f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}:{alias}/invocations"


def build_article_proxy(clients: AwsClients) -> str:
    """orders-api as the article builds it in the console: POST /orders, an HTTP integration with
    hand-written templates calling /orders/{version} on the same stage, and /orders/2022-01-01 and
    /orders/2022-05-03 behind it, Lambda proxy integrations of the aliases named after the
    versions; stages dev and prod; the console's invoke permission per alias and route; a base
    path mapping per stage on a domain of its own."""
    apigw, lam = clients.apigateway, clients.lambda_
    arn = _function(clients, "postOrder", 2)
    for alias, version in (("2022-01-01", "1"), ("2022-05-03", "2")):
        lam.create_alias(FunctionName="postOrder", Name=alias, FunctionVersion=version)
    api = apigw.create_rest_api(name="orders-api", description="built in the console")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    orders = apigw.create_resource(restApiId=api, parentId=root, pathPart="orders")["id"]
    where = {"restApiId": api, "resourceId": orders, "httpMethod": "POST"}
    apigw.put_method(**where, authorizationType="NONE", requestParameters={"method.request.header.Version": False})
    apigw.put_integration(
        **where,
        type="HTTP",
        integrationHttpMethod="POST",
        uri=f"https://{api}.execute-api.us-east-1.amazonaws.com/${{stageVariables.stageName}}/orders/{{version}}",
        requestParameters={"integration.request.path.version": "method.request.header.Version"},
        requestTemplates={JSON: ARTICLE_REQUEST},
        passthroughBehavior="WHEN_NO_TEMPLATES",
    )
    for code in ("200", "400", "500"):
        apigw.put_method_response(**where, statusCode=code)
    apigw.put_integration_response(**where, statusCode="500", responseTemplates={JSON: '{"message": "Internal Server Error"}'})
    apigw.put_integration_response(**where, statusCode="400", selectionPattern="403", responseTemplates={JSON: ARTICLE_403})
    apigw.put_integration_response(**where, statusCode="200", selectionPattern="2\\d{2}", responseTemplates={JSON: "$input.body"})
    for version in ("2022-01-01", "2022-05-03"):
        behind = apigw.create_resource(restApiId=api, parentId=orders, pathPart=version)["id"]
        apigw.put_method(restApiId=api, resourceId=behind, httpMethod="POST", authorizationType="NONE")
        apigw.put_integration(
            restApiId=api, resourceId=behind, httpMethod="POST", type="AWS_PROXY", integrationHttpMethod="POST", uri=_lambda_proxy_uri(arn, version)
        )
        lam.add_permission(  # the command the console's pop-up gives
            FunctionName="postOrder",
            Qualifier=version,
            StatementId=f"console-{version}",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api}/*/POST/orders/{version}",
        )
    deployment = apigw.create_deployment(restApiId=api, description="console deployment")["id"]
    for stage in ("dev", "prod"):
        apigw.create_stage(restApiId=api, stageName=stage, deploymentId=deployment, variables={"stageName": stage})
    apigw.create_domain_name(domainName="orders.example.com", certificateArn="arn:aws:acm:us-east-1:123456789012:certificate/orders")
    apigw.create_base_path_mapping(domainName="orders.example.com", basePath="v1", restApiId=api, stage="prod")
    apigw.create_base_path_mapping(domainName="orders.example.com", basePath="dev", restApiId=api, stage="dev")
    return str(api)


def build_generated_proxy(clients: AwsClients, spec_dir: Path) -> None:
    """accounts-api, an http-proxy Pointsman made: declared, applied, converged."""
    apigw = clients.apigateway
    _function(clients, "postAccount", 2)
    api = apigw.create_rest_api(name="accounts-api")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    accounts = apigw.create_resource(restApiId=api, parentId=root, pathPart="accounts")["id"]
    apigw.put_method(restApiId=api, resourceId=accounts, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=accounts, httpMethod="POST", type="MOCK", requestTemplates={JSON: "{}"})
    apigw.create_deployment(restApiId=api, description="placeholder")
    doc = {
        "rest_apis": {
            "accounts-api": {
                "stages": {"prod": {"description": "production", "variables": {"team": "accounts"}}, "dev": {}},
                "versions": {
                    "strategy": "http-proxy",
                    "header": "Api-Version",
                    "default": "v1",
                    "routes": [{"method": "POST", "path": "/accounts", "function": "postAccount"}],
                    "catalogue": {"v1": {"functions": {"postAccount": 1}}, "v2": {"functions": {"postAccount": 2}, "stages": ["dev"]}},
                },
            }
        }
    }
    (spec_dir / "accounts.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    result = reconcile(load_spec(spec_dir), clients, apply=True)
    assert not result.failed, [o.as_dict() for o in result.outcomes]


@pytest.fixture
def versioned_estate(converged: dict[str, Any], importing: AwsClients, spec_dir: Path) -> dict[str, Any]:
    """The demo estate (weighted alias included) with an http-proxy Pointsman made and one built by hand."""
    importing.lambda_.update_alias(FunctionName="getProducts", Name="prod", RoutingConfig={"AdditionalVersionWeights": {"4": 0.1}})
    (spec_dir / "products.yaml").write_text((spec_dir / "products.yaml").read_text().replace("version: 3", 'version: 3, routing: {"4": 0.1}'))
    build_generated_proxy(importing, spec_dir)
    orders = build_article_proxy(importing)
    importing.counter.reset()
    return {**converged, "orders": orders}


def test_the_articles_hand_built_proxy_is_written_proxy_unmanaged_and_is_in_sync(
    versioned_estate: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, stdout, stderr = run_import(capsys, importing, out, "--apis", "orders-api", "--domains", "orders.example.com")
    assert (code, stderr) == (0, "")
    text = (out / "orders-api.yaml").read_text()
    assert "      header: Version  # inferred: read from the proxy route's template\n" in text
    assert '      default: "2022-01-01"  # inferred: read from the proxy route\'s template\n' in text
    assert "      strategy: http-proxy\n      proxy: unmanaged  # the proxy routes are hand-written: Pointsman never writes them\n" in text
    assert "        - {method: POST, path: /orders, function: postOrder}\n" in text
    assert '        "2022-01-01": {functions: {postOrder: "1"}, description: ""}\n' in text
    assert '        "2022-05-03": {functions: {postOrder: "2"}, description: ""}\n' in text
    assert "      dev: {variables: {stageName: dev}}\n" in text
    # The hand-written proxy is named, in the file and in the summary; the console's permissions cover the routes: derived.
    assert "# not managed: route POST /orders: the proxy's HTTP integration and its templates are hand-written" in text
    assert "rest_api orders-api: route POST /orders: the proxy's HTTP integration and its templates are hand-written" in stdout
    assert "console-" not in stdout
    assert "      dev: {api: orders-api, stage: dev}\n      v1: {api: orders-api, stage: prod}\n" in (out / "domains.yaml").read_text()

    importing.counter.reset()
    assert_in_sync(out, importing)  # the proxy route is never read as drift; the stages keep the console's deployment

    # A console click on a route behind the proxy is drift, and apply heals it with a deployment of its own.
    apigw = importing.apigateway
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=versioned_estate["orders"])["items"]}
    apigw.delete_method(restApiId=versioned_estate["orders"], resourceId=resources["/orders/2022-05-03"], httpMethod="POST")
    importing.counter.reset()
    healed = reconcile(load_spec(out), importing, apply=True)
    assert not healed.failed and "rest_method/orders-api/POST/orders/2022-05-03" in [d.resource for d in healed.drift]
    writes = write_calls(importing.counter.snapshot())
    assert writes.get("apigateway.CreateDeployment") == 1 and "apigateway.PutIntegration" in writes
    proxy = apigw.get_integration(restApiId=versioned_estate["orders"], resourceId=resources["/orders"], httpMethod="POST")
    assert proxy["requestTemplates"][JSON] == ARTICLE_REQUEST  # never written
    importing.counter.reset()
    assert_in_sync(out, importing)


def test_a_hand_edited_generated_template_is_left_out_with_why(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apigw = importing.apigateway
    api = next(i["id"] for i in apigw.get_rest_apis()["items"] if i["name"] == "users-api")
    users = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/users")
    apigw.put_integration_response(restApiId=api, resourceId=users, httpMethod="POST", statusCode="200", responseTemplates={JSON: "edited by hand"})
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, importing, out)
    assert code == 0
    assert "rest_api users-api: not imported: its versions cannot be written as a spec: POST /users differs from what Pointsman generates" in stdout
    assert "response.200.template" in stdout
    assert "function postUser: not imported: REST API users-api, not imported, picks its aliases per request (versions)" in stdout
    assert not (out / "users-api.yaml").exists()


def test_the_whole_estate_round_trips_wiped_parts_are_restored_and_reimport_is_byte_for_byte(
    versioned_estate: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, stdout, stderr = run_import(capsys, importing, out)
    assert (code, stderr) == (0, "")
    assert sorted(files(out)) == [
        "accounts-api.yaml",
        "catalog-api.yaml",
        "domains.yaml",
        "getreport-api.yaml",
        "orders-api.yaml",
        "products-v1.yaml",
        "products-v2.yaml",
        "users-api.yaml",
    ]
    accounts = (out / "accounts-api.yaml").read_text()
    assert "      header: Api-Version\n      default: v1\n      strategy: http-proxy\n      routes:\n" in accounts
    assert '        v2: {functions: {postAccount: "2"}, stages: [dev]}\n' in accounts
    assert "      prod: {variables: {team: accounts}, description: production}\n" in accounts
    assert "pointsmanStage" not in accounts
    assert '      prod: {version: "3", description: "v1 production", routing: {"4": 0.1}}\n' in (out / "products-v1.yaml").read_text()
    importing.counter.reset()
    assert_in_sync(out, importing)
    first = files(out)

    # Wipe what Pointsman manages: aliases of each kind, stage variables, a generated template, a route behind each proxy, mappings.
    lam, apigw = importing.lambda_, importing.apigateway
    ids = {i["name"]: i["id"] for i in apigw.get_rest_apis()["items"]}
    lam.delete_alias(FunctionName="getProducts", Name="prod")
    lam.delete_alias(FunctionName="postUser", Name="2022-05-03")
    lam.delete_alias(FunctionName="postOrder", Name="2022-01-01")
    apigw.update_stage(restApiId=ids["accounts-api"], stageName="dev", patchOperations=[{"op": "remove", "path": "/variables/pointsmanVersions"}])
    apigw.update_stage(restApiId=ids["products-v2"], stageName="prod", patchOperations=[{"op": "remove", "path": "/variables/lambdaAlias"}])
    users = next(r["id"] for r in apigw.get_resources(restApiId=ids["users-api"])["items"] if r["path"] == "/users")
    apigw.put_integration_response(restApiId=ids["users-api"], resourceId=users, httpMethod="POST", statusCode="200", responseTemplates={JSON: "x"})
    for api, path in (("accounts-api", "/accounts/v2"), ("orders-api", "/orders/2022-05-03")):
        resource = next(r["id"] for r in apigw.get_resources(restApiId=ids[api])["items"] if r["path"] == path)
        apigw.delete_method(restApiId=ids[api], resourceId=resource, httpMethod="POST")
    apigw.delete_base_path_mapping(domainName="myapi.com", basePath="v1")
    apigw.delete_base_path_mapping(domainName="orders.example.com", basePath="v1")

    importing.counter.reset()
    result = reconcile(load_spec(out), importing, apply=True)
    assert not result.failed and result.drift, [o.as_dict() for o in result.outcomes]
    importing.counter.reset()
    assert_in_sync(out, importing)  # restored
    code, stdout, _ = run_import(capsys, importing, tmp_path / "again")
    assert code == 0 and files(tmp_path / "again") == first, stdout
