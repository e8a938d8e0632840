"""Spec files: YAML under a directory -> validated, merged ``Spec`` with file:line for everything.

Every problem is collected (not just the first) as a ``SpecProblem`` naming file, line and
field, so ``pointsman validate`` can list them all at once. Loading reads the files
(:mod:`controller.spec.reading`), validates each against the models
(:mod:`controller.spec.schema`), merges them, checks references across files, and expands API
versions into the aliases and stage variables they are made of.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import (
    ValidationError,
)

from controller.spec.declared import Declared, Spec, SpecInvalid, SpecProblem, _printable
from controller.spec.reading import (
    MAX_FILE_BYTES,
    MAX_RESOURCES,
    MAX_TOTAL_BYTES,
    _Converter,
    _dotted,
    _find_spec_files,
    _Found,
    _LimitExceeded,
    _line_for,
    _LineLoader,
    _mib,
    _NodeBudget,
    _read,
    _short_text,
    _too_big,
)
from controller.spec.schema import _ENV_SSM_TAG, _ENV_TEXT_TAG, LATEST, AliasSpec, FunctionSpec, RolloutSpec, SpecFile, StageSpec, VersionsSpec, _short
from controller.spec.windows import Window
from controller.versions import STAGE_DEFAULT_VAR, STAGE_NAME_VAR, STAGE_VERSIONS_VAR

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
        problems.append(SpecProblem(shown, text.count("\n", 0, position) + 1, "", f"invalid YAML: unacceptable character {character}: {exc.reason}"))
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
        _refuse(
            [
                SpecProblem(
                    shown_root,
                    0,
                    "",
                    f"no spec files (*.yaml, *.yml) under {shown_root}; pass --allow-empty if an empty desired state is meant",
                )
            ]
        )
    found, total = _within_file_size(found, show, problems)
    if total > MAX_TOTAL_BYTES:
        problems.append(SpecProblem(shown_root, 0, "", f"spec files total {total:,} bytes; the limit is {_mib(MAX_TOTAL_BYTES)}"))
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
                    shown,
                    1,
                    "",
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
        for index, window in enumerate(parsed.windows):
            kind, text = ("deny", window.deny) if window.deny is not None else ("allow", window.allow or "")
            where = f"{shown}:{lines.get(('windows', index), 1)}"
            spec.windows.append(Window(kind, text, window.timezone, window.allow_heal, where))
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
                _problem_at(
                    problems,
                    stage_where,
                    f"rest_apis.{api_name}.stages.{stage_name}.variables",
                    f"{', '.join(taken)} is set from rest_apis.{api_name}.versions; remove it here",
                )
            if stage.deployment:
                _problem_at(
                    problems,
                    stage_where,
                    f"rest_apis.{api_name}.stages.{stage_name}.deployment",
                    "a stage of an API with versions is deployed by Pointsman; remove the deployment pin",
                )
            exposed = versions.exposed(stage_name)
            if versions.default not in exposed:
                _problem_at(
                    problems,
                    stage_where,
                    f"rest_apis.{api_name}.stages.{stage_name}",
                    f"stage {stage_name} does not expose the default version {versions.default}",
                )
            if versions.proxy == "unmanaged":
                # The proxy routes are someone else's: they read no variable of Pointsman's.
                variables = dict(stage.variables)
            else:
                variables = {**stage.variables, STAGE_VERSIONS_VAR: ",".join(exposed), STAGE_DEFAULT_VAR: versions.default}
            if versions.generated_proxy:
                variables[STAGE_NAME_VAR] = stage_name  # the proxy calls the versioned routes of its own stage
            stages[stage_name] = stage.model_copy(update={"variables": variables})
        for version, entry in versions.catalogue.items():
            entry_where = spec.source_of("rest_apis", api_name, "versions", "catalogue", version) or where
            for stage_name in entry.stages or ():
                if stage_name not in declared.spec.stages:
                    _problem_at(
                        problems,
                        entry_where,
                        f"rest_apis.{api_name}.versions.catalogue.{version}.stages",
                        f"stage {stage_name!r} is not declared for REST API {api_name!r}",
                    )
            for function, pin in entry.functions.items():
                description = f"{api_name} API version {version}" if entry.description is None else entry.description
                _generate_alias(spec, problems, generated, function, version, pin, description, entry_where, versions.rollout)
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
    rollout: RolloutSpec | None = None,
) -> None:
    earlier = generated.get((function, alias))
    if earlier is not None:
        if earlier[0] != pin:
            _problem_at(
                problems,
                where,
                f"functions.{function}.aliases.{alias}",
                f"alias {function}:{alias} is pinned to {earlier[0]} at {earlier[1]} and to {pin} here",
            )
        return
    declared = spec.functions.get(function)
    if declared is not None and alias in declared.spec.aliases:
        _problem_at(
            problems,
            where,
            f"functions.{function}.aliases.{alias}",
            f"alias {function}:{alias} is declared at {spec.source_of('functions', function, 'aliases', alias)} "
            "and generated by an API version here; remove one",
        )
        return
    generated[(function, alias)] = (pin, where)
    if declared is None:
        declared = Declared(function, FunctionSpec(), where)
        spec.sources.setdefault(("functions", function), where)
    # The catalogue's rollout, for an alias pinned to a published version ($LATEST moves at once).
    aliases = {**declared.spec.aliases, alias: AliasSpec(version=pin, description=description, rollout=rollout if pin != LATEST else None)}
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
                    problems,
                    where,
                    f"{field_path}.stage",
                    f"stage {mapping.stage!r} is not declared for REST API {mapping.api!r} (at {api.source})",
                )
