"""`pointsman schema` and `pointsman validate` give one spec file the same answer.

The central table holds small spec files, each valid or breaking exactly one rule: validate
(``load_spec``) and the JSON Schema (``json_schema()``, draft 2020-12, as yaml-language-server
reads it) must both accept or both reject it. The rules JSON Schema cannot state are listed in
a comment next to ``json_schema()``; KNOWN_GAPS pins each of them here, so a change on either
side shows. The schema's patterns are checked as ECMA-262 regexes (by node, when there is one)
and against the checks they mirror; a hypothesis sweep compares whole documents.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from controller.cli.main import main
from controller.spec import HTTP_METHODS, SpecInvalid, SpecProblem, json_schema, load_spec
from controller.spec.schema import (
    _ALIAS_NAME_RE,
    _BASE_PATH_RE,
    _ENV_RESERVED,
    _ENV_SETTABLE,
    _FUNCTION_NAME_RE,
    _HEADER_NAME_RE,
    _MEDIA_TYPE_RE,
    _RESOURCE_PATH_RE,
    _STAGE_NAME_RE,
    _VAR_NAME_RE,
    _VAR_VALUE_RE,
    _VERSION_RE,
)
from controller.versions import STAGE_DEFAULT_VAR, STAGE_NAME_VAR, STAGE_VERSIONS_VAR

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SHA = "sha256:" + "Ab0+/" * 8 + "Ab0" + "="  # a CodeSha256: 43 base64 characters, then "="


# --------------------------------------------------------------------------- the two judges


def validate_problems(text: str) -> list[SpecProblem]:
    """What `pointsman validate` says of one spec file holding ``text`` ([] when valid)."""
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "spec.yaml").write_text(text, encoding="utf-8")
        try:
            load_spec(directory)
        except SpecInvalid as exc:
            return exc.problems
        return []


def as_json(value: Any) -> Any:
    """The document as an editor hands it to the schema: keys are text (the loader makes int and
    date keys text too), and an unquoted date is text (YAML 1.2)."""
    if isinstance(value, dict):
        return {
            as_json(k) if isinstance(k, datetime.date) else str(k) if isinstance(k, int) and not isinstance(k, bool) else k: as_json(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def schema_errors(text: str) -> list[str]:
    document = as_json(yaml.safe_load(text))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in VALIDATOR.iter_errors(document)]


# --------------------------------------------------------------------------- documents


def function(aliases: str = "live: {version: 1}", environment: str | None = None, name: str = "f") -> str:
    text = f"functions:\n  {name}:\n    aliases:\n" + textwrap.indent(textwrap.dedent(aliases).strip("\n") + "\n", "      ")
    if environment is not None:
        text += "    environment:\n" + textwrap.indent(textwrap.dedent(environment).strip("\n") + "\n", "      ")
    return text


def api(stages: str = "dev: {}", versions: str | None = None) -> str:
    text = "rest_apis:\n  api:\n    stages:\n" + textwrap.indent(textwrap.dedent(stages).strip("\n") + "\n", "      ")
    if versions is not None:
        text += "    versions:\n" + textwrap.indent(textwrap.dedent(versions).strip("\n") + "\n", "      ")
    return text


VERSIONS = """\
header: Version
default: v1
routes:
  - {method: GET, path: /users, function: f}
catalogue:
  v1: {functions: {f: 1}}
"""


def versions(*, drop: str = "", **lines: str) -> str:
    """VERSIONS with some top-level lines replaced (key=YAML text of the value), added or dropped."""
    out: list[str] = []
    body = textwrap.dedent(VERSIONS)
    blocks = re.split(r"\n(?=\S)", body.strip("\n"))
    seen: set[str] = set()
    for block in blocks:
        key = block.split(":", 1)[0]
        seen.add(key)
        if key in drop.split():
            continue
        out.append(f"{key}: {lines[key]}" if key in lines else block)
    out += [f"{key}: {value}" for key, value in lines.items() if key not in seen]
    return "\n".join(out) + "\n"


def domain(mappings: str = "'(none)': {api: api, stage: dev}") -> str:
    return api() + "domains:\n  example.com:\n    mappings:\n" + textwrap.indent(textwrap.dedent(mappings).strip("\n") + "\n", "      ")


FULL = (
    function(
        """\
        live: {version: 3, description: production, routing: {"4": 0.25}}
        dev: {version: $LATEST}
        pinned: {version: "<SHA>"}
        """.replace("<SHA>", SHA),
        environment="""\
        PORT: 8080
        DEBUG: true
        TZ: UTC
        AWS_LAMBDA_EXEC_WRAPPER: /opt/wrapper
        """,
    )
    + api(
        """\
        dev: {variables: {lambdaAlias: live, port: 8080, ratio: -1.5, url: "a:b/c?d=e&f=g#h,i~j"}, description: dev}
        prod: {deployment: abc123}
        """
    )
    + "  other:\n    clone_from: api\n    stages: {v1: {}}\n"
    + "domains:\n  example.com:\n    mappings:\n      '(none)': {api: api, stage: dev}\n      v2/beta: {api: other, stage: v1}\n"
)

# (id, spec file, valid?) -- every invalid one breaks exactly one rule.
CASES: list[tuple[str, str, bool]] = [
    # ---- the file
    ("full example", FULL, True),
    ("empty mapping", "{}\n", True),
    ("null sections", "functions:\nrest_apis:\ndomains:\n", True),
    ("unknown top-level key", "function: {}\n", False),
    ("functions is a list", "functions: [f]\n", False),
    ("a list, not a mapping", "- functions\n", False),
    # ---- function names
    ("function name 64 characters", function(name="f" * 64), True),
    ("function name 65 characters", function(name="f" * 65), False),
    ("function name with a dot", function(name="f.x"), False),
    ("function name with a newline last", function(name='"f\\n"'), False),
    ("function name with two newlines last", function(name='"f\\n\\n"'), False),
    ("function unknown key", "functions:\n  f: {alias: {}}\n", False),
    ("function null aliases", "functions:\n  f: {aliases: null}\n", False),
    # ---- alias names
    ("alias name digits and letters", function("1a: {version: 1}"), True),
    ("alias name all digits", function('"123": {version: 1}'), False),
    ("alias name an unquoted number", function("123: {version: 1}"), False),
    ("alias name all digits then a newline", function('"123\\n": {version: 1}'), False),
    ("alias name then a newline", function('"live\\n": {version: 1}'), False),
    ("alias name 128 characters", function("a" * 128 + ": {version: 1}"), True),
    ("alias name 129 characters", function("a" * 129 + ": {version: 1}"), False),
    ("alias name with a dot", function("a.b: {version: 1}"), False),
    ("alias name empty", function('"": {version: 1}'), False),
    ("alias unknown field", function("live: {version: 1, weight: 1}"), False),
    ("alias without a version", function("live: {description: x}"), False),
    ("alias not a mapping", function('live: "1"'), False),
    # ---- versions of aliases
    ("version 1", function("live: {version: 1}"), True),
    ("version '12'", function('live: {version: "12"}'), True),
    ("version $LATEST", function("live: {version: $LATEST}"), True),
    ("version sha256", function('live: {version: "' + SHA + '"}'), True),
    ("version 0", function("live: {version: 0}"), False),
    ("version -1", function("live: {version: -1}"), False),
    ("version '0'", function('live: {version: "0"}'), False),
    ("version '01'", function('live: {version: "01"}'), False),
    ("version v1", function("live: {version: v1}"), False),
    ("version $latest", function("live: {version: $latest}"), False),
    ("version 1.5", function("live: {version: 1.5}"), False),
    ("version true", function("live: {version: true}"), False),
    ("version null", function("live: {version: null}"), False),
    ("version sha256 too short", function('live: {version: "' + SHA[:-2] + '"}'), False),
    ("version sha256 without =", function('live: {version: "' + SHA[:-1] + '"}'), False),
    ("version then a newline", function('live: {version: "3\\n"}'), False),
    ("version then a space", function('live: {version: "3 "}'), False),
    # ---- descriptions
    ("description 256 characters", function("live: {version: 1, description: %s}" % ("d" * 256)), True),
    ("description 257 characters", function("live: {version: 1, description: %s}" % ("d" * 257)), False),
    ("description a number", function("live: {version: 1, description: 5}"), False),
    # ---- routing
    ("routing weight 0", function('live: {version: 1, routing: {"2": 0}}'), True),
    ("routing weight 0.999", function('live: {version: 1, routing: {"2": 0.999}}'), True),
    ("routing empty with $LATEST", function("live: {version: $LATEST, routing: {}}"), True),
    ("routing key an unquoted number", function("live: {version: 1, routing: {2: 0.5}}"), True),
    ("routing weight 1", function('live: {version: 1, routing: {"2": 1}}'), False),
    ("routing weight 1.0", function('live: {version: 1, routing: {"2": 1.0}}'), False),
    ("routing weight -0.1", function('live: {version: 1, routing: {"2": -0.1}}'), False),
    ("routing weight 1.5", function('live: {version: 1, routing: {"2": 1.5}}'), False),
    ("routing weight .inf", function('live: {version: 1, routing: {"2": .inf}}'), False),
    ("routing weight text", function('live: {version: 1, routing: {"2": abc}}'), False),
    ("routing weight true", function('live: {version: 1, routing: {"2": true}}'), False),
    ("routing two versions", function('live: {version: 1, routing: {"2": 0.1, "3": 0.1}}'), False),
    ("routing to $LATEST", function("live: {version: 1, routing: {$LATEST: 0.1}}"), False),
    ("routing to version 0", function('live: {version: 1, routing: {"0": 0.1}}'), False),
    ("routing to sha256", function('live: {version: 1, routing: {"' + SHA + '": 0.1}}'), False),
    ("routing version then a newline", function('live: {version: 1, routing: {"2\\n": 0.1}}'), False),
    ("routing from $LATEST", function('live: {version: $LATEST, routing: {"2": 0.1}}'), False),
    ("routing from $LATEST then a newline", function('live: {version: "$LATEST\\n", routing: {"2": 0.1}}'), False),
    ("routing null", function("live: {version: 1, routing: null}"), False),
    # ---- environment
    ("environment empty", function(environment="{}"), True),
    ("environment null", "functions:\n  f: {environment: null}\n", True),
    ("environment values of every YAML kind", function(environment="A: 1\nB: 1.5\nC: false\nD: ''\nE: 2024-01-01"), True),
    ("environment AWS_LAMBDA_EXEC_WRAPPER", function(environment="AWS_LAMBDA_EXEC_WRAPPER: /w"), True),
    ("environment reserved AWS_REGION", function(environment="AWS_REGION: x"), False),
    ("environment reserved _HANDLER", function(environment="_HANDLER: x"), False),
    ("environment reserved AWS_LAMBDA_*", function(environment="AWS_LAMBDA_FUNCTION_NAME: x"), False),
    ("environment reserved AWS_LAMBDA_EXEC_WRAPPER2", function(environment="AWS_LAMBDA_EXEC_WRAPPER2: x"), False),
    ("environment reserved name then a newline", function(environment='"AWS_REGION\\n": x'), False),
    ("environment AWS_LAMBDA_* then a newline", function(environment='"AWS_LAMBDA_EXEC_WRAPPER\\n": x'), False),
    ("environment name starts with a digit", function(environment="1X: x"), False),
    ("environment name with -", function(environment="A-B: x"), False),
    ("environment value null", function(environment="A: null"), False),
    ("environment value a list", function(environment="A: [1]"), False),
    ("environment a list", "functions:\n  f: {environment: [A]}\n", False),
    ("environment at 4 KiB", function(environment="A: " + "v" * 4095), True),
    ("environment a value past 4 KiB", function(environment="A: " + "v" * 4096), False),
    ("environment a name past 4 KiB", function(environment="? " + "A" * 4097 + "\n: ''"), False),
    ("environment of 4097 variables", function(environment="\n".join(f"A{i}: ''" for i in range(4097))), False),
    ("environment from SSM", function(environment="A: {ssm: /shop/prod/db-url}\nB: {ssm: plain-name.v2}\nC: text"), True),
    ("environment SSM name with a space", function(environment="A: {ssm: 'a b'}"), False),
    ("environment SSM name with //", function(environment="A: {ssm: /a//b}"), False),
    ("environment SSM name then a newline", function(environment='A: {ssm: "/a\\n"}'), False),
    ("environment SSM name a number", function(environment="A: {ssm: 1}"), False),
    ("environment SSM reference with another key", function(environment="A: {ssm: /a, version: 2}"), False),
    ("environment SSM reference empty", function(environment="A: {}"), False),
    ("environment SSM name of 2011 characters", function(environment="A: {ssm: " + "n" * 2011 + "}"), True),
    ("environment SSM name of 2012 characters", function(environment="A: {ssm: " + "n" * 2012 + "}"), False),
    # ---- stages
    ("stage name with a dot", api("a.b: {}"), False),
    ("stage name then a newline", api('"dev\\n": {}'), False),
    ("stage name 129 characters", api("s" * 129 + ": {}"), False),
    ("stages null", "rest_apis:\n  api: {stages: null}\n", False),
    ("stage unknown field", api("dev: {variable: {}}"), False),
    ("stage description a number", api("dev: {description: 1}"), False),
    ("stage deployment a number", api("dev: {deployment: 1}"), False),
    ("stage variable name with -", api("dev: {variables: {a-b: x}}"), False),
    ("stage variable name 64 characters", api("dev: {variables: {%s: x}}" % ("v" * 64)), True),
    ("stage variable name 65 characters", api("dev: {variables: {%s: x}}" % ("v" * 65)), False),
    ("stage variable value with a space", api("dev: {variables: {a: 'x y'}}"), False),
    ("stage variable value empty", api("dev: {variables: {a: ''}}"), False),
    ("stage variable value 512 characters", api("dev: {variables: {a: %s}}" % ("v" * 512)), True),
    ("stage variable value 513 characters", api("dev: {variables: {a: %s}}" % ("v" * 513)), False),
    ("stage variable value then a newline", api('dev: {variables: {a: "x\\n"}}'), False),
    ("stage variable value a boolean", api("dev: {variables: {a: true}}"), False),
    ("stage variable value null", api("dev: {variables: {a: null}}"), False),
    ("stage variable value .inf", api("dev: {variables: {a: .inf}}"), True),
    ("stage variables null", api("dev: {variables: null}"), False),
    ("rest api unknown field", "rest_apis:\n  api: {stage: {}}\n", False),
    ("rest api clone_from a number", "rest_apis:\n  api: {clone_from: 1}\n", False),
    ("rest api name of any text", "rest_apis:\n  'my api!': {}\n", True),
    # ---- domains
    ("base path (none)", domain(), True),
    ("base path v1/beta", domain("v1/beta: {api: api, stage: dev}"), True),
    ("base path /v1", domain("/v1: {api: api, stage: dev}"), False),
    ("base path v1/", domain("v1/: {api: api, stage: dev}"), False),
    ("base path a//b", domain("a//b: {api: api, stage: dev}"), False),
    ("base path none", domain("none: {api: api, stage: dev}"), True),
    ("base path (None)", domain("(None): {api: api, stage: dev}"), False),
    ("mapping without a stage", domain("v1: {api: api}"), False),
    ("mapping unknown field", domain("v1: {api: api, stage: dev, path: x}"), False),
    ("mappings null", api() + "domains:\n  example.com: {mappings: null}\n", False),
    ("domain unknown field", api() + "domains:\n  example.com: {mapping: {}}\n", False),
    ("domain name of any text", api() + "domains:\n  'not a domain': {}\n", True),
    # ---- versions
    ("versions by header", api(versions=VERSIONS), True),
    ("versions by media type", api(versions=versions(drop="header", media_type="application/vnd.acme")), True),
    ("versions http-proxy", api(versions=versions(strategy="http-proxy")), True),
    ("versions dated, unquoted", api(versions=versions(default="2022-01-01", catalogue="{2022-01-01: {functions: {f: 1}}}")), True),
    ("versions without header or media type", api(versions=versions(drop="header")), False),
    ("versions header null", api(versions=versions(header="null")), False),
    ("versions with header and media type", api(versions=versions(media_type="application/vnd.acme")), False),
    ("versions header null, media type", api(versions=versions(header="null", media_type="application/vnd.acme")), True),
    ("versions header with _", api(versions=versions(header="X_Version")), False),
    ("versions header 65 characters", api(versions=versions(header="H" * 65)), False),
    ("versions header a number", api(versions=versions(header="1")), False),
    ("versions media type upper case", api(versions=versions(drop="header", media_type="Application/vnd.acme")), False),
    ("versions media type without /", api(versions=versions(drop="header", media_type="vnd.acme")), False),
    (
        "versions media type, version upper case",
        api(versions=versions(drop="header", media_type="application/x", default="V1", catalogue="{V1: {functions: {f: 1}}}")),
        False,
    ),
    ("versions header, version upper case", api(versions=versions(default="V1", catalogue="{V1: {functions: {f: 1}}}")), True),
    ("versions default with a dot", api(versions=versions(default="v.1")), False),
    ("versions default all digits", api(versions=versions(default="'1'", catalogue="{'1': {functions: {f: 1}}}")), False),
    ("versions without default", api(versions=versions(drop="default")), False),
    ("versions strategy LAMBDA", api(versions=versions(strategy="LAMBDA")), False),
    ("versions unknown field", api(versions=versions(stages="[dev]")), False),
    ("versions no routes", api(versions=versions(routes="[]")), False),
    ("versions empty catalogue", api(versions=versions(catalogue="{}")), False),
    ("versions catalogue name with a dot", api(versions=versions(catalogue="{v1: {functions: {f: 1}}, v.2: {functions: {f: 1}}}")), False),
    ("route method get", api(versions=versions(routes="[{method: get, path: /users, function: f}]")), True),
    ("route method Options", api(versions=versions(routes="[{method: Options, path: /users, function: f}]")), True),
    ("route method poﬆ (str.upper: POST)", api(versions=versions(routes="[{method: poﬆ, path: /users, function: f}]")), True),
    ("route method FETCH", api(versions=versions(routes="[{method: FETCH, path: /users, function: f}]")), False),
    ("route method ' GET'", api(versions=versions(routes="[{method: ' GET', path: /users, function: f}]")), False),
    ("route path /", api(versions=versions(routes="[{method: GET, path: /, function: f}]")), True),
    ("route path /users/{id}", api(versions=versions(routes="[{method: GET, path: '/users/{id}', function: f}]")), True),
    ("route path /{proxy+}", api(versions=versions(routes="[{method: GET, path: '/{proxy+}', function: f}]")), True),
    ("route path /ab{id} (one segment)", api(versions=versions(routes="[{method: GET, path: '/ab{id}', function: f}]")), True),
    ("route path /a/b{id} (not the first)", api(versions=versions(routes="[{method: GET, path: '/a/b{id}', function: f}]")), False),
    ("route path without /", api(versions=versions(routes="[{method: GET, path: users, function: f}]")), False),
    ("route path //users", api(versions=versions(routes="[{method: GET, path: //users, function: f}]")), False),
    ("route path /a//b", api(versions=versions(routes="[{method: GET, path: /a//b, function: f}]")), False),
    ("route path //", api(versions=versions(routes="[{method: GET, path: //, function: f}]")), False),
    ("route path /users/", api(versions=versions(routes="[{method: GET, path: /users/, function: f}]")), False),
    ("route path /{id", api(versions=versions(routes="[{method: GET, path: '/{id', function: f}]")), False),
    ("route path then a newline", api(versions=versions(routes='[{method: GET, path: "/users\\n", function: f}]')), False),
    ("route function name with a dot", api(versions=versions(routes="[{method: GET, path: /u, function: f.x}]")), False),
    ("route unknown field", api(versions=versions(routes="[{method: GET, path: /u, function: f, stage: dev}]")), False),
    ("route without a function", api(versions=versions(routes="[{method: GET, path: /u}]")), False),
    ("route listed twice", api(versions=versions(routes="[{method: GET, path: /u, function: f}, {method: GET, path: /u, function: f}]")), False),
    ("two routes", api(versions=versions(routes="[{method: GET, path: /u, function: f}, {method: POST, path: /u, function: f}]")), True),
    ("catalogue function name with a dot", api(versions=versions(catalogue="{v1: {functions: {f: 1, g.x: 1}}}")), False),
    ("catalogue version 0", api(versions=versions(catalogue="{v1: {functions: {f: 0}}}")), False),
    ("catalogue version $LATEST", api(versions=versions(catalogue="{v1: {functions: {f: $LATEST}}}")), True),
    ("catalogue version v1", api(versions=versions(catalogue="{v1: {functions: {f: v1}}}")), False),
    ("catalogue entry on no stage", api(versions=versions(catalogue="{v1: {functions: {f: 1}, stages: []}}")), False),
    ("catalogue entry on a listed stage", api(versions=versions(catalogue="{v1: {functions: {f: 1}, stages: [dev]}}")), True),
    ("catalogue entry stage name with a dot", api(versions=versions(catalogue="{v1: {functions: {f: 1}, stages: [a.b]}}")), False),
    ("catalogue entry unknown field", api(versions=versions(catalogue="{v1: {functions: {f: 1}, stage: dev}}")), False),
    ("catalogue entry without functions", api(versions=versions(catalogue="{v1: {stages: [dev]}}")), False),
    ("versions and the variable pointsmanVersions", api(f"dev: {{variables: {{{STAGE_VERSIONS_VAR}: x}}}}", VERSIONS), False),
    ("versions and the variable pointsmanStage", api(f"dev: {{variables: {{{STAGE_NAME_VAR}: x}}}}", VERSIONS), False),
    ("versions and the variable pointsmanDefaultVersion", api(f"dev: {{variables: {{{STAGE_DEFAULT_VAR}: x}}}}", VERSIONS), False),
    ("versions and a variable of the stage's own", api("dev: {variables: {mine: x}}", VERSIONS), True),
    ("no versions and the variable pointsmanVersions", api(f"dev: {{variables: {{{STAGE_VERSIONS_VAR}: x}}}}"), True),
    ("versions and a deployment", api("dev: {deployment: abc}", VERSIONS), False),
    ("versions and an empty deployment", api("dev: {deployment: ''}", VERSIONS), True),
    ("versions and a null deployment", api("dev: {deployment: null}", VERSIONS), True),
    ("versions null", api(versions="null"), True),
]

# Rules the schema cannot state (see the comment next to json_schema()): (id, spec file, validate's answer).
# The schema gives the other answer.
KNOWN_GAPS: list[tuple[str, str, bool]] = [
    ("routing to the alias's own version", function('live: {version: 2, routing: {"2": 0.1}}'), False),
    ("versions default not in the catalogue", api(versions=versions(default="v2")), False),
    ("catalogue entry without a route's function", api(versions=versions(catalogue="{v1: {functions: {g: 1}}}")), False),
    (
        "route listed twice, method in another case",
        api(versions=versions(routes="[{method: GET, path: /u, function: f}, {method: get, path: /u, function: f}]")),
        False,
    ),
    ("catalogue entry on an undeclared stage", api(versions=versions(catalogue="{v1: {functions: {f: 1}, stages: [prod]}}")), False),
    ("stage not exposing the default", api("dev: {}\nprod: {}", versions(catalogue="{v1: {functions: {f: 1}, stages: [dev]}}")), False),
    ("version 1.0, a YAML float", function("live: {version: 1.0}"), False),
    ("stage variable float 1.0e+16", api("dev: {variables: {a: 1.0e+16}}"), False),
    ("routing weight .nan", function('live: {version: 1, routing: {"2": .nan}}'), False),
    ("environment over 4 KiB in all", function(environment=f"A: {'v' * 2100}\nB: {'v' * 2100}"), False),
    ("mapping to an undeclared REST API", "domains:\n  example.com:\n    mappings:\n      v1: {api: nope, stage: dev}\n", False),
    ("mapping to an undeclared stage", domain("v1: {api: api, stage: prod}"), False),
    ("an alias declared and generated", function("v1: {version: 1}") + api(versions=VERSIONS), False),
    ("alias name `on` (YAML 1.1: a boolean key)", function("on: {version: 1}"), False),
    ("description 2024-01-01 (YAML 1.1: a date)", function("live: {version: 1, description: 2024-01-01}"), False),
    ("routing weight '0.5' (quoted)", function('live: {version: 1, routing: {"2": "0.5"}}'), True),
    ("routing weight false", function('live: {version: 1, routing: {"2": false}}'), True),
]


def _ids(cases: list[tuple[str, str, bool]]) -> list[str]:
    ids = [case[0] for case in cases]
    assert len(set(ids)) == len(ids), "case ids repeat"
    return ids


@pytest.mark.parametrize(("name", "text", "valid"), CASES, ids=_ids(CASES))
def test_validate_and_schema_agree(name: str, text: str, valid: bool) -> None:
    problems = validate_problems(text)
    errors = schema_errors(text)
    assert (problems == []) is valid, f"validate: {[str(p) for p in problems] or 'valid'}\n{text}"
    assert (errors == []) is valid, f"schema: {errors or 'valid'}\n{text}"
    if not valid:
        # One rule broken (the table stays honest): one message, if maybe at two places (default and catalogue).
        assert len({p.message for p in problems}) == 1, [str(p) for p in problems]


@pytest.mark.parametrize(("name", "text", "valid"), KNOWN_GAPS, ids=_ids(KNOWN_GAPS))
def test_rules_the_schema_cannot_state(name: str, text: str, valid: bool) -> None:
    problems = validate_problems(text)
    assert (problems == []) is valid, f"validate: {[str(p) for p in problems] or 'valid'}\n{text}"
    assert (schema_errors(text) == []) is not valid, "the schema now agrees: move this case to CASES and the rule out of 'Not in the schema'"


# Every name and value rule, written with a newline last (YAML "live\\n"): Python's `$` would take it.
# (kind, spec file); each also holds without the newline.
NEWLINE_CASES: list[tuple[str, str]] = [
    ("function name", function(name='"f\\n"')),
    ("alias name", function('"live\\n": {version: 1}')),
    ("alias version", function('live: {version: "3\\n"}')),
    ("routing version", function('live: {version: 1, routing: {"2\\n": 0.1}}')),
    ("environment variable name", function(environment='"TZ\\n": UTC')),
    ("stage name", api('"dev\\n": {}')),
    ("stage variable name", api('dev: {variables: {"lambdaAlias\\n": live}}')),
    ("stage variable value", api('dev: {variables: {lambdaAlias: "live\\n"}}')),
    ("base path", domain('"v1\\n": {api: api, stage: dev}')),
    ("versions header", api(versions=versions(header='"Version\\n"'))),
    ("versions media type", api(versions=versions(drop="header", media_type='"application/vnd.acme\\n"'))),
    ("versions default", api(versions=versions(default='"v1\\n"', catalogue='{"v1\\n": {functions: {f: 1}}}'))),
    ("version name", api(versions=versions(catalogue='{v1: {functions: {f: 1}}, "v2\\n": {functions: {f: 1}}}'))),
    ("catalogue version", api(versions=versions(catalogue='{v1: {functions: {f: "2\\n"}}}'))),
    ("catalogue stage", api(versions=versions(catalogue='{v1: {functions: {f: 1}, stages: ["dev\\n"]}}'))),
    ("route path", api(versions=versions(routes='[{method: GET, path: "/users\\n", function: f}]'))),
    ("route function", api(versions=versions(routes='[{method: GET, path: /users, function: "f\\n"}]', catalogue='{v1: {functions: {"f\\n": 1}}}'))),
    ("route method", api(versions=versions(routes='[{method: "GET\\n", path: /users, function: f}]'))),
]


@pytest.mark.parametrize(("kind", "text"), NEWLINE_CASES, ids=[kind for kind, _ in NEWLINE_CASES])
def test_a_name_ending_with_a_newline_is_refused(kind: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_problems(text.replace("\\n", "")) == [] and schema_errors(text.replace("\\n", "")) == [], kind
    problems = validate_problems(text)
    assert problems, f"validate accepts a {kind} ending with a newline"
    for problem in problems:
        assert problem.line > 1 and "\\n" in problem.message, str(problem)  # the value shown as repr: '...\\n'
    assert schema_errors(text), f"the schema accepts a {kind} ending with a newline"
    # `pointsman validate`: exit 1, one line per problem, file:line first.
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    assert main(["validate", "--spec", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "spec.yaml:" in line]
    assert [line[line.index("spec.yaml:") :] for line in lines] == [str(p)[str(p).index("spec.yaml:") :] for p in problems], err


def test_ecma_refuses_a_dollar_anchor() -> None:
    from controller.spec.schema import _ecma

    assert _ecma(re.compile(r"^[a$]+\Z")) == "^[a$]+(?![\\s\\S])"  # $ in a class is a character
    with pytest.raises(ValueError, match="trailing newline"):
        _ecma(re.compile(r"^[a-z]+$"))


def test_the_cli_agrees_on_weight_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "weight": (function('live: {version: 1, routing: {"2": 1}}'), 1),
        "version": (function("live: {version: v1}"), 1),
        "both fine": (function('live: {version: 1, routing: {"2": 0.5}}'), 0),
    }
    for name, (text, code) in cases.items():
        directory = tmp_path / name
        directory.mkdir()
        (directory / "spec.yaml").write_text(text, encoding="utf-8")
        assert main(["validate", "--spec", str(directory)]) == code, capsys.readouterr()
        assert (schema_errors(text) == []) is (code == 0)


@pytest.mark.parametrize("path", sorted((ROOT / "desired_state").glob("*.yaml")), ids=lambda p: p.name)
def test_the_schema_accepts_the_example_spec(path: Path) -> None:
    load_spec(ROOT / "desired_state")
    assert schema_errors(path.read_text(encoding="utf-8")) == []


# --------------------------------------------------------------------------- the schema itself


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


def _patterns() -> dict[str, str]:
    """Every regex of the schema: "pattern" values (not properties named pattern)."""
    found: dict[str, str] = {}
    for where, node in _walk(SCHEMA):
        if isinstance(node, dict) and isinstance(node.get("pattern"), str) and not where.endswith("/properties"):
            found[f"{where}/pattern"] = node["pattern"]
    return found


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # `pointsman schema` prints it as JSON: plain JSON values only, no NaN.
    assert json.loads(json.dumps(SCHEMA, allow_nan=False)) == SCHEMA
    assert json_schema() == SCHEMA  # and the same each time


def test_every_object_refuses_unknown_keys() -> None:
    for name, definition in [("SpecFile", SCHEMA), *SCHEMA["$defs"].items()]:
        assert definition.get("additionalProperties") is False, name


def test_the_schema_carries_the_rules_named_in_the_brief() -> None:
    d = SCHEMA["$defs"]
    routing = d["AliasSpec"]["properties"]["routing"]
    assert routing["additionalProperties"] == {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
    assert routing["maxProperties"] == 1
    assert "pattern" in d["AliasSpec"]["properties"]["version"] and d["AliasSpec"]["properties"]["version"]["minimum"] == 1
    for model, field in [
        ("FunctionSpec", "aliases"),
        ("RestApiSpec", "stages"),
        ("DomainSpec", "mappings"),
        ("StageSpec", "variables"),
        ("VersionsSpec", "catalogue"),
        ("CatalogueEntry", "functions"),
    ]:
        assert "pattern" in d[model]["properties"][field]["propertyNames"], (model, field)
    assert "pattern" in SCHEMA["properties"]["functions"]["propertyNames"]
    assert d["VersionsSpec"]["properties"]["strategy"]["enum"] == ["lambda", "http-proxy"]
    assert len(d["VersionsSpec"]["oneOf"]) == 2


_PYTHON_ONLY = re.compile(r"\\[AZzG]|\(\?P|\(\?[aiLmsux-]+[:)]|\(\?#|\(\?>|\(\?\(|[*+?}][+]|\\[pP]\{")


@pytest.mark.parametrize(("where", "pattern"), sorted(_patterns().items()))
def test_patterns_are_ecma_262(where: str, pattern: str) -> None:
    assert not _PYTHON_ONLY.search(pattern), f"{where}: Python-only syntax in {pattern!r}"
    assert jsonschema.Draft202012Validator.FORMAT_CHECKER.conforms(pattern, "regex"), where


PROBES = [
    "",
    "a",
    "A",
    "0",
    "1",
    "01",
    "123",
    "123\n",
    "live",
    "live\n",
    "live\n\n",
    "\nlive",
    "a.b",
    "a b",
    "a/b",
    "v1/beta",
    "/v1",
    "v1/",
    "(none)",
    "(none)\n",
    "$LATEST",
    "$LATEST\n",
    "$latest",
    SHA,
    SHA + "\n",
    SHA[:-1],
    "Version",
    "X_Y",
    "application/vnd.acme",
    "Application/x",
    "/",
    "/users",
    "/users/{id}",
    "/{proxy+}",
    "/ab{id}",
    "/a/b{id}",
    "//",
    "/a//b",
    "/users\n",
    "get",
    "POST",
    "poﬆ",
    "OPTıONS",
    "ſ",
    "AWS_REGION",
    "AWS_LAMBDA_X",
    "AWS_LAMBDA_EXEC_WRAPPER",
    "AWS_LAMBDA_EXEC_WRAPPER\n",
    "V1",
    "a" * 129,
    "é",
    "\u2028",
]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the patterns as ECMA-262 regexes")
def test_patterns_mean_the_same_in_ecma_262_and_python() -> None:
    """Node compiles each pattern as yaml-language-server does (RegExp, "u") and searches the probes;
    Python's `re` (what jsonschema uses) must find the same."""
    patterns = sorted(set(_patterns().values())) + ["[A-Z]", "//"]
    script = (
        "const [patterns, probes] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map(p => { const r = new RegExp(p, 'u'); return probes.map(s => r.test(s)); })));"
    )
    run = subprocess.run(["node", "-e", script], input=json.dumps([patterns, PROBES]), capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    for pattern, answers in zip(patterns, json.loads(run.stdout), strict=True):
        python = [re.search(pattern, s) is not None for s in PROBES]
        assert python == answers, (pattern, [s for s, a, b in zip(PROBES, answers, python, strict=True) if a != b])


# --------------------------------------------------------------------------- the patterns against validate's checks


def _property(model: str, field: str) -> dict[str, Any]:
    return SCHEMA["$defs"][model]["properties"][field]


def _check(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator({**schema, "$defs": SCHEMA["$defs"]}).is_valid(value)


NAME_PATTERNS = [
    (_FUNCTION_NAME_RE, SCHEMA["properties"]["functions"]["propertyNames"]),
    (_ALIAS_NAME_RE, _property("FunctionSpec", "aliases")["propertyNames"]),
    (_STAGE_NAME_RE, _property("RestApiSpec", "stages")["propertyNames"]),
    (_VAR_NAME_RE, _property("StageSpec", "variables")["propertyNames"]),
    (_BASE_PATH_RE, _property("DomainSpec", "mappings")["propertyNames"]),
    (_VERSION_RE, {"type": "string", "pattern": _property("AliasSpec", "version")["pattern"]}),
    (_VAR_VALUE_RE, {"type": "string", "pattern": _property("StageSpec", "variables")["additionalProperties"]["pattern"]}),
    (_HEADER_NAME_RE, {"type": "string", "pattern": _property("VersionsSpec", "header")["pattern"]}),
    (_MEDIA_TYPE_RE, {"type": "string", "pattern": _property("VersionsSpec", "media_type")["pattern"]}),
]
_TEXT = st.text(alphabet="aZ09_-./(none)$LATEST{}+~:?#&=, \n\té", max_size=12)


@pytest.mark.parametrize(("regex", "schema"), NAME_PATTERNS, ids=[r.pattern for r, _ in NAME_PATTERNS])
@settings(max_examples=300, deadline=None)
@given(text=_TEXT | st.sampled_from(PROBES))
def test_patterns_accept_what_the_checks_accept(regex: re.Pattern[str], schema: dict[str, Any], text: str) -> None:
    assert (regex.fullmatch(text) is not None) is _check(schema, text), repr(text)


def test_route_paths_as_validate_reads_them() -> None:
    """Every path of up to 6 characters from a telling alphabet (validate's own regex is slow on long ones)."""
    schema = _property("VersionRoute", "path")
    for n in range(7):
        for chars in itertools.product("/a{}+_\n", repeat=n):
            path = "".join(chars)
            expected = _RESOURCE_PATH_RE.fullmatch(path) is not None and "//" not in path
            assert _check(schema, path) is expected, repr(path)


def test_route_methods_as_str_upper_reads_them() -> None:
    schema = _property("VersionRoute", "method")
    letters = set("".join(HTTP_METHODS))
    # _upper_is looks at the BMP only: no other character upper-cases to these letters.
    assert not [c for c in map(chr, range(0x10000, sys.maxunicode + 1)) if c.upper() and set(c.upper()) <= letters]
    odd = [c for c in map(chr, range(0x10000)) if c.upper() and set(c.upper()) <= letters and not c.isascii()]
    words = {w for m in HTTP_METHODS for w in (m, m.lower(), m.title(), m.replace("S", "ſ"), m.replace("I", "ı"), m.replace("ST", "ﬆ"), m[:-1], m + "S")}
    words |= {"FETCH", "", "GETS", "ST", "PO", "POSS", "poß"} | {m.replace("ST", "ß") for m in HTTP_METHODS} | set(odd)
    for word in sorted(words):
        assert _check(schema, word) is (word.upper() in HTTP_METHODS), repr(word)


@pytest.mark.parametrize("name", sorted(_ENV_RESERVED | _ENV_SETTABLE | {"AWS_LAMBDA_", "AWS_LAMBDAX", "aws_region", "AWS_LAMBDA_EXEC_WRAPPERX"}))
def test_reserved_environment_names(name: str) -> None:
    text = function(environment=f"{name}: x")
    assert (validate_problems(text) == []) is (schema_errors(text) == [])


# --------------------------------------------------------------------------- a sweep of whole documents

_NAME = st.one_of(
    st.sampled_from(["f", "live", "dev", "v1", "a" * 64, "a" * 65, "a" * 128, "a" * 129, "123", "1a", "a.b", "a-b_c", "", "x\n", "x\n\n", "ab cd"]),
    st.text(alphabet="ab9_-.\n", min_size=0, max_size=5),
)
_VERSION = st.one_of(
    st.integers(-2, 30),
    st.sampled_from(["1", "07", "0", "$LATEST", "$latest", "$LATEST\n", SHA, SHA[:-1], "v1", "3\n", "3 ", ""]),
    st.booleans(),
    st.none(),
)
_WEIGHT = st.one_of(st.floats(-0.5, 1.5, allow_nan=False), st.sampled_from([0, 1, 0.0, 0.999999, 1.0]), st.integers(-1, 2))
_ENV_NAME = st.one_of(
    st.sampled_from(sorted(_ENV_RESERVED | _ENV_SETTABLE) + ["AWS_LAMBDA_X", "TZ", "1X", "A-B", "a\n"]), st.text(alphabet="AZa1_", max_size=6)
)
_ENV_VALUE = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
_VAR_VALUE = st.one_of(
    st.text(alphabet="az09-._~:/?#&=, !\n", max_size=8),
    st.integers(-(10**20), 10**20),
    st.floats(-1e15, 1e15, allow_nan=False),
    st.booleans(),
    st.none(),
)
_METHOD = st.one_of(st.sampled_from([*HTTP_METHODS, "get", "Post", "poﬆ", "FETCH", ""]), st.text(alphabet="GETpost", max_size=4))
_PATH = st.one_of(
    st.sampled_from(["/", "/users", "/users/{id}", "/{proxy+}", "/ab{id}", "/a/b{id}", "users", "/a//b", "/u/"]), st.text(alphabet="/a{}+", max_size=8)
)


def _mostly(good: list[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of ``good`` seven times in eight, else ``bad`` (so that valid documents are common too)."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda ok: st.sampled_from(good) if ok else bad)


_SOME_NAME = _mostly(["f", "live", "dev", "v1", "b-2_c"], _NAME)


@st.composite
def _aliases(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in draw(st.lists(_SOME_NAME, max_size=3, unique=True)):
        alias: dict[str, Any] = {"version": draw(_mostly([1, "2", "$LATEST"], _VERSION))}
        if draw(st.booleans()):
            routing = draw(st.dictionaries(st.one_of(st.sampled_from(["2", "5", "0", "$LATEST"]), _NAME), _WEIGHT, max_size=2))
            assume(str(alias["version"]) not in routing)  # routing to the alias's own version: KNOWN_GAPS
            alias["routing"] = routing
        if draw(st.booleans()):
            alias["description"] = draw(st.sampled_from(["", "d" * 256, "d" * 257, 5]))
        out[name] = alias
    return out


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        functions: dict[str, Any] = {}
        for name in draw(st.lists(_SOME_NAME, max_size=2, unique=True)):
            body: dict[str, Any] = {"aliases": draw(_aliases())}
            if draw(st.booleans()):
                body["environment"] = draw(st.none() | st.dictionaries(_ENV_NAME, _ENV_VALUE, max_size=3))
            functions[name] = body
        doc["functions"] = functions
    apis: dict[str, Any] = {}
    if draw(st.booleans()):
        for name in draw(st.lists(st.sampled_from(["api", "other", "my api!"]), max_size=2, unique=True)):
            stages: dict[str, Any] = {}
            for stage in draw(st.lists(_SOME_NAME, max_size=2, unique=True)):
                stage_body: dict[str, Any] = {}
                if draw(st.booleans()):
                    stage_body["variables"] = draw(st.dictionaries(_NAME, _VAR_VALUE, max_size=2))
                if draw(st.booleans()):
                    stage_body["deployment"] = draw(st.sampled_from(["abc", None, 1]))
                stages[stage] = stage_body
            apis[name] = {"stages": stages}
        doc["rest_apis"] = apis
    declared: list[tuple[str, str]] = [(api_name, stage) for api_name, body in apis.items() for stage in body["stages"]]
    if draw(st.booleans()) and declared:
        mappings = {
            base: dict(zip(("api", "stage"), draw(st.sampled_from(declared)), strict=True))
            for base in draw(st.lists(st.one_of(st.sampled_from(["(none)", "v1", "v1/beta", "/v1", "v1/", "a//b"]), _NAME), max_size=2, unique=True))
        }
        doc["domains"] = {"example.com": {"mappings": mappings}}
    return doc


@st.composite
def _versioned(draw: st.DrawFn) -> dict[str, Any]:
    """A REST API with versions whose cross-field rules hold (those are KNOWN_GAPS); the rest varies."""
    routes = [
        {
            "method": draw(_mostly(["GET", "post"], _METHOD)),
            "path": draw(_mostly(["/users", "/users/{id}"], _PATH)),
            "function": draw(_mostly(["f", "g"], st.sampled_from(["f.x", "a" * 65]))),
        }
        for _ in range(draw(_mostly([1, 2], st.just(0))))
    ]
    keys = [(str(r["method"]).upper(), r["path"]) for r in routes]
    assume(len(set(keys)) == len(keys))  # a route listed twice: KNOWN_GAPS (unless identical)
    names = draw(
        st.lists(
            _mostly(["v1", "v2", "2022-01-01"], st.one_of(st.sampled_from(["V2", "1", "a.b"]), _NAME)),
            min_size=draw(_mostly([1], st.just(0))),
            max_size=2,
            unique=True,
        )
    )
    catalogue: dict[str, Any] = {}
    for i, name in enumerate(names):
        entry: dict[str, Any] = {"functions": {r["function"]: draw(_mostly([1, "2", "$LATEST"], _VERSION)) for r in routes}}
        # The default (the first) is on every stage (dev); the others on dev, none, or a name that is no stage.
        stages = draw(_mostly([None, ["dev"]] if i == 0 else [None, ["dev"], ["dev", "dev"]], st.sampled_from([[], ["a.b"]])))
        if stages is not None:
            entry["stages"] = stages
        catalogue[name] = entry
    versions: dict[str, Any] = {"routes": routes, "catalogue": catalogue, "default": names[0] if names else "v1"}
    which = draw(_mostly(["header", "media_type"], st.sampled_from(["both", "neither", "header-null"])))
    if which in ("header", "both"):
        versions["header"] = draw(_mostly(["Version"], st.sampled_from(["X_Y", "h" * 65, 1])))
    if which in ("media_type", "both", "header-null"):
        versions["media_type"] = draw(_mostly(["application/vnd.acme"], st.sampled_from(["Application/x", "vnd", 1])))
    if which == "header-null":
        versions["header"] = None
    if draw(st.booleans()):
        versions["strategy"] = draw(_mostly(["lambda", "http-proxy"], st.just("LAMBDA")))
    stage: dict[str, Any] = {}
    if draw(st.booleans()):
        stage["variables"] = {draw(_mostly(["mine"], st.sampled_from([STAGE_VERSIONS_VAR, STAGE_NAME_VAR, STAGE_DEFAULT_VAR]))): "x"}
    if draw(st.booleans()):
        stage["deployment"] = draw(_mostly(["", None], st.just("abc")))
    return {"rest_apis": {"api": {"stages": {"dev": stage}, "versions": versions}}}


def _agree(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    problems = validate_problems(text)
    errors = schema_errors(text)
    assert (problems == []) is (errors == []), f"validate: {[str(p) for p in problems] or 'valid'}\nschema: {errors or 'valid'}\n{text}"


@settings(max_examples=250, deadline=None)
@given(_documents())
def test_sweep_functions_stages_and_domains(document: dict[str, Any]) -> None:
    _agree(document)


@settings(max_examples=250, deadline=None)
@given(_versioned())
def test_sweep_versions(document: dict[str, Any]) -> None:
    _agree(document)
