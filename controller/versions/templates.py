"""Header-selected (Stripe-style) API versions on API Gateway REST APIs + Lambda aliases.

A versioned method is an AWS (non-proxy) Lambda integration whose URI names the alias as a
path parameter (``...function:NAME:{alias}/invocations``). Its request mapping template reads
the requested version from a header (``Version: 2022-05-03``) or from the Accept media type
(``Accept: application/vnd.acme.v2+json``), falls back to the stage's default version, and
overrides the ``alias`` path parameter with it when the stage exposes that version. Its one
integration response (the default) turns the function's proxy-shaped answer back into an HTTP
response.

A version the stage does not serve is answered without running any user code, by a call that
succeeds: the request template sends it to the stage's default alias (which exists, and which
API Gateway may invoke) with ``X-Amz-Invocation-Type: DryRun``, so Lambda only validates the
call and answers 204 with no payload; the default response template selects the version again
from the request, sees that the stage does not serve it, and answers 400 with the versions the
stage supports. The design relies only on what AWS documents:

- the invocation type of a Lambda non-proxy (custom) integration is the integration request's
  ``X-Amz-Invocation-Type`` header (API Gateway developer guide, "Set up asynchronous invocation
  of the backend Lambda function"), and a request template may set integration request headers
  through ``$context.requestOverride.header`` ("Override your API's request and response
  parameters and status codes for REST APIs"; each override once, else 5XX);
- ``DryRun`` validates the parameters and that the caller may invoke the function, runs nothing,
  and answers 204 (Lambda API reference, Invoke: ``InvocationType``, ``StatusCode``);
- for a Lambda backend an integration response's ``selectionPattern`` is matched against the
  function's ``errorMessage``, never against an HTTP status (API Gateway API reference,
  IntegrationResponse ``selectionPattern``; OpenAPI extension
  ``x-amazon-apigateway-integration.responses``), and a call without a function error takes the
  default response: so nothing here depends on a status code reaching a selection pattern;
- an invoke Lambda rejects (alias not found 404, no permission 403, throttled 429) is a 500
  "Internal server error" before any integration response runs (Lambda developer guide,
  "Handle Lambda errors with an API Gateway API"): a served version's missing alias or
  permission is a 500, which is why the unserved path must call an alias that exists;
- ``$context.responseOverride.status`` sets the method's status from a response template
  (same override page, example 1: a 400 set in the default response's template).

A function error (Lambda's ``{"errorMessage", "errorType"}``) is a 500 ``{"message":
"Internal server error"}``, unless its message starts with a status and a colon
(``"404: no such user"``): that is how a function written for this integration signals an HTTP
error, answered as ``404 {"message": "no such user"}``.

Which versions a stage exposes, and its default, are two stage variables
(:data:`STAGE_VERSIONS_VAR`, :data:`STAGE_DEFAULT_VAR`), so one deployment serves every stage
and promoting a version on prod is a stage-variable change.

This module has three parts, all pure:

- the generators (:func:`lambda_uri`, :func:`request_parameters`, :func:`request_template`,
  :func:`integration_responses`, :func:`method_responses`): deterministic strings, byte for
  byte, so drift detection against the live templates is stable;
- :func:`select` and :func:`call_for`: a pure-Python reference of what the request template
  chooses;
- :func:`render_request` / :func:`render_response`: a renderer that evaluates API Gateway
  mapping templates with airspeed-ext (a Velocity engine), emulating API Gateway's ``$input``,
  ``$util``, ``$context`` and ``$stageVariables``. Where the emulation differs from API
  Gateway, the docstrings of those functions say so.

Selection rules (the template and :func:`select` implement the same ones):

- header selector: the value of the header whose name equals :attr:`Selector.header` in any
  letter case (when a request holds several such names, the last one in the header map wins),
  with leading and trailing whitespace and control characters removed (Java ``trim``); compared
  with the stage's versions exactly (case-sensitive);
- media-type selector: the Accept header (name in any letter case) split on ``,``; in each media
  range, parameters (``;q=0.9``, ``; charset=utf-8``) are dropped, the rest trimmed and
  lower-cased; the first range of the form ``<media_type>.<version>+json`` with a non-empty
  version gives the version. The version is therefore lower-case: a stage that serves
  media-type versions must list them in lower case (:func:`version_problems` says so). Quality
  values are not weighed: the first matching range wins, even with ``q=0``. Wildcards,
  ``application/json`` and ranges of other types are ignored;
- no version found (header absent, empty, or no matching range): the stage's default
  (``$stageVariables.pointsmanDefaultVersion``, trimmed);
- the version is served when it equals one of the stage's versions
  (``$stageVariables.pointsmanVersions`` split on ``,``, each trimmed, empty entries ignored);
  otherwise the call is a DryRun of the stage's default alias (the first listed version when
  the default is not listed; :data:`UNKNOWN_ALIAS` when the stage lists none, which Lambda
  rejects: a 500, as for any stage with nothing to serve).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

STAGE_VERSIONS_VAR = "pointsmanVersions"
STAGE_DEFAULT_VAR = "pointsmanDefaultVersion"
ALIAS_PARAM = "alias"
VERSION_PARAM = "version"  # http-proxy: the path parameter of the versioned route the proxy calls
STAGE_NAME_VAR = "pointsmanStage"  # http-proxy: the stage's own name, so the proxy calls its own stage
UNKNOWN_ALIAS = "pointsman-unknown-version"
INVOCATION_TYPE_HEADER = "X-Amz-Invocation-Type"  # the integration request header Lambda reads the invocation type from
DRY_RUN = "DryRun"  # Lambda validates the call (and the caller's permission), runs nothing, answers 204
STATUS_PREFIX = re.compile(r"(?s)([1-5][0-9][0-9]):.*")  # a function error message that names its status: "404: no such user"

CONTENT_TYPE = "application/json"
"""The content-type key of every generated template (requestTemplates / responseTemplates).

API Gateway applies a request template only to requests of that content type (or with none).
Use passthrough behaviour ``WHEN_NO_TEMPLATES`` (or ``NEVER``): a request of another content
type then gets 415 instead of reaching Lambda without a version choice."""

PASSTHROUGH_BEHAVIOR = "WHEN_NO_TEMPLATES"

LAMBDA_API_VERSION = "2015-03-31"

_HEADER_NAME = re.compile(r"[A-Za-z0-9!%&'*+.^_`|~-]+")  # an RFC 9110 token without '#' and '$' (VTL syntax)
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!&^_.+-]*")  # RFC 6838 without '#', '$'
_ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_FUNCTION_ARN = re.compile(r"arn:(aws[a-z-]*):lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,140}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_MEDIA_SUFFIX = "+json"


# ---------------------------------------------------------------------------------------------
# The selector
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Where a request names its version: a header, or the Accept header's media type.

    Exactly one of the two is set. ``header`` is a header name (matched in any letter case);
    ``media_type`` is a vendor type such as ``application/vnd.acme`` (matched in any letter
    case; the version is lower-cased, see the module docstring). Both are restricted to
    characters that are safe inside a VTL string literal (no ``$``, ``#``, quotes, backslashes).
    """

    header: str | None = None
    media_type: str | None = None

    def __post_init__(self) -> None:
        if (self.header is None) == (self.media_type is None):
            raise ValueError("a version selector names exactly one of header or media_type")
        if self.header is not None and not _HEADER_NAME.fullmatch(self.header):
            raise ValueError(f"version header {self.header!r} is not a valid header name")
        if self.media_type is not None:
            if not _MEDIA_TYPE.fullmatch(self.media_type) or self.media_type.endswith((".", "+")):
                raise ValueError(f"version media type {self.media_type!r} is not a media type like application/vnd.acme")

    def describe(self) -> str:
        """One line for humans: ``header Version`` or ``Accept application/vnd.acme.<version>+json``."""
        if self.header is not None:
            return f"header {self.header}"
        return f"Accept {self.media_type}.<version>{_MEDIA_SUFFIX}"


# ---------------------------------------------------------------------------------------------
# Integration configuration
# ---------------------------------------------------------------------------------------------


def lambda_uri(region: str, function_arn: str) -> str:
    """The integration URI of an AWS Lambda integration whose alias is the ``{alias}`` path parameter.

    ``arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}:{alias}/invocations``
    (the partition follows the function's: ``aws-cn``, ``aws-us-gov``). ``function_arn`` must be
    unqualified (no version or alias): the template supplies the qualifier.
    """
    match = _FUNCTION_ARN.fullmatch(function_arn)
    if match is None:
        raise ValueError(f"{function_arn!r} is not an unqualified Lambda function ARN")
    if not _REGION.fullmatch(region):
        raise ValueError(f"{region!r} is not an AWS region")
    partition = match.group(1)
    return f"arn:{partition}:apigateway:{region}:lambda:path/{LAMBDA_API_VERSION}/functions/{function_arn}:{{{ALIAS_PARAM}}}/invocations"


def request_parameters() -> dict[str, str]:
    """The integration's request parameters: a static ``alias`` the request template overrides.

    When the template does not run (another content type passed through), the call goes to
    :data:`UNKNOWN_ALIAS` and fails, rather than reaching some version by accident.
    """
    return {f"integration.request.path.{ALIAS_PARAM}": f"'{UNKNOWN_ALIAS}'"}


def method_responses() -> list[str]:
    """The method response status codes the integration responses map to."""
    return ["200", "400", "500"]


# ---------------------------------------------------------------------------------------------
# VTL generation
#
# Written for Velocity 1.7 as API Gateway runs it, and kept equally valid under airspeed:
# - every directive-only line ends with '##' (a comment that swallows the newline), so the
#   templates emit no stray whitespace whatever the engine's whitespace gobbling;
# - no bare '#if($x)' on values that may be null or empty (Velocity 1.7 and airspeed disagree
#   on both); strings are normalised with "$!x" and compared with == "";
# - every variable is initialised before a #foreach sets it, and never #set to a value that may
#   be null (Velocity 1.7 then keeps the old value);
# - no #break, no method calls on literals, no expressions as method arguments;
# - each $context override is set exactly once (API Gateway answers 5XX to a second one);
# - ASCII only, no trailing whitespace, no trailing newline.
# ---------------------------------------------------------------------------------------------


def _vtl_literal(text: str) -> str:
    """A double-quoted VTL string literal of text that needs no escaping (checked)."""
    if any(ch in text for ch in '"$#\\\n\r') or not text.isascii():
        raise ValueError(f"{text!r} cannot be embedded in a VTL string literal")
    return f'"{text}"'


def _json_string(expression: str) -> str:
    """VTL rendering the string value of a reference as the inside of a JSON string literal.

    ``$util.escapeJavaScript`` escapes ``'`` as ``\\'``, which JSON does not allow; API Gateway's
    documentation prescribes turning it back with ``replaceAll("\\\\'","'")``.
    """
    return f'$util.escapeJavaScript({expression}).replaceAll("\\\\\'","\'")'


def _selection_fragment(selector: Selector) -> list[str]:
    """The shared VTL that computes $pmRequested, $pmFound, $pmAlias, $pmList and $pmDefault."""
    lines = [
        "## ---- Pointsman version selection: the same fragment in the request and the 400 response templates ----",
        f'#set($pmList = "$!stageVariables.{STAGE_VERSIONS_VAR}")##',
        f'#set($pmDefault = "$!stageVariables.{STAGE_DEFAULT_VAR}")##',
        "#set($pmDefault = $pmDefault.trim())##",
        '#set($pmRequested = "")##',
    ]
    if selector.header is not None:
        lines += [
            f"## The requested version: the {selector.header} header, its name in any letter case, trimmed.",
            "#foreach($pmName in $input.params().header.keySet())##",
            f"#if($pmName.toLowerCase() == {_vtl_literal(selector.header.lower())})##",
            '#set($pmRequested = "$!input.params().header.get($pmName)")##',
            "#end##",
            "#end##",
            "#set($pmRequested = $pmRequested.trim())##",
        ]
    else:
        assert selector.media_type is not None
        prefix = selector.media_type.lower() + "."
        lines += [
            f"## The requested version: the first Accept media range {prefix}<version>{_MEDIA_SUFFIX}",
            "## (Accept header name in any letter case; parameters dropped; compared in lower case).",
            '#set($pmAccept = "")##',
            "#foreach($pmName in $input.params().header.keySet())##",
            '#if($pmName.toLowerCase() == "accept")##',
            '#set($pmAccept = "$!input.params().header.get($pmName)")##',
            "#end##",
            "#end##",
            "#set($pmMatched = false)##",
            '#foreach($pmRange in $pmAccept.split(","))##',
            '#set($pmType = $pmRange.replaceAll("(?s);.*", "").trim().toLowerCase())##',
            f"#if($pmMatched == false && $pmType.length() > {len(prefix) + len(_MEDIA_SUFFIX)}"
            f" && $pmType.startsWith({_vtl_literal(prefix)}) && $pmType.endsWith({_vtl_literal(_MEDIA_SUFFIX)}))##",
            f"#set($pmEnd = $pmType.length() - {len(_MEDIA_SUFFIX)})##",
            f"#set($pmRequested = $pmType.substring({len(prefix)}, $pmEnd))##",
            "#set($pmMatched = true)##",
            "#end##",
            "#end##",
        ]
    lines += [
        f"## None requested: the stage's default ({STAGE_DEFAULT_VAR}).",
        '#if($pmRequested == "")##',
        "#set($pmRequested = $pmDefault)##",
        "#end##",
        f"## Served only when the stage lists it in {STAGE_VERSIONS_VAR} (comma-separated).",
        "#set($pmFound = false)##",
        '#foreach($pmCandidate in $pmList.split(","))##',
        '#if($pmRequested != "" && $pmCandidate.trim() == $pmRequested)##',
        "#set($pmFound = true)##",
        "#end##",
        "#end##",
        f"#set($pmAlias = {_vtl_literal(UNKNOWN_ALIAS)})##",
        "#if($pmFound)##",
        "#set($pmAlias = $pmRequested)##",
        "#end##",
        "## ---- end of version selection ----",
    ]
    return lines


def _json_map(label: str, map_expression: str, *, last: bool = False) -> list[str]:
    """VTL rendering a string-to-string map as a JSON object member ``"label": {...}``."""
    return [
        f'  "{label}": {{',
        f"#foreach($pmKey in {map_expression}.keySet())##",
        f'    "{_json_string("$pmKey")}": "{_json_string(map_expression + ".get($pmKey)")}"#if($foreach.hasNext),#end',
        "#end##",
        "  }" + ("" if last else ","),
    ]


def _call_fragment() -> list[str]:
    """After the selection fragment: ``$pmCall``, the alias the integration calls.

    The requested version when the stage serves it; otherwise the stage's default when the stage
    lists it, else the first version it lists (an alias that exists and that API Gateway may
    invoke, called as a DryRun); :data:`UNKNOWN_ALIAS` when the stage lists none.
    """
    return [
        "## ---- Pointsman: the alias to call. An unserved version is a DryRun of the stage's default alias ----",
        '#set($pmCall = "")##',
        '#foreach($pmCandidate in $pmList.split(","))##',
        "#set($pmVersion = $pmCandidate.trim())##",
        '#if($pmVersion != "" && ($pmCall == "" || $pmVersion == $pmDefault))##',
        "#set($pmCall = $pmVersion)##",
        "#end##",
        "#end##",
        "#if($pmFound)##",
        "#set($pmCall = $pmRequested)##",
        '#elseif($pmCall == "")##',
        f"#set($pmCall = {_vtl_literal(UNKNOWN_ALIAS)})##",
        "#end##",
    ]


def request_template(selector: Selector) -> str:
    """The integration request template (content type :data:`CONTENT_TYPE`) of a versioned method.

    It selects the version (module docstring) and sets ``$context.requestOverride.path.alias``
    once: to the version when the stage serves it. When it does not, the alias is the stage's
    default and ``$context.requestOverride.header.X-Amz-Invocation-Type`` is ``DryRun``: Lambda
    checks the call and the permission, runs no code and answers 204, and the default response
    template answers 400 (module docstring for the AWS documentation this relies on). It renders
    a Lambda-proxy-shaped event::

        {"resource", "path", "httpMethod", "headers", "queryStringParameters", "pathParameters",
         "stageVariables", "requestContext": {"stage", "requestId", "apiVersion"}, "body",
         "isBase64Encoded": false}

    ``apiVersion`` is the requested version after defaulting (the alias when served). ``body``
    is the raw request body as a JSON string; API Gateway hands a template ``{}`` for an empty
    body, so an empty body arrives as ``"{}"``, not ``null``. ``path`` is ``$context.path``
    (which includes the stage or base path). Maps are ``{}`` rather than ``null`` when empty,
    and multi-value headers and query strings carry one value each. Binary bodies are not
    supported (``isBase64Encoded`` is always false).
    """
    lines = [
        f"## Pointsman: version-selected Lambda integration request, generated for {selector.describe()}; do not edit.",
        "## It chooses the Lambda alias from the requested version and passes a Lambda-proxy-shaped event.",
        *_selection_fragment(selector),
        *_call_fragment(),
        f"#set($context.requestOverride.path.{ALIAS_PARAM} = $pmCall)##",
        "#if($pmFound == false)##",
        "## Not served here: Lambda only validates the call (no function runs); the response template answers 400.",
        f'#set($context.requestOverride.header.{INVOCATION_TYPE_HEADER} = "{DRY_RUN}")##',
        "#end##",
        "{",
        f'  "resource": "{_json_string("$context.resourcePath")}",',
        f'  "path": "{_json_string("$context.path")}",',
        f'  "httpMethod": "{_json_string("$context.httpMethod")}",',
        *_json_map("headers", "$input.params().header"),
        *_json_map("queryStringParameters", "$input.params().querystring"),
        *_json_map("pathParameters", "$input.params().path"),
        *_json_map("stageVariables", "$stageVariables"),
        '  "requestContext": {',
        f'    "stage": "{_json_string("$context.stage")}",',
        f'    "requestId": "{_json_string("$context.requestId")}",',
        f'    "apiVersion": "{_json_string("$pmRequested")}"',
        "  },",
        f'  "body": "{_json_string("$input.body")}",',
        '  "isBase64Encoded": false',
        "}",
    ]
    return "\n".join(lines)


_INTERNAL_ERROR = '{"message": "Internal server error"}'


def _success_template(selector: Selector) -> str:
    """The default (and only) integration response template of a versioned method."""
    return "\n".join(
        [
            f"## Pointsman: the response of a version-selected Lambda integration ({selector.describe()}); do not edit.",
            "## A version the stage does not serve was a DryRun (no function ran): answer 400 with the stage's versions.",
            "## Otherwise the function's Lambda-proxy-shaped answer {statusCode, headers, body} becomes the response.",
            *_selection_fragment(selector),
            "#if($pmFound == false)##",
            "#set($context.responseOverride.status = 400)##",
            *_version_error_body(),
            "#else##",
            "#set($pmStatus = \"$!input.path('$.statusCode')\")##",
            "#set($pmError = \"$!input.path('$.errorMessage')\")##",
            '#if($pmStatus.matches("[1-5][0-9][0-9]"))##',
            "#set($context.responseOverride.status = $input.path('$.statusCode'))##",
            "## Each of the answer's headers, once.",
            "#set($pmHeaders = $input.path('$.headers'))##",
            "#foreach($pmName in $pmHeaders.keySet())##",
            '#set($context.responseOverride.header[$pmName] = "$!pmHeaders.get($pmName)")##',
            "#end##",
            "## The body: a string as it is, anything else as JSON, nothing when absent or null.",
            "#set($pmBody = \"$!input.json('$.body')\")##",
            "#if($pmBody.startsWith('\"'))##",
            "$input.path('$.body')##",
            '#elseif($pmBody != "" && $pmBody != "null")##',
            "$pmBody##",
            "#end##",
            f'#elseif($pmError.matches("{STATUS_PREFIX.pattern.replace(chr(92), chr(92) * 2)}"))##',
            "## A function error whose message starts with a status (\"404: no such user\"): that status and the rest as the message.",
            "#set($context.responseOverride.status = $pmError.substring(0, 3))##",
            "#set($pmMessage = $pmError.substring(4).trim())##",
            f'{{"message": "{_json_string("$pmMessage")}"}}##',
            "#else##",
            "## Any other function error, or an answer that is not proxy-shaped: a plain 500.",
            "#set($context.responseOverride.status = 500)##",
            f"{_INTERNAL_ERROR}##",
            "#end##",
            "#end",
        ]
    )


def _client_error_template(selector: Selector, comments: list[str], when_served: list[str]) -> str:
    """A 4XX template: the version error when the requested version is not served on the stage,
    else ``when_served``."""
    return "\n".join([*comments, *_selection_fragment(selector), "#if($pmFound)##", *when_served, "#else##", *_version_error_body(), "#end"])


def _version_error_body() -> list[str]:
    """The 400 body naming the requested version and the stage's (after the selection fragment)."""
    return [
        "{",
        f'  "message": "API version \'{_json_string("$pmRequested")}\' is not supported on this stage",',
        f'  "requested": "{_json_string("$pmRequested")}",',
        '  "supported": [##',
        '#set($pmSeparator = "")##',
        '#foreach($pmCandidate in $pmList.split(","))##',
        "#set($pmVersion = $pmCandidate.trim())##",
        '#if($pmVersion != "")##',
        f'$pmSeparator"{_json_string("$pmVersion")}"##',
        '#set($pmSeparator = ", ")##',
        "#end##",
        "#end##",
        "],",
        f'  "default": "{_json_string("$pmDefault")}"',
        "}##",
    ]


def integration_responses(selector: Selector) -> dict[str, dict[str, object]]:
    """The integration responses, keyed by method status code: selection pattern and template.

    One, the default (``"200"``, no pattern), for every answer: a Lambda backend's selection
    patterns see only a function's error message (module docstring), so no path depends on one.
    Its template:

    - when the requested version is not served on the stage (the call was a DryRun, Lambda
      answered 204 with no payload): 400 ``{"message": "API version '<requested>' is not
      supported on this stage", "requested", "supported": [...], "default"}``, selected again
      from the request with the same VTL fragment as the request template;
    - the function's proxy-shaped answer: status from ``statusCode`` (100-599), headers from
      ``headers``, the body rendered as it is when it is a string and as JSON otherwise, so the
      response is valid JSON whenever the function's body is;
    - a function error whose ``errorMessage`` starts with a status and a colon (``"404: no such
      user"``): that status, ``{"message": "no such user"}``;
    - anything else (another function error's ``{errorMessage, errorType}``, an answer without a
      valid ``statusCode``): 500 ``{"message": "Internal server error"}``.

    The 400 and 500 method responses stay declared: they document the statuses the template sets.
    """
    return {"200": {"selectionPattern": None, "template": _success_template(selector)}}


# ---------------------------------------------------------------------------------------------
# strategy http-proxy: a proxy route in front of path-versioned routes (two API Gateway calls)
# ---------------------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\+?\}")


def versioned_path(path: str, version: str) -> str:
    """The route behind the proxy that serves ``version``: ``/users/{id}`` -> ``/users/{id}/2022-05-03``."""
    return f"{path.rstrip('/')}/{version}"


def proxy_uri(api_id: str, region: str, path: str) -> str:
    """The proxy's HTTP integration: the same API, on the calling stage, at ``{path}/{version}``."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/${{stageVariables.{STAGE_NAME_VAR}}}{path.rstrip('/')}/{{{VERSION_PARAM}}}"


# Headers a proxy must not pass on: the hop-by-hop ones (RFC 9110 section 7.6.1, with the
# "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization" and "Trailers" names older proxies
# use), Host (the versioned route is on the execute-api host, not the client's) and
# Content-Length (API Gateway computes it for the body it sends). Lower case: compared so.
PROXY_DROPPED_HEADERS = (
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
)


def proxy_path_parameters(path: str) -> list[str]:
    """The route's own path parameters (``/users/{id}`` -> ``["id"]``), which the proxy forwards."""
    return _PATH_PARAM.findall(path)


def proxy_request_parameters(path: str) -> dict[str, str]:
    """The version parameter's static default (the template overrides it) and the route's own path parameters.

    Each ``{name}`` of the route's path reaches the versioned route's URI through the mapping
    ``integration.request.path.NAME = method.request.path.NAME``. API Gateway requires a
    mapped method request parameter to be declared on the method first (see
    :func:`proxy_method_parameters`): "The method request parameters must be defined before
    being referenced" (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-integration-requestParameters.html).
    """
    params = {f"integration.request.path.{VERSION_PARAM}": f"'{UNKNOWN_ALIAS}'"}
    for name in proxy_path_parameters(path):
        params[f"integration.request.path.{name}"] = f"method.request.path.{name}"
    return params


def proxy_method_parameters(path: str) -> list[str]:
    """The method request parameters the proxy method declares: ``method.request.path.NAME`` for
    each path parameter the integration maps (PutMethod ``requestParameters``, each required)."""
    return [f"method.request.path.{name}" for name in proxy_path_parameters(path)]


def proxy_request_template(selector: Selector) -> str:
    """The proxy route's request template: select the version, call ``{path}/{version}`` with
    what the client sent.

    An HTTP (non-proxy) integration passes on only what its mapping names, so the template
    forwards, with ``$context.requestOverride`` (set once per parameter; a second override is a
    5XX, https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-override-request-response-parameters.html):

    - ``path.version``: the selected version, or :data:`UNKNOWN_ALIAS` (a route that does not
      exist: API Gateway answers 403, which the 4XX integration response turns into the 400);
    - ``header[NAME]`` for every header of the method request (``Authorization`` and
      ``x-api-key`` included, so the versioned route authorises the same caller), except
      :data:`PROXY_DROPPED_HEADERS`; the map's names are unique, so each is set once;
    - ``querystring[NAME]`` for every query string parameter.

    The route's path parameters reach the URI through the integration's request parameters
    (:func:`proxy_request_parameters`), and the body is passed as it came. Multi-value headers
    and query strings carry one value each (``$input.params()`` holds one).
    """
    lines = [
        f"## Pointsman: version-selecting HTTP proxy request, generated for {selector.describe()}; do not edit.",
        "## It calls the versioned route of the requested version on the same stage, with the headers,",
        "## query string and body as they came.",
        *_selection_fragment(selector),
        f"#set($context.requestOverride.path.{VERSION_PARAM} = $pmAlias)##",
        "## Every header once, except the hop-by-hop ones, Host and Content-Length.",
        "#set($pmDropped = [" + ", ".join(_vtl_literal(name) for name in PROXY_DROPPED_HEADERS) + "])##",
        '#set($pmLower = "")##',
        "#foreach($pmName in $input.params().header.keySet())##",
        "#set($pmLower = $pmName.toLowerCase())##",
        "#if($pmDropped.contains($pmLower) == false)##",
        '#set($context.requestOverride.header[$pmName] = "$!input.params().header.get($pmName)")##',
        "#end##",
        "#end##",
        "## Every query string parameter once.",
        "#foreach($pmName in $input.params().querystring.keySet())##",
        '#set($context.requestOverride.querystring[$pmName] = "$!input.params().querystring.get($pmName)")##',
        "#end##",
        "$input.body",
    ]
    return "\n".join(lines)


def _proxy_client_error_template(selector: Selector) -> str:
    return _client_error_template(
        selector,
        [
            f"## Pointsman: a 4XX from the versioned route behind the proxy ({selector.describe()}); do not edit.",
            "## When the requested version is not served here, the proxy called a route that does not exist:",
            "## answer which versions the stage serves. Otherwise the route's own 4XX body passes through.",
        ],
        ["$input.body##"],
    )


def proxy_integration_responses(selector: Selector) -> dict[str, dict[str, object]]:
    """The proxy route's integration responses: 2XX (default) and 5XX pass the body through;
    a 4XX is the version error when the version is not served on the stage, else passes through."""
    return {
        "200": {"selectionPattern": None, "template": "$input.body"},
        "400": {"selectionPattern": "4\\d{2}", "template": _proxy_client_error_template(selector)},
        "500": {"selectionPattern": "5\\d{2}", "template": "$input.body"},
    }


def alias_uri(region: str, function_arn: str, alias: str) -> str:
    """A versioned route's Lambda proxy integration: the alias named in the URI."""
    return lambda_uri(region, function_arn).replace("{" + ALIAS_PARAM + "}", alias)


# ---------------------------------------------------------------------------------------------
# The pure-Python reference
# ---------------------------------------------------------------------------------------------


def java_trim(text: str) -> str:
    """Java's ``String.trim``: strip characters up to U+0020 (space and controls) at both ends."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _header(headers: Mapping[str, str], name: str) -> str:
    value = ""
    for key, item in headers.items():  # the last of several spellings wins, as in the template
        if key.lower() == name:
            value = item
    return value


def stage_versions(stage_variables: Mapping[str, str]) -> list[str]:
    """The versions a stage serves, from its :data:`STAGE_VERSIONS_VAR` stage variable."""
    versions = [java_trim(item) for item in (stage_variables.get(STAGE_VERSIONS_VAR) or "").split(",")]
    return [version for version in versions if version]


def stage_default(stage_variables: Mapping[str, str]) -> str:
    """The stage's default version (:data:`STAGE_DEFAULT_VAR`), trimmed; ``""`` when unset."""
    return java_trim(stage_variables.get(STAGE_DEFAULT_VAR) or "")


def requested_version(selector: Selector, headers: Mapping[str, str]) -> str:
    """The version a request names, before defaulting: ``""`` when it names none."""
    if selector.header is not None:
        return java_trim(_header(headers, selector.header.lower()))
    assert selector.media_type is not None
    prefix = selector.media_type.lower() + "."
    for media_range in _header(headers, "accept").split(","):
        media_type = java_trim(re.sub("(?s);.*", "", media_range)).lower()
        if len(media_type) > len(prefix) + len(_MEDIA_SUFFIX) and media_type.startswith(prefix) and media_type.endswith(_MEDIA_SUFFIX):
            return media_type[len(prefix) : -len(_MEDIA_SUFFIX)]
    return ""


def select(selector: Selector, headers: Mapping[str, str], stage_variables: Mapping[str, str]) -> tuple[str | None, str]:
    """What :func:`request_template` chooses: ``(version, requested)``.

    ``requested`` is the version the request names, or the stage default when it names none;
    ``version`` is ``requested`` when the stage serves it, else ``None`` (the call is a DryRun,
    :func:`call_for`, and the response template answers 400).
    """
    requested = requested_version(selector, headers) or stage_default(stage_variables)
    served = requested != "" and requested in stage_versions(stage_variables)
    return (requested if served else None), requested


def call_for(selector: Selector, headers: Mapping[str, str], stage_variables: Mapping[str, str]) -> tuple[str, str | None]:
    """What :func:`request_template` makes the integration call: ``(alias, invocation type)``.

    ``(version, None)`` when the stage serves the requested version (Lambda's default,
    RequestResponse); otherwise ``(alias, "DryRun")`` with the stage's default alias, the first
    listed version when the default is not listed, or :data:`UNKNOWN_ALIAS` when none is.
    """
    version, _ = select(selector, headers, stage_variables)
    if version is not None:
        return version, None
    listed = stage_versions(stage_variables)
    default = stage_default(stage_variables)
    fallback = default if default in listed else (listed[0] if listed else UNKNOWN_ALIAS)
    return fallback, DRY_RUN


def alias_for(selector: Selector, headers: Mapping[str, str], stage_variables: Mapping[str, str]) -> str:
    """The alias the integration calls (see :func:`call_for`)."""
    return call_for(selector, headers, stage_variables)[0]


def version_problems(selector: Selector, versions: Iterable[str], default: str | None = None) -> list[str]:
    """Why these versions (and default) cannot be served with this selector; empty when fine.

    A version is an alias name (``[A-Za-z0-9_-]``, 1-128 characters, not only digits, not
    :data:`UNKNOWN_ALIAS`); media-type versions must be lower case (the template lower-cases
    what it reads); the default must be one of the versions.
    """
    problems: list[str] = []
    listed = list(versions)
    for version in listed:
        if not _ALIAS_NAME.fullmatch(version) or version.isdigit():
            problems.append(f"version {version!r} is not a valid Lambda alias name (letters, digits, '-', '_'; not only digits)")
        elif version == UNKNOWN_ALIAS:
            problems.append(f"version {version!r} is reserved for requests naming a version the stage does not serve")
        elif selector.media_type is not None and version != version.lower():
            problems.append(f"version {version!r} must be lower case: the Accept media type is matched in lower case")
    if len(set(listed)) != len(listed):
        problems.append("versions are listed more than once")
    if default is not None and default not in listed:
        problems.append(f"default version {default!r} is not one of the versions {listed}")
    return problems


def stage_variables(versions: Iterable[str], default: str) -> dict[str, str]:
    """The two stage variables that expose ``versions`` on a stage, with ``default``."""
    return {STAGE_VERSIONS_VAR: ",".join(versions), STAGE_DEFAULT_VAR: default}


# ---------------------------------------------------------------------------------------------
# Rendering: API Gateway's mapping-template variables emulated on airspeed-ext
# ---------------------------------------------------------------------------------------------


class TemplateRenderError(ValueError):
    """A template that cannot be parsed or evaluated, or that breaks an API Gateway rule."""


class _JavaMap(dict[Any, Any]):
    """A dict that behaves like the java.util.Map API Gateway hands templates (keySet, get, ...)."""

    def __str__(self) -> str:
        return "{" + ", ".join(f"{key}={_java_str(value)}" for key, value in self.items()) + "}"


class _JavaList(list[Any]):
    def __str__(self) -> str:
        return "[" + ", ".join(_java_str(item) for item in self) + "]"


class _OverrideMap(_JavaMap):
    """``$context.requestOverride.*`` / ``responseOverride.*``: each key may be set once.

    API Gateway answers 5XX when a template overrides the same parameter twice.
    """

    def __init__(self, where: str, **initial: Any) -> None:
        super().__init__()
        self.where = where
        for key, value in initial.items():
            dict.__setitem__(self, key, value)

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self:
            raise TemplateRenderError(f"$context.{self.where}.{key} is overridden twice (API Gateway answers 5XX)")
        super().__setitem__(key, value)


def _java_str(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_java(value: Any) -> Any:
    """JSON data as the Java objects a template sees: maps, lists, strings, numbers, booleans."""
    if isinstance(value, dict):
        return _JavaMap((key, _to_java(item)) for key, item in value.items())
    if isinstance(value, list):
        return _JavaList(_to_java(item) for item in value)
    return value


def escape_javascript(value: Any) -> str | None:
    """``$util.escapeJavaScript``: Apache Commons Lang's escapeJavaScript, as API Gateway uses.

    Escapes ``'`` ``"`` ``\\`` ``/``, control characters (``\\b \\t \\n \\f \\r`` or
    ``\\u00XX``) and every character above U+007F as ``\\uXXXX`` (UTF-16 code units, upper-case
    hex). ``None`` stays ``None`` (so the reference renders as nothing).
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else _java_str(value)
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
        elif code > 0x7F:
            out.append(f"\\u{code:04X}")
        elif code < 0x20:
            out.append({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code, f"\\u{code:04X}"))
        elif ch in "'\"\\/":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


class _Util:
    """``$util``: escapeJavaScript, parseJson, urlEncode, urlDecode, base64Encode, base64Decode."""

    def escapeJavaScript(self, value: Any) -> str | None:  # noqa: N802 - API Gateway's names
        return escape_javascript(value)

    def parseJson(self, text: str) -> Any:  # noqa: N802
        try:
            return _to_java(json.loads(text))
        except (TypeError, ValueError) as exc:
            raise TemplateRenderError(f"$util.parseJson: not JSON: {exc}") from exc

    def urlEncode(self, text: str) -> str:  # noqa: N802 - java.net.URLEncoder (UTF-8): '~' is encoded
        return quote_plus(text, safe="*").replace("~", "%7E")

    def urlDecode(self, text: str) -> str:  # noqa: N802
        return unquote_plus(text)

    def base64Encode(self, text: str) -> str:  # noqa: N802
        return base64.b64encode(text.encode()).decode()

    def base64Decode(self, text: str) -> str:  # noqa: N802
        return base64.b64decode(text).decode(errors="replace")


_JSONPATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def _json_path(data: Any, path: str) -> Any:
    """A JSONPath subset: ``$``, ``.name``, ``['name']``, ``["name"]``, ``[index]``; missing -> None."""
    if not path.startswith("$"):
        raise TemplateRenderError(f"JSONPath {path!r} does not start with '$'")
    position, current = 1, data
    while position < len(path):
        step = _JSONPATH_STEP.match(path, position)
        if step is None:
            raise TemplateRenderError(f"JSONPath {path!r}: unsupported syntax at {path[position:]!r} (the emulation supports $.a.b, ['a'], [0])")
        position = step.end()
        name, index, quoted, double_quoted = step.groups()
        if index is not None:
            current = current[int(index)] if isinstance(current, list) and int(index) < len(current) else None
        else:
            key = next(part for part in (name, quoted, double_quoted) if part is not None)
            current = current.get(key) if isinstance(current, dict) else None
    return current


class _Input:
    """``$input``: the body (the request's, or the integration response's) and the request parameters."""

    def __init__(self, body: str, params: _JavaMap) -> None:
        self._body = body
        self._params = params

    @property
    def body(self) -> str:
        return self._body if self._body != "" else "{}"  # API Gateway hands templates "{}" for an empty body

    def _data(self) -> Any:
        if self._body == "":
            return {}
        try:
            return json.loads(self._body)
        except ValueError as exc:
            raise TemplateRenderError(f"$input.json / $input.path: the body is not JSON: {exc}") from exc

    def json(self, path: str = "$") -> str:
        return json.dumps(_json_path(self._data(), path), ensure_ascii=False, separators=(",", ":"))

    def path(self, path: str = "$") -> Any:
        return _to_java(_json_path(self._data(), path))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring"):
            if name in self._params[where]:
                return self._params[where][name]
        for key, value in self._params["header"].items():
            if key.lower() == name.lower():
                return value
        return ""


def _java_string_methods() -> dict[str, Callable[..., Any]]:
    """java.lang.String methods airspeed lacks (it falls back to Python's str attributes first)."""

    def last_index_of(text: str, sub: str) -> int:
        return text.rfind(sub)

    return {
        "toLowerCase": lambda text: text.lower(),
        "toUpperCase": lambda text: text.upper(),
        "trim": java_trim,
        "endsWith": lambda text, suffix: text.endswith(suffix),
        "isEmpty": lambda text: text == "",
        "equals": lambda text, other: text == other,
        "equalsIgnoreCase": lambda text, other: isinstance(other, str) and text.lower() == other.lower(),
        "lastIndexOf": last_index_of,
        "charAt": lambda text, index: text[index],
        "concat": lambda text, other: text + other,
        "toString": lambda text: text,
    }


_ENGINE_LOCK = threading.Lock()
_ENGINE: Any = None


def _engine() -> Any:
    """airspeed's operators module, taught the Java methods templates call (once, additively).

    Only names airspeed does not already resolve are added for ``str`` (so existing behaviour
    is unchanged), and our own map and list classes get the Java Map and List methods.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            from airspeed import operators  # type: ignore[import-untyped]

            extra = operators.__additional_methods__
            string_methods = extra.setdefault(str, {})
            for name, method in _java_string_methods().items():
                if not hasattr(str, name):
                    string_methods.setdefault(name, method)
            map_methods = {
                **extra.get(dict, {}),
                "containsKey": lambda self, key: key in self,
                "isEmpty": lambda self: len(self) == 0,
                "size": lambda self: len(self),
                "keySet": lambda self: _JavaList(self.keys()),
                "toString": lambda self: str(self),
            }
            for cls in (_JavaMap, _OverrideMap):
                extra[cls] = map_methods
            extra[_JavaList] = {**extra.get(list, {}), "toString": lambda self: str(self)}
            _ENGINE = operators
        return _ENGINE


_COMPILED: dict[str, Any] = {}


def _compiled(template: str) -> Any:
    operators = _engine()
    compiled = _COMPILED.get(template)
    if compiled is None:
        compiled = operators.Template(template)
        try:
            compiled.ensure_compiled()
        except operators.TemplateSyntaxError as exc:
            raise TemplateRenderError(f"template syntax: {exc}") from exc
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[template] = compiled
    return compiled


DEFAULT_CONTEXT: Mapping[str, Any] = {
    "accountId": "123456789012",
    "apiId": "abcdef1234",
    "httpMethod": "POST",
    "path": "/prod/resource",
    "protocol": "HTTP/1.1",
    "requestId": "00000000-0000-4000-8000-000000000000",
    "resourceId": "abc123",
    "resourcePath": "/resource",
    "stage": "prod",
    "identity": {"sourceIp": "203.0.113.1", "userAgent": "pointsman-explain"},
}
"""The ``$context`` values a render uses unless told otherwise (fixed, so renders are deterministic)."""


@dataclass(frozen=True)
class Rendered:
    """The result of rendering a mapping template: its output and ``$context`` afterwards."""

    output: str
    context: dict[str, Any] = field(repr=False)

    @property
    def request_override(self) -> dict[str, dict[str, Any]]:
        """``$context.requestOverride`` as plain dicts: ``{"header": {...}, "path": {...}, "querystring": {...}}``."""
        override = self.context["requestOverride"]
        return {key: dict(override[key]) for key in ("header", "path", "querystring")}

    @property
    def alias(self) -> str | None:
        """The ``alias`` path parameter the template set, or None when it set none."""
        value = self.context["requestOverride"]["path"].get(ALIAS_PARAM)
        return None if value is None else str(value)

    @property
    def effective_alias(self) -> str:
        """The alias the integration calls: the override, else the static default of :func:`request_parameters`."""
        return self.alias if self.alias is not None else UNKNOWN_ALIAS

    @property
    def invocation_type(self) -> str | None:
        """The ``X-Amz-Invocation-Type`` header the template set (``DryRun``), or None: Lambda's default."""
        for name, value in self.context["requestOverride"]["header"].items():
            if str(name).lower() == INVOCATION_TYPE_HEADER.lower():
                return _java_str(value)
        return None

    @property
    def status(self) -> int | None:
        """``$context.responseOverride.status`` as an int, or None when the template set none."""
        value = self.context["responseOverride"].get("status")
        return None if value is None else int(str(value))

    @property
    def response_headers(self) -> dict[str, str]:
        """``$context.responseOverride.header`` as strings."""
        return {str(key): _java_str(value) for key, value in self.context["responseOverride"]["header"].items()}

    def json(self) -> Any:
        """The output parsed as JSON (raises ValueError when it is not)."""
        return json.loads(self.output)


def _string_map(values: Mapping[str, Any] | None) -> _JavaMap:
    return _JavaMap((str(key), _java_str(value)) for key, value in (values or {}).items())


def _render(
    template: str,
    *,
    body: str,
    headers: Mapping[str, str] | None,
    query: Mapping[str, str] | None,
    path_parameters: Mapping[str, str] | None,
    stage_variables: Mapping[str, str] | None,
    context: Mapping[str, Any] | None,
) -> Rendered:
    operators = _engine()
    compiled = _compiled(template)
    params = _JavaMap(header=_string_map(headers), querystring=_string_map(query), path=_string_map(path_parameters))
    ctx = _to_java({**DEFAULT_CONTEXT, **(context or {})})
    ctx["requestOverride"] = _OverrideMap(
        "requestOverride",
        header=_OverrideMap("requestOverride.header"),
        path=_OverrideMap("requestOverride.path"),
        querystring=_OverrideMap("requestOverride.querystring"),
    )
    ctx["responseOverride"] = _OverrideMap("responseOverride", header=_OverrideMap("responseOverride.header"))
    namespace = {
        "input": _Input(body, params),
        "util": _Util(),
        "context": ctx,
        "stageVariables": _string_map(stage_variables),
    }
    try:
        output = compiled.merge(namespace)
    except operators.TemplateExecutionError as exc:
        cause = exc.__cause__
        if isinstance(cause, TemplateRenderError):
            raise TemplateRenderError(str(cause)) from exc
        raise TemplateRenderError(f"template execution: {exc}") from exc
    except RecursionError as exc:
        raise TemplateRenderError("template execution: too deeply nested") from exc
    return Rendered(output=output, context=ctx)


def render_request(
    template: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: str = "",
    query: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    stage_variables: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Rendered:
    """Render an integration request template the way API Gateway would, for one request.

    ``headers``, ``query`` and ``path_parameters`` are the method request's parameters
    (``$input.params()``), ``body`` its raw body (``$input.body``; ``"{}"`` when empty, as in
    API Gateway), ``stage_variables`` the stage's (``$stageVariables``), ``context`` values
    merged over :data:`DEFAULT_CONTEXT` (``$context``). The result's ``alias`` is the
    ``alias`` path-parameter override.

    Where the emulation differs from API Gateway (Velocity 1.7 with AWS's variables):

    - the engine is airspeed: a missing reference renders as nothing (as in API Gateway), but
      ``#set`` to a null value assigns it (Velocity 1.7 keeps the old value), ``#if($x)`` is
      true for an undefined ``$x`` and false for ``""`` (Velocity 1.7: false and true), and
      ``#break`` is not supported. The generated templates avoid all of these;
    - Java methods are Python's where airspeed resolves a Python attribute of the same name
      first: ``split`` and ``replace`` take literal strings (Java's ``split`` takes a regex),
      ``replaceAll`` and ``matches`` use Python regular expressions, and ``indexOf`` raises
      when the text is absent (Java: -1);
    - ``$map.name`` and ``$map.name(...)`` look the key ``name`` up first, so a header, stage
      variable or JSON key literally named like a Map method (``get``, ``keySet``) shadows it;
    - ``$input.json`` / ``$input.path`` support the JSONPath subset ``$``, ``.name``,
      ``['name']``, ``[index]``; a missing path gives null (``$input.json``: ``"null"``);
      ``$input.json`` renders compact JSON;
    - ``$input.params(name)`` matches header names in any letter case (path and query string
      names exactly);
    - each ``$context`` override may be set once; a second raises :class:`TemplateRenderError`
      (API Gateway answers 5XX); values are not validated further.
    """
    return _render(
        template,
        body=body,
        headers=headers,
        query=query,
        path_parameters=path_parameters,
        stage_variables=stage_variables,
        context=context,
    )


def render_response(
    template: str,
    *,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    stage_variables: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Rendered:
    """Render an integration response template for an integration's answer ``payload``.

    ``payload`` is the integration response body (for Lambda, the function's result): a string
    as received, or JSON data (serialised). ``$input.body`` / ``$input.json`` / ``$input.path``
    read it; ``$input.params()`` are still the method request's parameters, as in API Gateway.
    The result's ``status`` and ``response_headers`` are the ``$context.responseOverride``
    values. The differences from API Gateway are those of :func:`render_request`.
    """
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return _render(
        template,
        body=body,
        headers=headers,
        query=query,
        path_parameters=path_parameters,
        stage_variables=stage_variables,
        context=context,
    )
