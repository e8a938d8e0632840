"""The spec files' typed models (pydantic), their name rules, and the JSON schema built from them.

A spec file has three sections: ``functions`` (aliases, pinned versions, weights, a managed
environment), ``rest_apis`` (stages and their variables, API versions, clones) and ``domains``
(base path mappings). Each name and value rule is one regular expression, used by validation
and, turned into ECMA-262, by the JSON schema (``pointsman schema``), so both accept the same.
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from controller.spec.rollouts import PRESETS, Step, parse_duration, preset_steps
from controller.spec.windows import WINDOW_PATTERN, WindowError, parse_span, zone
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
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            # As text, _VERSION_RE; as a number, str(n) must match [1-9][0-9]* (pattern and minimum each apply to one type).
            "pattern": _ecma(_VERSION_RE),
            "minimum": 1,
            "description": 'Published version ("1" or 1), "$LATEST", or "sha256:<CodeSha256>".',
        }
    ),
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


_ALARM_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,255}\Z")  # CloudWatch: 1-255 UTF-8 characters, no control characters
_DURATION_PATTERN = r"^(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?$"
AlarmName = Annotated[str, _named(_ALARM_NAME_RE, "alarm name", "1-255 characters, no control characters (CloudWatch's rule)")]


def _duration(value: str) -> str:
    parse_duration(value)  # a number without a unit, or an unknown unit, is refused here
    return value


def _duration_form(value: Any) -> Any:
    """YAML reads ``pause: 5`` as a number: it is the text "5", refused for its missing unit."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


DurationText = Annotated[
    str,
    BeforeValidator(_duration_form),
    AfterValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": _DURATION_PATTERN, "minLength": 2, "description": "30s, 5m, 1h or 1m30s"}),
]


class RolloutStepSpec(_Strict):
    """One step: ``{weight: 10}`` (percent of traffic on the new version) or ``{pause: 5m}``."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    weight: float | None = Field(None, gt=0, lt=100, description="percent of traffic on the new version, 0 < weight < 100")
    pause: DurationText | None = None

    @model_validator(mode="after")
    def _one(self) -> RolloutStepSpec:
        if (self.weight is None) == (self.pause is None):
            raise ValueError("a rollout step is either {weight: PERCENT} or {pause: DURATION}")
        return self

    def step(self) -> Step:
        return Step(weight=self.weight) if self.weight is not None else Step(pause=parse_duration(self.pause or ""))


class AnalysisSpec(_Strict):
    """The new version's own error rate, from Lambda's metrics with the ExecutedVersion dimension."""

    max_error_rate: float = Field(..., ge=0, le=1, description="Errors / Invocations of the new version above this rolls back (0.01 is 1%)")
    min_invocations: int = Field(1, ge=0, description="fewer invocations than this over a step: not enough traffic to judge")
    on_no_data: Literal["hold", "pass", "fail"] = Field("hold", description="with too few invocations: hold the step, pass it, or roll back")
    deadline: DurationText | None = Field(None, description="a step held for want of data longer than this rolls back")


class RolloutSpec(_Strict):
    """How a new version takes traffic: a preset or steps, gated by alarms and the error rate."""

    preset: str | None = Field(None, description="a CodeDeploy predefined configuration: " + ", ".join(PRESETS), json_schema_extra={"enum": list(PRESETS)})
    steps: list[RolloutStepSpec] | None = Field(None, min_length=1)
    alarms: list[AlarmName] = Field(default_factory=list, description="CloudWatch alarms; any in ALARM rolls back", max_length=100)
    analysis: AnalysisSpec | None = None

    @model_validator(mode="after")
    def _schedule(self) -> RolloutSpec:
        if (self.preset is None) == (self.steps is None):
            raise ValueError("a rollout names a preset or lists steps (not both)")
        if self.preset is not None:
            preset_steps(self.preset)
        weights = [s.weight for s in self.steps or [] if s.weight is not None]
        for before, after in zip(weights, weights[1:], strict=False):
            if after <= before:
                raise ValueError(f"rollout weights must grow: {after:g} comes after {before:g}")
        return self

    def schedule(self) -> tuple[Step, ...]:
        return preset_steps(self.preset) if self.preset is not None else tuple(s.step() for s in self.steps or [])


def _rollout_form(value: Any) -> Any:
    """``rollout: Canary10Percent5Minutes`` is ``rollout: {preset: Canary10Percent5Minutes}``."""
    return {"preset": value} if isinstance(value, str) else value


def _preset_or_rollout(schema: dict[str, Any]) -> None:
    """The field's schema also takes a preset's name (``rollout: Canary10Percent5Minutes``)."""
    schema["anyOf"] = [{"type": "string", "enum": list(PRESETS)}, *schema.get("anyOf", [])]


# ``rollout: Canary10Percent5Minutes`` is ``rollout: {preset: Canary10Percent5Minutes}``.
RolloutField = Annotated[RolloutSpec | None, BeforeValidator(_rollout_form)]

# ------------------------------------------------------------------ guardrails (protect, approve, windows)
_PROTECT_DESCRIPTION = "never deleted (even with --prune); a change to it needs --allow-protected"


def _protect() -> Any:
    return Field(False, description=_PROTECT_DESCRIPTION)


Manage = Literal["full", "observe"]
_MANAGE_DESCRIPTION = (
    "full (the default): Pointsman makes AWS match; observe: its drift is reported (plan, history, status page, notifications) "
    "but nothing is ever written to it, by apply, rollouts or prune"
)


def _manage(what: str = "") -> Any:
    return Field("full", description=(what + ": " if what else "") + _MANAGE_DESCRIPTION)


def _approve() -> Any:
    return Field("auto", description="manual: the controller applies changes to it only after `pointsman approve RUN_ID` or the page's Approve button")


class WindowSpec(_Strict):
    """A sync window: deny (no applies while open) or allow (applies only while one is open)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "oneOf": [{"required": ["deny"]}, {"required": ["allow"]}]})

    deny: str | None = Field(
        None,
        description="'Fri 16:00-Mon 08:00' (weekly) or '22:00-06:00' (daily): applies wait while it is open",
        json_schema_extra={"pattern": _whole(WINDOW_PATTERN)},
    )
    allow: str | None = Field(
        None, description="applies run only while an allow window is open (and no deny window is)", json_schema_extra={"pattern": _whole(WINDOW_PATTERN)}
    )
    timezone: str = Field("UTC", description="IANA time zone the times are read in, e.g. Europe/Paris")
    allow_heal: bool = Field(False, description="drift healing (restoring a commit already applied) still runs while this window blocks")

    @model_validator(mode="after")
    def _readable(self) -> WindowSpec:
        if (self.deny is None) == (self.allow is None):
            raise ValueError("a window is either {deny: ...} or {allow: ...}")
        try:
            parse_span(self.deny or self.allow or "")
            zone(self.timezone)
        except WindowError as exc:
            raise ValueError(str(exc)) from None
        return self


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

    rollout: RolloutField = Field(
        None,
        description="A preset name, or {preset | steps, alarms, analysis}: the new version takes traffic step by step",
        json_schema_extra=_preset_or_rollout,
    )
    protect: bool = _protect()
    manage: Manage = _manage()
    approve: Literal["auto", "manual"] = _approve()

    @field_validator("version", mode="before")
    @classmethod
    def _version_before(cls, value: Any) -> Any:
        return _as_version(value)

    @field_validator("version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not _VERSION_RE.fullmatch(value):
            raise ValueError(f'version {_short(value)} is not a published version number, "$LATEST" or "sha256:<CodeSha256>"')
        return value

    @field_validator("routing", mode="before")
    @classmethod
    def _routing_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k) if isinstance(k, int) else k: v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _rollout_version(self) -> AliasSpec:
        if self.rollout is not None and self.version == LATEST:
            raise ValueError("a rollout shifts traffic between published versions: version cannot be $LATEST")
        return self

    @model_validator(mode="after")
    def _routing_rules(self) -> AliasSpec:
        if not self.routing:
            return self
        if self.rollout is not None:
            raise ValueError("routing and rollout on the same alias: a rollout sets the routing itself")
        if len(self.routing) > 1:
            raise ValueError("routing allows at most one additional version")
        ((extra_version, weight),) = self.routing.items()
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
_ENV_RESERVED = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
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
                f"SSM parameter name {_short(value)} is not allowed: letters, digits, . - _ in /-separated parts (at most {MAX_SSM_NAME:,} characters)"
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
    manage: Manage = _manage("the function: its aliases, their invoke permissions, its environment and published versions")
    rollout: RolloutField = Field(
        None, description="The rollout of every alias of this function that declares none (and no routing)", json_schema_extra=_preset_or_rollout
    )

    def rollout_of(self, alias: str) -> RolloutSpec | None:
        """The alias's own rollout, else the function's (an alias with hand-set routing has none)."""
        spec = self.aliases[alias]
        if spec.rollout is not None:
            return spec.rollout
        return None if spec.routing else self.rollout

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
    deployment: str | None = Field(None, description="Deployment id; when omitted the stage keeps its deployment (new stages get the newest).")
    protect: bool = _protect()
    manage: Manage = _manage()
    approve: Literal["auto", "manual"] = _approve()

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
    description: str | None = Field(
        None, max_length=256, description='The description of the aliases this version is made of (default: "<API> API version <version>").'
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
    proxy: Literal["generated", "unmanaged"] = Field(
        "generated",
        description="strategy http-proxy: generated (Pointsman writes the proxy routes' integrations) or unmanaged "
        "(the proxy routes are yours, hand-written templates and all: Pointsman manages the routes behind them, "
        "their aliases and permissions, and never writes the proxy routes).",
    )
    # uniqueItems: _consistent refuses a route listed twice (the schema sees only identical ones).
    routes: list[VersionRoute] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    catalogue: dict[VersionName, CatalogueEntry] = Field(min_length=1, json_schema_extra=_keys(_ALIAS_NAME_RE))
    rollout: RolloutField = Field(
        None,
        description="The rollout of every alias the catalogue pins to a published version (a preset name or {preset | steps, alarms, analysis})",
        json_schema_extra=_preset_or_rollout,
    )

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
        if self.proxy == "unmanaged" and self.strategy != "http-proxy":
            raise ValueError("proxy: unmanaged needs strategy: http-proxy")
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
            if entry.stages is not None and self.proxy == "unmanaged":
                raise ValueError(f"version {name}: with proxy: unmanaged, the proxy routes' own templates decide what a stage serves (remove stages)")
        return self

    @property
    def generated_proxy(self) -> bool:
        """Does Pointsman write the proxy routes (strategy http-proxy, proxy generated)?"""
        return self.strategy == "http-proxy" and self.proxy == "generated"

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
    protect: bool = Field(False, description="the API and everything Pointsman manages in it (stages, methods, deployments): " + _PROTECT_DESCRIPTION)
    manage: Manage = _manage("the API and everything in it (stages, methods, deployments, its invoke permissions and the mappings to it)")


class MappingSpec(_Strict):
    api: str = Field(description="Name of a REST API declared under rest_apis.")
    stage: str = Field(description="A stage declared for that API.")
    protect: bool = _protect()


class DomainSpec(_Strict):
    mappings: dict[BasePath, MappingSpec] = Field(default_factory=dict, json_schema_extra=_keys(_BASE_PATH_RE))
    manage: Manage = _manage("the domain's base path mappings")


class SpecFile(_Strict):
    """One spec file. Any number of files under the spec directory are merged."""

    # _null_is_empty: `functions:` with nothing under it is none. REST API and domain names have no rule.
    functions: dict[FunctionName, FunctionSpec] = Field(default_factory=dict, json_schema_extra={**_keys(_FUNCTION_NAME_RE), "type": ["object", "null"]})
    rest_apis: dict[str, RestApiSpec] = Field(default_factory=dict, json_schema_extra={"type": ["object", "null"]})
    domains: dict[str, DomainSpec] = Field(default_factory=dict, json_schema_extra={"type": ["object", "null"]})
    windows: list[WindowSpec] = Field(default_factory=list, description="sync windows: when the controller and apply may write", max_length=100)

    @field_validator("functions", "rest_apis", "domains", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


# json_schema() carries every rule validate checks on one file that JSON Schema can state: the
# patterns of names and values (see _ecma), bounds, lengths, enums, unknown keys, required and
# required-together fields (VersionsSpec), and the rules tied to another field (AliasSpec,
# VersionsSpec, RestApiSpec). tests/spec/test_schema_rules.py holds both to the same answers.
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
# - A window's time zone being a name zoneinfo knows, and a window that starts when it ends.
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
