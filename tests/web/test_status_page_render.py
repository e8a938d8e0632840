"""The status page's template on its own: large estates stay readable, values read as the CLI's."""

from __future__ import annotations

import re
import time
from typing import Any

from controller.loop.history import iso
from controller.web.pages import ago, run_page, status_page


def document(drift: list[dict[str, Any]], routes: list[dict[str, Any]], state: str = "drifted") -> dict[str, Any]:
    now = time.time()
    return {
        "repo": "https://example.com/estate.git",
        "branch": "main",
        "path": "desired_state",
        "mode": "detect",
        "prune": False,
        "state": state,
        "state_reason": "why",
        "now": "2026-12-02T12:00:00Z",
        "applied_commit": "a" * 40,
        "head_commit": "a" * 40,
        "head_valid": True,
        "commits": {
            "desired": {"sha": "a" * 40, "short": "aaaaaaa", "subject": "Promote <b>", "author": "Ann", "time": iso(now - 120)},
            "head": {"sha": "a" * 40, "short": "aaaaaaa", "subject": "Promote <b>", "author": "Ann", "time": iso(now - 120)},
        },
        "spec_errors": [],
        "git": {"reachable": True, "error": None, "last_ok": None},
        "running": None,
        "last_run": {"id": 7, "status": "drift", "trigger": "schedule", "started": iso(now - 5), "finished": iso(now - 4), "duration_s": 1.0, "age_s": 4.0},
        "next_run_at": None,
        "next_run_in_s": 42.0,
        "drift": drift,
        "healed_by_last_run": [],
        "routes": routes,
        "last_error": None,
        "ready": True,
        "ready_reason": "ok",
    }


def test_three_thousand_resources_are_grouped_and_the_quiet_groups_collapsed() -> None:
    drift = [
        {
            "resource": f"lambda_alias/fn{i:04d}/prod",
            "kind": "lambda_alias",
            "status": "modified",
            "changes": [{"field": "version", "live": "1", "desired": "2"}],
            "first_seen": "2026-12-02T11:00:00Z",
            "actions": [{"operation": "lambda.UpdateAlias", "outcome": "planned"}],
        }
        for i in range(30)
    ] + [{"resource": "stage_variable/api000/prod/debug", "kind": "stage_variable", "status": "extra", "changes": [], "actions": []}]
    routes = [
        {
            "entry": f"api{i // 30:03d}/prod",
            "api": f"api{i // 30:03d}",
            "chain": f"lambdaAlias=prod -> fn{i:04d}:prod",
            "live_text": "version 2",
            "desired_text": "version 2",
            "differs": i == 7,
            "text": "",
        }
        for i in range(3000)
    ]
    page = status_page(document(drift, routes), runs=[], can_reconcile=False)
    assert len(page) < 2_000_000
    groups = re.findall(r"<details class=\"group\" (open)?><summary>(api\d+) \((\d+) routes", page)
    assert len(groups) == 100
    # The API with a changed route is open; the 99 in sync are collapsed (30 routes each).
    assert [(name, bool(opened)) for opened, name, _ in groups if opened] == [("api000", True)]
    assert page.count('<tr class="differs" data-resource="api000/prod">') == 1
    assert "lambda_alias (30)" in page and "stage_variable (1)" in page
    assert 'version</code>: <span class="mono">&#34;1&#34;</span> -&gt; <span class="mono">&#34;2&#34;</span>' in page  # as the CLI: "1" -> "2"
    assert "not in git" in page  # an extra entry
    assert "Promote &lt;b&gt;" in page and "<b>Promote" not in page  # escaped
    assert "in 42 s" in page and "2 min ago" in page and "(schedule), 4 s ago, took 1.0 s" in page


def test_values_and_run_pages() -> None:
    assert ago(5) == "5 s" and ago(600) == "10 min" and ago(7200) == "2 h" and ago(3 * 86400) == "3 d"
    page = run_page(
        {
            "id": 3,
            "status": "applied",
            "trigger": "webhook:github",
            "mode": "apply",
            "started": "2026-12-02T12:00:00Z",
            "duration_s": 1.25,
            "commit_sha": "b" * 40,
            "head_sha": "b" * 40,
            "error": None,
            "count": 1,
            "drift": [
                {
                    "resource": "lambda_alias/f/prod",
                    "kind": "lambda_alias",
                    "status": "modified",
                    "changes": [{"field": "routing", "live": None, "desired": {"2": 0.1}}],
                }
            ],
            "actions": [{"resource": "lambda_alias/f/prod", "operation": "lambda.UpdateAlias", "outcome": "succeeded", "reason": "r"}],
            "api_calls": {"lambda.ListAliases": 1, "lambda.UpdateAlias": 1},
        }
    )
    assert "Run #3: healed" in page and "1.25 s" in page
    assert "(none)" in page and "{&#34;2&#34;: 0.1}" in page  # None and maps as the CLI prints them
    assert "AWS calls (2)" in page


def test_a_commit_links_to_its_web_page_on_github_and_gitlab() -> None:
    from controller.web.pages import commit_url

    sha = "0123456789abcdef0123456789abcdef01234567"
    assert commit_url("https://github.com/acme/estate.git", sha) == f"https://github.com/acme/estate/commit/{sha}"
    assert commit_url("git@github.com:acme/estate.git", sha) == f"https://github.com/acme/estate/commit/{sha}"
    assert commit_url("https://x-access-token:***@github.com/acme/estate", sha) == f"https://github.com/acme/estate/commit/{sha}"
    assert commit_url("ssh://git@gitlab.example.com/group/sub/estate.git", sha) == f"https://gitlab.example.com/group/sub/estate/-/commit/{sha}"
    for repo in ("/srv/estate", "file:///srv/estate", "https://example.com/estate.git", "git@github.com:estate.git"):
        assert commit_url(repo, sha) is None, repo
    assert commit_url("https://github.com/acme/estate", "HEAD; rm -rf") is None

    doc = document([], [])
    doc["repo"] = "https://github.com/acme/estate.git"
    page = status_page(doc, [], can_reconcile=False)
    assert f'<a href="https://github.com/acme/estate/commit/{"a" * 40}"><code title="{"a" * 40}">' in page
    doc["repo"] = "/srv/estate"
    assert "/commit/" not in status_page(doc, [], can_reconcile=False)  # a local repo: the sha, no link


def test_a_folded_run_is_shown_once_with_its_count_and_its_last_time() -> None:
    now = float(int(time.time()))  # whole seconds: the ISO times carry no fraction
    doc = document([], [])
    doc["last_run"] = {
        "id": 4,
        "status": "drift",
        "trigger": "schedule",
        "started": iso(now - 63),
        "finished": iso(now - 62),
        "duration_s": 1.0,
        "age_s": 10.0,
        "count": 6,
        "last_started": iso(now - 11),
        "last_finished": iso(now - 10),
    }
    run = {**doc["last_run"], "triggers": ["schedule"], "mode": "detect", "commit_sha": "a" * 40, "drift_count": 1, "actions": []}
    page = status_page(doc, [run], can_reconcile=False, now=now)
    last = re.search(r'<dd id="last-run">(.*?)</dd>', page, re.S)
    assert last is not None
    text = " ".join(re.sub(r"<[^>]+>", "", last.group(1)).split())
    assert text.startswith("#4 ×6: drifted (schedule), last 10 s ago"), text
    row = re.search(r'<tr><td><a href="/runs/4">#4</a>.*?</tr>', page[page.index('id="runs"') :], re.S)
    assert row is not None and "last 11 s ago" in row.group(0) and "63 s" not in row.group(0) and "1 min" not in row.group(0), row.group(0)


def test_five_thousand_managed_resources_are_grouped_by_kind_collapsed_and_capped() -> None:
    from controller.web.pages import MANAGED_ROWS

    def entry(kind: str, key: str, status: str = "in_sync", live: dict[str, str] | None = None) -> dict[str, Any]:
        return {"resource": f"{kind}/{key}", "kind": kind, "source": f"desired_state/{kind}.yaml:9", "status": status, "live": live}

    managed = [entry("lambda_alias", f"fn{i:04d}/prod", live={"version": '"3"'}) for i in range(4990)]
    managed[4321] = entry("lambda_alias", "fn4321/prod", "differs", {"version": '"1"'})
    managed += [entry("rest_stage", f"api{i}/prod", live={"description": '"<b>prod</b>"'}) for i in range(5)]
    managed += [entry("base_path_mapping", f"myapi.com/v{i}", live={"api": '"products-v1"'}) for i in range(25)]
    managed += [entry("rest_method", "api0/GET/items", "missing")]
    doc = document([], [], state="drifted")
    doc["managed"] = managed
    page = status_page(doc, [], can_reconcile=False)
    assert len(page) < 1_500_000
    assert "Managed resources: 5021 resources" in page and "(2 differ from git)" in page
    groups = dict(re.findall(r'<details class="group" data-kind="(\w+)" ?(open)?><summary>', page))
    # Open: what has a resource that differs, and the small groups; collapsed: the large quiet one.
    assert groups == {"base_path_mapping": "", "lambda_alias": "open", "rest_method": "open", "rest_stage": "open"}
    assert page.count(" data-resource=") == MANAGED_ROWS  # what differs, then what is in sync, up to the cap
    assert '<tr class="differs" data-resource="lambda_alias/fn4321/prod">' in page
    assert '<tr class="differs" data-resource="rest_method/api0/GET/items">' in page and "not in AWS" in page
    assert f"{5021 - MANAGED_ROWS} more resources in sync, not shown here" in page
    assert "&lt;b&gt;prod&lt;/b&gt;" in page and "<b>prod</b>" not in page
    assert "desired_state/<wbr>rest_stage.yaml:9" in page  # a line may break after the directory
