"""The long-running controller: follow a git branch and keep AWS matching it.

Concepts:

- the **runner** (:mod:`controller.loop.runner`) schedules reconciles (interval, push webhook,
  a new commit found by polling, an event), one at a time, and stops cleanly on SIGTERM;
- the **git source** (:mod:`controller.loop.gitsource`) clones once and exports exact commits;
- **events** (:mod:`controller.loop.events`, :mod:`controller.loop.consumer`): CloudTrail events
  from an SQS queue name the live reads a console change made stale, reconciled in seconds;
- **history** (:mod:`controller.loop.history`) keeps every run in SQLite, **notifications**
  (:mod:`controller.loop.notify`) tell Slack or a webhook when the state changes, **metrics**
  (:mod:`controller.loop.metrics`) count for Prometheus;
- **leases** (:mod:`controller.loop.leases`): replicas share the targets through a DynamoDB table
  (a lease per target, fenced writes, shared state per target); not used by the runner yet;
- **settings** (:mod:`controller.loop.settings`): flags, then ``POINTSMAN_*``, then defaults;
- :mod:`controller.loop.view`: the small typed interface the web layer serves (``LoopView``).

The loop never imports the web layer: :mod:`controller.app` hands the runner its HTTP server.
"""
