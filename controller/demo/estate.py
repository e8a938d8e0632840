"""The example estate's pre-existing infrastructure (what CI/SAM and the console made).

Pointsman does not create functions, code, REST APIs, integrations or custom domains; this
module builds them in an emulator (or any account you point it at) so the spec in
``desired_state/`` has something to manage: published Lambda versions, REST APIs whose
integration URIs pick the alias with ``${stageVariables.lambdaAlias}``, and custom domains.

``seed_hand_built`` adds what no spec declares, as a team builds it in the console before it
adopts Pointsman: two functions with aliases, a REST API whose stages pick them, the invoke
permissions the console asks for, and a custom domain of its own. The demo has it, for README
"Adopting an existing estate" to import.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from controller.aws.clients import AwsClients

ROLE_NAME = "pointsman-example-lambda-role"


@dataclass(frozen=True)
class ExampleFunction:
    name: str
    published: int  # versions 1..published exist; $LATEST holds one more unpublished change


@dataclass(frozen=True)
class ExampleApi:
    name: str
    function: str
    path: str
    method: str


FUNCTIONS = (
    ExampleFunction("getreport", published=2),
    ExampleFunction("getProducts", published=4),  # prod serves 3; the walkthrough rolls 4 out as a canary
    ExampleFunction("getProductsV2", published=2),
    ExampleFunction("postUser", published=2),
    ExampleFunction("listItems", published=2),
)
APIS = (
    ExampleApi("getreport-api", "getreport", "getreport", "ANY"),
    ExampleApi("products-v1", "getProducts", "products", "GET"),
    ExampleApi("products-v2", "getProductsV2", "products", "GET"),
)
# APIs whose versions Pointsman generates (desired_state/users.yaml, catalog.yaml): the resource
# and method exist with a placeholder integration, as an API tool would leave them.
VERSIONED_APIS = (
    ExampleApi("users-api", "postUser", "users", "POST"),
    ExampleApi("catalog-api", "listItems", "items", "GET"),
)
DOMAINS = ("myapi.com", "dev.myapi.com")


def handler_zip(function: str, revision: int) -> bytes:
    source = (
        "import json\n"
        f"def handler(event, context):\n"
        f"    return {{'statusCode': 200, 'body': json.dumps({{'function': {function!r}, 'revision': {revision}}})}}\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", source)
    return buffer.getvalue()


def create_function(lam: Any, role_arn: str, fn: ExampleFunction, *, moved_on: bool = True) -> str:
    """The function with versions 1..published, each its own code ("revision N"); ``moved_on``:
    $LATEST then holds one more change, not yet published. Returns its ARN."""
    arn = str(
        lam.create_function(
            FunctionName=fn.name, Runtime="python3.12", Role=role_arn, Handler="index.handler", Code={"ZipFile": handler_zip(fn.name, 1)}, Publish=False
        )["FunctionArn"]
    )
    for revision in range(1, fn.published + 1):
        if revision > 1:
            lam.update_function_code(FunctionName=fn.name, ZipFile=handler_zip(fn.name, revision))
        lam.publish_version(FunctionName=fn.name, Description=f"revision {revision}")
    if moved_on:
        lam.update_function_code(FunctionName=fn.name, ZipFile=handler_zip(fn.name, fn.published + 1))
    return arn


def alias_uri(region: str, function_arn: str, variable: str = "lambdaAlias") -> str:
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}:${{stageVariables.{variable}}}/invocations"


ROLLOUT_ALARM = "getProducts-errors"


def seed(clients: AwsClients) -> dict[str, Any]:
    """Create the example estate; returns ids and ARNs (idempotent enough for a fresh emulator)."""
    iam = clients.client("iam")
    lam = clients.lambda_
    apigw = clients.apigateway
    region = clients.region
    try:
        role_arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    out: dict[str, Any] = {"functions": {}, "apis": {}, "domains": list(DOMAINS)}
    for fn in FUNCTIONS:
        arn = create_function(lam, role_arn, fn)
        out["functions"][fn.name] = arn

    def create_api(api: ExampleApi, description: str, integration: dict[str, Any]) -> None:
        rest = apigw.create_rest_api(name=api.name, description=description)
        root = next(r["id"] for r in apigw.get_resources(restApiId=rest["id"])["items"] if r["path"] == "/")
        resource = apigw.create_resource(restApiId=rest["id"], parentId=root, pathPart=api.path)
        where = {"restApiId": rest["id"], "resourceId": resource["id"], "httpMethod": api.method}
        apigw.put_method(**where, authorizationType="NONE")
        apigw.put_integration(**where, **integration)
        deployment = apigw.create_deployment(restApiId=rest["id"], description="initial deployment")
        out["apis"][api.name] = {"id": rest["id"], "deployment": deployment["id"]}

    for api in APIS:
        proxy = {"type": "AWS_PROXY", "integrationHttpMethod": "POST", "uri": alias_uri(region, out["functions"][api.function])}
        create_api(api, f"{api.name} (example estate)", proxy)
    for api in VERSIONED_APIS:  # a placeholder integration until Pointsman generates the versioned one
        create_api(api, f"{api.name} (example estate, versioned)", {"type": "MOCK", "requestTemplates": {"application/json": '{"statusCode": 200}'}})

    for domain in DOMAINS:
        apigw.create_domain_name(
            domainName=domain,
            certificateArn=f"arn:aws:acm:us-east-1:{arn.split(':')[4]}:certificate/{domain.replace('.', '-')}",
        )
    # The alarm the walkthrough's canary is gated by (the walkthrough sets its state by hand).
    cloudwatch = clients.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=ROLLOUT_ALARM,
        AlarmDescription="getProducts errors (the walkthrough's canary gate)",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "getProducts"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=ROLLOUT_ALARM, StateValue="OK", StateReason="no errors")
    return out


# The hand-built part: in the account, in no spec (README "Adopting an existing estate").
HAND_BUILT_FUNCTIONS = (
    ExampleFunction("getInventory", published=3),  # prod serves 2 and sends 10% to 3
    ExampleFunction("listOrders", published=2),
)
HAND_BUILT_API = "inventory-api"
HAND_BUILT_ROUTES = (
    ExampleApi(HAND_BUILT_API, "getInventory", "inventory", "GET"),
    ExampleApi(HAND_BUILT_API, "listOrders", "orders", "GET"),
)
HAND_BUILT_DOMAIN = "inventory.myapi.com"  # not a domain of desired_state/: no mapping there is extra


def seed_hand_built(clients: AwsClients) -> dict[str, Any]:
    """Build the unmanaged API as the console does (run after ``seed``, whose role it uses):
    functions with published versions and aliases (``prod`` of getInventory weighted), one REST
    API whose integrations pick the alias with ``${stageVariables.lambdaAlias}``, stages dev and
    prod setting it, per alias the invoke permission the console's pop-up command adds (SourceArn
    ``<api id>/*/GET/<path>``), and ``inventory.myapi.com/v1`` mapped to prod."""
    lam = clients.lambda_
    apigw = clients.apigateway
    region = clients.region
    role_arn = clients.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    out: dict[str, Any] = {"functions": {}, "api": {}, "domain": HAND_BUILT_DOMAIN}
    for fn in HAND_BUILT_FUNCTIONS:
        out["functions"][fn.name] = create_function(lam, role_arn, fn, moved_on=False)
    lam.create_alias(
        FunctionName="getInventory",
        Name="prod",
        FunctionVersion="2",
        Description="stock levels",
        RoutingConfig={"AdditionalVersionWeights": {"3": 0.1}},
    )
    lam.create_alias(FunctionName="getInventory", Name="dev", FunctionVersion="$LATEST")
    lam.create_alias(FunctionName="listOrders", Name="prod", FunctionVersion="2", Description="orders")
    lam.create_alias(FunctionName="listOrders", Name="dev", FunctionVersion="$LATEST")

    rest = apigw.create_rest_api(name=HAND_BUILT_API, description="inventory and orders (built in the console)")
    api_id = rest["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    account = out["functions"]["getInventory"].split(":")[4]
    for route in HAND_BUILT_ROUTES:
        resource = apigw.create_resource(restApiId=api_id, parentId=root, pathPart=route.path)
        where = {"restApiId": api_id, "resourceId": resource["id"], "httpMethod": route.method}
        apigw.put_method(**where, authorizationType="NONE")
        apigw.put_integration(**where, type="AWS_PROXY", integrationHttpMethod="POST", uri=alias_uri(region, out["functions"][route.function]))
        for alias in ("dev", "prod"):
            lam.add_permission(
                FunctionName=route.function,
                Qualifier=alias,
                StatementId=f"console-{route.method}-{route.path}-{alias}",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/*/{route.method}/{route.path}",
            )
    deployment = apigw.create_deployment(restApiId=api_id, description="first deployment")["id"]
    for stage, description in (("dev", "development"), ("prod", "production")):
        apigw.create_stage(restApiId=api_id, stageName=stage, deploymentId=deployment, description=description, variables={"lambdaAlias": stage})
    apigw.create_domain_name(domainName=HAND_BUILT_DOMAIN, certificateArn=f"arn:aws:acm:us-east-1:{account}:certificate/{HAND_BUILT_DOMAIN.replace('.', '-')}")
    apigw.create_base_path_mapping(domainName=HAND_BUILT_DOMAIN, basePath="v1", restApiId=api_id, stage="prod")
    out["api"] = {"id": api_id, "deployment": deployment}
    return out
