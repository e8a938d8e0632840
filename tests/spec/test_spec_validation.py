"""controller.spec.load.load_spec: every validation problem names file, line and field.

Each spec is written into pytest's tmp_path; line numbers in the assertions are the
1-based lines of the YAML text written (the first line of each text is line 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.spec import SpecInvalid, SpecProblem, json_schema, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SPEC = ROOT / "desired_state"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(directory: Path) -> list[SpecProblem]:
    with pytest.raises(SpecInvalid) as info:
        load_spec(directory)
    assert info.value.problems, "SpecInvalid without problems"
    # The exception text lists every problem, one per line.
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    return info.value.problems


def only_problem(directory: Path) -> SpecProblem:
    problems = problems_of(directory)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# --------------------------------------------------------------------------- YAML level


def test_invalid_yaml_reports_the_line_of_the_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "broken.yaml",
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases: [a\n"  # 3: unterminated flow sequence...
        "  b: c\n",  # 4: ...the parser notices here
    )
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 4, "")
    assert p.message.startswith("invalid YAML: ")
    assert "expected ',' or ']'" in p.message
    assert str(p) == f"{path}:4: {p.message}"


def test_invalid_yaml_scanner_error_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "functions:\n  f: {}\nrest_apis: a: b\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 3, "")
    assert "mapping values are not allowed here" in p.message


def test_duplicate_key_in_one_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dup.yaml",
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases:\n"  # 3
        "      prod: {version: 1}\n"  # 4
        "      prod: {version: 2}\n",  # 5
    )
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 5, "functions.f.aliases.prod")
    assert p.message == "duplicate key (first at line 4)"


def test_duplicate_top_level_section_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", "functions: {}\nrest_apis: {}\nfunctions: {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 3, "functions")
    assert p.message == "duplicate key (first at line 1)"


@pytest.mark.parametrize("text", ["- functions\n- rest_apis\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "x.yaml", text)
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 1, "")
    assert p.message == "a spec file must be a mapping with functions, rest_apis and/or domains"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "functions:\nrest_apis:\ndomains:\n"])
def test_empty_file_and_empty_sections_are_fine(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "empty.yaml", text)
    spec = load_spec(tmp_path)
    assert spec.files == [str(path)]
    assert spec.functions == {} and spec.rest_apis == {} and spec.domains == {}


def test_nonexistent_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    p = only_problem(missing)
    assert (p.file, p.line, p.field) == (str(missing), 0, "")
    assert p.message == "spec directory does not exist"


def test_non_utf8_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"functions:\n  caf\xe9: {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 1, "")
    assert p.message.startswith("cannot read file: ")


def test_only_yaml_and_yml_files_are_read_recursively(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "functions: [this is not yaml\n")
    write(tmp_path, "notes.txt", ": : :\n")
    a = write(tmp_path, "a.yaml", "functions:\n  f: {}\n")
    b = write(tmp_path, "team/b.yml", "rest_apis:\n  api: {}\n")
    spec = load_spec(tmp_path)
    assert spec.files == [str(a), str(b)]
    assert set(spec.functions) == {"f"} and set(spec.rest_apis) == {"api"}
    assert spec.functions["f"].source == f"{a}:2"
    assert spec.rest_apis["api"].source == f"{b}:2"


# --------------------------------------------------------------------------- schema level


def test_unknown_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases:\n"  # 3
        "      prod:\n"  # 4
        "        version: '1'\n"  # 5
        "        colour: red\n",  # 6
    )
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 6, "functions.f.aliases.prod.colour")
    assert p.message == "unknown field 'colour'"
    assert str(p) == f"{path}:6: functions.f.aliases.prod.colour: unknown field 'colour'"


def test_unknown_top_level_section(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "functions: {}\nlambdas:\n  f: {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 2, "lambdas")
    assert p.message == "unknown field 'lambdas'"


def test_missing_required_version(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases:\n"  # 3
        "      prod:\n"  # 4
        "        description: no version here\n",  # 5
    )
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 4, "functions.f.aliases.prod.version")
    assert p.message == "required field 'version' is missing"


def test_missing_mapping_stage(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "rest_apis:\n  api:\n    stages:\n      prod: {}\n"  # 1-4
        "domains:\n"  # 5
        "  d.example.com:\n"  # 6
        "    mappings:\n"  # 7
        "      v1: {api: api}\n",  # 8
    )
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 8, "domains.d.example.com.mappings.v1.stage")
    assert p.message == "required field 'stage' is missing"


@pytest.mark.parametrize("version", ["v1", "0", "1.2.3", "latest", "sha256:short", "'01'"])
def test_bad_version_string(tmp_path: Path, version: str) -> None:
    path = write(tmp_path, "x.yaml", f"functions:\n  f:\n    aliases:\n      prod:\n        version: {version}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 5, "functions.f.aliases.prod.version")
    shown = version.strip("'")
    assert p.message == f'version {shown!r} is not a published version number, "$LATEST" or "sha256:<CodeSha256>"'


def test_good_version_shapes(tmp_path: Path) -> None:
    sha = "A" * 43 + "="
    write(
        tmp_path,
        "x.yaml",
        f"functions:\n  f:\n    aliases:\n      a: {{version: 12}}\n      b: {{version: $LATEST}}\n      c: {{version: 'sha256:{sha}'}}\n",
    )
    aliases = load_spec(tmp_path).functions["f"].spec.aliases
    assert [aliases[n].version for n in "abc"] == ["12", "$LATEST", f"sha256:{sha}"]


ALIAS_HEAD = "functions:\n  f:\n    aliases:\n      prod:\n"  # lines 1-4; prod is on line 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "        version: 3\n        routing: {1: 0.1, 2: 0.2}\n",
            "routing allows at most one additional version",
        ),
        ("        version: 3\n        routing: {2: 1.0}\n", "routing weight 1.0 must be in [0, 1)"),
        ("        version: 3\n        routing: {2: -0.1}\n", "routing weight -0.1 must be in [0, 1)"),
        (
            "        version: 3\n        routing: {$LATEST: 0.1}\n",
            "routing version '$LATEST' must be a published version number (not $LATEST)",
        ),
        (
            "        version: $LATEST\n        routing: {2: 0.1}\n",
            "an alias with routing must point to a published version, not $LATEST",
        ),
        ("        version: 2\n        routing: {2: 0.1}\n", "routing version 2 must differ from the primary version"),
    ],
    ids=["two-versions", "weight-1", "weight-negative", "to-latest", "primary-latest", "same-as-primary"],
)
def test_routing_rules(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "x.yaml", ALIAS_HEAD + body)
    p = only_problem(tmp_path)
    # Model-level rules are reported on the alias itself.
    assert (p.file, p.line, p.field) == (str(path), 4, "functions.f.aliases.prod")
    assert p.message == message


def test_valid_routing_and_integer_versions_become_strings(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", ALIAS_HEAD + "        version: 3\n        routing: {2: 0.25}\n")
    alias = load_spec(tmp_path).functions["f"].spec.aliases["prod"]
    assert alias.version == "3" and isinstance(alias.version, str)
    assert alias.routing == {"2": 0.25}
    assert all(isinstance(k, str) for k in alias.routing)


def test_routing_weight_zero_is_allowed(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", ALIAS_HEAD + "        version: 3\n        routing: {2: 0}\n")
    assert load_spec(tmp_path).functions["f"].spec.aliases["prod"].routing == {"2": 0.0}


@pytest.mark.parametrize("name", ["123", "'007'"])
def test_alias_name_all_digits(tmp_path: Path, name: str) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases:\n"  # 3
        f"      {name}: {{version: 1}}\n",  # 4
    )
    p = only_problem(tmp_path)
    # Reported at the bad key's own line and path.
    assert (p.file, p.line, p.field) == (str(path), 4, f"functions.f.aliases.{name.strip(chr(39))}")
    assert p.message == f"alias name {name.strip(chr(39))!r} is not allowed: 1-128 letters, digits, - or _, and not all digits"


def test_bad_function_name(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "# fn\nfunctions:\n  'my function': {}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 3, "functions.my function")
    assert p.message == "function name 'my function' is not allowed: 1-64 letters, digits, - or _"


def test_bad_stage_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "rest_apis:\n"  # 1
        "  api:\n"  # 2
        "    stages:\n"  # 3
        "      prod: {}\n"  # 4
        "      'pr.od': {}\n",  # 5
    )
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 5, "rest_apis.api.stages.pr.od")
    assert p.message == "stage name 'pr.od' is not allowed: letters, digits, - or _"


STAGE_HEAD = "rest_apis:\n  api:\n    stages:\n      prod:\n        variables:\n"  # variables: line 5


def test_bad_stage_variable_name(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", STAGE_HEAD + "          lambdaAlias: prod\n          bad-name: x\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 7, "rest_apis.api.stages.prod.variables.bad-name")
    assert p.message == "stage variable name 'bad-name' is not allowed: letters, digits or _"


@pytest.mark.parametrize("value", ["'has space'", "'semi;colon'", "''"])
def test_bad_stage_variable_value(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "x.yaml", STAGE_HEAD + f"          alias: {value}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 5, "rest_apis.api.stages.prod.variables")
    assert p.message == f"stage variable alias={value.strip(chr(39))!r} has characters API Gateway does not allow"


def test_stage_variable_numbers_become_strings(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", STAGE_HEAD + "          timeout: 30\n          ratio: 0.5\n          url: 'https://x.example/a?b=c'\n")
    variables = load_spec(tmp_path).rest_apis["api"].spec.stages["prod"].variables
    assert variables == {"timeout": "30", "ratio": "0.5", "url": "https://x.example/a?b=c"}


MAPPING_HEAD = (
    "rest_apis:\n  api:\n    stages:\n      prod: {}\n"  # 1-4 (stage prod on line 4)
    "domains:\n  d.example.com:\n    mappings:\n"  # 5-7
)


@pytest.mark.parametrize("base_path", ["/v1", "v1/", "'a b'", "v1//v2"])
def test_bad_base_path(tmp_path: Path, base_path: str) -> None:
    path = write(tmp_path, "x.yaml", MAPPING_HEAD + f"      {base_path}: {{api: api, stage: prod}}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 8, f"domains.d.example.com.mappings.{base_path.strip(chr(39))}")
    assert p.message == f"base path {base_path.strip(chr(39))!r} is not allowed: '(none)' or a path like 'v1'"


def test_good_base_paths(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", MAPPING_HEAD + "      (none): {api: api, stage: prod}\n      v1/orders: {api: api, stage: prod}\n")
    assert set(load_spec(tmp_path).domains["d.example.com"].spec.mappings) == {"(none)", "v1/orders"}


# --------------------------------------------------------------------------- references


def test_mapping_to_undeclared_api(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", MAPPING_HEAD + "      v1: {api: api, stage: prod}\n      v2: {api: other, stage: prod}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 9, "domains.d.example.com.mappings.v2.api")
    assert p.message == "REST API 'other' is not declared under rest_apis"


def test_mapping_to_undeclared_stage(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", MAPPING_HEAD + "      v1: {api: api, stage: dev}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(path), 8, "domains.d.example.com.mappings.v1.stage")
    assert p.message == f"stage 'dev' is not declared for REST API 'api' (at {path}:2)"


def test_mapping_may_reference_an_api_in_another_file(tmp_path: Path) -> None:
    write(tmp_path, "apis.yaml", "rest_apis:\n  api:\n    stages:\n      prod: {}\n")
    domains = write(tmp_path, "domains.yaml", "domains:\n  d.example.com:\n    mappings:\n      v1: {api: api, stage: prod}\n")
    spec = load_spec(tmp_path)
    assert spec.source_of("domains", "d.example.com", "mappings", "v1") == f"{domains}:4"


def test_invalid_api_file_does_not_cause_false_not_declared_problems(tmp_path: Path) -> None:
    apis = write(
        tmp_path,
        "a.yaml",
        "rest_apis:\n  api:\n    stages:\n      'bad name': {}\n      prod: {}\n",
    )
    write(tmp_path, "b.yaml", "domains:\n  d.example.com:\n    mappings:\n      v1: {api: api, stage: prod}\n")
    problems = problems_of(tmp_path)
    # The only real problem is the stage name; REST API 'api' *is* declared (a.yaml:2).
    assert [(p.file, p.line, p.field) for p in problems] == [(str(apis), 4, "rest_apis.api.stages.bad name")]


# --------------------------------------------------------------------------- merging files


@pytest.mark.parametrize(
    ("section", "name", "label"),
    [("functions", "f", "function"), ("rest_apis", "api", "REST API"), ("domains", "d.example.com", "domain")],
)
def test_same_item_declared_in_two_files(tmp_path: Path, section: str, name: str, label: str) -> None:
    first = write(tmp_path, "a.yaml", f"{section}:\n  {name}: {{}}\n")  # name on line 2
    second = write(tmp_path, "sub/b.yml", f"# again\n\n{section}:\n  {name}: {{}}\n")  # name on line 4
    p = only_problem(tmp_path)
    assert (p.file, p.line, p.field) == (str(second), 4, f"{section}.{name}")
    assert p.message == f"{label} {name} is declared twice: {first}:2 and {second}:4"


def test_problems_in_several_files_are_all_reported(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a.yaml",
        "functions:\n"  # 1
        "  f:\n"  # 2
        "    aliases:\n"  # 3
        "      prod: {version: v1}\n"  # 4 bad version
        "      dev: {version: 1, colour: red}\n",  # 5 unknown field
    )
    b = write(tmp_path, "b.yaml", "rest_apis:\n  api: {stages: {prod: {}}\n")  # 2: unterminated flow mapping
    c = write(tmp_path, "c.yaml", "domains:\n  d.example.com:\n    mappings:\n      v1: {api: nope, stage: prod}\n")
    d = write(tmp_path, "d.yaml", "- not a mapping\n")
    problems = problems_of(tmp_path)
    where = [(p.file, p.line, p.field) for p in problems]
    assert sorted(where) == sorted(
        [
            (str(a), 4, "functions.f.aliases.prod.version"),
            (str(a), 5, "functions.f.aliases.dev.colour"),
            (str(b), 3, ""),
            (str(c), 4, "domains.d.example.com.mappings.v1.api"),
            (str(d), 1, ""),
        ]
    ), [str(p) for p in problems]
    assert problems[-1].field == "domains.d.example.com.mappings.v1.api"  # references are checked last


# --------------------------------------------------------------------------- YAML features


def test_yaml_merge_key_is_supported_or_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "rest_apis:\n"  # 1
        "  api:\n"  # 2
        "    stages:\n"  # 3
        "      prod: &stage {variables: {lambdaAlias: prod}, description: p}\n"  # 4
        "      dev:\n"  # 5
        "        <<: *stage\n"  # 6
        "        description: d\n",  # 7
    )
    try:
        spec = load_spec(tmp_path)
    except SpecInvalid as exc:
        assert [(p.file, p.line) for p in exc.problems] == [(str(path), 6)]
    else:
        dev = spec.rest_apis["api"].spec.stages["dev"]
        assert dev.variables == {"lambdaAlias": "prod"} and dev.description == "d"


def test_unknown_yaml_tag_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "functions:\n  f:\n    aliases:\n      prod: {version: !ref x}\n")
    p = only_problem(tmp_path)
    assert (p.file, p.line) == (str(path), 4)
    assert "!ref" in p.message


def test_yaml_anchor_and_alias_are_expanded(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", "rest_apis:\n  api:\n    stages:\n      prod: &s {variables: {lambdaAlias: live}}\n      dev: *s\n")
    stages = load_spec(tmp_path).rest_apis["api"].spec.stages
    assert stages["dev"].variables == {"lambdaAlias": "live"} == stages["prod"].variables


# --------------------------------------------------------------------------- the example and the schema


def test_example_desired_state_loads_with_sources() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    assert [Path(f).name for f in spec.files] == ["catalog.yaml", "getreport.yaml", "products.yaml", "users.yaml"]
    # postUser and listItems are declared by the versions of users-api and catalog-api.
    assert set(spec.functions) == {"getreport", "getProducts", "getProductsV2", "postUser", "listItems"}
    assert set(spec.rest_apis) == {"getreport-api", "products-v1", "products-v2", "users-api", "catalog-api"}
    assert set(spec.domains) == {"myapi.com", "dev.myapi.com"}
    # `version: 3` (a YAML integer) is the string "3".
    assert spec.functions["getProducts"].spec.aliases["prod"].version == "3"
    assert spec.functions["getreport"].spec.aliases["dev"].version == "$LATEST"
    getreport = EXAMPLE_SPEC / "getreport.yaml"
    assert spec.functions["getreport"].source == f"{getreport}:5"
    assert spec.source_of("functions", "getreport", "aliases", "prod") == f"{getreport}:7"
    mapping = spec.domains["dev.myapi.com"].spec.mappings["v2"]
    assert (mapping.api, mapping.stage) == ("products-v2", "dev")


def test_json_schema_describes_alias_version() -> None:
    schema = json_schema()
    assert isinstance(schema, dict)
    assert schema["title"] == "Pointsman spec file"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"functions", "rest_apis", "domains", "windows"}
    alias = schema["$defs"]["AliasSpec"]
    assert "version" in alias["properties"]
    assert alias["required"] == ["version"]
    assert alias["additionalProperties"] is False


@pytest.mark.parametrize("name", ["getreport.yaml", "products.yaml"])
def test_json_schema_accepts_the_example_files(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load((EXAMPLE_SPEC / name).read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in jsonschema.Draft202012Validator(json_schema()).iter_errors(document)]
    assert errors == []
