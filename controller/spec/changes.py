"""What a change to the spec changes, spec against spec (a PR's base branch against its head).

``pointsman plan --base REV`` (or ``--base-spec DIR``) shows it beside the plan, which says what
differs from live AWS: a reviewer sees what the PR edits in git and what apply will do.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.sensitive import Sensitive
from controller.spec.declared import Spec


class SpecDiffError(Exception):
    """The base cannot be read (not a git repository, an unknown revision); one line."""


@dataclass(frozen=True)
class SpecChange:
    path: tuple[str, ...]  # ("functions", "getProducts", "aliases", "prod", "version")
    change: str  # added | removed | changed
    base: Any = None
    head: Any = None
    source: str | None = None  # file:line in the head spec (the base's for a removal)

    @property
    def section(self) -> str:
        return self.path[0]

    @property
    def item(self) -> str:
        return self.path[1] if len(self.path) > 1 else ""

    @property
    def field(self) -> str:
        return ".".join(self.path[2:])

    def as_dict(self) -> dict[str, Any]:
        return {"path": ".".join(self.path), "change": self.change, "base": _shown(self.base), "head": _shown(self.head), "source": self.source}


def _shown(value: Any) -> Any:
    return str(value) if isinstance(value, Sensitive) else value


def _flat(value: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flat(inner, (*prefix, str(key)), out)
    else:
        out[prefix] = value


def flatten(spec: Spec) -> dict[tuple[str, ...], Any]:
    """Every value the spec sets, by path (what was written: defaults left out). An environment
    value written in git is a ``Sensitive`` (shown as its digest); an SSM reference is its name."""
    out: dict[tuple[str, ...], Any] = {}
    for section in ("functions", "rest_apis", "domains"):
        for name, declared in getattr(spec, section).items():
            body = declared.spec.model_dump(mode="json", exclude_unset=True) if hasattr(declared.spec, "model_dump") else declared.spec
            _flat(body if body else {}, (section, name), out)
            if not body:
                out[(section, name)] = {}
    for path, value in out.items():
        if len(path) == 4 and path[0] == "functions" and path[2] == "environment" and isinstance(value, str):
            out[path] = Sensitive(value)
    return out


def _differ(old: Any, new: Any) -> bool:
    if isinstance(old, Sensitive) or isinstance(new, Sensitive):
        return bool(old != new)
    return json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True)


def _source(spec: Spec, path: tuple[str, ...]) -> str | None:
    for end in range(len(path), 1, -1):
        found = spec.source_of(*path[:end])
        if found:
            return found
    return None


def spec_changes(base: Spec, head: Spec) -> list[SpecChange]:
    old, new = flatten(base), flatten(head)
    changes: list[SpecChange] = []
    for path in sorted(old.keys() | new.keys()):
        if path not in old:
            changes.append(SpecChange(path, "added", None, new[path], _source(head, path)))
        elif path not in new:
            changes.append(SpecChange(path, "removed", old[path], None, _source(base, path)))
        elif _differ(old[path], new[path]):
            changes.append(SpecChange(path, "changed", old[path], new[path], _source(head, path)))
    return changes


def export_base(spec_dir: Path, rev: str, target: Path) -> tuple[Path, str]:
    """Write ``spec_dir`` as it is at ``rev`` (of the git repository holding it) under
    ``target``; return that directory and the revision's commit sha."""
    import git

    try:
        repo = git.Repo(spec_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SpecDiffError(f"--base {rev}: {spec_dir} is not in a git repository (use --base-spec DIR)") from None
    root = Path(str(repo.working_tree_dir)).resolve()
    try:
        rel = Path(spec_dir).resolve().relative_to(root).as_posix()
    except ValueError:
        raise SpecDiffError(f"--base {rev}: {spec_dir} is outside the repository {root}") from None
    try:
        commit = repo.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise SpecDiffError(f"--base {rev}: no such revision in {root} (fetch it first, e.g. git fetch origin main)") from None
    stream = io.BytesIO()
    try:
        repo.archive(stream, commit.hexsha, path=None if rel == "." else rel, format="tar")
    except git.GitCommandError:
        (target / rel).mkdir(parents=True, exist_ok=True)  # the spec directory is new in this change
        return target / rel, commit.hexsha
    stream.seek(0)
    with tarfile.open(fileobj=stream) as tar:
        tar.extractall(target, filter="data")
    return target / rel, commit.hexsha


def head_commit(spec_dir: Path) -> str | None:
    """The commit checked out where the spec is (None outside a git repository)."""
    import git

    try:
        return str(git.Repo(spec_dir, search_parent_directories=True).head.commit.hexsha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None
