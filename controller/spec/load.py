"""Spec files: YAML under a directory -> validated, merged ``Spec`` with file:line for everything.

Every problem is collected (not just the first) as a ``SpecProblem`` naming file, line and
field, so ``pointsman validate`` can list them all at once.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.versions import STAGE_DEFAULT_VAR, STAGE_NAME_VAR, STAGE_VERSIONS_VAR

LATEST = "$LATEST"
# Each name rule is anchored with \Z, the end of the text (Python's $ also matches before a newline
# that ends it, so `^live$` would take "live\n"), and checked with fullmatch.
_VERSION_RE = re.compile(r"^(\$LATEST|[1-9][0-9]*|sha256:[A-Za-z0-9+/]{43}=)\Z")
_ALIAS_NAME_RE = re.compile(r"^(?![0-9]+\Z)[A-Za-z0-9_-]{1,128}\Z")
_STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
_VAR_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")
_VAR_VALUE_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#&=,]{1,512}\Z")
_BASE_PATH_RE = re.compile(r"^(\(none\)|[A-Za-z0-9._~\-]+(/[A-Za-z0-9._~\-]+)*)\Z")
_FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")

# --------------------------------------------------------------------------- the JSON Schema's patterns
# JSON Schema patterns are ECMA-262 regexes, searched (not matched) in the text; jsonschema (Python)
# searches them with `re`. The patterns below mean the same in both, and each accepts exactly the
# strings the check it mirrors accepts.
_END = r"(?![\s\S])"  # the end of the text, in ECMA-262 and Python alike (ECMA has no \Z)


def _ecma(pattern: re.Pattern[str]) -> str:
    r"""The JSON Schema pattern for ``pattern.fullmatch``: each ``\Z`` becomes ``_END``.

    ECMA-262 has no ``\Z``. The name rules never end with ``$``: Python's ``$`` also matches
    before a newline that ends the text, and ``"live\n"`` is no alias name, in validate or here.
    """
    out: list[str] = []
    source = pattern.pattern
    i, in_class = 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            out.append(_END if source[i : i + 2] == r"\Z" and not in_class else source[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            raise ValueError(f"{source!r}: end a name rule with \\Z, not $ (which takes a trailing newline)")
        out.append(ch)
        i += 1
    return "".join(out)


def _whole(pattern: str) -> str:
    """The JSON Schema pattern for ``re.fullmatch(pattern, ...)``."""
    return f"^(?:{pattern}){_END}"


@functools.cache
def _upper_is(words: tuple[str, ...]) -> str:
    """The JSON Schema pattern for the strings whose ``str.upper()`` is one of ``words``.

    Not only ``get`` and ``Get``: ``str.upper`` also turns ``ſ`` into ``S``, ``ı`` into ``I`` and
    ``ﬆ`` into ``ST`` (no character outside the BMP upper-cases to ASCII).
    """
    letters = set("".join(words))
    spelled: dict[str, list[str]] = {}  # upper-case text -> the characters whose upper() it is
    for point in range(0x10000):
        char = chr(point)
        upper = char.upper()
        if upper and set(upper) <= letters:
            spelled.setdefault(upper, []).append(char)

    def rest(word: str) -> str:
        if not word:
            return ""
        options = [
            (f"[{''.join(chars)}]" if len(chars) > 1 else chars[0]) + rest(word[len(upper) :])
            for upper, chars in sorted(spelled.items())
            if word.startswith(upper)
        ]
        return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"

    return f"^(?:{'|'.join(rest(word) for word in words)}){_END}"


def _keys(pattern: re.Pattern[str]) -> dict[str, Any]:
    """Schema of a mapping whose keys ``pattern`` checks (function, alias, stage names...)."""
    return {"propertyNames": {"pattern": _ecma(pattern)}}


def _short(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters (messages stay one readable line)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _named(pattern: re.Pattern[str], what: str, rule: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} {_short(value)} is not allowed: {rule}")
        return value

    return AfterValidator(check)


AliasName = Annotated[str, _named(_ALIAS_NAME_RE, "alias name", "1-128 letters, digits, - or _, and not all digits")]
StageName = Annotated[str, _named(_STAGE_NAME_RE, "stage name", "letters, digits, - or _")]
VariableName = Annotated[str, _named(_VAR_NAME_RE, "stage variable name", "letters, digits or _")]
BasePath = Annotated[str, _named(_BASE_PATH_RE, "base path", "'(none)' or a path like 'v1'")]
FunctionName = Annotated[str, _named(_FUNCTION_NAME_RE, "function name", "1-64 letters, digits, - or _")]
# YAML reads `version: 7` and `lambdaAlias: 2` as numbers; the schema says so too.
VersionText = Annotated[
    str,
    WithJsonSchema({
        "type": ["string", "integer"],
        # As text, _VERSION_RE; as a number, str(n) must match [1-9][0-9]* (pattern and minimum each apply to one type).
        "pattern": _ecma(_VERSION_RE),
        "minimum": 1,
        "description": 'Published version ("1" or 1), "$LATEST", or "sha256:<CodeSha256>".',
    }),
]
# A number is its str(), which always fits _VAR_VALUE_RE but for a float of 1e16 or more ("1e+16").
VariableValue = Annotated[str, WithJsonSchema({"type": ["string", "number"], "pattern": _ecma(_VAR_VALUE_RE)})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_version(value: Any) -> Any:
    # YAML reads `version: 7` as an int; versions are strings in AWS.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    return value


class AliasSpec(_Strict):
    # _routing_rules: routing (when not empty) needs a version other than $LATEST.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["routing"], "properties": {"routing": {"minProperties": 1}}},
            "then": {"properties": {"version": {"not": {"const": LATEST}}}},
        }
    )

    version: VersionText
    description: str = Field("", max_length=256)
    routing: dict[str, float] = Field(
        default_factory=dict,
        description="At most one additional published version and its weight in [0, 1).",
        json_schema_extra={  # _routing_rules
            "maxProperties": 1,
            "propertyNames": {"pattern": _whole("[1-9][0-9]*")},
            "additionalProperties": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        },
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_before(cls, value: Any) -> Any:
        return _as_version(value)

    @field_validator("version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not _VERSION_RE.fullmatch(value):
            raise ValueError(
                f'version {_short(value)} is not a published version number, "$LATEST" or "sha256:<CodeSha256>"'
            )
        return value

    @field_validator("routing", mode="before")
    @classmethod
    def _routing_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k) if isinstance(k, int) else k: v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _routing_rules(self) -> AliasSpec:
        if not self.routing:
            return self
        if len(self.routing) > 1:
            raise ValueError("routing allows at most one additional version")
        (extra_version, weight), = self.routing.items()
        if not re.fullmatch(r"[1-9][0-9]*", extra_version):
            raise ValueError(f"routing version {_short(extra_version)} must be a published version number (not $LATEST)")
        if not 0 <= weight < 1:
            raise ValueError(f"routing weight {weight} must be in [0, 1)")
        if self.version == LATEST:
            raise ValueError("an alias with routing must point to a published version, not $LATEST")
        if extra_version == self.version:
            raise ValueError(f"routing version {extra_version} must differ from the primary version")
        return self


_ENV_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*\Z")
# Set by the Lambda runtime; UpdateFunctionConfiguration refuses them. (TZ, LANG, PATH and
# AWS_LAMBDA_EXEC_WRAPPER are documented as settable.)
_ENV_RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
_ENV_SETTABLE = frozenset({"AWS_LAMBDA_EXEC_WRAPPER"})
MAX_ENVIRONMENT_BYTES = 4 * 1024  # Lambda: all names and values of a function together


def _env_name(name: str) -> str:
    if name not in _ENV_SETTABLE and (name in _ENV_RESERVED or name.startswith("AWS_LAMBDA_")):
        raise ValueError(f"environment variable {_short(name)} is reserved by Lambda")
    if not _ENV_NAME_RE.fullmatch(name):
        raise ValueError(f"environment variable name {_short(name)} is not allowed: a letter, then letters, digits or _")
    return name


def _env_text(value: Any) -> Any:
    # YAML reads `PORT: 8080`, `DEBUG: true` and `SINCE: 2024-01-01` as numbers, booleans and dates.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _as_text(value)


EnvironmentName = Annotated[str, AfterValidator(_env_name)]
# The 4 KiB of _environment_size bound one value (a name takes at least a byte), not the sum.
EnvironmentValue = Annotated[str, WithJsonSchema({"type": ["string", "number", "boolean"], "maxLength": MAX_ENVIRONMENT_BYTES - 1})]

# SSM parameter names: letters, digits and . - _ in /-separated parts, a leading / for a
# hierarchy, 2,048 characters at most (2,011 for the name itself plus the ARN prefix AWS counts).
_SSM_NAME = r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*"
MAX_SSM_NAME = 2011


class SsmReference(_Strict):
    """An environment value kept in SSM Parameter Store: git holds the name, never the value."""

    ssm: str = Field(
        description="Name of an SSM parameter (String, StringList or SecureString, decrypted), read at plan time.",
        json_schema_extra={"pattern": _whole(_SSM_NAME), "maxLength": MAX_SSM_NAME},
    )

    @field_validator("ssm")
    @classmethod
    def _parameter_name(cls, value: str) -> str:
        if len(value) > MAX_SSM_NAME or not re.fullmatch(_SSM_NAME, value):
            raise ValueError(
                f"SSM parameter name {_short(value)} is not allowed: letters, digits, . - _ in /-separated parts "
                f"(at most {MAX_SSM_NAME:,} characters)"
            )
        return value


# The tags of an environment value's two forms; they are left out of a problem's field path.
_ENV_TEXT_TAG, _ENV_SSM_TAG = "<text>", "<ssm>"


def _env_value_form(value: Any) -> str:
    return _ENV_SSM_TAG if isinstance(value, (dict, SsmReference)) else _ENV_TEXT_TAG


EnvironmentEntry = Annotated[
    Annotated[EnvironmentValue, Tag(_ENV_TEXT_TAG)] | Annotated[SsmReference, Tag(_ENV_SSM_TAG)],
    Discriminator(_env_value_form),
]


def _environment_names() -> dict[str, Any]:
    """_env_name: not reserved (AWS_LAMBDA_* but the settable ones), a letter then letters, digits or _."""
    prefix = "AWS_LAMBDA_"
    settable = "|".join(sorted(name[len(prefix) :] for name in _ENV_SETTABLE if name.startswith(prefix)))
    reserved = sorted(_ENV_RESERVED - _ENV_SETTABLE)
    return {
        "pattern": _ecma(_ENV_NAME_RE),
        "maxLength": MAX_ENVIRONMENT_BYTES,
        "not": {"anyOf": [{"enum": reserved}, {"type": "string", "pattern": f"^{prefix}(?!(?:{settable}){_END})"}]},
    }


class FunctionSpec(_Strict):
    aliases: dict[AliasName, AliasSpec] = Field(default_factory=dict, json_schema_extra=_keys(_ALIAS_NAME_RE))
    environment: dict[EnvironmentName, EnvironmentEntry] | None = Field(
        None,
        description="Environment variables of $LATEST (published versions keep theirs). Omitted: not managed; {}: none. "
        "A value is text, or {ssm: NAME}: read from SSM Parameter Store at plan time.",
        json_schema_extra={"propertyNames": _environment_names(), "maxProperties": MAX_ENVIRONMENT_BYTES},
    )

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_env_text(k): v if isinstance(v, dict) else _env_text(v) for k, v in value.items()}
        return value

    @field_validator("environment")
    @classmethod
    def _environment_size(cls, value: dict[str, str | SsmReference] | None) -> dict[str, str | SsmReference] | None:
        # Values from SSM are counted once read (at plan time).
        size = sum(len(k.encode()) + (len(v.encode()) if isinstance(v, str) else 0) for k, v in (value or {}).items())
        if size > MAX_ENVIRONMENT_BYTES:
            raise ValueError(f"environment variables total {size:,} bytes (names and values); Lambda allows {MAX_ENVIRONMENT_BYTES:,}")
        return value

    def ssm_parameters(self) -> dict[str, str]:
        """Variable name -> SSM parameter name, for the values kept in Parameter Store."""
        return {k: v.ssm for k, v in (self.environment or {}).items() if isinstance(v, SsmReference)}


class StageSpec(_Strict):
    variables: dict[VariableName, VariableValue] = Field(default_factory=dict, json_schema_extra=_keys(_VAR_NAME_RE))
    description: str = ""
    deployment: str | None = Field(
        None, description="Deployment id; when omitted the stage keeps its deployment (new stages get the newest)."
    )

    @field_validator("variables", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in value.items()}
        return value

    @field_validator("variables")
    @classmethod
    def _variable_shape(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not _VAR_VALUE_RE.fullmatch(val):
                raise ValueError(f"stage variable {name}={_short(val)} has characters API Gateway does not allow")
        return value


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
# No nested repetition: ([c]+|{p})* would backtrack exponentially on a long path that does not match.
_RESOURCE_PATH_RE = re.compile(r"^/(?:[A-Za-z0-9._~\-]|\{[A-Za-z0-9_]+\+?\})*(?:/(?:[A-Za-z0-9._~\-]+|\{[A-Za-z0-9_]+\+?\}))*\Z")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9-]{1,64}\Z")
_MEDIA_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*\Z")
VersionName = Annotated[str, _named(_ALIAS_NAME_RE, "version name", "1-128 letters, digits, - or _, and not all digits (it names the alias)")]


def _method_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = _upper_is(HTTP_METHODS)  # _method: any letter case, as str.upper() has it


def _as_text(value: Any) -> Any:
    # `default: 2022-01-01` unquoted is a date in YAML; a version is its text.
    return value.isoformat() if isinstance(value, datetime.date) else value


class VersionRoute(_Strict):
    """A method whose backend function is chosen by the requested version."""

    method: str = Field(description="HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY.", json_schema_extra=_method_schema)
    path: str = Field(
        description="Resource path, as in API Gateway: /users/{id}.",
        json_schema_extra={"pattern": _ecma(_RESOURCE_PATH_RE), "not": {"type": "string", "pattern": "//"}},
    )
    function: FunctionName = Field(json_schema_extra={"pattern": _ecma(_FUNCTION_NAME_RE)})

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in HTTP_METHODS:
            raise ValueError(f"method {_short(value)} is not one of {', '.join(HTTP_METHODS)}")
        return value.upper()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _RESOURCE_PATH_RE.fullmatch(value) or "//" in value:
            raise ValueError(f"path {_short(value)} is not a resource path like /users/{{id}}")
        return value


class CatalogueEntry(_Strict):
    """One API version: which published version of each route's function serves it, and where."""

    functions: dict[FunctionName, VersionText] = Field(
        description="For each route function: a version as in aliases.", json_schema_extra=_keys(_FUNCTION_NAME_RE)
    )
    stages: list[StageName] | None = Field(
        None,
        description="Stages exposing this version (default: every stage).",
        # VersionsSpec._consistent refuses an empty list.
        json_schema_extra={"items": {"type": "string", "pattern": _ecma(_STAGE_NAME_RE)}, "minItems": 1},
    )

    @field_validator("functions", mode="before")
    @classmethod
    def _versions_before(cls, value: Any) -> Any:
        return {k: _as_version(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("functions")
    @classmethod
    def _versions_shape(cls, value: dict[str, str]) -> dict[str, str]:
        for name, version in value.items():
            if not _VERSION_RE.fullmatch(version):
                raise ValueError(f'{name}: version {_short(version)} is not a published version number, "$LATEST" or "sha256:<CodeSha256>"')
        return value


class VersionsSpec(_Strict):
    """API versions chosen per request by a header (Stripe-style dated versions) or by media type."""

    # _consistent: exactly one of header and media_type (null is none); with media_type, lower-case version names.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["header"], "properties": {"header": {"type": "string"}}},
                {"required": ["media_type"], "properties": {"media_type": {"type": "string"}}},
            ],
            "if": {"required": ["media_type"], "properties": {"media_type": {"type": "string"}}},
            "then": {"properties": {"catalogue": {"propertyNames": {"not": {"type": "string", "pattern": "[A-Z]"}}}}},
        }
    )

    header: str | None = Field(
        None,
        description="Request header naming the version, e.g. Version (any letter case).",
        json_schema_extra={"pattern": _ecma(_HEADER_NAME_RE)},
    )
    media_type: str | None = Field(
        None,
        description="Vendor media type prefix, e.g. application/vnd.acme: Accept application/vnd.acme.v2+json selects v2.",
        json_schema_extra={"pattern": _ecma(_MEDIA_TYPE_RE)},
    )
    default: VersionName = Field(description="Served when the request names no version.", json_schema_extra={"pattern": _ecma(_ALIAS_NAME_RE)})
    strategy: Literal["lambda", "http-proxy"] = Field(
        "lambda",
        description="lambda: an AWS Lambda integration whose alias is chosen per request (one API Gateway call); "
        "http-proxy: an HTTP proxy route in front of path-versioned routes {path}/{version} (two calls).",
    )
    # uniqueItems: _consistent refuses a route listed twice (the schema sees only identical ones).
    routes: list[VersionRoute] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    catalogue: dict[VersionName, CatalogueEntry] = Field(min_length=1, json_schema_extra=_keys(_ALIAS_NAME_RE))

    @field_validator("default", mode="before")
    @classmethod
    def _default_text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME_RE.fullmatch(value):
            raise ValueError(f"header name {_short(value)} is not allowed: letters, digits and -")
        return value

    @field_validator("media_type")
    @classmethod
    def _media_type(cls, value: str | None) -> str | None:
        if value is not None and not _MEDIA_TYPE_RE.fullmatch(value):
            raise ValueError(f"media type {_short(value)} is not a lower-case type/subtype like application/vnd.acme")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VersionsSpec:
        if (self.header is None) == (self.media_type is None):
            raise ValueError("versions need exactly one of header or media_type")
        if self.default not in self.catalogue:
            raise ValueError(f"default version {self.default} is not in the catalogue")
        seen: set[tuple[str, str]] = set()
        for route in self.routes:
            if (route.method, route.path) in seen:
                raise ValueError(f"route {route.method} {route.path} is listed twice")
            seen.add((route.method, route.path))
        needed = {route.function for route in self.routes}
        for name, entry in self.catalogue.items():
            missing = sorted(needed - entry.functions.keys())
            if missing:
                raise ValueError(f"version {name} names no version of {', '.join(missing)}, which its routes need")
            if self.media_type is not None and name != name.lower():
                raise ValueError(f"version {name} must be lower case: media types are matched in any case")
            if entry.stages is not None and not entry.stages:
                raise ValueError(f"version {name} is exposed on no stage (omit stages for every stage)")
        return self

    def exposed(self, stage: str) -> list[str]:
        """The versions a stage serves, in catalogue order."""
        return [name for name, entry in self.catalogue.items() if entry.stages is None or stage in entry.stages]


class RestApiSpec(_Strict):
    # _expand_versions: with versions, Pointsman sets the stages' version variables and deploys them.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["versions"], "properties": {"versions": {"type": "object"}}},
            "then": {
                "properties": {
                    "stages": {
                        "additionalProperties": {
                            "properties": {
                                "variables": {"propertyNames": {"not": {"enum": [STAGE_DEFAULT_VAR, STAGE_NAME_VAR, STAGE_VERSIONS_VAR]}}},
                                "deployment": {"maxLength": 0},  # null or "": `if stage.deployment`
                            }
                        }
                    }
                }
            },
        }
    )

    clone_from: str | None = Field(
        None,
        description="When this API does not exist, apply creates it as a clone of that REST API (a new major version); "
        "an API that exists is never cloned again.",
    )
    stages: dict[StageName, StageSpec] = Field(default_factory=dict, json_schema_extra=_keys(_STAGE_NAME_RE))
    versions: VersionsSpec | None = Field(None, description="Versions chosen per request by header or media type.")


class MappingSpec(_Strict):
    api: str = Field(description="Name of a REST API declared under rest_apis.")
    stage: str = Field(description="A stage declared for that API.")


class DomainSpec(_Strict):
    mappings: dict[BasePath, MappingSpec] = Field(default_factory=dict, json_schema_extra=_keys(_BASE_PATH_RE))


class SpecFile(_Strict):
    """One spec file. Any number of files under the spec directory are merged."""

    # _null_is_empty: `functions:` with nothing under it is none. REST API and domain names have no rule.
    functions: dict[FunctionName, FunctionSpec] = Field(
        default_factory=dict, json_schema_extra={**_keys(_FUNCTION_NAME_RE), "type": ["object", "null"]}
    )
    rest_apis: dict[str, RestApiSpec] = Field(default_factory=dict, json_schema_extra={"type": ["object", "null"]})
    domains: dict[str, DomainSpec] = Field(default_factory=dict, json_schema_extra={"type": ["object", "null"]})

    @field_validator("functions", "rest_apis", "domains", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


# json_schema() carries every rule validate checks on one file that JSON Schema can state: the
# patterns of names and values (see _ecma), bounds, lengths, enums, unknown keys, required and
# required-together fields (VersionsSpec), and the rules tied to another field (AliasSpec,
# VersionsSpec, RestApiSpec). tests/test_schema_rules.py holds both to the same answers.
#
# Not in the schema:
# - Rules across files: a function, REST API or domain declared twice; a mapping's api naming a REST
#   API declared under rest_apis and its stage a stage of that API; MAX_RESOURCES over the whole spec;
#   an alias both declared under functions and generated by an API version, or generated twice with
#   different pins.
# - Rules comparing a value with another key or value (JSON Schema has no $data): a routing version
#   other than the alias's version; versions.default among the catalogue's names; every catalogue
#   entry naming a version of each route function; a route (method in any case, path) listed twice
#   (only identical routes: uniqueItems); catalogue stages declared under the API's stages; every
#   stage exposing the default version.
# - Sums: the 4 KiB of an environment (names and values in UTF-8); the schema bounds one entry only.
# - What JSON cannot tell apart: 1.0 from 1 (validate refuses `version: 1.0`, a YAML float; the
#   schema takes it for 1), a stage variable float of 1e16 or more (str() gives "1e+16") from an
#   integer, NaN (`.nan` as a weight; JSON has none).
# - The loader's rules, before any model: YAML syntax, duplicate keys, merge keys, keys YAML 1.1
#   reads as non-strings (`on:`, `~:`, `1.5:`), YAML 1.1 typing (`yes` is a boolean; an unquoted date
#   is text only where validate reads it so: keys, versions.default, environment values), sizes, file
#   counts, nesting, node counts, numbers over MAX_NUMBER_CHARS; a file with no document is valid.
# - Stricter than validate: pydantic's lax numbers and text; a weight written "0.5" (quoted) or
#   false, or text given as bytes (!!binary), validate reads; the schema asks for a number or text.
def json_schema() -> dict[str, Any]:
    schema = SpecFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Pointsman spec file"
    schema["$comment"] = (
        "Patterns mean what validate's checks mean: (?![\\s\\S]) is the end of the text (a name never ends "
        "with a newline). Rules across files and between fields' values are checked by `pointsman validate` only."
    )
    return schema


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class SpecProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        # One line, whatever a file name or key holds (a newline, a tab, an undecodable byte).
        return _printable(f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}")


class SpecInvalid(Exception):
    def __init__(self, problems: list[SpecProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Declared:
    """A declared item and where it was written."""

    name: str
    spec: Any
    source: str  # "file:line"


@dataclass
class Spec:
    """The merged desired state. Sources are kept for every alias, stage and mapping."""

    directory: Path
    functions: dict[str, Declared] = field(default_factory=dict)
    rest_apis: dict[str, Declared] = field(default_factory=dict)
    domains: dict[str, Declared] = field(default_factory=dict)
    sources: dict[tuple[str, ...], str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def source_of(self, *path: str) -> str | None:
        return self.sources.get(tuple(path))


# --------------------------------------------------------------------------- limits
# A spec over a limit is refused with a problem that states the limit. Each limit is checked
# before the work it bounds (sizes before reading, node counts while parsing), so a broken or
# hostile spec costs seconds and tens of MB, never a hang or a traceback.

MAX_FILE_BYTES = 2 * 1024 * 1024  # one spec file (stat before reading; reads stop there too)
MAX_TOTAL_BYTES = 8 * 1024 * 1024  # all spec files together (pure-Python YAML reads ~1 MiB/s at worst)
MAX_FILES = 1_000  # *.yaml / *.yml files under the spec directory
MAX_DIR_ENTRIES = 100_000  # directory entries of any kind walked to find them
MAX_RESOURCES = 50_000  # aliases + stages + mappings declared in the whole spec
MAX_DEPTH = 32  # nesting of YAML mappings / sequences (a spec needs 6)
MAX_FILE_NODES = 100_000  # YAML nodes in one file, as parsed and as expanded (aliases, merge keys)
MAX_SPEC_NODES = 300_000  # the same over all files (pure-Python YAML parses ~30,000 nodes/s)
MAX_NUMBER_CHARS = 100  # an int or float written longer than this is refused (big-int parsing is slow)


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size:,} bytes"


class _LimitExceeded(Exception):
    """A limit stopped loading one file; ``line`` is where it was noticed."""

    def __init__(self, line: int, message: str, field: str = ""):
        super().__init__(message)
        self.line = line
        self.message = message
        self.field = field


class _NodeBudget:
    """Counts YAML nodes per file and over the whole spec (see MAX_FILE_NODES, MAX_SPEC_NODES)."""

    def __init__(self) -> None:
        self.spent = 0  # by the files already loaded
        self.parsed = 0  # by the current file, as composed from its text
        self.expanded = 0  # by the current file, after aliases and merge keys are expanded
        self.exhausted = False

    def next_file(self) -> None:
        self.spent += max(self.parsed, self.expanded)
        self.parsed = self.expanded = 0

    def parse(self, line: int) -> None:
        self.parsed += 1
        self._check(self.parsed, line)

    def expand(self, count: int, line: int) -> None:
        self.expanded += count
        self._check(self.expanded, line)

    def _check(self, count: int, line: int) -> None:
        if count > MAX_FILE_NODES:
            raise _LimitExceeded(
                line,
                f"more than {MAX_FILE_NODES:,} YAML nodes in one file (anchors, aliases and merge keys"
                " count each time they are used); split the file",
            )
        if self.spent + count > MAX_SPEC_NODES:
            self.exhausted = True
            raise _LimitExceeded(line, f"more than {MAX_SPEC_NODES:,} YAML nodes in the spec; files after this one are not read")


def _too_deep() -> str:
    return f"nesting deeper than {MAX_DEPTH} levels"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that counts nodes and nesting while composing (no recursion past MAX_DEPTH).

    Values are built by ``_Converter``, which also refuses duplicate keys (YAML would
    silently keep the last) and expands merge keys without changing the shared nodes.
    """

    def __init__(self, text: str, budget: _NodeBudget):
        self.budget = budget
        self.depth = 0
        super().__init__(text)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        line = self.peek_event().start_mark.line + 1
        if self.depth >= MAX_DEPTH:
            raise _LimitExceeded(line, _too_deep())
        self.budget.parse(line)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        # YAML 1.1's number patterns backtrack over a long plain scalar (~60 bytes of memory per
        # character); a number that long is refused anyway, so decide without them.
        if kind is ScalarNode and implicit and implicit[0] and isinstance(value, str) and len(value) > MAX_NUMBER_CHARS:
            return _INT_TAG if value[0] in "+-.0123456789" and set(value) <= _NUMBERISH else _STR_TAG
        return str(super().resolve(kind, value, implicit))

    def flatten_mapping(self, node: MappingNode) -> None:
        # PyYAML's version copies merged pairs into every mapping, doubling at each `<<: [*a, *a]`;
        # _Converter expands merges itself, within the node budget. Nothing here should call this.
        raise _LimitExceeded(node.start_mark.line + 1, "merge keys are expanded by the spec loader only")


_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_INT_TAG = "tag:yaml.org,2002:int"
_STR_TAG = "tag:yaml.org,2002:str"
_NUMBER_TAGS = (_INT_TAG, "tag:yaml.org,2002:float")
_NUMBERISH = frozenset("0123456789_:.+-eEabcdefABCDEFxXoO")
_Pair = tuple[Node, Node]
_INVALID = object()  # a value that could not be read (the problem is already recorded)


def _kind(node: Node) -> str:
    kinds: dict[type[Node], str] = {MappingNode: "mapping", SequenceNode: "sequence"}
    return kinds.get(type(node), "scalar")


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


class _Converter:
    """Plain data from one file's node tree, recording the line of every key path.

    Anchors, aliases and merge keys are expanded here, each expanded node counted against
    the node budget, and nesting (which aliases can deepen past what was parsed) is capped.
    """

    def __init__(self, loader: _LineLoader, filename: str, problems: list[SpecProblem]):
        self.loader = loader
        self.budget = loader.budget
        self.filename = filename
        self.problems = problems
        self.lines: dict[tuple[Any, ...], int] = {}
        self._flattened: dict[int, list[_Pair]] = {}  # id(mapping node) -> its pairs with merges expanded
        self._flattening: set[int] = set()
        self._reported: set[tuple[int, str]] = set()  # (id(node), what): reported once, however often it is used

    def problem(self, line: int, path: Iterable[Any], message: str) -> None:
        self.problems.append(SpecProblem(self.filename, line, _dotted(path), message))

    def first_use(self, node: Node, what: str) -> bool:
        """True the first time; an alias does not repeat a node's problems under another path."""
        if (id(node), what) in self._reported:
            return False
        self._reported.add((id(node), what))
        return True

    def spend(self, count: int, path: tuple[Any, ...], line: int) -> None:
        try:
            self.budget.expand(count, line)
        except _LimitExceeded as exc:
            raise self.stopped(path, line, exc.message) from None

    def stopped(self, path: tuple[Any, ...], line: int, message: str) -> _LimitExceeded:
        """A limit hit at ``path``: shown at the line of its top-level key, where an alias cannot
        have taken it (the node's own line may be an anchor's, far from where it was used)."""
        return _LimitExceeded(self.lines.get(path[:1], line), message, _dotted(path))

    def value(self, node: Node, path: tuple[Any, ...], depth: int = 1) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        if depth > MAX_DEPTH:
            raise self.stopped(path, line, _too_deep())
        self.spend(1, path, line)
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.value(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            value = self.scalar(node, path)
            return None if value is _INVALID else value
        raise self.stopped(path, line, f"unexpected YAML node {type(node).__name__}")

    def mapping(self, node: MappingNode, path: tuple[Any, ...], depth: int) -> dict[Any, Any]:
        report = self.first_use(node, "keys")
        merged, explicit = self.pairs(node, path, 0, self.first_use(node, "merge"))
        out: dict[Any, Any] = {}
        explicit_keys: set[str] = set()
        for index, (key_node, value_node) in enumerate(merged + explicit):
            key_line = key_node.start_mark.line + 1
            key = self.scalar(key_node, path, key=True) if isinstance(key_node, ScalarNode) else None
            if key is _INVALID:
                continue
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)
            if isinstance(key, datetime.date):  # `2022-01-01:` unquoted, as dated versions are written
                key = key.isoformat()
            if not isinstance(key, str):
                if not report:
                    continue
                shown = _short_text(repr(key), 60) if isinstance(key_node, ScalarNode) else f"of kind {_kind(key_node)}"
                self.problem(key_line, path, f"key {shown} must be a string")
                continue
            child = path + (key,)
            if index >= len(merged):  # explicit keys override merged ones, but not each other
                if key in explicit_keys:
                    if report:
                        self.problem(key_line, child, f"duplicate key (first at line {self.lines[child]})")
                    continue
                explicit_keys.add(key)
            self.lines[child] = key_line
            out[key] = self.value(value_node, child, depth + 1)
        return out

    def pairs(self, node: MappingNode, path: tuple[Any, ...], depth: int, report: bool) -> tuple[list[_Pair], list[_Pair]]:
        """(pairs merged in by `<<`, explicit pairs), in PyYAML's order: later pairs win."""
        merged: list[_Pair] = []
        explicit: list[_Pair] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                explicit.append((key_node, value_node))
                continue
            line = key_node.start_mark.line + 1
            if isinstance(value_node, MappingNode):
                sources = [value_node]
            elif isinstance(value_node, SequenceNode) and all(isinstance(n, MappingNode) for n in value_node.value):
                sources = list(reversed(value_node.value))  # the first mapping listed wins
            else:
                if report:
                    self.problem(line, path, f"a merge key (<<) needs a mapping or a list of mappings, not a {_kind(value_node)}")
                continue
            for source in sources:
                assert isinstance(source, MappingNode)
                merged.extend(self.flattened(source, path, depth + 1, line))
        return merged, explicit

    def flattened(self, node: MappingNode, path: tuple[Any, ...], depth: int, line: int) -> list[_Pair]:
        key = id(node)
        pairs = self._flattened.get(key)
        if pairs is None:
            if key in self._flattening:
                raise self.stopped(path, line, "a merge key (<<) refers to a mapping that contains it")
            if depth > MAX_DEPTH:
                raise self.stopped(path, line, f"merge keys (<<) nested deeper than {MAX_DEPTH} levels")
            self._flattening.add(key)
            merged, explicit = self.pairs(node, path, depth, self.first_use(node, "merge"))
            self._flattening.discard(key)
            pairs = self._flattened[key] = merged + explicit
        self.spend(len(pairs), path, line)  # every merged pair counts, each time it is merged
        return pairs

    def scalar(self, node: ScalarNode, path: tuple[Any, ...], key: bool = False) -> Any:
        line = node.start_mark.line + 1
        tag = node.tag
        if key and tag == _VALUE_TAG:
            return node.value  # PyYAML reads a `=` key as the string "="
        if (id(node), "value") in self._reported:
            return _INVALID  # a value that failed before, used again through an alias
        if tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            self._reported.add((id(node), "value"))
            self.problem(line, path, f"number {_short(node.value)} is longer than {MAX_NUMBER_CHARS} characters; quote it if it is text")
            return _INVALID
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            reason = exc.problem or ""
        except (ValueError, OverflowError) as exc:  # e.g. !!int abc, !!timestamp 2020-13-45
            reason = str(exc)
        except Exception:  # noqa: BLE001 - PyYAML's constructors raise KeyError, AttributeError, IndexError... on bad values
            reason = ""
        # construct_object leaves a failed node marked "in progress"; an alias to it would then be
        # misreported as recursive.
        self.loader.recursive_objects.pop(node, None)
        self._reported.add((id(node), "value"))
        if reason.startswith("could not determine a constructor"):
            self.problem(line, path, f"unknown YAML tag {_tag_name(tag)!r} on value {_short(node.value)}")
            return _INVALID
        message = f"cannot read value {_short(node.value)} as {_tag_name(tag)}"
        self.problem(line, path, f"{message}: {_short_text(reason)}" if reason else message)
        return _INVALID


def _printable(text: str) -> str:
    """``text`` with each non-printable character escaped as in a Python literal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _short_text(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(_short_text(str(p), 80) for p in path)


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


# --------------------------------------------------------------------------- finding files


_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _Found:
    path: Path  # as found under the spec directory (what messages show)
    real: Path  # what is read: the same file, or a symlink's target inside the spec directory


def _find_spec_files(root: Path, show: Callable[[Path], str], shown_root: str, problems: list[SpecProblem]) -> list[_Found]:
    """Every *.yaml / *.yml file under ``root``, without following symlinks out of it.

    A symlink (to a file or a directory) whose target is outside ``root`` is a problem and is
    never read. Symlinks inside ``root`` are fine: the target is read once, under its own name
    when that is a spec file too. Symlinked directories are not descended (what they point to
    inside ``root`` is walked anyway), so loops cannot happen. Python 3.11's Path.rglob does not
    descend symlinked directories either, but silently; this walk says so.
    """
    real_root = os.path.realpath(root)
    found: list[_Found] = []
    links: list[_Found] = []
    stack = [root]
    entries = 0
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as scan:
                items = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            problems.append(SpecProblem(show(directory), 0, "", f"cannot read directory: {exc.strerror or exc}"))
            continue
        for entry in items:
            entries += 1
            if entries > MAX_DIR_ENTRIES:
                problems.append(
                    SpecProblem(shown_root, 0, "", f"more than {MAX_DIR_ENTRIES:,} files and directories under the spec directory")
                )
                return []
            path = Path(entry.path)
            is_spec = path.suffix in _SUFFIXES
            try:
                if entry.is_symlink():
                    target = os.path.realpath(path)
                    inside = target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)
                    is_dir = os.path.isdir(target)
                    if not inside and (is_dir or is_spec):
                        problems.append(
                            SpecProblem(show(path), 1, "", f"symlink to {_short(os.readlink(path), 200)} leaves the spec directory; it is not read")
                        )
                    elif inside and is_spec and not is_dir:
                        links.append(_Found(path, Path(target)))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif is_spec:
                    found.append(_Found(path, Path(os.path.realpath(path))))
            except OSError as exc:
                problems.append(SpecProblem(show(path), 1, "", f"cannot read file: {exc.strerror or exc}"))
        if len(found) + len(links) > MAX_FILES:
            problems.append(SpecProblem(shown_root, 0, "", f"more than {MAX_FILES:,} spec files (*.yaml, *.yml) under the spec directory"))
            return []
    seen = {f.real for f in found}
    for link in sorted(links, key=lambda f: f.path):
        if link.real not in seen:  # a link to a spec file that is read anyway adds nothing
            seen.add(link.real)
            found.append(link)
    return sorted(found, key=lambda f: f.path)


def spec_files(directory: Path) -> list[Path]:
    """The spec files ``load_spec`` reads under ``directory`` (problems aside)."""
    return [f.path for f in _find_spec_files(Path(directory), str, str(directory), [])]


def _read(found: _Found, shown: str, problems: list[SpecProblem]) -> str | None:
    """The file's text, or None with a problem; never reads more than MAX_FILE_BYTES + 1 bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(found.real, flags)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                problems.append(SpecProblem(shown, 1, "", "cannot read file: not a regular file"))
                return None
            if info.st_size > MAX_FILE_BYTES:
                problems.append(SpecProblem(shown, 1, "", _too_big(info.st_size)))
                return None
            chunks: list[bytes] = []
            remaining = MAX_FILE_BYTES + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1024 * 1024))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if len(data) > MAX_FILE_BYTES:  # it grew, or stat does not know (/proc)
            problems.append(SpecProblem(shown, 1, "", _too_big(len(data))))
            return None
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(SpecProblem(shown, 1, "", f"cannot read file: {exc}"))
        return None


def _too_big(size: int) -> str:
    return f"file is {size:,} bytes; the limit is {_mib(MAX_FILE_BYTES)} per file"


# --------------------------------------------------------------------------- loading


_Loaded = tuple[SpecFile | None, dict[tuple[Any, ...], int], Any]


def _load_file(found: _Found, shown: str, problems: list[SpecProblem], budget: _NodeBudget) -> _Loaded:
    """Parse and validate one file: (model or None, key-path lines, raw data). Never raises."""
    try:
        return _parse_and_validate(found, shown, problems, budget)
    except Exception as exc:  # noqa: BLE001 - the last resort: one problem, never a traceback
        problems.append(SpecProblem(shown, 1, "", f"cannot load file: {type(exc).__name__}: {_short_text(str(exc))}"))
        return None, {}, None


def _parse_and_validate(found: _Found, shown: str, problems: list[SpecProblem], budget: _NodeBudget) -> _Loaded:
    lines: dict[tuple[Any, ...], int] = {}
    data: Any = None
    text = _read(found, shown, problems)
    if text is None:
        return None, lines, data
    before = len(problems)
    loader: _LineLoader | None = None
    try:
        loader = _LineLoader(text, budget)
        node = loader.get_single_node()
        if node is None:
            return SpecFile(), lines, data
        converter = _Converter(loader, shown, problems)
        lines = converter.lines
        data = converter.value(node, ())
    except _LimitExceeded as exc:
        problems.append(SpecProblem(shown, exc.line, exc.field, exc.message))
        return None, lines, None
    except yaml.reader.ReaderError as exc:
        position = exc.position if isinstance(exc.position, int) else 0
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        problems.append(
            SpecProblem(shown, text.count("\n", 0, position) + 1, "", f"invalid YAML: unacceptable character {character}: {exc.reason}")
        )
        return None, lines, None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = str(exc.problem or exc.context)
        if exc.context and what.startswith("but found"):  # "expected a single document in the stream, but found another document"
            what = f"{exc.context}, {what}"
        problems.append(SpecProblem(shown, line, "", f"invalid YAML: {_short_text(what)}"))
        return None, lines, None
    except yaml.YAMLError as exc:
        problems.append(SpecProblem(shown, 1, "", f"invalid YAML: {_short_text(str(exc))}"))
        return None, lines, None
    finally:
        if loader is not None:
            loader.dispose()
    if len(problems) > before:
        return None, lines, data
    if not isinstance(data, dict):
        problems.append(SpecProblem(shown, 1, "", "a spec file must be a mapping with functions, rest_apis and/or domains"))
        return None, lines, data
    try:
        return SpecFile.model_validate(data), lines, data
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for i, p in enumerate(err["loc"]) if p != "[key]" and not _union_tag(err["loc"], i))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"unknown field {_short(str(loc[-1]))}"
            elif err["type"] == "missing":
                message = f"required field {_short(str(loc[-1]))} is missing"
            problems.append(SpecProblem(shown, _line_for(loc, lines), _dotted(loc), message))
        return None, lines, data


def _union_tag(loc: tuple[Any, ...], index: int) -> bool:
    """Is ``loc[index]`` the tag pydantic puts after an environment variable's name (its value's form)?"""
    return index >= 2 and loc[index - 2] == "environment" and loc[index] in (_ENV_TEXT_TAG, _ENV_SSM_TAG)


def _resources(parsed: SpecFile) -> int:
    """Aliases + stages + mappings declared in one file (see MAX_RESOURCES)."""
    return (
        sum(len(f.aliases) for f in parsed.functions.values())
        + sum(len(a.stages) for a in parsed.rest_apis.values())
        + sum(len(d.mappings) for d in parsed.domains.values())
    )


def _refuse(problems: list[SpecProblem]) -> NoReturn:
    raise SpecInvalid(problems)


def _within_file_size(found: list[_Found], show: Callable[[Path], str], problems: list[SpecProblem]) -> tuple[list[_Found], int]:
    """The files within MAX_FILE_BYTES (a problem for each other one) and their total size; by stat, unread."""
    kept: list[_Found] = []
    total = 0
    for item in found:
        try:
            info = os.stat(item.real)
        except OSError:
            kept.append(item)  # reported when it is read
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            problems.append(SpecProblem(show(item.path), 1, "", _too_big(info.st_size)))
            continue
        kept.append(item)
        total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return kept, total


def load_spec(directory: str | Path, *, display_root: str | None = None, allow_empty: bool = False) -> Spec:
    """Load every *.yaml / *.yml under ``directory``; raise ``SpecInvalid`` listing every problem.

    ``display_root`` replaces the directory in messages (a spec exported from git is shown
    by its path in the repository, not the checkout's). A directory without spec files is a
    problem unless ``allow_empty`` (an empty desired state) is meant. Never raises anything
    but ``SpecInvalid``, whatever the files hold; see the MAX_* limits above.
    """
    try:
        return _load_spec(Path(directory), display_root, allow_empty)
    except SpecInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - the last resort (each file has its own): one problem, never a traceback
        where = display_root if display_root is not None else str(directory)
        raise SpecInvalid([SpecProblem(where, 0, "", f"cannot load spec: {type(exc).__name__}: {_short_text(str(exc))}")]) from None


def _load_spec(root: Path, display_root: str | None, allow_empty: bool) -> Spec:
    if not root.is_dir():
        _refuse([SpecProblem(str(root), 0, "", "spec directory does not exist")])
    shown_root = _printable(display_root if display_root is not None else str(root))

    def show(path: Path) -> str:
        # Printable, as names end up in problems and sources printed one per line.
        return _printable(str(Path(display_root) / path.relative_to(root)) if display_root is not None else str(path))

    spec = Spec(directory=root)
    problems: list[SpecProblem] = []
    found = _find_spec_files(root, show, shown_root, problems)
    if not found and not problems and not allow_empty:
        _refuse([
            SpecProblem(
                shown_root, 0, "",
                f"no spec files (*.yaml, *.yml) under {shown_root}; pass --allow-empty if an empty desired state is meant",
            )
        ])
    found, total = _within_file_size(found, show, problems)
    if total > MAX_TOTAL_BYTES:
        problems.append(
            SpecProblem(shown_root, 0, "", f"spec files total {total:,} bytes; the limit is {_mib(MAX_TOTAL_BYTES)}")
        )
        _refuse(problems)
    budget = _NodeBudget()
    resources = 0
    partial: dict[str, set[str]] = {}  # REST APIs (and stages) named in files that failed validation
    for item in found:
        if budget.exhausted:
            break
        shown = show(item.path)
        spec.files.append(shown)
        budget.next_file()
        parsed, lines, raw = _load_file(item, shown, problems, budget)
        if parsed is None:
            _note_partial_declarations(raw, partial)
            continue
        resources += _resources(parsed)
        if resources > MAX_RESOURCES:
            problems.append(
                SpecProblem(
                    shown, 1, "",
                    f"more than {MAX_RESOURCES:,} aliases, stages and mappings in the spec; files after this one are not read",
                )
            )
            break
        for section in ("functions", "rest_apis", "domains"):
            target: dict[str, Declared] = getattr(spec, section)
            for name, declared in getattr(parsed, section).items():
                where = f"{shown}:{lines.get((section, name), 1)}"
                if name in target:
                    problems.append(
                        SpecProblem(
                            shown,
                            lines.get((section, name), 1),
                            f"{section}.{name}",
                            f"{_SINGULAR[section]} {name} is declared twice: {target[name].source} and {where}",
                        )
                    )
                    continue
                target[name] = Declared(name, declared, where)
        for path_key, line in lines.items():
            if all(isinstance(p, str) for p in path_key):
                spec.sources[path_key] = f"{shown}:{line}"
    _check_references(spec, problems, partial)
    if not problems:
        _expand_versions(spec, problems)
    if problems:
        raise SpecInvalid(problems)
    return spec


def _expand_versions(spec: Spec, problems: list[SpecProblem]) -> None:
    """Versions become what they are made of: an alias per (function, version), pinned as the
    catalogue says, and two stage variables per stage: the versions it exposes and its default
    (the generated templates read them, so exposing a version needs no redeployment)."""
    generated: dict[tuple[str, str], tuple[str, str]] = {}  # (function, alias) -> (version, where)
    for api_name, declared in list(spec.rest_apis.items()):
        versions: VersionsSpec | None = declared.spec.versions
        if versions is None:
            continue
        where = spec.source_of("rest_apis", api_name, "versions") or declared.source
        stages: dict[str, StageSpec] = {}
        for stage_name, stage in declared.spec.stages.items():
            stage_where = spec.source_of("rest_apis", api_name, "stages", stage_name) or where
            taken = sorted({STAGE_VERSIONS_VAR, STAGE_DEFAULT_VAR, STAGE_NAME_VAR} & stage.variables.keys())
            if taken:
                _problem_at(problems, stage_where, f"rest_apis.{api_name}.stages.{stage_name}.variables",
                            f"{', '.join(taken)} is set from rest_apis.{api_name}.versions; remove it here")
            if stage.deployment:
                _problem_at(problems, stage_where, f"rest_apis.{api_name}.stages.{stage_name}.deployment",
                            "a stage of an API with versions is deployed by Pointsman; remove the deployment pin")
            exposed = versions.exposed(stage_name)
            if versions.default not in exposed:
                _problem_at(problems, stage_where, f"rest_apis.{api_name}.stages.{stage_name}",
                            f"stage {stage_name} does not expose the default version {versions.default}")
            variables = {**stage.variables, STAGE_VERSIONS_VAR: ",".join(exposed), STAGE_DEFAULT_VAR: versions.default}
            if versions.strategy == "http-proxy":
                variables[STAGE_NAME_VAR] = stage_name  # the proxy calls the versioned routes of its own stage
            stages[stage_name] = stage.model_copy(update={"variables": variables})
        for version, entry in versions.catalogue.items():
            entry_where = spec.source_of("rest_apis", api_name, "versions", "catalogue", version) or where
            for stage_name in entry.stages or ():
                if stage_name not in declared.spec.stages:
                    _problem_at(problems, entry_where, f"rest_apis.{api_name}.versions.catalogue.{version}.stages",
                                f"stage {stage_name!r} is not declared for REST API {api_name!r}")
            for function, pin in entry.functions.items():
                _generate_alias(spec, problems, generated, function, version, pin, f"{api_name} API version {version}", entry_where)
        spec.rest_apis[api_name] = Declared(api_name, declared.spec.model_copy(update={"stages": stages}), declared.source)


def _generate_alias(
    spec: Spec,
    problems: list[SpecProblem],
    generated: dict[tuple[str, str], tuple[str, str]],
    function: str,
    alias: str,
    pin: str,
    description: str,
    where: str,
) -> None:
    earlier = generated.get((function, alias))
    if earlier is not None:
        if earlier[0] != pin:
            _problem_at(problems, where, f"functions.{function}.aliases.{alias}",
                        f"alias {function}:{alias} is pinned to {earlier[0]} at {earlier[1]} and to {pin} here")
        return
    declared = spec.functions.get(function)
    if declared is not None and alias in declared.spec.aliases:
        _problem_at(problems, where, f"functions.{function}.aliases.{alias}",
                    f"alias {function}:{alias} is declared at {spec.source_of('functions', function, 'aliases', alias)} "
                    "and generated by an API version here; remove one")
        return
    generated[(function, alias)] = (pin, where)
    if declared is None:
        declared = Declared(function, FunctionSpec(), where)
        spec.sources.setdefault(("functions", function), where)
    aliases = {**declared.spec.aliases, alias: AliasSpec(version=pin, description=description)}
    spec.functions[function] = Declared(function, declared.spec.model_copy(update={"aliases": aliases}), declared.source)
    spec.sources[("functions", function, "aliases", alias)] = where


def _problem_at(problems: list[SpecProblem], where: str, field: str, message: str) -> None:
    file, line = _split(where)
    problems.append(SpecProblem(file, line, field, message))


_SINGULAR = {"functions": "function", "rest_apis": "REST API", "domains": "domain"}


def _split(source: str) -> tuple[str, int]:
    file, _, line = source.rpartition(":")
    return file, int(line)


def _note_partial_declarations(raw: Any, partial: dict[str, set[str]]) -> None:
    """Remember what an invalid file meant to declare, so no false 'not declared' follows."""
    apis = raw.get("rest_apis") if isinstance(raw, dict) else None
    if not isinstance(apis, dict):
        return
    for name, body in apis.items():
        stages = body.get("stages") if isinstance(body, dict) else None
        partial.setdefault(str(name), set()).update(str(s) for s in (stages if isinstance(stages, dict) else {}))


def _check_references(spec: Spec, problems: list[SpecProblem], partial: dict[str, set[str]]) -> None:
    for domain in spec.domains.values():
        for base_path, mapping in domain.spec.mappings.items():
            where = spec.source_of("domains", domain.name, "mappings", base_path) or domain.source
            field_path = f"domains.{domain.name}.mappings.{base_path}"
            api = spec.rest_apis.get(mapping.api)
            if api is None and mapping.api in partial:
                continue  # declared in a file that failed validation: its own problems are reported
            if api is None:
                _problem_at(problems, where, f"{field_path}.api", f"REST API {mapping.api!r} is not declared under rest_apis")
            elif mapping.stage not in api.spec.stages:
                _problem_at(
                    problems, where, f"{field_path}.stage",
                    f"stage {mapping.stage!r} is not declared for REST API {mapping.api!r} (at {api.source})",
                )
