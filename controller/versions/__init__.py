"""API versions chosen per request: which version a request names, the API Gateway templates that
route it, and a renderer that runs those templates as API Gateway would.

Concepts, in the order a request meets them:

- a **selector** names where a request gives its version: a header (``Version: 2022-05-03``,
  Stripe-style) or the Accept media type (``application/vnd.acme.v2+json``);
- a **stage** serves the versions its ``pointsmanVersions`` stage variable lists, and
  ``pointsmanDefaultVersion`` when the request names none; a version is a Lambda alias of the
  same name, so promoting one on prod is a stage-variable change;
- the **generated templates** (:mod:`controller.versions.templates`) make that choice inside API
  Gateway: the ``lambda`` strategy calls the alias directly, and answers a version the stage does
  not serve with a DryRun of its default alias and a 400 listing the versions (no user code
  runs); the ``http-proxy`` strategy calls the route ``{path}/{version}`` of its own stage;
- :mod:`controller.versions.selection` is the same choice in plain Python (:func:`select`,
  :func:`call_for`), the reference the tests hold the templates to;
- :mod:`controller.versions.render` evaluates mapping templates with a Velocity engine and API
  Gateway's variables, for ``pointsman explain`` and the tests.

Everything here is pure: no AWS calls, no I/O.
"""

from __future__ import annotations

from controller.versions.render import (
    DEFAULT_CONTEXT,
    Rendered,
    TemplateRenderError,
    escape_javascript,
    render_request,
    render_response,
)
from controller.versions.selection import (
    ALIAS_PARAM,
    DRY_RUN,
    INVOCATION_TYPE_HEADER,
    STAGE_DEFAULT_VAR,
    STAGE_NAME_VAR,
    STAGE_VERSIONS_VAR,
    UNKNOWN_ALIAS,
    VERSION_PARAM,
    Selector,
    alias_for,
    call_for,
    java_trim,
    requested_version,
    select,
    stage_default,
    stage_variables,
    stage_versions,
    version_problems,
)
from controller.versions.templates import (
    CONTENT_TYPE,
    LAMBDA_API_VERSION,
    PASSTHROUGH_BEHAVIOR,
    PROXY_DROPPED_HEADERS,
    STATUS_PREFIX,
    alias_uri,
    integration_responses,
    lambda_uri,
    method_responses,
    proxy_integration_responses,
    proxy_method_parameters,
    proxy_path_parameters,
    proxy_request_parameters,
    proxy_request_template,
    proxy_uri,
    request_parameters,
    request_template,
    versioned_path,
)

__all__ = [
    "STAGE_VERSIONS_VAR",
    "STAGE_DEFAULT_VAR",
    "ALIAS_PARAM",
    "VERSION_PARAM",
    "STAGE_NAME_VAR",
    "UNKNOWN_ALIAS",
    "INVOCATION_TYPE_HEADER",
    "DRY_RUN",
    "Selector",
    "java_trim",
    "stage_versions",
    "stage_default",
    "requested_version",
    "select",
    "call_for",
    "alias_for",
    "version_problems",
    "stage_variables",
    "STATUS_PREFIX",
    "CONTENT_TYPE",
    "PASSTHROUGH_BEHAVIOR",
    "LAMBDA_API_VERSION",
    "lambda_uri",
    "request_parameters",
    "method_responses",
    "request_template",
    "integration_responses",
    "versioned_path",
    "proxy_uri",
    "PROXY_DROPPED_HEADERS",
    "proxy_path_parameters",
    "proxy_request_parameters",
    "proxy_method_parameters",
    "proxy_request_template",
    "proxy_integration_responses",
    "alias_uri",
    "TemplateRenderError",
    "escape_javascript",
    "DEFAULT_CONTEXT",
    "Rendered",
    "render_request",
    "render_response",
]
