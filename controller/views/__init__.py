"""What people read: the plan report, the routing view and ``pointsman explain``.

- :mod:`controller.views.report`: a reconcile's result as a review-ready text plan, JSON or a
  markdown PR comment (drift per field, the actions and why, warnings, the routing changes);
- :mod:`controller.views.routes` and :mod:`controller.views.routes_render`: the routing view,
  every domain, base path and stage as the chain a client's request follows, live beside git;
- :mod:`controller.views.explain`: one request resolved step by step, from URL to function
  version, as API Gateway and Lambda would (the 400 for an unknown version included).

Views only read: they take a result or read through the live scope, and never write to AWS.
"""
