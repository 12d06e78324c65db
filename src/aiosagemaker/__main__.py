"""``python -m aiosagemaker``: the ``aiosagemaker`` command."""

from ._cli import main

raise SystemExit(main())
