"""Spec files: YAML under a directory -> validated, merged ``Spec`` with file:line for everything.

Every problem is collected (not just the first) as a ``SpecProblem`` naming file, line and
field, so ``pointsman validate`` can list them all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator, model_validator

LATEST = "$LATEST"
_VERSION_RE = re.compile(r"^(\$LATEST|[1-9][0-9]*|sha256:[A-Za-z0-9+/]{43}=)$")
_ALIAS_NAME_RE = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")
_STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_VAR_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_VAR_VALUE_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#&=,]{1,512}$")
_BASE_PATH_RE = re.compile(r"^(\(none\)|[A-Za-z0-9._~\-]+(/[A-Za-z0-9._~\-]+)*)$")
_FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _named(pattern: re.Pattern[str], what: str, rule: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{what} {value!r} is not allowed: {rule}")
        return value

    return Annotated[str, AfterValidator(check)]


AliasName = _named(_ALIAS_NAME_RE, "alias name", "1-128 letters, digits, - or _, and not all digits")
StageName = _named(_STAGE_NAME_RE, "stage name", "letters, digits, - or _")
VariableName = _named(_VAR_NAME_RE, "stage variable name", "letters, digits or _")
BasePath = _named(_BASE_PATH_RE, "base path", "'(none)' or a path like 'v1'")
FunctionName = _named(_FUNCTION_NAME_RE, "function name", "1-64 letters, digits, - or _")
# YAML reads `version: 7` and `lambdaAlias: 2` as numbers; the schema says so too.
VersionText = Annotated[str, WithJsonSchema({"type": ["string", "integer"], "description": 'Published version ("1" or 1), "$LATEST", or "sha256:<CodeSha256>".'})]
VariableValue = Annotated[str, WithJsonSchema({"type": ["string", "number"]})]


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
    version: VersionText
    description: str = Field("", max_length=256)
    routing: dict[str, float] = Field(
        default_factory=dict,
        description="At most one additional published version and its weight in [0, 1).",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_before(cls, value: Any) -> Any:
        return _as_version(value)

    @field_validator("version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not _VERSION_RE.match(value):
            raise ValueError(
                f'version {value!r} is not a published version number, "$LATEST" or "sha256:<CodeSha256>"'
            )
        return value

    @field_validator("routing", mode="before")
    @classmethod
    def _routing_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k) if isinstance(k, int) else k: v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _routing_rules(self) -> "AliasSpec":
        if not self.routing:
            return self
        if len(self.routing) > 1:
            raise ValueError("routing allows at most one additional version")
        (extra_version, weight), = self.routing.items()
        if not re.fullmatch(r"[1-9][0-9]*", extra_version):
            raise ValueError(f"routing version {extra_version!r} must be a published version number (not $LATEST)")
        if not 0 <= weight < 1:
            raise ValueError(f"routing weight {weight} must be in [0, 1)")
        if self.version == LATEST:
            raise ValueError("an alias with routing must point to a published version, not $LATEST")
        if extra_version == self.version:
            raise ValueError(f"routing version {extra_version} must differ from the primary version")
        return self


class FunctionSpec(_Strict):
    aliases: dict[AliasName, AliasSpec] = Field(default_factory=dict)


class StageSpec(_Strict):
    variables: dict[VariableName, VariableValue] = Field(default_factory=dict)
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
            if not _VAR_VALUE_RE.match(val):
                raise ValueError(f"stage variable {name}={val!r} has characters API Gateway does not allow")
        return value


class RestApiSpec(_Strict):
    stages: dict[StageName, StageSpec] = Field(default_factory=dict)


class MappingSpec(_Strict):
    api: str = Field(description="Name of a REST API declared under rest_apis.")
    stage: str = Field(description="A stage declared for that API.")


class DomainSpec(_Strict):
    mappings: dict[BasePath, MappingSpec] = Field(default_factory=dict)


class SpecFile(_Strict):
    """One spec file. Any number of files under the spec directory are merged."""

    functions: dict[FunctionName, FunctionSpec] = Field(default_factory=dict)
    rest_apis: dict[str, RestApiSpec] = Field(default_factory=dict)
    domains: dict[str, DomainSpec] = Field(default_factory=dict)

    @field_validator("functions", "rest_apis", "domains", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


def json_schema() -> dict[str, Any]:
    schema = SpecFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Pointsman spec file"
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
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML would silently keep the last)."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _to_python(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    problems: list[SpecProblem],
    filename: str,
    loader: _LineLoader,
) -> Any:
    """Build plain data from the node tree, recording the line of every key path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges the way YAML does
        merged = len(node.value) - explicit  # merged pairs come first; explicit keys override them
        out: dict[Any, Any] = {}
        explicit_keys: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = _scalar(key_node, loader) if isinstance(key_node, yaml.ScalarNode) else None
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)
            if not isinstance(key, str):
                problems.append(SpecProblem(filename, key_node.start_mark.line + 1, _dotted(path), f"key {key!r} must be a string"))
                continue
            child = path + (key,)
            if index >= merged:
                if key in explicit_keys:
                    problems.append(
                        SpecProblem(filename, key_node.start_mark.line + 1, _dotted(child), f"duplicate key (first at line {lines[child]})")
                    )
                    continue
                explicit_keys.add(key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, lines, problems, filename, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, problems, filename, loader) for i, item in enumerate(node.value)]
    return _scalar(node, loader)


def _scalar(node: yaml.Node, loader: _LineLoader) -> Any:
    return loader.construct_object(node, deep=True)


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def spec_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _load_file(
    path: Path, shown: str, problems: list[SpecProblem]
) -> tuple[SpecFile | None, dict[tuple[Any, ...], int], Any]:
    """Parse and validate one file: (model or None, key-path lines, raw data)."""
    lines: dict[tuple[Any, ...], int] = {}
    data: Any = None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(SpecProblem(shown, 1, "", f"cannot read file: {exc}"))
        return None, lines, data
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return SpecFile(), lines, data
        before = len(problems)
        data = _to_python(node, (), lines, problems, shown, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(SpecProblem(shown, line, "", f"invalid YAML: {exc.problem or exc.context}"))
        return None, lines, data
    except yaml.YAMLError as exc:
        problems.append(SpecProblem(shown, 1, "", f"invalid YAML: {exc}"))
        return None, lines, data
    finally:
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
            loc = tuple(p for p in err["loc"] if p != "[key]")
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            if err["type"] == "extra_forbidden":
                message = f"unknown field {loc[-1]!r}"
            elif err["type"] == "missing":
                message = f"required field {loc[-1]!r} is missing"
            problems.append(SpecProblem(shown, _line_for(loc, lines), _dotted(loc), message))
        return None, lines, data


def load_spec(directory: str | Path, *, display_root: str | None = None) -> Spec:
    """Load every *.yaml / *.yml under ``directory``; raise ``SpecInvalid`` listing every problem.

    ``display_root`` replaces the directory in messages (a spec exported from git is shown
    by its path in the repository, not the checkout's).
    """
    root = Path(directory)
    if not root.is_dir():
        raise SpecInvalid([SpecProblem(str(root), 0, "", "spec directory does not exist")])
    spec = Spec(directory=root)
    problems: list[SpecProblem] = []
    partial: dict[str, set[str]] = {}  # REST APIs (and stages) named in files that failed validation
    for path in spec_files(root):
        shown = str(Path(display_root) / path.relative_to(root)) if display_root is not None else str(path)
        spec.files.append(shown)
        parsed, lines, raw = _load_file(path, shown, problems)
        if parsed is None:
            _note_partial_declarations(raw, partial)
            continue
        for section in ("functions", "rest_apis", "domains"):
            target: dict[str, Declared] = getattr(spec, section)
            for name, item in getattr(parsed, section).items():
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
                target[name] = Declared(name, item, where)
        for path_key, line in lines.items():
            if all(isinstance(p, str) for p in path_key):
                spec.sources[path_key] = f"{shown}:{line}"
    _check_references(spec, problems, partial)
    if problems:
        raise SpecInvalid(problems)
    return spec


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
            file, line = _split(where)
            field_path = f"domains.{domain.name}.mappings.{base_path}"
            api = spec.rest_apis.get(mapping.api)
            if api is None and mapping.api in partial:
                continue  # declared in a file that failed validation: its own problems are reported
            if api is None:
                problems.append(
                    SpecProblem(file, line, f"{field_path}.api", f"REST API {mapping.api!r} is not declared under rest_apis")
                )
            elif mapping.stage not in api.spec.stages:
                problems.append(
                    SpecProblem(
                        file,
                        line,
                        f"{field_path}.stage",
                        f"stage {mapping.stage!r} is not declared for REST API {mapping.api!r} (at {api.source})",
                    )
                )
