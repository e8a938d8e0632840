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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LATEST = "$LATEST"
_VERSION_RE = re.compile(r"^(\$LATEST|[1-9][0-9]*|sha256:[A-Za-z0-9+/]{43}=)$")
_ALIAS_NAME_RE = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")
_STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_VAR_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_VAR_VALUE_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#&=,]{1,512}$")
_BASE_PATH_RE = re.compile(r"^(\(none\)|[A-Za-z0-9._~\-]+(/[A-Za-z0-9._~\-]+)*)$")
_FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
    version: str = Field(description='Published version ("1"), "$LATEST", or "sha256:<CodeSha256>".')
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
    aliases: dict[str, AliasSpec] = Field(default_factory=dict)

    @field_validator("aliases")
    @classmethod
    def _alias_names(cls, value: dict[str, AliasSpec]) -> dict[str, AliasSpec]:
        for name in value:
            if not _ALIAS_NAME_RE.match(name):
                raise ValueError(f"alias name {name!r} must be 1-128 letters, digits, - or _ and not all digits")
        return value


class StageSpec(_Strict):
    variables: dict[str, str] = Field(default_factory=dict)
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
            if not _VAR_NAME_RE.match(name):
                raise ValueError(f"stage variable name {name!r} must be letters, digits or _")
            if not _VAR_VALUE_RE.match(val):
                raise ValueError(f"stage variable {name}={val!r} has characters API Gateway does not allow")
        return value


class RestApiSpec(_Strict):
    stages: dict[str, StageSpec] = Field(default_factory=dict)

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: dict[str, StageSpec]) -> dict[str, StageSpec]:
        for name in value:
            if not _STAGE_NAME_RE.match(name):
                raise ValueError(f"stage name {name!r} must be letters, digits, - or _")
        return value


class MappingSpec(_Strict):
    api: str = Field(description="Name of a REST API declared under rest_apis.")
    stage: str = Field(description="A stage declared for that API.")


class DomainSpec(_Strict):
    mappings: dict[str, MappingSpec] = Field(default_factory=dict)

    @field_validator("mappings")
    @classmethod
    def _base_paths(cls, value: dict[str, MappingSpec]) -> dict[str, MappingSpec]:
        for base_path in value:
            if not _BASE_PATH_RE.match(base_path):
                raise ValueError(f"base path {base_path!r} must be '(none)' or a path like 'v1'")
        return value


class SpecFile(_Strict):
    """One spec file. Any number of files under the spec directory are merged."""

    functions: dict[str, FunctionSpec] = Field(default_factory=dict)
    rest_apis: dict[str, RestApiSpec] = Field(default_factory=dict)
    domains: dict[str, DomainSpec] = Field(default_factory=dict)

    @field_validator("functions")
    @classmethod
    def _function_names(cls, value: dict[str, FunctionSpec]) -> dict[str, FunctionSpec]:
        for name in value:
            if not _FUNCTION_NAME_RE.match(name):
                raise ValueError(f"function name {name!r} must be 1-64 letters, digits, - or _")
        return value

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


def _compose(text: str, filename: str) -> yaml.Node | None:
    return yaml.compose(text, Loader=_LineLoader)


def _to_python(
    node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], problems: list[SpecProblem], filename: str
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)
            if not isinstance(key, str):
                problems.append(SpecProblem(filename, key_node.start_mark.line + 1, _dotted(path), f"key {key!r} must be a string"))
                continue
            child = path + (key,)
            if key in out:
                problems.append(
                    SpecProblem(
                        filename,
                        key_node.start_mark.line + 1,
                        _dotted(child),
                        f"duplicate key (first at line {lines[child]})",
                    )
                )
                continue
            lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, lines, problems, filename)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, problems, filename) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = _LineLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def spec_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _load_file(path: Path, shown: str, problems: list[SpecProblem]) -> tuple[SpecFile | None, dict[tuple[Any, ...], int]]:
    lines: dict[tuple[Any, ...], int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(SpecProblem(shown, 1, "", f"cannot read file: {exc}"))
        return None, lines
    try:
        node = _compose(text, shown)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(SpecProblem(shown, line, "", f"invalid YAML: {exc.problem or exc.context}"))
        return None, lines
    except yaml.YAMLError as exc:
        problems.append(SpecProblem(shown, 1, "", f"invalid YAML: {exc}"))
        return None, lines
    if node is None:
        return SpecFile(), lines
    before = len(problems)
    data = _to_python(node, (), lines, problems, shown)
    if len(problems) > before:
        return None, lines
    if not isinstance(data, dict):
        problems.append(SpecProblem(shown, 1, "", "a spec file must be a mapping with functions, rest_apis and/or domains"))
        return None, lines
    try:
        return SpecFile.model_validate(data), lines
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            if err["type"] == "extra_forbidden":
                message = f"unknown field {loc[-1]!r}"
            elif err["type"] == "missing":
                message = f"required field {loc[-1]!r} is missing"
            problems.append(SpecProblem(shown, _line_for(loc, lines), _dotted(loc), message))
        return None, lines


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
    for path in spec_files(root):
        shown = str(Path(display_root) / path.relative_to(root)) if display_root is not None else str(path)
        spec.files.append(shown)
        parsed, lines = _load_file(path, shown, problems)
        if parsed is None:
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
    _check_references(spec, problems)
    if problems:
        raise SpecInvalid(problems)
    return spec


_SINGULAR = {"functions": "function", "rest_apis": "REST API", "domains": "domain"}


def _split(source: str) -> tuple[str, int]:
    file, _, line = source.rpartition(":")
    return file, int(line)


def _check_references(spec: Spec, problems: list[SpecProblem]) -> None:
    for domain in spec.domains.values():
        for base_path, mapping in domain.spec.mappings.items():
            where = spec.source_of("domains", domain.name, "mappings", base_path) or domain.source
            file, line = _split(where)
            field_path = f"domains.{domain.name}.mappings.{base_path}"
            api = spec.rest_apis.get(mapping.api)
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
