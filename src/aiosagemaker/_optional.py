"""Optional dependencies (numpy, pandas, scipy), imported only when a feature needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["NUMPY_HINT", "PANDAS_HINT", "SCIPY_HINT", "import_optional"]

NUMPY_HINT = "pip install 'aiosagemaker[numpy]'"
PANDAS_HINT = "pip install 'aiosagemaker[pandas]'"
SCIPY_HINT = "pip install scipy"


def import_optional(name: str, install_hint: str, user: str) -> ModuleType:
    """Import an optional dependency, or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"{user} needs {name.split('.')[0]}, which is not installed: {install_hint}"
        ) from exc
