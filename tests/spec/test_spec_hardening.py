"""controller.spec.load.load_spec on hostile or broken input: a problem per issue, never a traceback,
a hang or a memory blow-up.

Each case asserts the exact problem (file, line, field, message) and a time bound generous
enough for a loaded 2-core machine; the bombs also bound memory. The Hypothesis tests and the
corpus run are marked ``fuzz`` (a fast slice here; tests/fuzz_spec.py runs the large corpus).
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.spec import MAX_DEPTH, MAX_FILE_NODES, MAX_FILES, MAX_NUMBER_CHARS, MAX_SPEC_NODES, Spec, SpecInvalid, SpecProblem, load_spec
from controller.spec import load as spec_module
from controller.spec import reading as spec_reading
from tests.conftest import cli
from tests.fuzz_spec import run_spec_corpus

SECONDS = 10.0  # per load: hostile input is refused in well under a second here; 10 s never flakes
BOMB_BYTES = 100 * 1024 * 1024  # peak Python allocations while refusing a bomb


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    result = call()
    return result, time.process_time() - start


def problems_of(directory: Path, **kwargs: Any) -> list[SpecProblem]:
    # CPU time, not wall time: a loaded machine (parallel test workers) must not fail the bound.
    start = time.process_time()
    with pytest.raises(SpecInvalid) as info:
        load_spec(directory, **kwargs)
    elapsed = time.process_time() - start
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    assert info.value.problems, "SpecInvalid without problems"
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    return info.value.problems


def only_problem(directory: Path, **kwargs: Any) -> SpecProblem:
    problems = problems_of(directory, **kwargs)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def alias_spec(version: str) -> str:
    return (
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases:\n"  # 3
        f"      prod: {{version: {version}}}\n"  # 4
    )


# --------------------------------------------------------------------------- numbers


def test_version_of_5000_digits(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", alias_spec("1" * 5000))
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 4, "functions.f.aliases.prod.version")
    assert p.message == (f"number {'1' * 40!r}... (5,000 characters) is longer than {MAX_NUMBER_CHARS} characters; quote it if it is text")


def test_long_sexagesimal_number_is_refused_quickly(tmp_path: Path) -> None:
    # YAML 1.1 reads 1:1:1 as an int in base 60; a million parts would take minutes.
    path = write(tmp_path, "a.yaml", alias_spec("1:" * 500_000 + "1"))
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 4, "functions.f.aliases.prod.version")
    assert p.message.startswith("number '1:1:1:") and p.message.endswith("quote it if it is text")


def test_a_quoted_long_version_is_text_and_still_checked(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", alias_spec('"' + "x" * 5000 + '"'))
    p = only_problem(tmp_path)
    assert p.field == "functions.f.aliases.prod.version"
    assert p.message.startswith(f"version {'x' * 40!r}... (5,000 characters) is not a published version number")


# --------------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("functions: " + "[" * 1000 + "]" * 1000 + "\n", 1),
        ("functions: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n", 1),
        ("".join("  " * i + f"k{i}:\n" for i in range(1000)) + "  " * 1000 + "v\n", MAX_DEPTH),
        ("".join("  " * i + "-\n" for i in range(1000)) + "  " * 1000 + "v\n", MAX_DEPTH + 1),
    ],
    ids=["flow-sequence", "flow-mapping", "block-mapping", "block-sequence"],
)
def test_nesting_1000_deep(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "a.yaml", text)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(path), line, "", f"nesting deeper than {MAX_DEPTH} levels")


def test_nesting_within_the_limit_is_only_a_schema_problem(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "functions: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    p = only_problem(tmp_path)
    assert (p.field, p.message) == ("functions", "Input should be a valid dictionary")


def test_aliases_nesting_deeper_than_the_text(tmp_path: Path) -> None:
    # Each anchor wraps the previous one: shallow as written, 42 deep once expanded. The file's
    # mapping is level 1, a_i's value level 2, and x in a_i sits i + 1 lists further down, so a30
    # (line 31) is the first to pass level 32. The field is the path to the node past the limit.
    text = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 41))
    path = write(tmp_path, "a.yaml", text)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.message) == (str(path), 31, f"nesting deeper than {MAX_DEPTH} levels")
    assert p.field == "a30." + ".".join(["0"] * (MAX_DEPTH - 1))


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("a: &a [*a]\n", "a." + ".".join(["0"] * (MAX_DEPTH - 1)), f"nesting deeper than {MAX_DEPTH} levels"),
        ("a: &a {b: *a}\n", "a." + ".".join(["b"] * (MAX_DEPTH - 1)), f"nesting deeper than {MAX_DEPTH} levels"),
        ("a: &a {<<: *a}\n", "a", "a merge key (<<) refers to a mapping that contains it"),
    ],
    ids=["sequence-in-itself", "mapping-in-itself", "merge-of-itself"],
)
def test_recursive_anchors(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = write(tmp_path, "a.yaml", text)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(path), 1, field, message)


# --------------------------------------------------------------------------- bombs


def laughs(levels: int = 9, width: int = 10) -> str:
    """The billion laughs: each level lists the previous one ``width`` times."""
    text = "a0: &a0 [" + ", ".join(["lol"] * width) + "]\n"
    for i in range(1, levels + 1):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text


def merge_doubling(levels: int = 60) -> str:
    """Each mapping merges the previous one twice: 2**60 pairs if merges were copied out."""
    text = "m0: &m0 {x: 1}\n"
    for i in range(1, levels + 1):
        text += f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}\n"
    return text


def bounded(call: Callable[[], Any]) -> tuple[float, int]:
    """(seconds, peak bytes allocated by Python) for ``call``."""
    tracemalloc.start()
    try:
        start = time.process_time()
        call()
        elapsed = time.process_time() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, peak


NODES_MESSAGE = f"more than {MAX_FILE_NODES:,} YAML nodes in one file (anchors, aliases and merge keys count each time they are used); split the file"


def test_billion_laughs(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", laughs())
    problems: list[SpecProblem] = []

    def load() -> None:
        problems.extend(problems_of(tmp_path))

    elapsed, peak = bounded(load)
    assert elapsed < SECONDS and peak < BOMB_BYTES, (elapsed, peak)
    assert len(problems) == 1
    p = problems[0]
    # a_k expands to 10**k laughs and the lists holding them: 11, 111, ... nodes; the running
    # count passes 100,000 while expanding a4 (line 5).
    assert (p.file, p.line, p.message) == (str(path), 5, NODES_MESSAGE)
    assert p.field.startswith("a4.")


def test_merge_key_doubling(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", merge_doubling())
    problems: list[SpecProblem] = []

    def load() -> None:
        problems.extend(problems_of(tmp_path))

    elapsed, peak = bounded(load)
    assert elapsed < SECONDS and peak < BOMB_BYTES, (elapsed, peak)
    assert len(problems) == 1
    p = problems[0]
    # m_i merges 2**i pairs; the running count passes 100,000 at m15 (line 16).
    assert (p.file, p.line, p.field, p.message) == (str(path), 16, "m15", NODES_MESSAGE)


def test_bomb_memory_in_rss(tmp_path: Path) -> None:
    """The same bombs, in a child process, measured by the kernel (not only Python's allocator)."""
    import subprocess
    import sys

    write(tmp_path, "a.yaml", laughs(12) + merge_doubling().replace("m", "n"))
    code = (
        "import resource, sys\n"
        "from controller.spec.load import SpecInvalid, load_spec\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    load_spec(sys.argv[1])\nexcept SpecInvalid:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=60, check=True)
    grown_kib = int(done.stdout.strip())
    assert grown_kib < 100 * 1024, f"RSS grew by {grown_kib} KiB"


def test_nodes_over_the_whole_spec(tmp_path: Path) -> None:
    # Each file expands to ~90,000 nodes (under the per-file limit); the fourth passes the spec's.
    width = 300
    body = "a: &a [" + ", ".join(["x"] * width) + "]\nb: [" + ", ".join(["*a"] * width) + "]\n"
    files = [write(tmp_path, f"f{i}.yaml", body) for i in range(6)]
    problems = problems_of(tmp_path)
    limit = f"more than {MAX_SPEC_NODES:,} YAML nodes in the spec; files after this one are not read"
    assert [(p.file, p.line) for p in problems if p.message == limit] == [(str(files[3]), 2)]
    # f0-f2 are read (their unknown sections a and b are problems), f3 stops, f4 and f5 are not read.
    assert {p.file for p in problems} == {str(f) for f in files[:4]}


def test_too_many_nodes_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "x:\n" + "- 1\n" * (MAX_FILE_NODES + 10))
    p = only_problem(tmp_path)
    # The mapping, the key and the sequence are nodes too: the 100,001st is item 99,998 (line 99,999).
    assert (p.file, p.line, p.field, p.message) == (str(path), MAX_FILE_NODES - 1, "", NODES_MESSAGE)


# --------------------------------------------------------------------------- characters


@pytest.mark.parametrize(("raw", "code"), [(b"\x00", "#x0000"), (b"\x07", "#x0007"), (b"\x1b", "#x001b"), ("\ufffe".encode(), "#xfffe")])
def test_non_printable_character(tmp_path: Path, raw: bytes, code: str) -> None:
    path = write(tmp_path, "a.yaml", b"functions:\n  f:\n    aliases: {prod: {version: '1" + raw + b"'}}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 3, "")
    assert p.message == f"invalid YAML: unacceptable character {code}: special characters are not allowed"


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "functions: {}\n---\nrest_apis: {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line) == (str(path), 2)
    assert p.message == "invalid YAML: expected a single document in the stream, but found another document"


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int abc", "cannot read value 'abc' as !!int: invalid literal for int() with base 10: 'abc'"),
        ("!!int 0x", "cannot read value '0x' as !!int: invalid literal for int() with base 16: ''"),
        ("!!int ''", "cannot read value '' as !!int"),
        ("!!float xyz", "cannot read value 'xyz' as !!float: could not convert string to float: 'xyz'"),
        ("!!bool maybe", "cannot read value 'maybe' as !!bool"),
        (
            "!!binary 'Q'",
            "cannot read value 'Q' as !!binary: failed to decode base64 data: "
            "Invalid base64-encoded string: number of data characters (1) cannot be 1 more than a multiple of 4",
        ),
        ("!!binary QQ", "cannot read value 'QQ' as !!binary: failed to decode base64 data: Incorrect padding"),
        ("!!timestamp nope", "cannot read value 'nope' as !!timestamp"),
        ("!!timestamp 2020-13-45", "cannot read value '2020-13-45' as !!timestamp: month must be in 1..12"),
        ("2020-02-30", "cannot read value '2020-02-30' as !!timestamp: day is out of range for month"),
        ("!!map x", "cannot read value 'x' as !!map: expected a mapping node, but found scalar"),
        ("!!python/object:os.system x", "unknown YAML tag '!!python/object:os.system' on value 'x'"),
        ("!ref x", "unknown YAML tag '!ref' on value 'x'"),
        ("<<", "unknown YAML tag '!!merge' on value '<<'"),
    ],
)
def test_value_that_does_not_fit_its_tag(tmp_path: Path, value: str, message: str) -> None:
    path = write(tmp_path, "a.yaml", alias_spec(value))
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(path), 4, "functions.f.aliases.prod.version", message)


def test_bad_value_used_through_aliases_is_reported_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "x: &x !!int abc\ny: [*x, *x, *x]\nz: {a: *x}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 1, "x")


def test_bad_key_tag(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "functions:\n  !!float abc: {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(path), 2, "functions", "cannot read value 'abc' as !!float: could not convert string to float: 'abc'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<<: 1\n", "a merge key (<<) needs a mapping or a list of mappings, not a scalar"),
        ("<<: [1, {a: 1}]\n", "a merge key (<<) needs a mapping or a list of mappings, not a sequence"),
        ("? [a]\n: 1\n", "key of kind sequence must be a string"),
        ("~: 1\n", "key None must be a string"),
    ],
)
def test_odd_keys(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "a.yaml", text)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(path), 1, "", message)


def test_merge_into_an_aliased_mapping_is_not_a_duplicate(tmp_path: Path) -> None:
    # PyYAML's flatten_mapping rewrote the shared node, so the second use looked like duplicates.
    write(
        tmp_path,
        "a.yaml",
        "rest_apis:\n  api:\n    stages:\n      base: &b {description: x, variables: {a: '1'}}\n      prod: &p {<<: *b, description: y}\n      dev: *p\n",
    )
    stages = load_spec(tmp_path).rest_apis["api"].spec.stages
    assert stages["dev"] == stages["prod"]
    assert (stages["dev"].description, stages["dev"].variables) == ("y", {"a": "1"})


def test_merge_order_follows_the_yaml_merge_key_spec(tmp_path: Path) -> None:
    text = (
        "rest_apis:\n  api:\n    stages:\n"
        "      x: &x {description: from-x}\n"
        "      y: &y {description: from-y, deployment: d-y}\n"
        "      a: {<<: [*x, *y]}\n"  # the first mapping listed wins
        "      b:\n        <<: *x\n        <<: *y\n"  # a later merge key wins
        "      c: {<<: *y, description: own}\n"  # explicit keys win
    )
    write(tmp_path, "a.yaml", text)
    stages = load_spec(tmp_path).rest_apis["api"].spec.stages
    # The merge key spec (yaml.org/type/merge): in a sequence of mappings, earlier ones win.
    # PyYAML's own order for a sequence has changed between releases, so the spec is the reference.
    expected = {
        "a": {"description": "from-x", "deployment": "d-y"},
        "b": {"description": "from-y", "deployment": "d-y"},
        "c": {"description": "own", "deployment": "d-y"},
    }
    assert yaml.safe_load(text)["rest_apis"]["api"]["stages"]["c"] == expected["c"]
    for name in "abc":
        assert stages[name].model_dump(exclude_defaults=True) == expected[name]


# --------------------------------------------------------------------------- files and directories


def test_symlink_to_a_file_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    write(spec, "ok.yaml", "functions: {}\n")
    secret = write(tmp_path, "secret.yaml", "functions: {}\n")
    (spec / "passwd.yaml").symlink_to("/etc/passwd")
    (spec / "environ.yml").symlink_to("/proc/self/environ")
    (spec / "secret.yaml").symlink_to(secret)
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(spec_reading.os, "open", spy)
    problems = problems_of(spec)
    assert [(p.file, p.line, p.field, p.message) for p in problems] == [
        (str(spec / "environ.yml"), 1, "", "symlink to '/proc/self/environ' leaves the spec directory; it is not read"),
        (str(spec / "passwd.yaml"), 1, "", "symlink to '/etc/passwd' leaves the spec directory; it is not read"),
        (str(spec / "secret.yaml"), 1, "", f"symlink to {str(secret)!r} leaves the spec directory; it is not read"),
    ]
    assert opened == [str((spec / "ok.yaml").resolve())]


def test_symlinked_directory_outside(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    outside = tmp_path / "outside"
    write(outside, "x.yaml", "functions: {}\n")
    write(spec, "ok.yaml", "functions: {}\n")
    (spec / "shared").symlink_to("../outside")
    (spec / "etc").symlink_to("/etc")
    problems = problems_of(spec)
    assert [(p.file, p.line, p.message) for p in problems] == [
        (str(spec / "etc"), 1, "symlink to '/etc' leaves the spec directory; it is not read"),
        (str(spec / "shared"), 1, "symlink to '../outside' leaves the spec directory; it is not read"),
    ]


def test_symlinks_inside_the_spec_directory_are_fine_and_read_once(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    a = write(spec, "team/a.yaml", "functions:\n  f: {}\n")
    write(spec, "notes/b.txt", "rest_apis:\n  api: {}\n")
    (spec / "alias-of-a.yaml").symlink_to("team/a.yaml")  # the same file: read once, as team/a.yaml
    (spec / "b.yaml").symlink_to("notes/b.txt")  # only reachable through the link: read as b.yaml
    (spec / "team-link").symlink_to("team")  # a directory inside: walked once, as team/
    (spec / "loop").symlink_to(".")
    loaded = load_spec(spec)
    assert loaded.files == [str(spec / "b.yaml"), str(a)]
    assert set(loaded.functions) == {"f"} and set(loaded.rest_apis) == {"api"}


def test_spec_directory_reached_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    a = write(real, "a.yaml", "functions:\n  f: {}\n")
    (real / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "link").symlink_to("real")
    loaded = load_spec(tmp_path / "link")
    assert loaded.files == [str(tmp_path / "link" / "a.yaml")]
    assert a.exists()


def test_dangling_and_looping_symlinks(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to("nowhere.yaml")
    (tmp_path / "l1.yaml").symlink_to("l2.yaml")
    (tmp_path / "l2.yaml").symlink_to("l1.yaml")
    problems = problems_of(tmp_path)
    assert [(Path(p.file).name, p.line) for p in problems] == [("gone.yaml", 1), ("l1.yaml", 1), ("l2.yaml", 1)]
    assert all(p.message.startswith("cannot read file: ") for p in problems)


def test_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.message) == (str(tmp_path / "pipe.yaml"), 1, "cannot read file: not a regular file")


def test_a_directory_named_like_a_spec_file_is_walked(tmp_path: Path) -> None:
    a = write(tmp_path, "dir.yaml/a.yaml", "functions: {}\n")
    assert load_spec(tmp_path).files == [str(a)]


def test_50_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: creating it costs nothing, reading it would
    write(tmp_path, "ok.yaml", "functions:\n  f: {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(path), 1, "", "file is 52,428,800 bytes; the limit is 2 MiB per file")


def test_total_size_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    for i in range(9):
        with (tmp_path / f"f{i}.yaml").open("wb") as f:
            f.truncate(1_900_000)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(tmp_path), 0, "", "spec files total 17,100,000 bytes; the limit is 8 MiB")


def test_too_many_files(tmp_path: Path) -> None:
    for i in range(MAX_FILES + 1):
        write(tmp_path, f"d{i % 10}/f{i}.yaml", "")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.message) == (str(tmp_path), 0, f"more than {MAX_FILES:,} spec files (*.yaml, *.yml) under the spec directory")


def test_exactly_the_maximum_number_of_files_is_fine(tmp_path: Path) -> None:
    for i in range(MAX_FILES):
        write(tmp_path, f"d{i % 10}/f{i}.yaml", "")
    assert len(load_spec(tmp_path).files) == MAX_FILES


def test_too_many_directory_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_reading, "MAX_DIR_ENTRIES", 50)
    for i in range(60):
        write(tmp_path, f"notes/{i}.txt", "")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.message) == (str(tmp_path), 0, "more than 50 files and directories under the spec directory")


def test_too_many_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_module, "MAX_RESOURCES", 5)
    write(tmp_path, "a.yaml", "functions:\n  f:\n    aliases: {a: {version: 1}, b: {version: 1}, c: {version: 1}}\n")
    write(tmp_path, "b.yaml", "rest_apis:\n  api:\n    stages: {a: {}, b: {}}\n")
    assert len(load_spec(tmp_path).files) == 2  # exactly at the limit
    c = write(tmp_path, "c.yaml", "domains:\n  d.example.com:\n    mappings: {v1: {api: api, stage: a}}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.message) == (str(c), 1, "more than 5 aliases, stages and mappings in the spec; files after this one are not read")


def test_the_limits_have_their_documented_values() -> None:
    """The README's table of limits says these; change both together."""
    assert (spec_reading.MAX_FILE_BYTES, spec_reading.MAX_TOTAL_BYTES) == (2 * 1024 * 1024, 8 * 1024 * 1024)
    assert (spec_reading.MAX_FILES, spec_reading.MAX_DIR_ENTRIES, spec_reading.MAX_RESOURCES) == (1_000, 100_000, 50_000)
    assert (MAX_DEPTH, MAX_FILE_NODES, MAX_SPEC_NODES, MAX_NUMBER_CHARS) == (32, 100_000, 300_000, 100)


# --------------------------------------------------------------------------- empty specs


@pytest.mark.parametrize("files", [{}, {"README.md": "# notes\n", "x.json": "{}"}], ids=["empty", "no-yaml"])
def test_no_spec_files_is_an_error_unless_allowed(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(tmp_path), 0, "")
    assert p.message == f"no spec files (*.yaml, *.yml) under {tmp_path}; pass --allow-empty if an empty desired state is meant"
    spec = load_spec(tmp_path, allow_empty=True)
    assert (spec.files, spec.functions, spec.rest_apis, spec.domains) == ([], {}, {}, {})


def test_no_spec_files_names_the_display_root(tmp_path: Path) -> None:
    p = only_problem(tmp_path, display_root="desired_state")
    assert str(p) == "desired_state:0: no spec files (*.yaml, *.yml) under desired_state; pass --allow-empty if an empty desired state is meant"


def test_an_empty_file_is_not_an_empty_directory(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "")
    assert load_spec(tmp_path).files == [str(path)]


# --------------------------------------------------------------------------- last resort and the CLI


def test_any_other_exception_becomes_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path, "a.yaml", "functions: {}\n")
    b = write(tmp_path, "b.yaml", "functions:\n  f:\n    aliases: {prod: {version: x}}\n")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(spec_module, "_Converter", broken)
    problems = problems_of(tmp_path)
    assert [(p.file, p.line, p.message) for p in problems] == [
        (str(a), 1, "cannot load file: RuntimeError: boom"),
        (str(b), 1, "cannot load file: RuntimeError: boom"),
    ]


def test_an_exception_outside_the_files_becomes_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("walk")

    monkeypatch.setattr(spec_module, "_find_spec_files", broken)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field, p.message) == (str(tmp_path), 0, "", "cannot load spec: MemoryError: walk")


def test_a_problem_is_one_line_whatever_the_names_hold(tmp_path: Path) -> None:
    write(tmp_path, "new\nline\t.yaml", 'functions:\n  "bad\\nname": {}\n')
    p = only_problem(tmp_path)
    assert p.file == str(tmp_path / "new\\nline\\t.yaml")  # escaped where the name is shown
    assert p.field == "functions.bad\nname"
    assert str(p) == f"{tmp_path}/new\\nline\\t.yaml:2: functions.bad\\nname: function name 'bad\\nname' is not allowed: 1-64 letters, digits, - or _"


def test_validate_prints_one_line_per_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "bomb.yaml", laughs())
    write(tmp_path, "deep.yaml", "x: " + "[" * 1000 + "]" * 1000 + "\n")
    write(tmp_path, "nul.yaml", b"a: \x00\n")
    write(tmp_path, "tag.yaml", alias_spec("!!int abc"))
    (tmp_path / "passwd.yaml").symlink_to("/etc/passwd")
    (code, out, err), elapsed = timed(lambda: cli(capsys, "validate", "--spec", str(tmp_path)))
    assert elapsed < SECONDS
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"error: {tmp_path / 'passwd.yaml'}:1: symlink to '/etc/passwd' leaves the spec directory; it is not read",
        f"error: {tmp_path / 'bomb.yaml'}:5: " + err.splitlines()[1].split(":5: ", 1)[-1],
        f"error: {tmp_path / 'deep.yaml'}:1: nesting deeper than {MAX_DEPTH} levels",
        f"error: {tmp_path / 'nul.yaml'}:1: invalid YAML: unacceptable character #x0000: special characters are not allowed",
        f"error: {tmp_path / 'tag.yaml'}:4: functions.f.aliases.prod.version: cannot read value 'abc' as !!int: invalid literal for int() with base 10: 'abc'",
        "5 problems in the spec; nothing was applied.",
    ]
    assert err.splitlines()[1].endswith(NODES_MESSAGE)


# --------------------------------------------------------------------------- generated input (fuzz)


@pytest.fixture
def scratch() -> Iterator[Callable[[str | bytes], Path]]:
    """A fresh spec directory per Hypothesis example (tmp_path is per test, not per example)."""
    with tempfile.TemporaryDirectory() as top:
        counter = iter(range(1_000_000))

        def make(content: str | bytes) -> Path:
            directory = Path(top) / str(next(counter))
            write(directory, "spec.yaml", content)
            return directory

        yield make


def load_or_refuse(directory: Path) -> Spec | SpecInvalid:
    """load_spec's result or its SpecInvalid; anything else fails the test (with a traceback)."""
    start = time.process_time()
    try:
        result: Spec | SpecInvalid = load_spec(directory)
    except SpecInvalid as exc:
        assert exc.problems and all(isinstance(p, SpecProblem) for p in exc.problems)
        assert all("\n" not in str(p) for p in exc.problems), [str(p) for p in exc.problems]
        result = exc
    elapsed = time.process_time() - start
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    return result


FUZZ = settings(
    max_examples=150,
    deadline=None,  # timed by hand: a loaded CI machine must not turn slowness into flakes
    database=None,  # no .hypothesis/ in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIELD_NAMES = [
    "functions",
    "rest_apis",
    "domains",
    "aliases",
    "version",
    "description",
    "routing",
    "stages",
    "variables",
    "deployment",
    "mappings",
    "api",
    "stage",
    "prod",
    "dev",
    "f",
    "api1",
    "(none)",
    "v1",
    "<<",
    "lambdaAlias",
]
YAML_TOKENS = [
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "<<: *a",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!map ",
    "!!seq ",
    "!!str ",
    "!!python/object:os.system ",
    "!ref ",
    "? ",
    "- ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\t",
    "\x00",
    "\x07",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "---\n",
    "...\n",
    "|",
    ">",
    "'",
    '"',
    "#",
    "\\",
    "\ufeff",
    "\n",
    "  ",
    "1:1:1",
    "0x",
    "0o7",
    "1e400",
    ".nan",
    "~",
    "=",
    "9" * 120,
    "2020-13-45",
    "&a [*a]",
    "\r",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["$LATEST", "1", "sha256:" + "A" * 43 + "=", "(none)", "0.5", "yes", "~", "<<"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), children, max_size=5),
    max_leaves=40,
)


@pytest.mark.fuzz
@FUZZ
@given(content=st.binary(max_size=4096))
def test_random_bytes(scratch: Callable[[str | bytes], Path], content: bytes) -> None:
    load_or_refuse(scratch(content))


@pytest.mark.fuzz
@FUZZ
@given(tree=trees, flow=st.booleans(), data=st.data())
def test_yaml_structures_and_mutations(scratch: Callable[[str | bytes], Path], tree: Any, flow: bool, data: st.DataObject) -> None:
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    load_or_refuse(scratch(text))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        at = data.draw(st.integers(0, len(text)), label="at")
        kind = data.draw(st.sampled_from(["insert", "delete", "truncate", "repeat"]), label="kind")
        if kind == "insert":
            text = text[:at] + data.draw(st.sampled_from(YAML_TOKENS), label="token") + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 10), label="length") :]
        elif kind == "truncate":
            text = text[:at]
        else:
            text = text[:at] + text[at : at + 20] * data.draw(st.integers(2, 50), label="times") + text[at + 20 :]
    load_or_refuse(scratch(text))


names = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
alias_names = names.filter(lambda n: not n.isdigit())
var_names = st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True)
var_values = st.from_regex(r"[A-Za-z0-9\-._~:/?#&=,]{1,30}", fullmatch=True)
published = st.integers(1, 10**6)


@st.composite
def aliases(draw: st.DrawFn) -> dict[str, Any]:
    version = draw(st.one_of(st.just("$LATEST"), published.map(str), published, st.just("sha256:" + "B" * 43 + "=")))
    body: dict[str, Any] = {"version": version}
    if draw(st.booleans()):
        body["description"] = draw(st.text(max_size=50))
    if version != "$LATEST" and draw(st.booleans()):
        extra = draw(published.filter(lambda v: str(v) != str(version)))
        body["routing"] = {str(extra): draw(st.floats(0, 0.99))}
    return body


@st.composite
def spec_documents(draw: st.DrawFn) -> dict[str, Any]:
    functions = draw(st.dictionaries(names, st.builds(lambda a: {"aliases": a}, st.dictionaries(alias_names, aliases(), max_size=4)), max_size=4))
    stage = st.fixed_dictionaries({}, optional={"variables": st.dictionaries(var_names, var_values, max_size=3), "description": st.text(max_size=20)})
    apis = draw(st.dictionaries(names, st.builds(lambda s: {"stages": s}, st.dictionaries(names, stage, min_size=1, max_size=3)), max_size=3))
    doc: dict[str, Any] = {"functions": functions, "rest_apis": apis}
    if apis:
        api = draw(st.sampled_from(sorted(apis)))
        stage_name = draw(st.sampled_from(sorted(apis[api]["stages"])))
        base_path = draw(st.from_regex(r"\(none\)|[a-z0-9]{1,8}(/[a-z0-9]{1,8})?", fullmatch=True))
        doc["domains"] = {"api.example.com": {"mappings": {base_path: {"api": api, "stage": stage_name}}}}
    return doc


WRONG_VALUES: list[Any] = [None, True, 3.5, [], ["x"], {"x": 1}, "", "x" * 300, -1, 10**30]


@pytest.mark.fuzz
@FUZZ
@given(doc=spec_documents(), flow=st.booleans(), data=st.data())
def test_valid_looking_spec_documents(scratch: Callable[[str | bytes], Path], doc: dict[str, Any], flow: bool, data: st.DataObject) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    loaded = load_or_refuse(scratch(text))
    assert isinstance(loaded, Spec), f"{loaded}\n{text}"
    assert set(loaded.functions) == set(doc["functions"]) and set(loaded.rest_apis) == set(doc["rest_apis"])
    # The same document with one value of the wrong type: refused, naming that field.
    leaves = list(_leaf_paths(doc))
    if not leaves:
        return
    path = data.draw(st.sampled_from(leaves), label="path")
    wrong = data.draw(st.sampled_from(WRONG_VALUES), label="wrong")
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = wrong
    result = load_or_refuse(scratch(yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)))
    if isinstance(result, SpecInvalid):
        assert any(p.field.startswith(".".join(path[:2])) for p in result.problems), [str(p) for p in result.problems]


def _leaf_paths(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaf_paths(value, path + (key,))
    elif path:
        yield path


@pytest.mark.fuzz
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(levels=st.integers(3, 12), width=st.integers(2, 12), merge=st.booleans())
def test_generated_bombs_stay_small(scratch: Callable[[str | bytes], Path], levels: int, width: int, merge: bool) -> None:
    if merge:
        text = "m0: &m0 {x: 1}\n" + "".join(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * width) + "]}\n" for i in range(1, levels + 1))
    else:
        text = laughs(levels, width)
    directory = scratch(text)
    elapsed, peak = bounded(lambda: load_or_refuse(directory))
    assert elapsed < SECONDS and peak < BOMB_BYTES, (elapsed, peak)


@pytest.mark.fuzz
def test_corpus_slice() -> None:
    figures = run_spec_corpus(cases=200, seed=1)
    assert figures["cases"] == 200
    assert figures["tracebacks"] == 0 and figures["hangs"] == 0, figures
    assert figures["accepted"] + figures["rejected"] == 200
    assert figures["accepted"] > 0 and figures["rejected"] > 0


def test_a_long_route_path_that_does_not_match_is_refused_at_once(tmp_path: Path) -> None:
    # A pattern with nested repetition would take longer than the universe on this path; in a
    # subprocess, so that a regression fails on its timeout instead of hanging the suite.
    import subprocess
    import sys

    path = "/" + "a" * 60 + "!"
    (tmp_path / "api.yaml").write_text(
        "rest_apis:\n  a:\n    stages: {prod: {}}\n    versions:\n      header: Version\n      default: v1\n"
        f"      routes: [{{method: GET, path: '{path}', function: f}}]\n      catalogue: {{v1: {{functions: {{f: 1}}}}}}\n"
    )
    code = "import sys; from controller.cli.main import main; sys.exit(main(['validate', '--spec', sys.argv[1]]))"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "is not a resource path like /users/{id}" in proc.stderr, proc.stderr
