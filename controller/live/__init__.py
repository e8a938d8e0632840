"""What Pointsman reads of live AWS: the managed scope, read once per reconcile and cached.

:class:`~controller.live.scope.Scope` reads only what the spec manages (the declared functions,
REST APIs and domains), each read made once, in lanes paced per quota bucket; the kinds and the
views read through it and never call AWS for reads themselves. Read-only: nothing here writes.
"""
