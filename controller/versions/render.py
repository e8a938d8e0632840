"""The mapping-template renderer: API Gateway's Velocity templates evaluated with airspeed-ext.

It emulates API Gateway's ``$input``, ``$util``, ``$context`` and ``$stageVariables`` for one
request (:func:`render_request`) or one integration answer (:func:`render_response`), so the
generated templates, ``pointsman explain`` and the tests see what a client would. Where the
emulation differs from API Gateway, the docstrings of those functions say so.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from controller.versions.selection import ALIAS_PARAM, INVOCATION_TYPE_HEADER, UNKNOWN_ALIAS, java_trim

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
