"""Pointsman: GitOps controller for versioned serverless APIs on AWS.

The packages are floors: each imports only the ones below it (``make lint`` checks it).

- :mod:`controller.cli` — the ``pointsman`` command line (top floor);
- :mod:`controller.demo` — ``pointsman demo``: the embedded emulator and the example estate;
- :mod:`controller.app` — the running service: the loop wired to its HTTP server;
- :mod:`controller.web` — what people open in a browser: status page, API, webhook, metrics;
- :mod:`controller.loop` — the long-running controller: git, schedule, events, history, notifications;
- :mod:`controller.views` — what people read: the plan report, the routing view, ``explain``;
- :mod:`controller.engine` — one reconcile: observe, diff, plan, apply;
- :mod:`controller.kinds` — one module per AWS kind Pointsman manages;
- :mod:`controller.live` — what Pointsman reads of AWS, once per reconcile;
- :mod:`controller.spec` — what git declares: spec files, validation, the JSON schema;
- :mod:`controller.versions` — API versions by header or media type: selection, templates, renderer;
- :mod:`controller.aws` — the one way to talk to AWS: clients, call counting, pacing;
- :mod:`controller.model`, :mod:`controller.sensitive`, :mod:`controller.logs` — the values that
  flow through the pipeline, secrets that never print, log setup (the ground floor).
"""

__version__ = "0.1.0"
