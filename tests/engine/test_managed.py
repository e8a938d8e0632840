"""Result.managed: every resource git declares, with the file:line that declares it and what
the run read of it in AWS (None when it is missing); and the entries /api/status makes of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.aws.clients import AwsClients
from controller.engine.pipeline import Managed
from controller.kinds import KINDS, PlanContext
from controller.live.scope import Scope
from controller.model import Resource
from controller.sensitive import Sensitive
from controller.spec import load_spec
from controller.views.managed import managed_entries
from tests.conftest import run
from tests.engine.test_clone import _add_v3


def declared(spec_dir: Path, clients: AwsClients) -> list[Resource]:
    """The desired resources, computed apart from the pipeline."""
    ctx = PlanContext(load_spec(spec_dir), Scope(clients))
    return [r for kind in KINDS for r in kind.desired(ctx)]


def line_of(spec_dir: Path, source: str) -> str:
    path, line = source.rsplit(":", 1)
    return (spec_dir / Path(path).name).read_text().splitlines()[int(line) - 1]


def test_in_sync_every_desired_resource_is_managed_with_its_source_and_live_value(converged: Any, clients: AwsClients, spec_dir: Path) -> None:
    result = run(spec_dir, clients)
    assert result.in_sync
    desired = declared(spec_dir, clients)
    assert [m.id for m in result.managed] == [r.id for r in desired]
    assert {m.kind for m in result.managed} >= {"lambda_alias", "lambda_permission", "rest_stage", "rest_method", "base_path_mapping"}
    for m in result.managed:
        assert m.live is not None, m.id
        assert {k: m.live.attributes.get(k) for k in m.desired.attributes} == dict(m.desired.attributes), m.id
        assert m.source and m.source.split(":")[0].endswith(".yaml") and m.source.rsplit(":", 1)[1].isdigit(), (m.id, m.source)
    prod = next(m for m in result.managed if m.id == "lambda_alias/getProducts/prod")
    assert prod.source is not None and prod.source.endswith("products.yaml:7")
    assert line_of(spec_dir, prod.source).strip().startswith("prod: {version: 3")
    assert prod.live is not None and prod.live.attributes["version"] == "3"


def test_a_changed_and_a_deleted_alias_show_their_live_state(converged: Any, clients: AwsClients, spec_dir: Path) -> None:
    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    clients.lambda_.delete_alias(FunctionName="getreport", Name="dev")
    result = run(spec_dir, clients)
    by_id = {m.id: m for m in result.managed}
    prod = by_id["lambda_alias/getProducts/prod"]
    assert prod.live is not None and prod.live.attributes["version"] == "1" and prod.desired.attributes["version"] == "3"
    assert by_id["lambda_alias/getreport/dev"].live is None
    entries = {e["resource"]: e for e in managed_entries(result.managed, [d.as_dict() for d in result.drift], [d.as_dict() for d in result.drift])}
    assert entries["lambda_alias/getProducts/prod"]["status"] == "differs"
    assert entries["lambda_alias/getProducts/prod"]["live"]["version"] == '"1"'
    assert entries["lambda_alias/getreport/dev"] == {
        "resource": "lambda_alias/getreport/dev",
        "kind": "lambda_alias",
        "source": by_id["lambda_alias/getreport/dev"].source,
        "status": "missing",
        "live": None,
    }
    assert entries["lambda_alias/getProductsV2/prod"]["status"] == "in_sync"


def test_after_a_clone_the_second_pass_reads_are_kept_with_the_first(converged: Any, clients: AwsClients, spec_dir: Path) -> None:
    _add_v3(spec_dir)
    result = run(spec_dir, clients, apply=True)
    assert not result.failed
    ids = [m.id for m in result.managed]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r.id for r in declared(spec_dir, clients)}
    by_id = {m.id: m for m in result.managed}
    # The second pass read the clone's API id: its stage, permission and mapping are there.
    for rid in ("rest_stage/products-v3/prod", "base_path_mapping/myapi.com/v3", "lambda_permission/getProductsV2/prod/products-v3"):
        assert rid in by_id, rid
        assert by_id[rid].source is not None and "products.yaml" in by_id[rid].source
    assert by_id["lambda_alias/getProducts/prod"].live is not None


def test_entries_read_as_people_read_them() -> None:
    template = "\n".join(f"line {i}" for i in range(42))
    method = Resource(
        "rest_method",
        "users-api/POST/users",
        {"integration.request_template": template, "response.200.template": "a\nb", "integration.type": "AWS"},
        source="desired_state/users.yaml:12",
    )
    config = Resource("lambda_function_config", "fn", {"environment": {"TOKEN": Sensitive("s3cret")}}, source="desired_state/fn.yaml:3")
    stage = Resource("rest_stage", "api/prod", {"description": "x" * 500}, source="desired_state/api.yaml:5")
    alias = Resource("lambda_alias", "fn/prod", {"version": "3"}, source="desired_state/fn.yaml:4")
    managed = [
        Managed(method, method),
        Managed(config, config),
        Managed(stage, Resource("rest_stage", "api/prod", {"description": "y" * 500, "deployment": "d1"})),
        Managed(alias, Resource("lambda_alias", "fn/prod", {"version": "1"})),
    ]
    found = [{"resource": "lambda_alias/fn/prod", "status": "modified"}, {"resource": "stage_variable/api/prod/debug", "parent": "rest_stage/api/prod"}]
    entries = managed_entries(managed, found, [])
    by_id = {e["resource"]: e for e in entries}
    live = by_id["rest_method/users-api/POST/users"]["live"]
    assert live == {
        "integration.request_template": "generated template, 42 lines",
        "response.200.template": "generated template, 2 lines",
        "integration.type": '"AWS"',
    }
    env = by_id["lambda_function_config/fn"]["live"]["environment"]
    assert "s3cret" not in env and Sensitive("s3cret").digest in env
    # Healed by the run: the values it wrote, and an extra entry healed counts for its stage.
    assert by_id["lambda_alias/fn/prod"] == {
        "resource": "lambda_alias/fn/prod",
        "kind": "lambda_alias",
        "source": "desired_state/fn.yaml:4",
        "status": "healed",
        "live": {"version": '"3"'},
    }
    assert by_id["rest_stage/api/prod"]["status"] == "healed"
    # Only the fields git sets; a long value is cut and its length said.
    still = managed_entries(managed, found, found)
    stage_live = {e["resource"]: e for e in still}["rest_stage/api/prod"]
    assert stage_live["status"] == "differs" and set(stage_live["live"]) == {"description"}
    assert stage_live["live"]["description"].endswith("... (502 characters)") and len(stage_live["live"]["description"]) < 260
