"""One reconcile: the pipeline from git and live AWS to the calls that make AWS match git.

Concepts, in the order a reconcile runs them:

- **observe**: each kind reads its live instances in the managed scope (:mod:`controller.live`);
- **desired**: each kind derives its resources from the spec (and expands what the spec implies,
  such as the invoke permissions of a stage);
- **diff** (:mod:`controller.engine.diff`): desired against live, per field: ``missing``,
  ``modified`` (with the fields that differ) and ``extra``; only what the spec sets is compared;
- **plan** (:mod:`controller.engine.plan`): drift becomes ordered actions: by the kinds' apply
  waves, make-before-break, deletions only with prune and only after their users moved
  (a deletion whose user stays is held and reported);
- **apply** (:mod:`controller.engine.apply`): the actions run in order; a failed action skips
  what requires it and the outcome says exactly what was and was not done;
- the **pipeline** (:mod:`controller.engine.pipeline`) wires them in one screen;
  :mod:`controller.engine.iam` prints the least-privilege policy the kinds declare.

The engine is generic: AWS specifics live in :mod:`controller.kinds`.
"""
