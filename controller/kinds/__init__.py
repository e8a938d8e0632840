"""The kinds Pointsman manages, one module each, registered here in apply order.

A kind (:class:`~controller.kinds.base.Kind`) is everything Pointsman knows about one sort of AWS
object: its key, the attributes compared, how to derive desired instances from the spec, how to
read live ones through the scope, the calls that converge or delete one, the IAM actions those
calls need, and its wave in the apply order (deletions run in reverse). The engine, the diff,
the plan and the report are generic; adding a kind is adding a module here (CONTRIBUTING.md
walks through it).
"""

from __future__ import annotations

from controller.kinds.base import Kind, PlanContext, PlanProblem
from controller.kinds.base_path_mapping import BasePathMapping
from controller.kinds.lambda_alias import LambdaAlias
from controller.kinds.lambda_function_config import LambdaFunctionConfig
from controller.kinds.lambda_permission import LambdaPermission
from controller.kinds.lambda_version import LambdaVersion
from controller.kinds.rest_api import RestApi
from controller.kinds.rest_deployment import RestDeployment
from controller.kinds.rest_method import RestMethod
from controller.kinds.rest_stage import RestStage

KINDS: tuple[Kind, ...] = (
    RestApi(),
    LambdaFunctionConfig(),
    LambdaVersion(),
    LambdaAlias(),
    LambdaPermission(),
    RestMethod(),
    RestDeployment(),
    RestStage(),
    BasePathMapping(),
)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}

__all__ = ["KINDS", "BY_NAME", "Kind", "PlanContext", "PlanProblem"]
