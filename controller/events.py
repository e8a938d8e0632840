"""CloudTrail events, as EventBridge delivers them, mapped to the live reads they make stale.

AWS records every Lambda and API Gateway control-plane write in CloudTrail. An EventBridge
rule matching detail-type "AWS API Call via CloudTrail" forwards them (to an SQS queue, for
``controller.consumer``). The message body is the EventBridge envelope::

    {"version": "0", "id": "...", "detail-type": "AWS API Call via CloudTrail",
     "source": "aws.lambda", "account": "123456789012", "region": "us-east-1",
     "detail": {<the CloudTrail record>}}

and the CloudTrail record (the "CloudTrail record contents" of the CloudTrail user guide)
carries ``eventSource`` (``lambda.amazonaws.com``), ``eventName``, ``userIdentity``,
``userAgent``, ``requestParameters``, ``errorCode`` (a failed call) and ``readOnly``.
Lambda's event names carry the API version they were made with (``UpdateAlias20150331``,
``AddPermission20150331v2``: "Logging AWS Lambda API calls using AWS CloudTrail");
their ``requestParameters`` use the API's field names in lower camel case (``functionName``,
``name``, ``qualifier``), and ``functionName`` may be a name, a partial or full ARN, or a
name with a qualifier, as the Lambda API accepts. API Gateway's use ``restApiId``,
``stageName``, ``domainName`` and ``basePath``.

``parse_event`` turns a message body into a ``Touch``: the keys of the ``Scope`` reads the
change made stale (``("function", F)`` for ListAliases, ``("policy", F, A)``, ``("stages",
API_ID)``...), or an ``Ignored`` with its reason, or raises ``MalformedEvent``. Nothing else
is ever raised, whatever the body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from controller.aws import USER_AGENT

DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENT_SOURCES = ("aws.lambda", "aws.apigateway")
_SERVICE_OF = {"lambda.amazonaws.com": "aws.lambda", "apigateway.amazonaws.com": "aws.apigateway"}
MAX_BODY = 256 * 1024  # SQS's largest message
_OWN_AGENT = USER_AGENT.split("/", 1)[0] + "/"  # "pointsman/": any release of Pointsman

Key = tuple[str, ...]

# arn:aws:lambda:us-east-1:123456789012:function:NAME[:QUALIFIER], 123456789012:function:NAME, NAME[:QUALIFIER]
# (the FunctionName pattern of the Lambda API reference)
_FUNCTION_RE = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:)?(?:[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)
_ASSUMED_ROLE_RE = re.compile(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d+):assumed-role/(?P<role>[^/]+)/")


class MalformedEvent(Exception):
    """A message that is not an event at all; one line."""


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Touch:
    """What one event changed: the reads to forget, and what they are about."""

    reason: str  # "lambda UpdateAlias getProducts:prod by arn:aws:iam::123456789012:user/alice"
    keys: tuple[Key, ...]
    functions: frozenset[str] = frozenset()
    api_ids: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    event_id: str = ""
    event_time: str = ""
    actor: str = ""


# ------------------------------------------------------------------ what each event changes


def _function(params: Mapping[str, Any]) -> tuple[str, str | None]:
    raw = params.get("functionName")
    if not isinstance(raw, str):
        raise MalformedEvent("requestParameters.functionName is missing")
    match = _FUNCTION_RE.match(raw)
    if not match:
        raise MalformedEvent(f"requestParameters.functionName {raw[:100]!r} is not a function name or ARN")
    return match["name"], match["qualifier"]


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"requestParameters.{name} is missing")
    return value


def _alias(params: Mapping[str, Any]) -> tuple[str, list[Key], str]:
    function, qualifier = _function(params)
    alias = params.get("name") if isinstance(params.get("name"), str) else qualifier
    if not alias:
        raise MalformedEvent("requestParameters.name is missing")
    return function, [("function", function), ("policy", function, alias)], f"{function}:{alias}"


def _permission(params: Mapping[str, Any]) -> tuple[str, list[Key], str]:
    function, in_name = _function(params)
    qualifier = params.get("qualifier") if isinstance(params.get("qualifier"), str) else in_name
    if not qualifier:  # the unqualified function's policy: Pointsman manages alias policies only
        return function, [], function
    return function, [("policy", function, qualifier)], f"{function}:{qualifier}"


def _versions(params: Mapping[str, Any]) -> tuple[str, list[Key], str]:
    function, _ = _function(params)
    return function, [("versions", function)], function


def _whole_function(params: Mapping[str, Any]) -> tuple[str, list[Key], str]:
    function, _ = _function(params)
    return function, [("function", function), ("versions", function)], function


_LAMBDA: dict[str, Callable[[Mapping[str, Any]], tuple[str, list[Key], str]]] = {
    "CreateAlias": _alias,
    "UpdateAlias": _alias,
    "DeleteAlias": _alias,
    "AddPermission": _permission,
    "RemovePermission": _permission,
    "PublishVersion": _versions,
    "UpdateFunctionCode": _versions,
    "UpdateFunctionConfiguration": _versions,
    "CreateFunction": _whole_function,
    "DeleteFunction": _whole_function,
}


def _api_keys(api_id: str, *what: str) -> list[Key]:
    keys: list[Key] = [(name, api_id) for name in what]
    if "resources" in what:
        keys.append(("routes", api_id))  # worked out from the resources
    return keys


_API_STAGES = ("stages",)
_API_RESOURCES = ("resources",)
_API_DEPLOYMENTS = ("deployments", "stages")  # CreateDeployment may create or move a stage
_API_WHOLE = ("stages", "resources", "deployments")
_APIGATEWAY_API: dict[str, tuple[str, ...]] = {
    "CreateStage": _API_STAGES,
    "UpdateStage": _API_STAGES,
    "DeleteStage": _API_STAGES,
    "CreateDeployment": _API_DEPLOYMENTS,
    "DeleteDeployment": _API_DEPLOYMENTS,
    "UpdateDeployment": _API_DEPLOYMENTS,
    **dict.fromkeys(
        (
            "PutIntegration", "UpdateIntegration", "DeleteIntegration",
            "PutIntegrationResponse", "UpdateIntegrationResponse", "DeleteIntegrationResponse",
            "PutMethod", "UpdateMethod", "DeleteMethod",
            "PutMethodResponse", "UpdateMethodResponse", "DeleteMethodResponse",
            "CreateResource", "UpdateResource", "DeleteResource",
        ),
        _API_RESOURCES,
    ),
    **dict.fromkeys(("PutRestApi", "ImportRestApi", "UpdateRestApi"), _API_WHOLE),
}
_APIGATEWAY_LIST = ("CreateRestApi", "DeleteRestApi", "ImportRestApi", "UpdateRestApi")  # names and ids of APIs
_APIGATEWAY_MAPPING = ("CreateBasePathMapping", "UpdateBasePathMapping", "DeleteBasePathMapping")


def handled_event_names() -> dict[str, list[str]]:
    """The operations each source's changes are recorded under. Lambda's event names end in
    the API version the call was made with (``UpdateAlias20150331``,
    ``AddPermission20150331v2``), so the rule matches them by prefix."""
    apigateway_names = sorted(set(_APIGATEWAY_API) | set(_APIGATEWAY_LIST) | set(_APIGATEWAY_MAPPING))
    return {"aws.lambda": sorted(_LAMBDA), "aws.apigateway": apigateway_names}


def event_pattern() -> dict[str, Any]:
    """The EventBridge event pattern of the rule that forwards these events to the queue."""
    names = handled_event_names()
    return {
        "source": list(EVENT_SOURCES),
        "detail-type": [DETAIL_TYPE],
        "detail": {
            "eventSource": sorted(_SERVICE_OF),
            "eventName": [{"prefix": name} for name in names["aws.lambda"]] + names["aws.apigateway"],
        },
    }


# ------------------------------------------------------------------ reading a message


def _record(body: str | bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise MalformedEvent(f"message of {len(body)} bytes is larger than any event ({MAX_BODY} at most)")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedEvent(f"message is not JSON ({type(exc).__name__})") from None
    for _ in range(2):  # an SNS notification may wrap the EventBridge event
        if isinstance(value, dict) and value.get("Type") == "Notification" and isinstance(value.get("Message"), str):
            try:
                value = json.loads(value["Message"])
            except (ValueError, RecursionError):
                raise MalformedEvent("SNS notification whose Message is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"message is JSON {type(value).__name__}, not an event object")
    if "eventSource" in value and "eventName" in value:
        return value  # a bare CloudTrail record
    if "detail" not in value:
        raise MalformedEvent("message has no 'detail': not an EventBridge event")
    detail = value["detail"]
    if not isinstance(detail, dict):
        raise MalformedEvent(f"event detail is {type(detail).__name__}, not an object")
    if value.get("detail-type") not in (DETAIL_TYPE, None):
        return {"_unrelated": f"detail-type {str(value.get('detail-type'))[:80]!r}"}
    return detail


def _actor(record: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Who made the call: the caller's ARN, and every ARN it may be named by (the role of an assumed-role session)."""
    identity: dict[str, Any] = record["userIdentity"] if isinstance(record.get("userIdentity"), dict) else {}
    arn = identity["arn"] if isinstance(identity.get("arn"), str) else ""
    names = [arn] if arn else []
    context: dict[str, Any] = identity["sessionContext"] if isinstance(identity.get("sessionContext"), dict) else {}
    issuer = context.get("sessionIssuer")
    if isinstance(issuer, dict) and isinstance(issuer.get("arn"), str):
        names.append(issuer["arn"])
    return arn or str(identity.get("type") or "unknown caller"), names


def _is_principal(names: list[str], principals: Collection[str]) -> bool:
    for name in names:
        for principal in principals:
            if name == principal:
                return True
            assumed = _ASSUMED_ROLE_RE.match(name)
            # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION is arn:aws:iam::ACCOUNT:role[/path]/ROLE
            if assumed and principal.startswith(f"arn:{assumed['partition']}:iam::{assumed['account']}:role/"):
                if principal.rsplit("/", 1)[-1] == assumed["role"]:
                    return True
    return False


def parse_event(body: str | bytes, *, ignore_principals: Collection[str] = ()) -> Touch | Ignored:
    """What an SQS message body says changed; ``MalformedEvent`` when it is not an event."""
    try:
        return _parse(body, ignore_principals)
    except MalformedEvent:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:  # a shape no check foresaw: still one line
        raise MalformedEvent(f"unexpected event shape ({type(exc).__name__})") from None


def _parse(body: str | bytes, ignore_principals: Collection[str]) -> Touch | Ignored:
    record = _record(body)
    if "_unrelated" in record:
        return Ignored(f"not a CloudTrail API call: {record['_unrelated']}")
    event_source, event_name = record.get("eventSource"), record.get("eventName")
    if not isinstance(event_source, str) or not isinstance(event_name, str):
        raise MalformedEvent("CloudTrail record without eventSource and eventName")
    source = _SERVICE_OF.get(event_source)
    if source is None:
        return Ignored(f"event from {event_source[:80]}, not Lambda or API Gateway")
    actor, names = _actor(record)
    what = f"{source.removeprefix('aws.')} {event_name[:80]}"
    if record.get("errorCode"):
        return Ignored(f"{what} failed ({str(record['errorCode'])[:80]}): nothing changed")
    user_agent = str(record["userAgent"]) if isinstance(record.get("userAgent"), str) else ""
    if _OWN_AGENT in user_agent:
        return Ignored(f"{what} made by Pointsman itself (user agent)")
    if ignore_principals and _is_principal(names, ignore_principals):
        return Ignored(f"{what} made by Pointsman itself ({actor})")
    params = record.get("requestParameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise MalformedEvent(f"requestParameters of {what} is {type(params).__name__}, not an object")
    touch = _lambda(event_name, params) if source == "aws.lambda" else _apigateway(event_name, params)
    if touch is None:
        return Ignored(f"{what}: not a change Pointsman follows")
    keys, target, functions, api_ids, domains = touch
    if not keys:
        return Ignored(f"{what} {target}: changes nothing Pointsman manages")
    return Touch(
        reason=f"{what.split(' ')[0]} {_operation(event_name)} {target} by {actor}",
        keys=tuple(dict.fromkeys(keys)),
        functions=frozenset(functions),
        api_ids=frozenset(api_ids),
        domains=frozenset(domains),
        event_id=str(record.get("eventID") or ""),
        event_time=str(record.get("eventTime") or ""),
        actor=actor,
    )


def _operation(event_name: str) -> str:
    """``UpdateAlias20150331`` -> ``UpdateAlias``; ``AddPermission20150331v2`` -> ``AddPermission``."""
    return re.sub(r"\d{8}(v\d+)?$", "", event_name)


_Found = tuple[list[Key], str, set[str], set[str], set[str]]


def _lambda(event_name: str, params: Mapping[str, Any]) -> _Found | None:
    builder = _LAMBDA.get(_operation(event_name))
    if builder is None:
        return None
    function, keys, target = builder(params)
    return keys, target, {function}, set(), set()


def _apigateway(event_name: str, params: Mapping[str, Any]) -> _Found | None:
    if event_name in _APIGATEWAY_MAPPING:
        domain = _text(params, "domainName")
        base = params.get("basePath") if isinstance(params.get("basePath"), str) else ""
        return [("mappings", domain)], f"{domain}/{base}".rstrip("/"), set(), set(), {domain}
    keys: list[Key] = []
    api_ids: set[str] = set()
    target = ""
    if event_name in _APIGATEWAY_LIST:
        keys.append(("rest_apis",))
        target = str(params.get("name") or params.get("restApiId") or "")[:100]
    if event_name in _APIGATEWAY_API:
        api_id = _text(params, "restApiId")
        api_ids.add(api_id)
        keys += _api_keys(api_id, *_APIGATEWAY_API[event_name])
        stage = params.get("stageName")
        target = f"{api_id}/{stage}" if isinstance(stage, str) else api_id
    elif event_name == "DeleteRestApi" and isinstance(params.get("restApiId"), str):
        api_ids.add(params["restApiId"])
        keys += _api_keys(params["restApiId"], *_API_WHOLE)
    if not keys:
        return None
    return keys, target, set(), api_ids, set()
