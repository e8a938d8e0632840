"""What people open in a browser or point a webhook at: the controller's HTTP server.

- :mod:`controller.web.server`: ``/`` (the status page), ``/runs/ID``, ``/api/status``,
  ``/api/history``, ``/healthz``, ``/readyz``, ``/metrics``, ``POST /webhook`` and
  ``POST /reconcile``, on a server bounded against slow and hostile clients;
- :mod:`controller.web.pages`: the status page and run pages from Jinja2 templates
  (``templates/``): the state after the last run, drift live beside git, the routing view;
- :mod:`controller.web.webhook`: push signatures (GitHub, GitLab, generic HMAC).

It serves whatever provides :class:`controller.loop.view.LoopView`.
"""
