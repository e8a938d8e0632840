"""A corpus of bad spec directories, each run through load_spec and `pointsman validate` in-process.

Not collected by pytest (the name does not start with ``test_``): tests/spec/test_spec_hardening.py
runs a slice of 200 cases, and ``run_spec_corpus`` with a large count is the full run::

    python -c "from tests.fuzz_spec import run_spec_corpus; print(run_spec_corpus(20000))"

A case is a traceback when anything but SpecInvalid escapes load_spec, anything escapes the
CLI, or the CLI prints "Traceback"; it is a hang when either takes longer than HANG_SECONDS
(a SIGALRM also interrupts it then, when running in the main thread). What went wrong is kept
in ``FAILURES`` (the last run's) for whoever reads the figures.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import string
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog
import yaml

from controller.cli.main import main
from controller.spec import SpecInvalid, load_spec
from tests.e2e_support import Overran, deadline

HANG_SECONDS = 10.0
EXAMPLE_SPEC = Path(__file__).resolve().parent.parent / "desired_state"
FAILURES: list[str] = []  # "case N (generator): what happened", from the last run


# --------------------------------------------------------------------------- building blocks

FIELDS = ["functions", "rest_apis", "domains", "aliases", "version", "description", "routing", "stages", "variables", "deployment", "mappings", "api", "stage"]
TOKENS = [
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "<<: *a",
    "<<: [*a, *a]",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!map ",
    "!!seq ",
    "!!str ",
    "!!null ",
    "!!python/object/apply:os.system ",
    "!ref ",
    "!<tag:yaml.org,2002:int> ",
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
    "\x1b",
    "\x85",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "%YAML 1.1\n",
    "%YAML 9.9\n",
    "%TAG ! tag:x,2000:\n",
    "---\n",
    "...\n",
    "|",
    "|-",
    ">",
    ">+",
    "'",
    '"',
    "#",
    "\\",
    "\n",
    "\r",
    "\r\n",
    "  ",
    "1:1:1",
    "0x",
    "0o7",
    "0b1",
    "1e400",
    ".nan",
    "-.inf",
    "~",
    "=",
    "9" * 150,
    "2020-13-45",
    "2001-12-14t21:59:43.10-05:00",
    "&a [*a]",
    "&a {<<: *a}",
    "{? [a]: b}",
    '"\\x00"',
    '"\\ud800"',
    "'''",
    "@",
    "`",
]
WRONG_VALUES: list[str] = [
    "~",
    "true",
    "3.5",
    "-1",
    "0",
    "[]",
    "[x, y]",
    "{}",
    "{x: 1}",
    "''",
    "'" + "x" * 600 + "'",
    "9" * 200,
    "!!binary aGVsbG8=",
    "2020-01-01",
    "[[[[]]]]",
    "{a: {b: {c: {}}}}",
    ".nan",
    ".inf",
    "'$LATEST'",
    "'1'",
    "!!int abc",
    "!!float xyz",
    "!!bool maybe",
    "!!timestamp nope",
    "!!binary '#'",
    "!ref x",
    "*nowhere",
]
BAD_TAGS = [
    "!!int",
    "!!float",
    "!!bool",
    "!!binary",
    "!!timestamp",
    "!!null",
    "!!map",
    "!!seq",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!str",
    "!!merge",
    "!!value",
    "!!python/object:os.system",
    "!!python/name:os.system",
    "!x",
    "!<tag:yaml.org,2002:int>",
    "!!yaml",
]
BAD_VALUES = [
    "abc",
    "",
    "0x",
    "0b",
    "0o",
    "1e",
    "maybe",
    "###x",
    "nope",
    "2020-13-45",
    "2020-02-30",
    "9" * 120,
    "1:" * 80 + "1",
    "QQ",
    "Q",
    "=",
    "<<",
    "-",
    ".",
    "+.inf",
]


def name(rng: random.Random, alphabet: str = string.ascii_letters + string.digits + "_-", size: int = 10) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, size)))


def valid_document(rng: random.Random) -> dict[str, Any]:
    functions: dict[str, Any] = {}
    for _ in range(rng.randint(0, 4)):
        aliases: dict[str, Any] = {}
        for _ in range(rng.randint(0, 4)):
            number = rng.randint(1, 999)
            choices: list[str | int] = ["$LATEST", str(number), number, "sha256:" + "C" * 43 + "="]
            version = rng.choice(choices)
            body: dict[str, Any] = {"version": version}
            if rng.random() < 0.3:
                body["description"] = name(rng, string.printable, 40)
            if version in (number, str(number)) and rng.random() < 0.3:
                body["routing"] = {str(number + 1): round(rng.random() * 0.9, 2)}
            aliases["a" + name(rng)] = body
        functions[name(rng)] = {"aliases": aliases}
    apis: dict[str, Any] = {}
    for _ in range(rng.randint(0, 3)):
        stages = {name(rng): {"variables": {name(rng, string.ascii_letters): name(rng)}} for _ in range(rng.randint(1, 3))}
        apis[name(rng)] = {"stages": stages}
    doc: dict[str, Any] = {"functions": functions, "rest_apis": apis}
    if apis:
        api = rng.choice(sorted(apis))
        doc["domains"] = {"x.example.com": {"mappings": {"v1": {"api": api, "stage": rng.choice(sorted(apis[api]["stages"]))}}}}
    return doc


def dump(doc: Any, rng: random.Random) -> str:
    return yaml.safe_dump(doc, default_flow_style=rng.choice([True, False, None]), allow_unicode=rng.random() < 0.5)


def valid_text(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(sorted(EXAMPLE_SPEC.glob("*.yaml"))).read_text(encoding="utf-8")
    return dump(valid_document(rng), rng)


def mutate(text: str, rng: random.Random, rounds: int | None = None) -> str:
    for _ in range(rounds if rounds is not None else rng.randint(1, 6)):
        at = rng.randint(0, len(text))
        kind = rng.choice(["insert", "delete", "truncate", "repeat", "swap-lines", "indent", "flip"])
        if kind == "insert":
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + rng.randint(1, 20) :]
        elif kind == "truncate":
            text = text[:at]
        elif kind == "repeat":
            text = text[:at] + text[at : at + 30] * rng.randint(2, 40) + text[at + 30 :]
        elif kind == "swap-lines":
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "indent":
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            lines[i] = " " * rng.randint(0, 9) + lines[i].lstrip(" ")
            text = "\n".join(lines)
        elif text:
            i = rng.randrange(len(text))
            text = text[:i] + chr(ord(text[i]) ^ (1 << rng.randrange(7))) + text[i + 1 :]
    return text


# --------------------------------------------------------------------------- the generators
# Each writes one case into an empty directory ``d``; ``outside`` is a directory next to it
# holding a spec file and a secret, the target of symlinks that must not be followed.

Generator = Callable[[random.Random, Path, Path], None]


def write(d: Path, text: str | bytes, name_: str = "spec.yaml") -> Path:
    path = d / name_
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def gen_valid(rng: random.Random, d: Path, outside: Path) -> None:
    for i in range(rng.randint(1, 3)):
        write(d, valid_text(rng), f"f{i}.yaml")


def gen_mutated(rng: random.Random, d: Path, outside: Path) -> None:
    write(d, mutate(valid_text(rng), rng))


def gen_mutated_bytes(rng: random.Random, d: Path, outside: Path) -> None:
    data = bytearray(valid_text(rng).encode())
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        data = data[: rng.randint(0, len(data))]
    write(d, bytes(data))


def gen_random_bytes(rng: random.Random, d: Path, outside: Path) -> None:
    write(d, bytes(rng.randrange(256) for _ in range(rng.randint(0, 4096))))


def gen_token_soup(rng: random.Random, d: Path, outside: Path) -> None:
    parts = [rng.choice(TOKENS + [f + ":" for f in FIELDS] + ["\n", " ", "x"]) for _ in range(rng.randint(1, 200))]
    write(d, "".join(parts))


def gen_deep(rng: random.Random, d: Path, outside: Path) -> None:
    depth = rng.choice([rng.randint(25, 40), rng.randint(40, 300), rng.randint(300, 5000)])
    shape = rng.choice(["flow-seq", "flow-map", "block-map", "block-seq", "mixed"])
    if shape == "flow-seq":
        text = "functions: " + "[" * depth + "]" * depth
    elif shape == "flow-map":
        text = "functions: " + "{a: " * depth + "1" + "}" * depth
    elif shape == "block-map":
        text = "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 1500))) + "  " * min(depth, 1500) + "v"
    elif shape == "block-seq":
        text = "".join("  " * i + "-\n" for i in range(min(depth, 1500))) + "  " * min(depth, 1500) + "v"
    else:
        text = "x: " + "".join(rng.choice(["[", "{a: "]) for _ in range(depth))
    if rng.random() < 0.3:
        text = mutate(text, rng, 1)
    write(d, text + "\n")


def gen_bomb(rng: random.Random, d: Path, outside: Path) -> None:
    levels, width = rng.randint(2, 30), rng.randint(2, 12)
    kind = rng.choice(["laughs", "merge", "mixed", "recursive"])
    if kind == "laughs":
        text = (
            "a0: &a0 ["
            + ", ".join(["lol"] * width)
            + "]\n"
            + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n" for i in range(1, levels + 1))
        )
    elif kind == "merge":
        text = "m0: &m0 {x: 1, y: 2}\n" + "".join(
            f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * width) + f"], k{i}: {i}}}\n" for i in range(1, levels + 1)
        )
    elif kind == "mixed":
        text = "m0: &m0 {a: [x, x]}\n" + "".join(f"m{i}: &m{i} {{<<: *m{i - 1}, b{i}: [*m{i - 1}, *m{i - 1}]}}\n" for i in range(1, levels + 1))
    else:
        text = rng.choice(
            ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {<<: *a}\n", "a: &a [{<<: *a}]\n", "a: &a {<<: [*a]}\n", "? &a [*a]\n: 1\n", "a: &a {*a : 1}\n"]
        )
    if rng.random() < 0.5:  # inside a real section, where values are read
        text = text.replace("\n", "\n  ").rstrip() + "\n"
        text = "functions:\n  " + text
    write(d, text)


def gen_huge_scalar(rng: random.Random, d: Path, outside: Path) -> None:
    size = rng.choice([rng.randint(100, 5000), rng.randint(5000, 300_000)] * 20 + [rng.randint(1_000_000, 2_200_000)])
    kind = rng.choice(["int", "sexagesimal", "float", "plain", "quoted", "escaped", "key", "block", "comment"])
    if kind == "int":
        value = "1" * size
    elif kind == "sexagesimal":
        value = "1:" * (size // 2) + "1"
    elif kind == "float":
        value = "1" * (size // 2) + "." + "5" * (size // 2)
    elif kind == "plain":
        value = "x " * (size // 2)
    elif kind == "quoted":
        value = '"' + "y" * size + '"'
    elif kind == "escaped":
        value = '"' + "\\u0041" * (size // 6) + '"'
    elif kind == "key":
        write(d, '? "' + "k" * size + '"\n: 1\n')
        return
    elif kind == "block":
        value = "|\n" + ("  line\n" * (size // 7))
    else:
        write(d, "#" + "c" * size + "\nfunctions: {}\n")
        return
    write(d, "functions:\n  f:\n    aliases:\n      prod:\n        version: " + value + "\n")


def gen_bad_tag(rng: random.Random, d: Path, outside: Path) -> None:
    value = f"{rng.choice(BAD_TAGS)} {rng.choice(BAD_VALUES)}".rstrip()
    if rng.random() < 0.5:
        value = value.split(" ", 1)[0] + " '" + rng.choice(BAD_VALUES) + "'"
    place = rng.choice(
        [
            "functions:\n  f:\n    aliases:\n      prod: {version: %s}\n",
            "functions:\n  f:\n    aliases:\n      %s: {version: 1}\n",
            "functions:\n  %s: {}\n",
            "rest_apis:\n  api:\n    stages:\n      prod: {variables: {a: %s}}\n",
            "functions:\n  f:\n    aliases:\n      prod: {version: 2, routing: {'3': %s}}\n",
            "functions:\n  f:\n    aliases:\n      prod: {version: 2, routing: {%s: 0.5}}\n",
            "%s: 1\n",
            "domains: %s\n",
        ]
    )
    write(d, place % value)


def _leaves(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, path + (key,))


def gen_wrong_type(rng: random.Random, d: Path, outside: Path) -> None:
    doc = valid_document(rng)
    paths = [p for p in _leaves(doc) if p]
    if not paths:
        doc = {"functions": {"f": {"aliases": {"prod": {"version": 1}}}}}
        paths = [p for p in _leaves(doc) if p]
    path = rng.choice(paths)
    marker = "WRONG_VALUE_MARKER"
    target = doc
    for part in path[:-1]:
        target = target[part]
    if rng.random() < 0.2:  # a wrong key instead of a wrong value
        target[marker] = target.pop(path[-1])
        text = yaml.safe_dump(doc, default_flow_style=False).replace(marker, rng.choice(WRONG_VALUES + ["1", "null", "[a]"]))
    else:
        target[path[-1]] = marker
        text = yaml.safe_dump(doc, default_flow_style=rng.random() < 0.5).replace(marker, rng.choice(WRONG_VALUES))
    write(d, text)


def gen_symlink(rng: random.Random, d: Path, outside: Path) -> None:
    write(d, valid_text(rng), "ok.yaml")
    kind = rng.choice(
        ["passwd", "environ", "outside-file", "outside-dir", "root", "inside-file", "inside-dir", "loop", "dangling", "chain-out", "self", "parent", "proc-fd"]
    )
    link = d / rng.choice(["link.yaml", "link.yml", "link", "sub/link.yaml"])
    link.parent.mkdir(exist_ok=True)
    target = {
        "passwd": "/etc/passwd",
        "environ": "/proc/self/environ",
        "outside-file": str(outside / "secret.yaml"),
        "outside-dir": os.path.relpath(outside, link.parent),
        "root": "/",
        "inside-file": os.path.relpath(d / "ok.yaml", link.parent),
        "inside-dir": ".",
        "loop": link.name,
        "dangling": "missing.yaml",
        "chain-out": "hop.yaml",
        "self": ".",
        "parent": "..",
        "proc-fd": "/proc/self/fd/0",
    }[kind]
    if kind == "chain-out":
        (link.parent / "hop.yaml").symlink_to(outside / "secret.yaml")
    link.symlink_to(target)


def gen_filesystem(rng: random.Random, d: Path, outside: Path) -> None:
    kind = rng.choice(
        [
            "empty",
            "no-yaml",
            "empty-file",
            "fifo",
            "dir-named-yaml",
            "oversized",
            "many-files",
            "deep-dirs",
            "odd-names",
            "unreadable",
            "bom",
            "latin1",
            "crlf",
            "two-docs",
            "total",
        ]
    )
    if kind == "no-yaml":
        write(d, "functions: {}\n", "spec.json")
    elif kind == "empty-file":
        write(d, rng.choice(["", "\n", "# c\n", "---\n", "...\n", "--- ~\n"]))
    elif kind == "fifo":
        os.mkfifo(d / "pipe.yaml")
    elif kind == "dir-named-yaml":
        write(d, valid_text(rng), "x.yaml/inner.yml")
    elif kind == "oversized":
        with (d / "big.yaml").open("wb") as f:
            f.truncate(rng.choice([2 * 1024 * 1024 + 1, 50 * 1024 * 1024]))
    elif kind == "many-files":
        for i in range(rng.choice([5, 50, 1001])):
            write(d, "", f"d{i % 7}/f{i}.yaml")
    elif kind == "deep-dirs":
        write(d, valid_text(rng), "/".join(["d"] * rng.randint(1, 120)) + "/x.yaml")
    elif kind == "odd-names":
        odd = rng.choice(["new\nline.yaml", "tab\t.yaml", "space .yaml", "é.yaml", ".hidden.yaml", "-.yml", "bell\x07.yaml"])
        write(d, valid_text(rng), odd)
        raw = os.fsencode(d) + b"/bad\xff\xfe.yaml"
        with open(raw, "wb") as f:
            f.write(b"functions: {}\n")
    elif kind == "unreadable":
        path = write(d, valid_text(rng))
        path.chmod(0)
    elif kind == "bom":
        write(d, "\ufeff" + valid_text(rng))
    elif kind == "latin1":
        write(d, "functions:\n  caf\xe9: {}\n".encode("latin-1"))
    elif kind == "crlf":
        write(d, valid_text(rng).replace("\n", "\r\n"))
    elif kind == "two-docs":
        write(d, valid_text(rng) + "---\n" + valid_text(rng))
    elif kind == "total":
        for i in range(9):
            with (d / f"f{i}.yaml").open("wb") as f:
                f.truncate(1_900_000)


GENERATORS: list[tuple[Generator, int]] = [
    (gen_valid, 6),
    (gen_mutated, 20),
    (gen_mutated_bytes, 8),
    (gen_random_bytes, 6),
    (gen_token_soup, 8),
    (gen_deep, 6),
    (gen_bomb, 8),
    (gen_huge_scalar, 5),
    (gen_bad_tag, 10),
    (gen_wrong_type, 12),
    (gen_symlink, 6),
    (gen_filesystem, 6),
]


# --------------------------------------------------------------------------- running


def _run_load(d: Path) -> tuple[str, str]:
    """(outcome, detail): accepted, rejected, traceback or hang."""
    start = time.monotonic()
    try:
        with deadline(HANG_SECONDS * 3):
            load_spec(d)
        outcome, detail = "accepted", ""
    except SpecInvalid as exc:
        outcome, detail = "rejected", ""
        if not exc.problems or any("\n" in str(p) for p in exc.problems):
            outcome, detail = "traceback", f"malformed problems: {[str(p) for p in exc.problems]}"
    except Overran:
        return "hang", "load_spec interrupted"
    except Exception as exc:  # noqa: BLE001 - counting them is the point
        return "traceback", f"load_spec raised {type(exc).__name__}: {exc}"
    if time.monotonic() - start > HANG_SECONDS:
        return "hang", f"load_spec took {time.monotonic() - start:.1f} s ({outcome})"
    return outcome, detail


def _run_cli(d: Path, expected: str) -> tuple[str, str]:
    """(problem kind or "", detail) for `pointsman validate --spec d`; an exit code that disagrees
    with load_spec is only noted (the CLI's options may differ), not counted."""
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    try:
        with deadline(HANG_SECONDS * 3), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: Any = main(["validate", "--spec", str(d)])
    except Overran:
        return "hang", "cli interrupted"
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"cli raised {type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - start
    text = out.getvalue() + err.getvalue()
    if "Traceback" in text:
        return "traceback", "cli printed a traceback: " + text[-500:]
    if elapsed > HANG_SECONDS:
        return "hang", f"cli took {elapsed:.1f} s"
    if expected in ("accepted", "rejected") and code != (0 if expected == "accepted" else 1):
        return "", f"note: cli exited {code} for a spec load_spec {expected}: {text[-300:]}"
    return "", ""


def _remove(path: Path) -> None:
    def writable(func: Callable[..., Any], target: str, _exc: Any) -> None:
        os.chmod(target, 0o700)
        func(target)

    for item in path.rglob("*"):
        if not item.is_symlink():
            with contextlib.suppress(OSError):
                item.chmod(0o700)
    shutil.rmtree(path, onerror=writable)


def run_spec_corpus(cases: int = 2000, seed: int = 0) -> dict[str, int]:
    """Generate ``cases`` bad (and some good) spec directories; run each through load_spec and
    the CLI. Returns {"cases", "tracebacks", "hangs", "accepted", "rejected"}; details of any
    traceback or hang are in FAILURES."""
    rng = random.Random(seed)
    figures = {"cases": 0, "tracebacks": 0, "hangs": 0, "accepted": 0, "rejected": 0}
    FAILURES.clear()
    generators = [g for g, _ in GENERATORS]
    weights = [w for _, w in GENERATORS]
    saved_logging = structlog.get_config()
    try:
        with tempfile.TemporaryDirectory(prefix="pointsman-fuzz-") as top:
            outside = Path(top) / "outside"
            write(outside, "functions:\n  leaked: {}\n", "secret.yaml")
            for index in range(cases):
                generator = rng.choices(generators, weights)[0]
                d = Path(top) / f"case{index}"
                d.mkdir()
                try:
                    generator(random.Random(rng.getrandbits(64)), d, outside)
                    outcome, detail = _run_load(d)
                    cli_problem, cli_detail = _run_cli(d, outcome)
                finally:
                    _remove(d)
                figures["cases"] += 1
                if outcome in ("accepted", "rejected"):
                    figures[outcome] += 1
                kinds = {outcome, cli_problem} & {"traceback", "hang"}
                for kind in sorted(kinds):
                    figures[kind + "s"] += 1
                for text in (detail, cli_detail):
                    if text:
                        FAILURES.append(f"case {index} ({generator.__name__}): {text}")
    finally:
        structlog.configure(**saved_logging)
    return figures


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    started = time.monotonic()
    result = run_spec_corpus(count, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(result, f"{time.monotonic() - started:.1f} s")
    for failure in FAILURES[:50]:
        print(failure)
