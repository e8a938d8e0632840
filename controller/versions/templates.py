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

The generators here (:func:`lambda_uri`, :func:`request_parameters`, :func:`request_template`,
:func:`integration_responses`, :func:`method_responses`, and the http-proxy ones) return
deterministic strings, byte for byte, so drift detection against the live templates is stable.
"""

from __future__ import annotations

import re

from controller.versions.selection import (
    _MEDIA_SUFFIX,
    ALIAS_PARAM,
    DRY_RUN,
    INVOCATION_TYPE_HEADER,
    STAGE_DEFAULT_VAR,
    STAGE_NAME_VAR,
    STAGE_VERSIONS_VAR,
    UNKNOWN_ALIAS,
    VERSION_PARAM,
    Selector,
)

STATUS_PREFIX = re.compile(r"(?s)([1-5][0-9][0-9]):.*")  # a function error message that names its status: "404: no such user"
CONTENT_TYPE = "application/json"
"""The content-type key of every generated template (requestTemplates / responseTemplates).

API Gateway applies a request template only to requests of that content type (or with none).
Use passthrough behaviour ``WHEN_NO_TEMPLATES`` (or ``NEVER``): a request of another content
type then gets 415 instead of reaching Lambda without a version choice."""

PASSTHROUGH_BEHAVIOR = "WHEN_NO_TEMPLATES"

LAMBDA_API_VERSION = "2015-03-31"

_FUNCTION_ARN = re.compile(r"arn:(aws[a-z-]*):lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,140}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


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
            '## A function error whose message starts with a status ("404: no such user"): that status and the rest as the message.',
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
