"""Render API Gateway mapping templates in tests: a thin front to controller.versions.templates's renderer.

``render(template, headers=..., body=..., stage_variables=...)`` renders an integration request
template; with ``payload=...`` (not None) it renders an integration response template for that
integration answer instead (pass the string ``"null"`` for a JSON null answer). It returns ``(output, context)``, ``context`` being ``$context`` after rendering
(``context["requestOverride"]["path"]["alias"]``, ``context["responseOverride"]["status"]``, ...).
The emulation and its differences from API Gateway are documented in
:func:`controller.versions.templates.render_request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.versions import Rendered, render_request, render_response


def render_full(
    template: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: str = "",
    stage_variables: Mapping[str, str] | None = None,
    payload: Any = None,
    query: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Rendered:
    """Like :func:`render`, returning the :class:`~controller.versions.templates.Rendered` result."""
    params: dict[str, Any] = {
        "headers": headers,
        "stage_variables": stage_variables,
        "query": query,
        "path_parameters": path_parameters,
        "context": context,
    }
    if payload is None:
        return render_request(template, body=body, **params)
    return render_response(template, payload=payload, **params)


def render(
    template: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: str = "",
    stage_variables: Mapping[str, str] | None = None,
    payload: Any = None,
) -> tuple[str, dict[str, Any]]:
    """Render ``template`` as API Gateway would: ``(output, $context after rendering)``."""
    rendered = render_full(template, headers=headers, body=body, stage_variables=stage_variables, payload=payload)
    return rendered.output, rendered.context
