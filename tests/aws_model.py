"""A model of how API Gateway runs a Lambda custom (non-proxy) integration, from AWS's documentation.

moto stores API Gateway integrations but never runs them, so what a client gets from a generated
method on AWS is modelled here, one documented step at a time, and the tests run the generated
templates through it (rendered by :mod:`controller.versions.templates`'s Velocity emulation):

1. **Request template.** API Gateway renders the integration request template for the request
   (content type ``application/json``). ``$context.requestOverride.path.<name>`` sets a path
   parameter of the integration URI, ``$context.requestOverride.header.<name>`` an integration
   request header; each may be set once ("Override your API's request and response parameters
   and status codes for REST APIs in API Gateway"). A path parameter the template does not set
   takes its integration request parameter (here the static ``'pointsman-unknown-version'``).
2. **The invoke.** The URI ``...functions/ARN:{alias}/invocations`` names the qualifier. The
   integration request header ``X-Amz-Invocation-Type`` is the invocation type of a Lambda
   custom integration ("Set up asynchronous invocation of the backend Lambda function");
   without it, ``RequestResponse``.
3. **Lambda.** A qualifier that does not exist is 404 ``ResourceNotFoundException``; a caller
   without permission 403; both, and throttling, make API Gateway answer **500 "Internal server
   error"** before any integration response runs (Lambda developer guide, "Handle Lambda errors
   with an API Gateway API": "Execution failed due to configuration error"). ``DryRun`` validates
   the call and the permission, runs nothing, and answers 204 with no payload (Lambda API
   reference, Invoke: ``InvocationType``, ``StatusCode``). ``RequestResponse`` runs the function:
   its result is the payload; an error is ``{"errorMessage", "errorType", "stackTrace"}`` with
   the ``X-Amz-Function-Error`` header.
4. **Integration response.** For a Lambda backend a response's ``selectionPattern`` is matched
   against the function error's ``errorMessage`` (a Java regular expression matching the whole
   message), never against an HTTP status: "If the back end is an AWS Lambda function, the AWS
   Lambda function error header is matched" (API Gateway API reference, IntegrationResponse);
   with no function error, or no pattern matching, the default response (no pattern) answers.
5. **Response template.** Rendered with the payload as ``$input``; the status is
   ``$context.responseOverride.status`` when set, else the integration response's status code.

:func:`status_selection` replaces step 4 with a rule that matches patterns against Lambda's
status code instead (what an emulator once did, and what AWS does for HTTP backends only): a test
uses it to show which answers depend on that rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller import versions

INTERNAL_ERROR = {"message": "Internal server error"}


class FunctionError(Exception):
    """Raised by a modelled function: Lambda reports it as a function error with this message."""


@dataclass
class LambdaFunction:
    """One function: its aliases, the aliases API Gateway may invoke, and its code."""

    aliases: set[str]
    invokable: set[str]
    handler: Callable[[dict[str, Any]], Any]
    invocations: list[tuple[str, str]] = field(default_factory=list)  # (alias, invocation type) of each call Lambda accepted
    runs: list[str] = field(default_factory=list)  # the alias of each call that ran the code


@dataclass(frozen=True)
class LambdaAnswer:
    status: int
    payload: str
    function_error: str | None = None  # the errorMessage when the function failed


@dataclass(frozen=True)
class Answer:
    """What the client gets, and how it came about."""

    status: int
    body: Any
    alias: str | None  # the qualifier API Gateway called (None: the template failed)
    invocation_type: str | None
    ran: bool  # whether the function's code ran
    response: str | None  # the integration response that answered (None: API Gateway answered first)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def invoke_lambda(function: LambdaFunction, alias: str, invocation_type: str, event: str) -> LambdaAnswer:
    """Lambda's Invoke, as documented (step 3)."""
    if alias not in function.aliases:
        return LambdaAnswer(404, json.dumps({"Message": f"Function not found: ...:{alias}", "Type": "User"}))
    if alias not in function.invokable:
        return LambdaAnswer(403, json.dumps({"Message": "User is not authorized to perform: lambda:InvokeFunction", "Type": "User"}))
    function.invocations.append((alias, invocation_type))
    if invocation_type == "DryRun":
        return LambdaAnswer(204, "")
    if invocation_type == "Event":
        return LambdaAnswer(202, "")
    function.runs.append(alias)
    try:
        result = function.handler(json.loads(event))
    except FunctionError as exc:
        error = {"errorMessage": str(exc), "errorType": "Error", "stackTrace": ["at handler (index.js:1:1)"]}
        return LambdaAnswer(200, json.dumps(error), function_error=str(exc))
    return LambdaAnswer(200, result if isinstance(result, str) else json.dumps(result))


def error_message_selection(responses: Mapping[str, Mapping[str, Any]], answer: LambdaAnswer) -> str:
    """Step 4 as AWS documents it for a Lambda backend: patterns see the error message only."""
    if answer.function_error is not None:
        for code, response in sorted(responses.items()):
            pattern = response.get("selectionPattern")
            if pattern and re.fullmatch(str(pattern), answer.function_error):
                return code
    return _default(responses)


def status_selection(responses: Mapping[str, Mapping[str, Any]], answer: LambdaAnswer) -> str:
    """The rule AWS uses for HTTP backends, not for Lambda: patterns see the status code."""
    for code, response in sorted(responses.items()):
        pattern = response.get("selectionPattern")
        if pattern and re.fullmatch(str(pattern), str(answer.status)):
            return code
    return _default(responses)


def _default(responses: Mapping[str, Mapping[str, Any]]) -> str:
    defaults = [code for code, response in responses.items() if not response.get("selectionPattern")]
    assert len(defaults) == 1, "API Gateway allows exactly one default integration response"
    return defaults[0]


def call_method(
    request_template: str,
    responses: Mapping[str, Mapping[str, Any]],
    function: LambdaFunction,
    *,
    headers: Mapping[str, str] | None = None,
    body: str = "",
    stage_variables: Mapping[str, str] | None = None,
    selection: Callable[[Mapping[str, Mapping[str, Any]], LambdaAnswer], str] = error_message_selection,
) -> Answer:
    """One request through a generated versioned method (steps 1-5)."""
    try:
        rendered = versions.render_request(request_template, headers=headers, body=body, stage_variables=stage_variables)
    except versions.TemplateRenderError:
        return Answer(500, INTERNAL_ERROR, None, None, False, None)
    static = versions.request_parameters()[f"integration.request.path.{versions.ALIAS_PARAM}"].strip("'")
    alias = rendered.alias if rendered.alias is not None else static
    invocation_type = rendered.invocation_type or "RequestResponse"
    runs_before = len(function.runs)
    answer = invoke_lambda(function, alias, invocation_type, rendered.output)
    ran = len(function.runs) > runs_before
    if answer.status >= 300:  # Lambda rejected the invoke: API Gateway answers before any integration response
        return Answer(500, INTERNAL_ERROR, alias, rendered.invocation_type, ran, None)
    code = selection(responses, answer)
    template = responses[code].get("template")
    if template is None:
        return Answer(int(code), _json_or_text(answer.payload), alias, rendered.invocation_type, ran, code)
    try:
        out = versions.render_response(str(template), payload=answer.payload, headers=headers, stage_variables=stage_variables)
    except versions.TemplateRenderError:
        return Answer(500, INTERNAL_ERROR, alias, rendered.invocation_type, ran, code)
    return Answer(out.status or int(code), _json_or_text(out.output), alias, rendered.invocation_type, ran, code)
