"""A changed value as people read it: short values on one line as before, long text (the
generated mapping templates) as a diff or as ``generated template, N lines``, never as one
JSON-escaped line; an environment value stays a digest."""

from __future__ import annotations

from controller.engine.pipeline import Result
from controller.model import Drift, DriftStatus, FieldChange
from controller.sensitive import Sensitive
from controller.versions.selection import Selector
from controller.versions.templates import request_template
from controller.views.report import render
from controller.views.values import LONG_TEXT, change, format_value, is_long_text, md_details, text_lines

LIVE = request_template(Selector(header="Version"))
GIT = request_template(Selector(header="Api-Version"))
FIELD = "integration.request_template"


def test_long_text_is_a_newline_or_more_than_the_limit() -> None:
    assert is_long_text("a\nb") and is_long_text("x" * (LONG_TEXT + 1))
    assert not is_long_text("x" * LONG_TEXT) and not is_long_text(None) and not is_long_text(["a\nb"])
    assert not is_long_text(Sensitive("a\n" * 200))  # a digest, whatever its value


def test_a_changed_template_is_a_unified_diff_with_a_summary() -> None:
    c = change(FIELD, LIVE, GIT)
    assert c.line == f"{FIELD}: generated template changed (+3 -3 lines)"
    assert c.diff[:2] == ("--- live", "+++ git") and c.diff[2].startswith("@@ ")
    assert '-#if($pmName.toLowerCase() == "version")##' in c.diff
    assert '+#if($pmName.toLowerCase() == "api-version")##' in c.diff
    assert len(c.diff) < 30  # a few lines of context, not the 80-line template twice
    assert (c.added, c.removed) == (3, 3)
    assert {cls for cls, _ in c.diff_rows} == {"head", "hunk", "add", "del", "ctx"}
    lines = text_lines(c, "  ")
    assert lines[0] == f"  {FIELD}: generated template changed (+3 -3 lines)"
    assert all(line.startswith("      ") for line in lines[1:]) and lines[1] == "      --- live"
    assert not any("\\n" in line for line in lines)
    # A text that is not a template is "text".
    assert change("description", "a\nb", "a\nc").summary == "text changed (+1 -1 lines)"


def test_a_template_on_one_side_is_its_line_count() -> None:
    c = change(FIELD, None, GIT)
    n = len(GIT.splitlines())
    assert c.line == f"{FIELD}: (none) -> generated template, {n} lines"
    assert c.text == tuple(GIT.splitlines()) and not c.diff and c.text_side == "desired"
    assert len(text_lines(c, "")) == 1 + n  # the plan shows the lines under it
    assert text_lines(c, "", text_up_to=1) == [c.line]  # history and status: the summary
    gone = change("response.400.template", "a\nb", None)
    assert gone.summary == "generated template, 2 lines -> (none)" and gone.text_side == "live"
    assert text_lines(gone, "", text_up_to=2) == [gone.line, "    a", "    b"]
    # One line on one side (an integration URI of a missing method) is shown as it is.
    uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/" + "x" * 100
    assert change("integration.uri", None, uri).line == f'integration.uri: (none) -> "{uri}"'
    # Changed, it is a diff of one line.
    assert change("integration.uri", uri, uri + "y").diff[-2:] == ("-" + uri, "+" + uri + "y")


def test_short_values_read_as_before() -> None:
    assert change("version", "1", "3").line == 'version: "1" -> "3"'
    assert change("routing", {}, {"4": 0.1}).line == 'routing: {} -> {"4": 0.1}'
    assert change("codes", ["200"], ["200", "400"]).line == 'codes: ["200"] -> ["200", "400"]'
    assert change("timeout", None, 3).line == "timeout: (none) -> 3"
    assert not change("version", "1", "3").long and text_lines(change("version", "1", "3"), "  ") == ['  version: "1" -> "3"']
    assert md_details("x", change("version", "1", "3")) == []


def test_an_environment_value_stays_a_digest() -> None:
    secret = Sensitive("line one\n" * 40)
    c = change("environment", {"KEY": Sensitive("short")}, {"KEY": secret})
    assert not c.long and secret.digest in c.line and "line one" not in c.line
    single = change("environment.KEY", Sensitive("a"), secret)
    assert single.line == f"environment.KEY: {Sensitive('a').digest} -> {secret.digest}"
    # Only --show-values reveals it (and then a long value is a diff like any text).
    shown = change("environment.KEY", Sensitive("line one\n"), secret, show_values=True)
    assert shown.long and "line one" in "\n".join(shown.diff)
    assert format_value({"KEY": secret}) == f'{{"KEY": "{secret.digest}"}}'


def test_markdown_details_fence_the_diff() -> None:
    c = change(FIELD, LIVE, GIT)
    block = md_details(f"rest_method/api/POST/users {FIELD}", c)
    assert block[0] == f"<details><summary>rest_method/api/POST/users {FIELD}: generated template changed (+3 -3 lines)</summary>"
    assert block[2] == "```diff" and block[-3] == "```" and block[-1] == "</details>"
    fenced = md_details("f", change("template", "a\n```\nb", "a\n```\nc"))
    assert fenced[2] == "````diff" and fenced[-3] == "````"  # longer than any backtick run inside
    one = md_details("m template", change("template", None, "a\nb"))
    assert one[0] == "<details><summary>m template: generated template, 2 lines (show)</summary>"


def test_the_text_plan_shows_the_diff_under_the_field() -> None:
    drift = Drift(
        "rest_method/api/POST/users", "rest_method", DriftStatus.MODIFIED, (FieldChange(FIELD, LIVE, GIT), FieldChange("integration.type", "AWS", "HTTP"))
    )
    text = render(Result(drift=[drift]), fmt="text", mode="plan")
    assert f"      {FIELD}: generated template changed (+3 -3 lines)\n          --- live\n          +++ git\n" in text
    assert '      integration.type: "AWS" -> "HTTP"' in text
    assert "\\n" not in text and "#set(" in text
