"""The running service: the loop (``controller.loop``) with its HTTP server (``controller.web``).

The one place both are wired together, above both layers: the loop starts the server it is
given and knows it only as :class:`~controller.loop.view.HttpServer`; the server knows the loop
only as :class:`~controller.loop.view.LoopView`.
"""

from __future__ import annotations

from controller.loop.fleet import Fleet, wants_fleet
from controller.loop.runner import Controller, Runner
from controller.loop.settings import RunSettings
from controller.web.server import serve


def build_runner(settings: RunSettings, controller: Controller | None = None) -> Runner | Fleet:
    """A runner that serves the status page, the API, the webhook and the metrics while it runs:
    a fleet of targets when the spec at the branch's head is split into targets or replicas share
    the work through a lease table, else one controller."""
    if controller is None and wants_fleet(settings):
        return Fleet(settings, serve=serve)
    return Runner(settings, controller, serve=serve)
