"""Reading spec files safely: finding them, bounded reads, and YAML parsed with line numbers.

Every limit is checked before the work it bounds, so a broken or hostile spec costs seconds and
tens of MB, never a hang or a traceback; each value keeps the line it was written on.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.spec.declared import SpecProblem
from controller.spec.schema import _short

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
                f"more than {MAX_FILE_NODES:,} YAML nodes in one file (anchors, aliases and merge keys count each time they are used); split the file",
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
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


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


TARGET_FILE = "target.yaml"
TARGET_FILES = frozenset({"target.yaml", "target.yml"})  # a target's settings (controller.spec.targets), not a spec file


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
                problems.append(SpecProblem(shown_root, 0, "", f"more than {MAX_DIR_ENTRIES:,} files and directories under the spec directory"))
                return []
            path = Path(entry.path)
            is_spec = path.suffix in _SUFFIXES and entry.name not in TARGET_FILES
            if entry.name in TARGET_FILES and Path(directory) != root:
                problems.append(
                    SpecProblem(
                        show(path),
                        1,
                        "",
                        "a target's settings: this spec is split into targets, and this reads it as one "
                        "(plan, apply and validate read every target; routes, explain and iam-policy take --target NAME)",
                    )
                )
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
