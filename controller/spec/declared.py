"""The loaded spec as the rest of Pointsman sees it: declarations with the file:line they were
written at, and the problems that refuse a spec (all of them, each with file, line and field).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.spec.windows import Window


def _printable(text: str) -> str:
    """``text`` with each non-printable character escaped as in a Python literal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


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
    windows: list[Window] = field(default_factory=list)  # sync windows of every file, in file order
    # A part of a spec (``part``): the whole spec it was cut from; None for a whole spec.
    whole: Spec | None = field(default=None, repr=False, compare=False)

    def source_of(self, *path: str) -> str | None:
        return self.sources.get(tuple(path))

    def part(self, functions: Iterable[str], rest_apis: Iterable[str], domains: Iterable[str]) -> Spec:
        """The declarations of these functions, REST APIs and domains (each name the spec does not
        declare is left out), in the order given, with every source, file and sync window kept:
        what a focused run plans. ``whole`` is this spec."""
        whole = self.whole or self
        return Spec(
            directory=self.directory,
            functions={name: self.functions[name] for name in functions if name in self.functions},
            rest_apis={name: self.rest_apis[name] for name in rest_apis if name in self.rest_apis},
            domains={name: self.domains[name] for name in domains if name in self.domains},
            sources=self.sources,
            files=self.files,
            windows=self.windows,
            whole=whole,
        )

    def leaves_out_api(self, name: str) -> bool:
        """Is ``name`` a REST API the whole spec declares and this part leaves out?"""
        return self.whole is not None and name in self.whole.rest_apis and name not in self.rest_apis

    def declared_api(self, name: str) -> Declared | None:
        """The declaration of REST API ``name`` in the whole spec (this part's or not)."""
        return self.rest_apis.get(name) or (self.whole.rest_apis.get(name) if self.whole is not None else None)
