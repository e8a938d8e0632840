"""The generated version-selection templates, rendered with airspeed-ext as API Gateway would.

Every case is checked twice: the rendered request template's call (alias override and invocation
type), the event it builds and the response template's answer against the expected version, and
controller.versions.templates's pure-Python select() / call_for() against the same expectation.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import versions as versioning
from controller.versions import (
    ALIAS_PARAM,
    STAGE_DEFAULT_VAR,
    STAGE_VERSIONS_VAR,
    UNKNOWN_ALIAS,
    Selector,
    TemplateRenderError,
    escape_javascript,
    integration_responses,
    request_template,
    select,
)
from tests.vtl_support import render, render_full

HEADER = Selector(header="Version")
MEDIA = Selector(media_type="application/vnd.acme")
PROD = {STAGE_VERSIONS_VAR: "2022-01-01,2022-05-03", STAGE_DEFAULT_VAR: "2022-01-01"}
DEV = {STAGE_VERSIONS_VAR: "2022-01-01,2022-05-03,2022-11-01", STAGE_DEFAULT_VAR: "2022-05-03"}
MEDIA_STAGE = {STAGE_VERSIONS_VAR: "v1,v2", STAGE_DEFAULT_VAR: "v1"}
INTERNAL_ERROR = {"message": "Internal server error"}


@dataclass(frozen=True)
class Case:
    id: str
    selector: Selector
    headers: dict[str, str]
    stage: dict[str, str]
    version: str | None  # what the stage serves; None: a DryRun of the stage's default alias and the 400 answer
    requested: str  # the requested version after defaulting


def _header_cases() -> list[Case]:
    cases = [
        Case("known", HEADER, {"Version": "2022-05-03"}, PROD, "2022-05-03", "2022-05-03"),
        Case("known-default", HEADER, {"Version": "2022-01-01"}, PROD, "2022-01-01", "2022-01-01"),
        Case("no-header", HEADER, {}, PROD, "2022-01-01", "2022-01-01"),
        Case(
            "other-headers-only", HEADER, {"Accept": "application/json", "X-Version": "2022-05-03", "Versions": "2022-05-03"}, PROD, "2022-01-01", "2022-01-01"
        ),
        Case("empty", HEADER, {"Version": ""}, PROD, "2022-01-01", "2022-01-01"),
        Case("blank", HEADER, {"Version": "  \t "}, PROD, "2022-01-01", "2022-01-01"),
        Case("padded", HEADER, {"Version": " 2022-05-03 "}, PROD, "2022-05-03", "2022-05-03"),
        Case("unknown", HEADER, {"Version": "2030-01-01"}, PROD, None, "2030-01-01"),
        Case("dev-only-on-prod", HEADER, {"Version": "2022-11-01"}, PROD, None, "2022-11-01"),
        Case("dev-only-on-dev", HEADER, {"Version": "2022-11-01"}, DEV, "2022-11-01", "2022-11-01"),
        Case("no-header-on-dev", HEADER, {}, DEV, "2022-05-03", "2022-05-03"),
        Case("prefix-of-a-version", HEADER, {"Version": "2022-05"}, PROD, None, "2022-05"),
        Case("the-whole-list", HEADER, {"Version": "2022-01-01,2022-05-03"}, PROD, None, "2022-01-01,2022-05-03"),
        Case("case-sensitive-value", HEADER, {"Version": "V2"}, {STAGE_VERSIONS_VAR: "v1,v2", STAGE_DEFAULT_VAR: "v1"}, None, "V2"),
        Case("double-quote", HEADER, {"Version": 'x"y'}, PROD, None, 'x"y'),
        Case("quote-and-backslash", HEADER, {"Version": "it's\\"}, PROD, None, "it's\\"),
        Case("non-ascii", HEADER, {"Version": "2022-05-03\u00e9\U0001f600"}, PROD, None, "2022-05-03\u00e9\U0001f600"),
        Case("vtl-syntax", HEADER, {"Version": "$context.stage#set($x = 1)"}, PROD, None, "$context.stage#set($x = 1)"),
        Case("last-spelling-wins", HEADER, {"version": "2022-01-01", "VERSION": "2022-05-03"}, PROD, "2022-05-03", "2022-05-03"),
        Case("no-stage-variables", HEADER, {"Version": "2022-01-01"}, {}, None, "2022-01-01"),
        Case("no-stage-variables-no-header", HEADER, {}, {}, None, ""),
        Case(
            "spaces-in-stage-list",
            HEADER,
            {"Version": "2022-05-03"},
            {STAGE_VERSIONS_VAR: " 2022-01-01 , 2022-05-03 ,", STAGE_DEFAULT_VAR: "2022-01-01"},
            "2022-05-03",
            "2022-05-03",
        ),
        Case("default-not-served", HEADER, {}, {STAGE_VERSIONS_VAR: "2022-05-03", STAGE_DEFAULT_VAR: "2022-01-01"}, None, "2022-01-01"),
    ]
    cases += [Case(f"header-name-{name}", HEADER, {name: "2022-05-03"}, PROD, "2022-05-03", "2022-05-03") for name in ("version", "VERSION", "vErSiOn")]
    return cases


def _media_cases() -> list[Case]:
    def case(id_: str, accept: str | None, version: str | None, requested: str, name: str = "Accept") -> Case:
        headers = {} if accept is None else {name: accept}
        return Case(id_, MEDIA, headers, MEDIA_STAGE, version, requested)

    return [
        case("vendor-v2", "application/vnd.acme.v2+json", "v2", "v2"),
        case("vendor-v1", "application/vnd.acme.v1+json", "v1", "v1"),
        case("upper-case", "APPLICATION/VND.ACME.V2+JSON", "v2", "v2"),
        case("upper-case-version", "application/vnd.acme.V2+json", "v2", "v2"),
        case("charset", "application/vnd.acme.v2+json; charset=utf-8", "v2", "v2"),
        case("list-with-quality", "text/html, application/vnd.acme.v2+json;q=0.9", "v2", "v2"),
        case("first-range-wins", "application/vnd.acme.v1+json, application/vnd.acme.v2+json", "v1", "v1"),
        case("quality-not-weighed", "application/vnd.acme.v2+json;q=0, application/vnd.acme.v1+json", "v2", "v2"),
        case("padded-range", "  application/vnd.acme.v2+json  ;q=1", "v2", "v2"),
        case("application-json", "application/json", "v1", "v1"),
        case("any", "*/*", "v1", "v1"),
        case("wildcard-subtype", "application/*", "v1", "v1"),
        case("no-accept", None, "v1", "v1"),
        case("empty-accept", "", "v1", "v1"),
        case("vendor-without-version", "application/vnd.acme+json", "v1", "v1"),
        case("vendor-empty-version", "application/vnd.acme.+json", "v1", "v1"),
        case("vendor-xml", "application/vnd.acme.v2+xml", "v1", "v1"),
        case("another-vendor", "application/vnd.acmecorp.v2+json", "v1", "v1"),
        case("unknown-v9", "application/vnd.acme.v9+json", None, "v9"),
        case("unknown-after-json", "application/json, application/vnd.acme.v9+json", None, "v9"),
        case("quote-in-version", 'application/vnd.acme.v"2+json', None, 'v"2'),
        case("accept-lower", "application/vnd.acme.v2+json", "v2", "v2", name="accept"),
        case("accept-upper", "application/vnd.acme.v2+json", "v2", "v2", name="ACCEPT"),
        case("accept-mixed", "application/vnd.acme.v2+json", "v2", "v2", name="aCcEpT"),
        Case("version-header-ignored", MEDIA, {"Version": "v2"}, MEDIA_STAGE, "v1", "v1"),
    ]


CASES = _header_cases() + _media_cases()
UNKNOWN_CASES = [case for case in CASES if case.version is None]


def _expected_call(case: Case) -> tuple[str, dict[str, str]]:
    """The alias the integration calls and the integration request headers the template sets."""
    if case.version is not None:
        return case.version, {}
    listed = versioning.stage_versions(case.stage)
    default = versioning.stage_default(case.stage)
    fallback = default if default in listed else (listed[0] if listed else UNKNOWN_ALIAS)
    return fallback, {"X-Amz-Invocation-Type": "DryRun"}


# ---------------------------------------------------------------------------------------------
# Selection: rendered request template and select() on every case
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{'header' if case.selector.header else 'media'}-{case.id}")
def test_request_template_and_select_agree_on_the_version(case: Case) -> None:
    output, context = render(request_template(case.selector), headers=case.headers, body='{"name": "x"}', stage_variables=case.stage)
    alias, headers = _expected_call(case)
    assert context["requestOverride"]["path"] == {ALIAS_PARAM: alias}
    assert context["requestOverride"]["header"] == headers and context["requestOverride"]["querystring"] == {}
    event = json.loads(output)
    assert event["requestContext"]["apiVersion"] == case.requested
    assert event["headers"] == case.headers
    assert select(case.selector, case.headers, case.stage) == (case.version, case.requested)
    assert versioning.alias_for(case.selector, case.headers, case.stage) == alias
    assert versioning.call_for(case.selector, case.headers, case.stage) == (alias, headers.get("X-Amz-Invocation-Type"))


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{'header' if case.selector.header else 'media'}-{case.id}")
def test_the_response_template_answers_for_the_same_request(case: Case) -> None:
    """The default response template selects again: the 400 when not served (the call was a
    DryRun: Lambda answered 204 with no payload), else the function's answer."""
    template = integration_responses(case.selector)["200"]["template"]
    assert isinstance(template, str)
    if case.version is None:
        rendered = render_full(template, headers=case.headers, stage_variables=case.stage, payload="")
        assert rendered.json() == {
            "message": f"API version '{case.requested}' is not supported on this stage",
            "requested": case.requested,
            "supported": versioning.stage_versions(case.stage),
            "default": versioning.stage_default(case.stage),
        }
        assert rendered.status == 400
    else:
        answer = {"statusCode": 201, "body": '{"served": true}'}
        rendered = render_full(template, headers=case.headers, stage_variables=case.stage, payload=answer)
        assert (rendered.status, rendered.json()) == (201, {"served": True})


def test_the_version_error_lists_exactly_the_stage_versions() -> None:
    template = str(integration_responses(HEADER)["200"]["template"])
    for stage, supported in ((PROD, ["2022-01-01", "2022-05-03"]), (DEV, ["2022-01-01", "2022-05-03", "2022-11-01"])):
        body = render_full(template, headers={"Version": "1999-01-01"}, stage_variables=stage, payload="{}").json()
        assert body["supported"] == supported
        assert body["default"] == stage[STAGE_DEFAULT_VAR]
    empty = render_full(template, headers={"Version": "1999-01-01"}, stage_variables={}, payload="{}").json()
    assert empty["supported"] == [] and empty["default"] == ""


def test_the_same_request_on_two_stages() -> None:
    template = request_template(HEADER)
    headers = {"version": "2022-11-01"}
    on_prod = render_full(template, headers=headers, stage_variables=PROD)
    assert (on_prod.alias, on_prod.invocation_type) == ("2022-01-01", "DryRun")  # prod's default, and no function runs
    on_dev = render_full(template, headers=headers, stage_variables=DEV)
    assert (on_dev.alias, on_dev.invocation_type) == ("2022-11-01", None)
    assert render_full(template, stage_variables=PROD).alias == "2022-01-01"
    assert render_full(template, stage_variables=DEV).alias == "2022-05-03"


# ---------------------------------------------------------------------------------------------
# The event the request template builds
# ---------------------------------------------------------------------------------------------

BODIES = [
    '{"name": "O\'Brien", "quote": "\\"hi\\"", "nested": {"a": [1, 2]}}',
    "line one\nline two\r\n\ttabbed",
    "\u00fc\u00f1\u00ed\u00e7\u00f8d\u00e9 \u4e2d\u6587 \U0001f600 \u2028\u2029",
    "back\\slash \\u0041 \\' </script> $context.stage #set($x = 1) ${x}",
    "plain text, not JSON",
    "'",
    '"',
    "\x00\x01\x1f\x7f",
    "{}",
    " ",
]


@pytest.mark.parametrize("selector", [HEADER, MEDIA], ids=["header", "media"])
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_the_event_carries_the_raw_body_as_a_json_string(selector: Selector, body: str) -> None:
    output, _ = render(request_template(selector), headers={"Content-Type": "application/json"}, body=body, stage_variables=PROD)
    assert json.loads(output)["body"] == body


@pytest.mark.parametrize("selector", [HEADER, MEDIA], ids=["header", "media"])
def test_an_empty_body_arrives_as_api_gateway_hands_it_to_templates(selector: Selector) -> None:
    """API Gateway gives a template "{}" as $input.body when the request has no body."""
    output, _ = render(request_template(selector), body="", stage_variables=PROD)
    assert json.loads(output)["body"] == "{}"


def test_the_event_is_lambda_proxy_shaped() -> None:
    headers = {
        "Version": "2022-05-03",
        "X-Quote": 'say "hi"',
        "X-Apostrophe": "it's",
        "X-Backslash": "a\\b",
        "X-Unicode": "caf\u00e9 \U0001f600",
        "X-Slash": "</a>",
    }
    rendered = render_full(
        request_template(HEADER),
        headers=headers,
        body='{"id": 1}',
        query={"q": 'a "b"', "page": "2"},
        path_parameters={"userId": "u'1"},
        stage_variables={**PROD, "lambdaAlias": "prod"},
        context={"stage": "prod", "requestId": "r-1", "httpMethod": "POST", "resourcePath": "/users/{userId}", "path": "/prod/users/u'1"},
    )
    assert rendered.alias == "2022-05-03"
    assert rendered.json() == {
        "resource": "/users/{userId}",
        "path": "/prod/users/u'1",
        "httpMethod": "POST",
        "headers": headers,
        "queryStringParameters": {"q": 'a "b"', "page": "2"},
        "pathParameters": {"userId": "u'1"},
        "stageVariables": {**PROD, "lambdaAlias": "prod"},
        "requestContext": {"stage": "prod", "requestId": "r-1", "apiVersion": "2022-05-03"},
        "body": '{"id": 1}',
        "isBase64Encoded": False,
    }


def test_the_event_with_nothing_in_it_is_valid_json() -> None:
    event = render_full(request_template(MEDIA)).json()
    assert event["headers"] == {} and event["queryStringParameters"] == {} and event["pathParameters"] == {} and event["stageVariables"] == {}
    assert event["requestContext"]["apiVersion"] == ""


# ---------------------------------------------------------------------------------------------
# The integration responses
# ---------------------------------------------------------------------------------------------


def _success() -> str:
    template = integration_responses(HEADER)["200"]["template"]
    assert isinstance(template, str)
    return template


def test_the_success_template_sets_the_status_and_renders_a_string_body() -> None:  # served requests from here on
    rendered = render_full(_success(), headers={"Version": "2022-05-03"}, stage_variables=PROD, payload={"statusCode": 201, "body": '{"id": 1}'})
    assert rendered.status == 201
    assert rendered.output == '{"id": 1}'
    assert rendered.json() == {"id": 1}
    assert rendered.response_headers == {}


def test_the_success_template_sets_each_header_once_and_renders_an_object_body_as_json() -> None:
    payload = {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Count": 2, "X-Quote": 'a"b'}, "body": {"items": [1, "\u00e9"], "ok": True}}
    rendered = render_full(_success(), payload=payload, stage_variables=PROD)
    assert rendered.status == 200
    assert rendered.response_headers == {"Content-Type": "application/json", "X-Count": "2", "X-Quote": 'a"b'}
    assert rendered.json() == {"items": [1, "\u00e9"], "ok": True}


@pytest.mark.parametrize(
    ("payload", "status", "output"),
    [
        ({"statusCode": 204}, 204, ""),
        ({"statusCode": 200, "body": None}, 200, ""),
        ({"statusCode": 200, "body": ""}, 200, ""),
        ({"statusCode": 404, "body": '{"message": "no such user"}'}, 404, '{"message": "no such user"}'),
        ({"statusCode": 200, "body": "  text with spaces\n"}, 200, "  text with spaces\n"),
        ({"statusCode": 200, "body": '"quoted"'}, 200, '"quoted"'),
        ({"statusCode": 200, "body": 42}, 200, "42"),
        ({"statusCode": 200, "body": [1, {"a": "b"}]}, 200, '[1,{"a":"b"}]'),
    ],
)
def test_the_success_template_passes_the_body_through(payload: dict[str, Any], status: int, output: str) -> None:
    rendered = render_full(_success(), payload=payload, stage_variables=PROD)
    assert (rendered.status, rendered.output) == (status, output)


@pytest.mark.parametrize(
    "payload",
    [
        {"errorMessage": "KeyError: 'id'", "errorType": "KeyError", "stackTrace": []},
        {"errorMessage": "404 no colon", "errorType": "Error"},
        {"errorMessage": "4040: too long", "errorType": "Error"},
        {"errorMessage": " 404: leading space", "errorType": "Error"},
        {"errorMessage": "600: not a status", "errorType": "Error"},
        {"errorType": "Error"},
        {"statusCode": "abc"},
        {"statusCode": 42},
        {"statusCode": 200.5},
        {"body": "no status"},
        "null",
        "[1, 2]",
        "",
    ],
)
def test_the_success_template_hides_answers_that_are_not_proxy_shaped(payload: Any) -> None:
    rendered = render_full(_success(), payload=payload, stage_variables=PROD)
    assert rendered.status == 500
    assert rendered.json() == INTERNAL_ERROR


@pytest.mark.parametrize(
    ("message", "status", "body"),
    [
        ("404: no such user", 404, {"message": "no such user"}),
        ("409:conflict", 409, {"message": "conflict"}),
        ("400:  padded  ", 400, {"message": "padded"}),
        ("503: line one\nline two", 503, {"message": "line one\nline two"}),
        ('422: a "quoted" \\ value', 422, {"message": 'a "quoted" \\ value'}),
        ("418:", 418, {"message": ""}),
    ],
)
def test_a_function_error_that_names_its_status_is_answered_with_it(message: str, status: int, body: dict[str, str]) -> None:
    """The way a function written for this integration signals an HTTP error: its message starts with the status."""
    error = {"errorMessage": message, "errorType": "Error", "stackTrace": ["at handler"]}
    rendered = render_full(_success(), headers={"Version": "2022-05-03"}, payload=error, stage_variables=PROD)
    assert (rendered.status, rendered.json()) == (status, body)


@pytest.mark.parametrize("selector", [HEADER, MEDIA], ids=["header", "media"])
def test_one_integration_response_and_no_selection_pattern(selector: Selector) -> None:
    """A Lambda backend's selection patterns see only a function's error message: none is relied on."""
    responses = integration_responses(selector)
    assert list(responses) == ["200"] and responses["200"]["selectionPattern"] is None
    assert versioning.method_responses() == ["200", "400", "500"]


def test_the_selection_fragment_is_shared_by_the_request_and_the_response_template() -> None:
    for selector in (HEADER, MEDIA):
        fragment = "\n".join(versioning.templates._selection_fragment(selector))
        assert fragment in request_template(selector)
        assert fragment in str(integration_responses(selector)["200"]["template"])


# ---------------------------------------------------------------------------------------------
# Generation: configuration values, determinism, shape of the text
# ---------------------------------------------------------------------------------------------


def _all_templates(selector: Selector) -> list[str]:
    return [request_template(selector), *(str(response["template"]) for response in integration_responses(selector).values())]


@pytest.mark.parametrize("selector", [HEADER, MEDIA, Selector(header="X-Api-Version"), Selector(media_type="Application/Vnd.Example+Api")], ids=str)
def test_generation_is_deterministic_and_tidy(selector: Selector) -> None:
    first, second = _all_templates(selector), _all_templates(Selector(header=selector.header, media_type=selector.media_type))
    assert first == second
    assert integration_responses(selector) == integration_responses(selector)
    for template in first:
        assert template.isascii()
        assert "\r" not in template and "\t" not in template
        assert template == template.strip()
        assert all(line == line.rstrip() for line in template.split("\n"))


def test_request_template_differs_by_selector() -> None:
    assert request_template(HEADER) != request_template(MEDIA)
    assert request_template(HEADER) != request_template(Selector(header="X-Api-Version"))
    assert '"x-api-version"' in request_template(Selector(header="X-Api-Version"))


def test_lambda_uri_and_request_parameters() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:postUser"
    assert versioning.lambda_uri("eu-west-1", arn) == (
        "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:postUser:{alias}/invocations"
    )
    cn = "arn:aws-cn:lambda:cn-north-1:123456789012:function:f"
    assert versioning.lambda_uri("cn-north-1", cn).startswith("arn:aws-cn:apigateway:cn-north-1:lambda:path/")
    for bad in (arn + ":prod", arn + ":7", "postUser", "arn:aws:lambda:eu-west-1:123:function:f"):
        with pytest.raises(ValueError):
            versioning.lambda_uri("eu-west-1", bad)
    with pytest.raises(ValueError):
        versioning.lambda_uri("nowhere", arn)
    assert versioning.request_parameters() == {"integration.request.path.alias": "'pointsman-unknown-version'"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"header": "Version", "media_type": "application/vnd.acme"},
        {"header": ""},
        {"header": "Ver sion"},
        {"header": 'Ver"sion'},
        {"header": "Ver$ion"},
        {"header": "Ver#ion"},
        {"header": "Versi\u00f6n"},
        {"media_type": "vnd.acme"},
        {"media_type": "application/vnd.acme."},
        {"media_type": "application/vnd.$acme"},
        {"media_type": "application/vnd.acme; v=1"},
    ],
)
def test_bad_selectors_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Selector(**kwargs)


def test_version_problems_and_stage_variables() -> None:
    assert versioning.version_problems(HEADER, ["2022-01-01", "2022-05-03"], "2022-01-01") == []
    assert versioning.version_problems(MEDIA, ["v1", "v2"], "v1") == []
    problems = versioning.version_problems(MEDIA, ["V2", "12", "a.b", UNKNOWN_ALIAS, "v1", "v1"], "v3")
    assert len(problems) == 6
    assert versioning.stage_variables(["2022-01-01", "2022-05-03"], "2022-01-01") == PROD


# ---------------------------------------------------------------------------------------------
# The renderer itself
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain", "plain"),
        ('it\'s "q" \\ /', 'it\\\'s \\"q\\" \\\\ \\/'),
        ("\b\t\n\f\r\x00\x1f\x7f", "\\b\\t\\n\\f\\r\\u0000\\u001F\x7f"),
        ("\u00e9\u4e2d\U0001f600", "\\u00E9\\u4E2D\\uD83D\\uDE00"),
        ("", ""),
    ],
)
def test_escape_javascript_is_commons_lang(text: str, escaped: str) -> None:
    assert escape_javascript(text) == escaped


@given(st.text())
def test_escape_javascript_then_replace_all_is_a_json_string(text: str) -> None:
    escaped = escape_javascript(text)
    assert escaped is not None
    assert json.loads('"' + re.sub(r"\\'", "'", escaped) + '"') == text


def test_an_override_set_twice_is_an_error_as_in_api_gateway() -> None:
    template = "#set($context.requestOverride.path.alias = 'a')#set($context.requestOverride.path.alias = 'b')"
    with pytest.raises(TemplateRenderError, match="overridden twice"):
        render(template)
    with pytest.raises(TemplateRenderError, match="overridden twice"):
        render("#set($context.responseOverride.status = 400)#set($context.responseOverride.status = 500)", payload="{}")


def test_the_renderer_reports_bad_templates() -> None:
    with pytest.raises(TemplateRenderError):
        render("#if($x")
    with pytest.raises(TemplateRenderError, match="not JSON"):
        render("$input.json('$')", body="not json")
    with pytest.raises(TemplateRenderError, match="JSONPath"):
        render("$input.path('$..a')", body="{}")


def test_the_renderer_emulates_input_util_and_context() -> None:
    body = '{"a": {"b": [10, {"c": "x"}]}, "s": "t"}'
    template = (
        "$input.json('$.a.b')|$input.path('$.a.b[1].c')|$input.path('$.s')|$input.path('$.missing')|"
        "$input.params('Version')|$input.params('q')|$input.params('id')|$input.params().header.size()|"
        "$util.urlEncode('a b~*&')|$util.urlDecode('a+b%26')|$util.base64Encode('hi')|$util.base64Decode('aGk=')|"
        "$util.parseJson('{\"k\": [1]}').k.get(0)|$context.stage|$context.identity.sourceIp|$stageVariables.lambdaAlias|"
        "$input.path('$').a.b.size()|$input.json('$')"
    )
    rendered = render_full(
        template,
        headers={"version": "v2"},
        body=body,
        query={"q": "1"},
        path_parameters={"id": "7"},
        stage_variables={"lambdaAlias": "prod"},
        context={"stage": "dev"},
    )
    assert rendered.output.split("|") == [
        '[10,{"c":"x"}]',
        "x",
        "t",
        "",
        "v2",
        "1",
        "7",
        "1",
        "a+b%7E*%26",
        "a b&",
        "aGk=",
        "hi",
        "1",
        "dev",
        "203.0.113.1",
        "prod",
        "2",
        '{"a":{"b":[10,{"c":"x"}]},"s":"t"}',
    ]
    assert rendered.alias is None and rendered.effective_alias == UNKNOWN_ALIAS and rendered.status is None


def test_rendering_is_repeatable() -> None:
    template = request_template(HEADER)
    first = render(template, headers={"Version": "2022-05-03"}, body="{}", stage_variables=PROD)
    second = render(template, headers={"Version": "2022-05-03"}, body="{}", stage_variables=PROD)
    assert first == second


# ---------------------------------------------------------------------------------------------
# Properties: the rendered template and select() agree on generated requests
# ---------------------------------------------------------------------------------------------

ALIAS_ALPHABET = string.ascii_letters + string.digits + "_-"
alias_like = st.text(ALIAS_ALPHABET, min_size=1, max_size=12)


def _casings(word: str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.sampled_from(sorted({ch.lower(), ch.upper()})) for ch in word)).map("".join)


@st.composite
def header_requests(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str]]:
    versions = draw(st.lists(alias_like, max_size=5))
    stage: dict[str, str] = {}
    if draw(st.booleans()):
        stage[STAGE_VERSIONS_VAR] = ",".join(versions)
    if draw(st.booleans()):
        pick_listed: bool = draw(st.booleans())
        stage[STAGE_DEFAULT_VAR] = draw(st.sampled_from(versions) if versions and pick_listed else alias_like)
    headers: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 2))):
        pick_listed = draw(st.booleans())
        value = draw(st.sampled_from(versions) if versions and pick_listed else st.text(ALIAS_ALPHABET, max_size=12))
        padding = draw(st.sampled_from(["", " ", "\t "]))
        headers[draw(_casings("version"))] = padding + value + padding
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["Accept", "X-Version", "Content-Type"]))] = draw(alias_like)
    return headers, stage


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_requests())
def test_property_header_selection_matches_select(drawn: tuple[dict[str, str], dict[str, str]]) -> None:
    headers, stage = drawn
    _check_agreement(HEADER, headers, stage)


@st.composite
def accept_requests(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str]]:
    versions = draw(st.lists(alias_like.map(str.lower), max_size=4))
    stage = {STAGE_VERSIONS_VAR: ",".join(versions), STAGE_DEFAULT_VAR: draw(st.sampled_from(versions) if versions else alias_like)}
    ranges = []
    for _ in range(draw(st.integers(0, 3))):
        pick_listed = draw(st.booleans())
        version = draw(st.sampled_from(versions) if versions and pick_listed else st.text(ALIAS_ALPHABET, max_size=6))
        media_type = draw(
            st.sampled_from(
                [
                    f"application/vnd.acme.{version}+json",
                    f"application/vnd.acme.{version}+xml",
                    f"application/vnd.acmex.{version}+json",
                    "application/json",
                    "*/*",
                    "text/html",
                ]
            )
        )
        media_type = "".join(draw(st.sampled_from([ch.lower(), ch.upper()])) for ch in media_type)
        parameters = draw(st.sampled_from(["", ";q=0.9", "; charset=utf-8", " ; q=0"]))
        ranges.append(draw(st.sampled_from(["", " "])) + media_type + parameters)
    send_empty: bool = draw(st.booleans())
    headers = {draw(_casings("accept")): ",".join(ranges)} if ranges or send_empty else {}
    return headers, stage


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accept_requests())
def test_property_media_type_selection_matches_select(drawn: tuple[dict[str, str], dict[str, str]]) -> None:
    headers, stage = drawn
    _check_agreement(MEDIA, headers, stage)


def _check_agreement(selector: Selector, headers: dict[str, str], stage: dict[str, str]) -> None:
    version, requested = select(selector, headers, stage)
    rendered = render_full(request_template(selector), headers=headers, body="{}", stage_variables=stage)
    assert (rendered.alias, rendered.invocation_type) == versioning.call_for(selector, headers, stage)
    assert rendered.invocation_type == (None if version is not None else "DryRun")
    assert rendered.json()["requestContext"]["apiVersion"] == requested
    response = render_full(str(integration_responses(selector)["200"]["template"]), headers=headers, stage_variables=stage, payload="")
    if version is None:
        assert response.status == 400
        assert response.json()["requested"] == requested
        assert response.json()["supported"] == versioning.stage_versions(stage)
    else:  # served: an empty answer is not proxy-shaped
        assert response.status == 500
