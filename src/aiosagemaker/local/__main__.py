"""``python -m aiosagemaker.local serve ...`` (same as ``aiosagemaker local serve ...``)."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main(["local", *sys.argv[1:]]))
