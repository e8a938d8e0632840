"""``python -m controller.cli``: the ``pointsman`` command."""

from controller.cli.main import main

raise SystemExit(main())
