"""The embedded AWS emulator: moto, in-process or as a server on 127.0.0.1.

moto is a test/demo dependency only (``pip install pointsman[emulator]``); nothing else in
Pointsman imports this module. ``fix_moto_gaps`` patches moto behaviour that differs from
AWS in ways Pointsman depends on, so the demo and the tests see what AWS would answer.
"""

from __future__ import annotations

import copy
import json
from typing import Any

_FIXED = False


def fix_moto_gaps() -> None:
    """Make moto answer like AWS where Pointsman relies on it (idempotent).

    - GetBasePathMappings on a custom domain with no mappings yet: AWS answers an empty
      list; moto 5.2 raises KeyError (an internal error in server mode).
    - CreateRestApi with cloneFrom: AWS copies the source API's resources, methods and
      integrations; moto 5.2 ignores cloneFrom and makes an empty API.
    - UpdateMethod: moto 5.2 does not implement it (PutMethod on an existing method is a
      ConflictException on AWS, so it is no substitute). The patch operations on
      ``/requestParameters/<method.request.*>`` (add, replace, remove) are emulated.
    """
    global _FIXED
    if _FIXED:
        return
    from moto.apigateway import models
    from moto.apigateway.exceptions import DomainNameNotFound

    def get_base_path_mappings(self: Any, domain_name: str) -> list[Any]:
        if domain_name not in self.domain_names:
            raise DomainNameNotFound()
        return list(self.base_path_mappings.get(domain_name, {}).values())

    models.APIGatewayBackend.get_base_path_mappings = get_base_path_mappings  # type: ignore[method-assign]

    from moto.apigateway import responses

    create_rest_api = responses.APIGatewayResponse.create_rest_api

    def create_rest_api_with_clone(self: Any) -> Any:
        status, headers, body = create_rest_api(self)
        source_id = self._get_param("cloneFrom")
        if source_id and status == 200:
            created = json.loads(body)
            source, clone = self.backend.get_rest_api(source_id), self.backend.get_rest_api(created["id"])
            clone.resources = copy.deepcopy(source.resources)
            for resource in clone.resources.values():
                resource.api_id = clone.id
        return status, headers, body

    responses.APIGatewayResponse.create_rest_api = create_rest_api_with_clone  # type: ignore[method-assign]

    def update_method(self: Any) -> Any:
        parts = self.path.split("/")
        method = self.backend.get_method(parts[2], parts[4], parts[6])
        for op in self._get_param("patchOperations") or []:
            path = str(op.get("path", ""))
            if not path.startswith("/requestParameters/"):
                continue  # only the request parameters are emulated
            name = path.removeprefix("/requestParameters/").replace("~1", "/").replace("~0", "~")
            params = dict(method.request_parameters or {})
            if op.get("op") == "remove":
                params.pop(name, None)
            else:
                params[name] = str(op.get("value", "false")).lower() == "true"
            method.request_parameters = params
        return json.dumps(method.to_json())

    responses.APIGatewayResponse.update_method = update_method  # type: ignore[attr-defined]
    _FIXED = True
