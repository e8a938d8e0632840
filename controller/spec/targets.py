"""Targets: which AWS account and Region each part of the spec belongs to.

A directory holding a ``target.yaml`` is a target: every spec file under it belongs to it, and
it is reconciled with the credentials and Region ``target.yaml`` names::

    desired_state/
      prod-eu/target.yaml     account_id: "111122223333", region: eu-west-1, role_arn: arn:aws:iam::111122223333:role/pointsman
      prod-eu/products.yaml
      dev-us/target.yaml
      dev-us/products.yaml

A spec without any ``target.yaml`` is one target, unnamed: the ambient credentials' account and
Region, as before targets existed. With targets, every spec file must be under one (a file
outside every target, or a target inside another, is a problem at its path), so each resource
belongs to exactly one target. The target's name is its directory's path under the spec root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.sensitive import Sensitive
from controller.spec.declared import Spec, SpecInvalid, SpecProblem, _printable
from controller.spec.load import load_spec
from controller.spec.reading import TARGET_FILE, TARGET_FILES

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._/-]{1,128}$")
CHAINED_MAX_SECONDS = 3600  # AWS: a session made by role chaining lasts at most one hour


class TargetSpec(BaseModel):
    """``target.yaml``: the account and Region of a target, and the role(s) to assume into it."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    account_id: str = Field(description="The 12-digit account id the credentials must be for (checked with GetCallerIdentity).")
    region: str = Field(description="The Region, e.g. eu-west-1.")
    role_arn: str | None = Field(None, description="The role assumed for this target (none: the ambient credentials, which must be for account_id).")
    via: list[str] = Field(default_factory=list, description="Roles assumed first, in order, each with the credentials of the one before (a chain).")
    external_id: Sensitive | None = Field(None, description="The ExternalId the role's trust policy asks for (never printed).")
    session_name: str = Field("pointsman", description="The RoleSessionName (CloudTrail names the caller by it).")
    duration_seconds: int = Field(3600, ge=900, le=43200, description="The session's length; a chain lasts at most 3600 (AWS's limit).")

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_text(cls, value: Any) -> Any:
        return str(value).zfill(12) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not _ACCOUNT_RE.fullmatch(value):
            raise ValueError(f"account_id {value!r} is not a 12-digit account id")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION_RE.fullmatch(value):
            raise ValueError(f"region {value!r} is not a Region name like eu-west-1")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN_RE.fullmatch(value):
            raise ValueError(f"role_arn {value!r} is not an IAM role ARN like arn:aws:iam::111122223333:role/pointsman")
        return value

    @field_validator("via")
    @classmethod
    def _via(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not _ROLE_ARN_RE.fullmatch(arn):
                raise ValueError(f"via: {arn!r} is not an IAM role ARN")
        return value

    @field_validator("external_id", mode="before")
    @classmethod
    def _external_id(cls, value: Any) -> Any:
        if value is None or isinstance(value, Sensitive):
            return value
        text = str(value)
        if not _EXTERNAL_ID_RE.fullmatch(text):
            raise ValueError("external_id must be 2 to 1224 characters of letters, digits and +=,.@:/-_ (its value is not shown)")
        return Sensitive(text)

    @field_validator("session_name")
    @classmethod
    def _session_name(cls, value: str) -> str:
        if not _SESSION_NAME_RE.fullmatch(value):
            raise ValueError(f"session_name {value!r} must be 2 to 64 characters of letters, digits and +=,.@-_")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TargetSpec:
        if self.via and self.role_arn is None:
            raise ValueError("via needs role_arn: the chain ends with the target's role")
        if self.via and self.duration_seconds > CHAINED_MAX_SECONDS:
            raise ValueError(f"duration_seconds {self.duration_seconds}: a chained role session lasts at most {CHAINED_MAX_SECONDS} seconds")
        if self.role_arn is not None and self.role_arn.split(":")[4] != self.account_id:
            raise ValueError(f"role_arn is in account {self.role_arn.split(':')[4]}, not the target's account_id {self.account_id}")
        return self

    def describe(self) -> str:
        """``111122223333 eu-west-1 via arn:...:role/pointsman`` (never the external id)."""
        how = f" as {self.role_arn}" if self.role_arn else " (ambient credentials)"
        chain = f" via {' -> '.join(self.via)}" if self.via else ""
        return f"{self.account_id} {self.region}{how}{chain}"


@dataclass(frozen=True)
class Target:
    """One target: its name ("" for a spec without targets), where it is declared, its settings
    (None: the ambient credentials and Region), and its spec."""

    name: str
    spec: Spec
    settings: TargetSpec | None = None
    source: str = ""

    @property
    def label(self) -> str:
        return self.name or "(default)"


def target_dirs(root: Path) -> list[Path]:
    """The directories under ``root`` holding a target file, sorted (symlinks are not followed)."""
    out: list[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        if TARGET_FILES & set(files):
            out.append(Path(directory))
    return sorted(out)


def load_targets(directory: str | Path, *, allow_empty: bool = False, only: str | None = None) -> list[Target]:
    """Every target's settings and spec; a spec without targets is one unnamed target.
    ``only``: that target alone (an unknown name is a problem). Raises ``SpecInvalid`` with
    every problem of every target."""
    root = Path(directory)
    dirs = target_dirs(root) if root.is_dir() else []
    if not dirs:
        if only:
            raise SpecInvalid([SpecProblem(str(root), 0, "", f"--target {only}: the spec declares no targets (no {TARGET_FILE} under it)")])
        return [Target("", load_spec(root, allow_empty=allow_empty))]
    problems: list[SpecProblem] = []
    names = {_name(root, d): d for d in dirs}
    for name, path in names.items():
        outer = next((other for other in dirs if other != path and other in path.parents), None)
        if outer is not None:
            problems.append(SpecProblem(_printable(str(_file(path))), 1, "", f"target {name} is inside target {_name(root, outer)}: targets do not nest"))
        if not _NAME_RE.fullmatch(name):
            problems.append(
                SpecProblem(_printable(str(_file(path))), 1, "", f"target name {_printable(name)!r} (its directory) must be letters, digits and ._/-")
            )
    for stray in _files_outside(root, dirs):
        problems.append(SpecProblem(_printable(str(stray)), 1, "", "this spec file belongs to no target: move it into a directory with a target.yaml"))
    if only is not None and only not in names:
        problems.append(SpecProblem(str(root), 0, "", f"--target {only}: no such target (targets: {', '.join(sorted(names))})"))
    if problems:
        raise SpecInvalid(problems)
    out: list[Target] = []
    for name, path in sorted(names.items()):
        if only is not None and name != only:
            continue
        settings, source = _read_settings(_file(path), problems)
        try:
            spec = load_spec(path, allow_empty=allow_empty)
        except SpecInvalid as exc:
            problems.extend(exc.problems)
            continue
        if settings is not None:
            out.append(Target(name, spec, settings, source))
    if problems:
        raise SpecInvalid(problems)
    return out


def _name(root: Path, directory: Path) -> str:
    return directory.relative_to(root).as_posix() if directory != root else "."


def _file(directory: Path) -> Path:
    return next((directory / name for name in sorted(TARGET_FILES) if (directory / name).is_file()), directory / TARGET_FILE)


def _files_outside(root: Path, dirs: list[Path]) -> list[Path]:
    stray: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        if here in dirs:
            subdirs[:] = []  # inside a target
            continue
        subdirs.sort()
        stray += [here / f for f in sorted(files) if f.endswith((".yaml", ".yml"))]
    return stray


def _read_settings(path: Path, problems: list[SpecProblem]) -> tuple[TargetSpec | None, str]:
    shown = _printable(str(path))
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(SpecProblem(shown, 1, "", f"cannot read the target file: {exc}"))
        return None, shown
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append(SpecProblem(shown, mark.line + 1 if mark else 1, "", f"invalid YAML: {exc.problem or exc.context}"))
        return None, shown
    if not isinstance(data, dict):
        problems.append(SpecProblem(shown, 1, "", "a target file is a mapping: account_id, region, role_arn..."))
        return None, shown
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
    try:
        return TargetSpec.model_validate(data), f"{shown}:1"
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"unknown field {field!r}"
            elif err["type"] == "missing":
                message = f"required field {field!r} is missing"
            problems.append(SpecProblem(shown, lines.get(field, 1), field, message))
        return None, shown


def read_target_settings(root: str | Path) -> list[tuple[str, TargetSpec | None, list[SpecProblem]]]:
    """Each target directory under ``root`` (``root`` itself is the target ".") with its settings,
    or the problems of its target file: what a target's credentials need, without loading any spec file."""
    base = Path(root)
    out: list[tuple[str, TargetSpec | None, list[SpecProblem]]] = []
    for directory in target_dirs(base):
        problems: list[SpecProblem] = []
        settings, _ = _read_settings(_file(directory), problems)
        out.append((_name(base, directory), settings, problems))
    return out
