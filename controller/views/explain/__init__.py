"""``pointsman explain``: who serves this request? Each step from URL to function version.

A request (method, URL, headers, body) is resolved the way API Gateway would resolve it:

1. the entry: a custom domain's base path mapping (longest matching base path, ``(none)`` for
   the root), an ``{api-id}.execute-api.{region}.amazonaws.com/{stage}`` URL, or ``--api NAME
   --stage STAGE``, gives the REST API and stage;
2. the stage and its variables;
3. the resource (``{param}`` and ``{proxy+}`` templates; literal segments win over parameters,
   parameters over greedy ones) and its method (``ANY`` matches any method);
4. the integration: a Lambda URI's qualifier names the alias directly, through a stage
   variable (``function:NAME:${stageVariables.X}``), or through the ``{alias}`` path parameter
   that the request mapping template sets (API versions): the template is rendered with
   :func:`controller.versions.render_request` for this request;
5. the alias and the published version(s) it serves, with their weights;
6. whether the alias's resource policy lets API Gateway invoke it from that API and stage.

The core (:func:`explain`) is pure: it reads through an :class:`Estate`, which is either
:class:`LiveEstate` (live reads through :class:`controller.live.scope.Scope`, read-only) or
:class:`DesiredEstate` (the spec: mappings, stage variables after the versions expansion,
aliases, generated templates; what the spec does not describe, such as the integrations of
stage-variable routes, is read live and labelled so).

Outcomes, as the client would see them: a function serves it (exit 0); the version template
made the call a DryRun of the stage's default alias because the stage does not serve the
requested version (no function runs; the default integration response answers 400 with the
versions the stage serves); no mapping, stage, resource or method (403 "Missing
Authentication Token"); the alias does not exist, a stage variable is missing or API Gateway
may not invoke the alias (500: Lambda rejects the invoke, and API Gateway answers 500 before
any integration response runs). A non-Lambda integration (MOCK, HTTP to elsewhere) is
reported and not followed further; an HTTP integration calling the same API (versions,
strategy http-proxy) is followed to the route it calls.

Modules: ``request`` (the question), ``answers`` (what an estate view answers, the explanation),
``resolve`` (the core), ``estates`` (the live and desired views), ``output`` (text and JSON).
"""

from __future__ import annotations

from controller.views.explain.answers import (
    EXIT_CLIENT,
    EXIT_SERVED,
    INTERNAL_ERROR,
    LATEST,
    MISSING_TOKEN,
    AliasView,
    Estate,
    Explanation,
    FunctionHome,
    Integration,
    IntegrationResponse,
    Mappings,
    Permission,
    Resources,
    ServedBy,
    StageView,
    Step,
    Target,
    describe_versions,
    weighted,
)
from controller.views.explain.estates import (
    GENERATED,
    DesiredEstate,
    LiveEstate,
    generated_integration,
    generated_proxy,
    generated_route_behind,
    pinned_versions,
)
from controller.views.explain.output import (
    render,
    render_text,
)
from controller.views.explain.request import (
    ExplainError,
    Request,
    parse_headers,
    parse_request,
)
from controller.views.explain.resolve import (
    UNSUPPORTED_MEDIA,
    Entry,
    Route,
    Selection,
    explain,
    match_base_path,
    match_resource,
)

__all__ = [
    "ExplainError",
    "Request",
    "parse_headers",
    "parse_request",
    "EXIT_SERVED",
    "EXIT_CLIENT",
    "MISSING_TOKEN",
    "INTERNAL_ERROR",
    "LATEST",
    "Target",
    "Mappings",
    "StageView",
    "IntegrationResponse",
    "Integration",
    "Resources",
    "AliasView",
    "FunctionHome",
    "Permission",
    "Estate",
    "Step",
    "ServedBy",
    "Explanation",
    "describe_versions",
    "weighted",
    "UNSUPPORTED_MEDIA",
    "Entry",
    "Route",
    "Selection",
    "explain",
    "match_base_path",
    "match_resource",
    "GENERATED",
    "LiveEstate",
    "generated_integration",
    "generated_proxy",
    "generated_route_behind",
    "pinned_versions",
    "DesiredEstate",
    "render_text",
    "render",
]
