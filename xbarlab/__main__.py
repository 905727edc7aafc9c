"""``python -m xbarlab``: the ``xbarlab`` command (`xbarlab.cli`)."""

from xbarlab.cli import main

raise SystemExit(main())
