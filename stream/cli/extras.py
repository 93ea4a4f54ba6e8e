"""The ``data`` extra: the dataset tools' heavy libraries, left out of the producer's install.

``pip install jitsynth`` (and the container image) holds what the producer needs: ``run``,
``ingest``, ``sample``, ``read``, ``verify``, ``stats``, the exact ``dedup`` pass. Three
features need more, from ``pip install 'jitsynth[data]'`` (pyproject.toml's ``data`` extra,
the same four distributions as below). Their commands check up front, before touching the
dataset, so a missing library is one line naming the extra (exit 2) instead of a traceback
halfway through a pass. The libraries themselves are imported only inside those features.
"""

from __future__ import annotations

import importlib.util

INSTALL_DATA_EXTRA = "pip install 'jitsynth[data]'"

# feature -> the top-level modules it imports (each module is its distribution's name)
NEAR_DUPLICATES = ("datasketch", "scipy")  # MinHash LSH, connected components
PARQUET = ("pyarrow",)
PLOTS = ("matplotlib",)
DATA_EXTRA_MODULES = (*NEAR_DUPLICATES, *PARQUET, *PLOTS)


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` this interpreter cannot import (found without importing them)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def missing_data_extra(feature: str, modules: tuple[str, ...], hint: str = "") -> str | None:
    """The one-line error for ``feature`` when a library it needs is missing, else None."""
    missing = missing_modules(modules)
    if not missing:
        return None
    return (f"{feature} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            f"{INSTALL_DATA_EXTRA}{hint}")
