"""CloudTrail events, as EventBridge delivers them, mapped to the live reads they make stale.

AWS records every Lambda and API Gateway control-plane write in CloudTrail. An EventBridge
rule matching detail-type "AWS API Call via CloudTrail" (``event_pattern()``) forwards them
to an SQS queue, which ``controller.loop.consumer`` long-polls. ``parse_event`` turns one message
body into a ``Touch`` (the keys of the ``Scope`` reads the change made stale, and what it was
about), an ``Ignored`` with a one-line reason, or raises ``MalformedEvent``. Nothing else is
ever raised, whatever the body.

Where the shapes come from
--------------------------
- The envelope (``version``, ``id``, ``detail-type``, ``source``, ``account``, ``time``,
  ``region``, ``resources``, ``detail``) and the pattern fields: "AWS service events
  delivered via AWS CloudTrail" (docs.aws.amazon.com/eventbridge/latest/userguide/
  eb-service-event-cloudtrail.html), "AWS Lambda events" and "Amazon API Gateway events" of
  the EventBridge events reference (.../eventbridge/latest/ref/events-ref-lambda.html,
  events-ref-apigateway.html): ``source`` aws.lambda / aws.apigateway, ``detail.eventSource``
  lambda.amazonaws.com / apigateway.amazonaws.com. The same page says a trail that logs
  management events is required for EventBridge to receive these events; "Receiving read-only
  management events from AWS services" says a rule in state ENABLED gets no read-only ones.
- The record (``detail``): "CloudTrail record contents" and "CloudTrail userIdentity element"
  of the CloudTrail user guide: ``eventSource``, ``eventName``, ``eventID``, ``eventTime``,
  ``userAgent``, ``errorCode`` (the call failed), ``readOnly``, ``requestParameters``
  (``null`` when the call had none, or failed early), ``userIdentity.arn`` and, for a role
  session, ``userIdentity.sessionContext.sessionIssuer.arn`` (the role's ARN, with its path).
- Lambda: "Logging AWS Lambda API calls using AWS CloudTrail" (Lambda developer guide): the
  ``eventName`` may carry the API version it was made with (``GetFunction20150331``; in
  practice ``UpdateAlias20150331``, ``AddPermission20150331v2``, ``UpdateFunctionCode20150331v2``,
  and unsuffixed ``DeleteFunction`` in older records), so names are matched with and without
  a suffix. ``requestParameters`` use the API's names in lower camel case: ``functionName``
  (a name, a name with a qualifier, a partial or a full ARN: the FunctionName "Name formats"
  of the Lambda API reference), ``name`` (an alias), ``qualifier`` (AddPermission,
  RemovePermission: the alias whose policy changes).
- API Gateway: "Logging Amazon API Gateway API calls using AWS CloudTrail" (its example
  record is a ``GetResource`` with ``requestParameters`` ``restApiId``, ``resourceId``,
  ``template``); event names carry no suffix. Path parameters are top-level (``restApiId``,
  ``stageName`` of UpdateStage, ``domainName``, ``basePath``) and a request body is nested
  under ``<operation>Input``: records of console calls, as CloudTrail's LookupEvents returns
  them, read ``{"restApiId": ..., "createStageInput": {"stageName": ..., "deploymentId": ...},
  "template": false}`` and ``{"restApiId": ..., "createDeploymentInput": {"stageName": ""}}``
  (no AWS page shows these). So a field is looked up at the top, then one level down.
- API Gateway v2 (HTTP and WebSocket APIs): its records share the event source and some names
  (``CreateStage``, ``UpdateIntegration``...) but carry ``apiId``, not ``restApiId``: they are
  ignored, since Pointsman manages REST APIs. Its API mapping calls (``CreateApiMapping``...,
  with ``domainName``) are followed: a custom domain's mappings to REST APIs can be made with
  them too.
- No example record was found for UpdateStage, the base path mapping calls, ImportRestApi,
  the domain name calls or v2's mapping calls: their fields are taken to be those of the
  API's path and body, as above (a body field is found one level down either way).

Decisions
---------
- AddPermission/RemovePermission without a qualifier change the function's own policy, which
  Pointsman does not manage: ``Ignored``. A missing field that an event of that name always
  has (``functionName``, ``restApiId``, ``domainName``) makes the event ``MalformedEvent``.
- Pointsman's own writes are ``Ignored``: its user agent (``pointsman/VERSION``, set with
  botocore's ``user_agent_extra``) or a principal in ``ignore_principals``. An assumed-role
  session ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` is the role
  ``arn:aws:iam::ACCOUNT:role[/PATH]/ROLE``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.model import Drift

DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENT_SOURCES = ("aws.lambda", "aws.apigateway")
_SOURCE_OF = {"lambda.amazonaws.com": "aws.lambda", "apigateway.amazonaws.com": "aws.apigateway"}
# No event needs more: an EventBridge event is at most 256 KB (an SNS envelope escapes it once
# more). This bounds what one broken or hostile message costs.
MAX_BODY = 1024 * 1024
# controller.aws.clients.USER_AGENT is "pointsman/VERSION"; botocore appends it after a space.
_OWN_AGENT = re.compile(r"(?:^|[\s(\[,])pointsman/")

Key = tuple[str, ...]

# The FunctionName "Name formats" of the Lambda API reference:
# arn:aws:lambda:us-east-1:123456789012:function:NAME[:QUALIFIER], 123456789012:function:NAME[:QUALIFIER], NAME[:QUALIFIER]
_FUNCTION_RE = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:)?(?:[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,140})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # a REST API id (10 characters in practice)
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9.*-]{0,252}$")  # a custom domain name, wildcard ones too
_ROLE_RE = re.compile(
    r"^arn:(?P<partition>[^:]+):(?:sts::(?P<sts_account>\d{12}):assumed-role/(?P<session_role>[^/]+)(?:/.*)?"
    r"|iam::(?P<iam_account>\d{12}):role/(?:.*/)?(?P<role>[^/]+))$"
)
_SUFFIX_RE = re.compile(r"20\d{6}(?:v\d+)?$")  # Lambda's API version in an event name


class MalformedEvent(Exception):
    """A message that is not a usable event; its text is one line."""


@dataclass(frozen=True)
class Ignored:
    """An event that changed nothing Pointsman reads, or that Pointsman made; ``reason`` is one line."""

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
    event_time: str = ""  # ISO 8601, as CloudTrail writes it
    actor: str = ""
    target: str = ""  # "getProducts:prod", "a1b2c3/prod", "myapi.com/v1"
    operation: str = ""  # "lambda UpdateAlias"
    source_ip: str = ""  # sourceIPAddress: an address, or an AWS service's name
    user_agent: str = ""  # the console, the CLI, an SDK...
    account: str = ""  # recipientAccountId: the account the change was made in
    region: str = ""  # awsRegion

    def who(self) -> dict[str, str]:
        """Who made the change and when, as kept with the drift it caused (history, ``/api/status``,
        notifications): the caller's ARN, source IP, user agent, the call and the event's time."""
        return {
            "arn": self.actor,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "event": self.operation,
            "event_time": self.event_time,
            "event_id": self.event_id,
        }


@dataclass(frozen=True)
class _Change:
    keys: tuple[Key, ...]
    target: str  # "getProducts:prod", "a1b2c3/prod", "myapi.com/v1"
    functions: frozenset[str] = frozenset()
    api_ids: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()


_Builder = Callable[[Mapping[str, Any]], _Change | Ignored]


# ------------------------------------------------------------------ fields of requestParameters


def _clip(value: object, size: int = 80) -> str:
    """Any value as a short line of text, for a reason or a message."""
    return " ".join(str(value)[: size * 4].split())[:size]


def _find(params: Mapping[str, Any], name: str) -> Any:
    """A field at the top of requestParameters, or in a request body nested one level down."""
    if name in params:
        return params[name]
    for value in params.values():
        if isinstance(value, dict) and name in value:
            return value[name]
    return None


def _text(params: Mapping[str, Any], name: str) -> str:
    value = _find(params, name)
    return value if isinstance(value, str) else ""


def _function(params: Mapping[str, Any]) -> tuple[str, str]:
    raw = params.get("functionName")
    if not isinstance(raw, str) or not raw:
        raise MalformedEvent("requestParameters.functionName is missing")
    match = _FUNCTION_RE.fullmatch(raw)
    if not match:
        raise MalformedEvent(f"requestParameters.functionName {_clip(raw)!r} is not a function name or ARN")
    return match["name"], match["qualifier"] or ""


def _checked(value: str, pattern: re.Pattern[str], field: str) -> str:
    if not value:
        raise MalformedEvent(f"requestParameters.{field} is missing")
    if not pattern.fullmatch(value):
        raise MalformedEvent(f"requestParameters.{field} {_clip(value)!r} is not valid")
    return value


# ------------------------------------------------------------------ what each event changes


def _alias(params: Mapping[str, Any]) -> _Change:
    function, qualifier = _function(params)
    name = params.get("name")
    alias = name if isinstance(name, str) and name else qualifier  # "getProducts:prod" alone names it too
    if not alias:
        raise MalformedEvent("requestParameters.name is missing")
    return _Change((("function", function), ("policy", function, alias)), f"{function}:{alias}", functions=frozenset({function}))


def _permission(params: Mapping[str, Any]) -> _Change | Ignored:
    function, in_name = _function(params)
    given = params.get("qualifier")
    qualifier = given if isinstance(given, str) and given else in_name
    if not qualifier:  # the unqualified function's own policy: Pointsman manages alias policies only
        return Ignored(f"the policy of {function} itself, not of an alias: not managed by Pointsman")
    return _Change((("policy", function, qualifier),), f"{function}:{qualifier}", functions=frozenset({function}))


def _versions(params: Mapping[str, Any]) -> _Change:
    function, _ = _function(params)  # a new version, or $LATEST's code or configuration
    return _Change((("versions", function),), function, functions=frozenset({function}))


def _whole_function(params: Mapping[str, Any]) -> _Change:
    function, qualifier = _function(params)
    target = f"{function}:{qualifier}" if qualifier else function
    return _Change((("function", function), ("versions", function)), target, functions=frozenset({function}))


def _api_keys(api_id: str, what: tuple[str, ...]) -> tuple[Key, ...]:
    keys: list[Key] = [(name, api_id) for name in what]
    if "resources" in what:
        keys.append(("routes", api_id))  # worked out from the resources
    return tuple(keys)


def _rest_api_id(params: Mapping[str, Any]) -> str | Ignored:
    api_id = params.get("restApiId")
    if api_id is None and isinstance(params.get("apiId"), str):
        return Ignored(f"API Gateway v2 API {_clip(params['apiId'], 40)} (HTTP or WebSocket): Pointsman manages REST APIs")
    return _checked(api_id if isinstance(api_id, str) else "", _ID_RE, "restApiId")


def _rest_api_part(*what: str) -> _Builder:
    """A change inside one REST API: its stages, deployments, or resources and integrations."""

    def build(params: Mapping[str, Any]) -> _Change | Ignored:
        api_id = _rest_api_id(params)
        if isinstance(api_id, Ignored):
            return api_id
        stage = _text(params, "stageName")  # UpdateStage's path, createStageInput, createDeploymentInput
        target = f"{api_id}/{_clip(stage, 128)}" if stage else api_id
        return _Change(_api_keys(api_id, what), target, api_ids=frozenset({api_id}))

    return build


def _new_rest_api(params: Mapping[str, Any]) -> _Change:
    # CreateRestApi's name is in createRestApiInput; ImportRestApi's comes with its definition.
    return _Change((("rest_apis",),), _clip(_text(params, "name") or "a new REST API", 128))


def _whole_rest_api(params: Mapping[str, Any]) -> _Change | Ignored:
    api_id = _rest_api_id(params)
    if isinstance(api_id, Ignored):
        return api_id
    keys = (("rest_apis",), *_api_keys(api_id, ("stages", "resources", "deployments")))
    return _Change(keys, api_id, api_ids=frozenset({api_id}))


def _mapping(params: Mapping[str, Any]) -> _Change:
    domain = _checked(_text(params, "domainName"), _DOMAIN_RE, "domainName")
    base = _text(params, "basePath") or _text(params, "apiMappingKey")  # v1 base path, v2 mapping key
    target = f"{domain}/{_clip(base, 128)}" if base else domain
    return _Change((("mappings", domain),), target, domains=frozenset({domain}))


_RESOURCE_CALLS = tuple(
    f"{verb}{noun}"
    for noun, verbs in (
        ("Resource", ("Create", "Update", "Delete")),
        ("Method", ("Put", "Update", "Delete")),
        ("MethodResponse", ("Put", "Update", "Delete")),
        ("Integration", ("Put", "Update", "Delete")),
        ("IntegrationResponse", ("Put", "Update", "Delete")),
    )
    for verb in verbs
)

# Each source's event names (Lambda's without their API-version suffix) -> what the call changed.
_EVENTS: dict[str, dict[str, _Builder]] = {
    "aws.lambda": {
        "CreateAlias": _alias,
        "UpdateAlias": _alias,
        "DeleteAlias": _alias,
        "AddPermission": _permission,
        "RemovePermission": _permission,
        "PublishVersion": _versions,
        "UpdateFunctionCode": _versions,
        "UpdateFunctionConfiguration": _versions,  # $LATEST's environment
        "CreateFunction": _whole_function,
        "DeleteFunction": _whole_function,
    },
    "aws.apigateway": {
        **dict.fromkeys(("CreateStage", "UpdateStage", "DeleteStage"), _rest_api_part("stages")),
        "CreateDeployment": _rest_api_part("deployments", "stages"),  # with a stageName it creates or moves a stage
        **dict.fromkeys(("UpdateDeployment", "DeleteDeployment"), _rest_api_part("deployments")),
        **dict.fromkeys(_RESOURCE_CALLS, _rest_api_part("resources")),
        **dict.fromkeys(("CreateRestApi", "ImportRestApi"), _new_rest_api),
        **dict.fromkeys(("UpdateRestApi", "PutRestApi", "DeleteRestApi"), _whole_rest_api),
        **dict.fromkeys(("CreateBasePathMapping", "UpdateBasePathMapping", "DeleteBasePathMapping"), _mapping),
        **dict.fromkeys(("CreateApiMapping", "UpdateApiMapping", "DeleteApiMapping"), _mapping),  # v2's calls on the same mappings
        **dict.fromkeys(("CreateDomainName", "DeleteDomainName"), _mapping),  # a domain's mappings come and go with it
    },
}
EVENT_NAMES: dict[str, tuple[str, ...]] = {source: tuple(sorted(table)) for source, table in _EVENTS.items()}


def handled_event_names() -> dict[str, list[str]]:
    """The operations each source's followed changes are recorded under (Lambda's without the
    API-version suffix its event names carry)."""
    return {source: list(names) for source, names in EVENT_NAMES.items()}


def event_pattern() -> dict[str, Any]:
    """The EventBridge event pattern of the rule that forwards these events to the queue.
    A Lambda name matches bare and with its API version (``UpdateAlias``, ``UpdateAlias20150331``),
    and not a longer operation (``DeleteFunctionConcurrency20171031``)."""
    lambda_names: list[Any] = []
    for name in EVENT_NAMES["aws.lambda"]:
        lambda_names += [name, {"prefix": f"{name}20"}]
    return {
        "source": list(EVENT_SOURCES),
        "detail-type": [DETAIL_TYPE],
        "detail": {
            "eventSource": sorted(_SOURCE_OF),
            "eventName": lambda_names + list(EVENT_NAMES["aws.apigateway"]),
        },
    }


# ------------------------------------------------------------------ reading a message


def _load(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedEvent(f"{what} is not JSON ({type(exc).__name__})") from None


def _record(body: str | bytes) -> dict[str, Any] | Ignored:
    """The CloudTrail record a message carries: from an EventBridge event, an SNS notification of
    one, or bare."""
    if len(body) > MAX_BODY:
        raise MalformedEvent(f"message of {len(body)} bytes is larger than any event ({MAX_BODY} at most)")
    value = _load(body, "message")
    for _ in range(2):  # an SNS notification may wrap the EventBridge event
        if isinstance(value, dict) and value.get("Type") == "Notification" and isinstance(value.get("Message"), str):
            value = _load(value["Message"], "SNS notification's Message")
    if not isinstance(value, dict):
        raise MalformedEvent(f"message is JSON {type(value).__name__}, not an event object")
    if "eventSource" in value and "eventName" in value:
        return value  # a bare CloudTrail record
    if "detail" not in value:
        raise MalformedEvent("message has no 'detail': not an EventBridge event")
    detail_type = value.get("detail-type")
    if detail_type is not None and detail_type != DETAIL_TYPE:
        return Ignored(f"not a CloudTrail API call: detail-type {_clip(detail_type)!r}")
    detail = value["detail"]
    if not isinstance(detail, dict):
        raise MalformedEvent(f"event detail is {type(detail).__name__}, not an object")
    return detail


def _actor(record: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Who made the call: the caller's ARN, and every ARN it may be named by (the role of a role session)."""
    identity = record.get("userIdentity")
    if not isinstance(identity, dict):
        return "unknown caller", []
    names = [identity["arn"]] if isinstance(identity.get("arn"), str) and identity["arn"] else []
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    if isinstance(issuer, dict) and isinstance(issuer.get("arn"), str):
        names.append(issuer["arn"])
    shown = names[0] if names else str(identity.get("invokedBy") or identity.get("type") or "unknown caller")
    return _clip(shown, 200), names


def _role(arn: str) -> tuple[str, str, str] | None:
    """``(partition, account, role name)`` of a role ARN or of a session of that role."""
    match = _ROLE_RE.fullmatch(arn)
    if not match:
        return None
    return match["partition"], match["sts_account"] or match["iam_account"], match["session_role"] or match["role"]


def _is_principal(names: list[str], principals: Collection[str]) -> bool:
    for principal in principals:
        role = _role(principal)
        for name in names:
            if name == principal or (role is not None and _role(name) == role):
                return True
    return False


def parse_event(body: str | bytes, *, ignore_principals: Collection[str] = ()) -> Touch | Ignored:
    """What an SQS message body says changed; ``MalformedEvent`` when it is not a usable event."""
    try:
        return _parse(body, ignore_principals)
    except MalformedEvent:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:  # a shape no check foresaw
        raise MalformedEvent(f"unexpected event shape ({type(exc).__name__})") from None


def _parse(body: str | bytes, ignore_principals: Collection[str]) -> Touch | Ignored:
    record = _record(body)
    if isinstance(record, Ignored):
        return record
    event_source, event_name = record.get("eventSource"), record.get("eventName")
    if not isinstance(event_source, str) or not isinstance(event_name, str):
        raise MalformedEvent("CloudTrail record without eventSource and eventName")
    source = _SOURCE_OF.get(event_source)
    if source is None:
        return Ignored(f"event from {_clip(event_source)}, not Lambda or API Gateway")
    operation = _SUFFIX_RE.sub("", event_name) if source == "aws.lambda" else event_name
    what = f"{source.removeprefix('aws.')} {_clip(operation)}"
    if record.get("errorCode"):
        return Ignored(f"{what} failed ({_clip(record['errorCode'])}): nothing changed")
    if record.get("readOnly") is True:
        return Ignored(f"{what} is a read: nothing changed")
    actor, names = _actor(record)
    user_agent = record.get("userAgent")
    if isinstance(user_agent, str) and _OWN_AGENT.search(user_agent):
        return Ignored(f"{what} made by Pointsman itself (user agent)")
    if ignore_principals and _is_principal(names, ignore_principals):
        return Ignored(f"{what} made by Pointsman itself ({actor})")
    build = _EVENTS[source].get(operation)
    if build is None:
        return Ignored(f"{what}: not a change Pointsman follows")
    params = record.get("requestParameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise MalformedEvent(f"requestParameters of {what} is {type(params).__name__}, not an object")
    change = build(params)
    if isinstance(change, Ignored):
        return Ignored(f"{what}: {change.reason}")
    return Touch(
        reason=f"{what} {change.target} by {actor}",
        keys=tuple(dict.fromkeys(change.keys)),
        functions=change.functions,
        api_ids=change.api_ids,
        domains=change.domains,
        event_id=_clip(record.get("eventID") or "", 100),
        event_time=_clip(record.get("eventTime") or "", 40),
        actor=actor,
        target=change.target,
        operation=what,
        source_ip=_clip(record.get("sourceIPAddress") or "", 100),
        user_agent=_clip(record.get("userAgent") or "", 200),
        account=_clip(str(record.get("recipientAccountId") or _account_of(record)), 20),
        region=_clip(str(record.get("awsRegion") or ""), 40),
    )


def _account_of(record: Mapping[str, Any]) -> str:
    """The account of the caller, when the record names no recipient account (older records)."""
    identity = record.get("userIdentity")
    account = identity.get("accountId") if isinstance(identity, dict) else None
    return account if isinstance(account, str) else ""


# ------------------------------------------------------------------ which drift an event explains


def _subjects(kind: str, key: str, context: Mapping[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """The functions, REST API ids and domains a resource belongs to (what events name)."""
    first = key.split("/", 1)[0]
    if kind.startswith("lambda_"):
        return {first}, set(), set()
    if kind == "base_path_mapping":
        return set(), set(), {first}
    api_id = context.get("api_id")
    return set(), ({api_id} if isinstance(api_id, str) and api_id else set()), set()


def blame(drift: Drift, touches: Sequence[Touch]) -> Touch | None:
    """The event that most likely made ``drift``: among the events on its function, REST API or
    domain, one whose target names the resource itself (``getProducts:prod`` for
    ``lambda_alias/getProducts/prod``) before the others, then the newest. None when no event
    concerns it (a drift found by a scheduled scan, or one that predates the events)."""
    resource = drift.live or drift.desired
    context = resource.context if resource is not None else {}
    key = drift.resource.split("/", 1)[1] if "/" in drift.resource else drift.resource
    functions, api_ids, domains = _subjects(drift.kind, key, context)
    best: tuple[int, str] | None = None
    chosen: Touch | None = None
    for touch in touches:
        if not (touch.functions & functions or touch.api_ids & api_ids or touch.domains & domains):
            continue
        target = touch.target.replace(":", "/")
        api_id, api_name = context.get("api_id"), context.get("api")
        if isinstance(api_id, str) and isinstance(api_name, str) and target.split("/", 1)[0] == api_id:
            target = api_name + target[len(api_id) :]  # events name an API by its id, resources by its name
        named = 1 if target and (f"/{target}/" in f"/{key}/" or key.startswith(target + "/") or key == target) else 0
        rank = (named, touch.event_time)
        if best is None or rank >= best:
            best, chosen = rank, touch
    return chosen
