"""The registry of managed kinds, in apply order (deletions run in reverse)."""

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
