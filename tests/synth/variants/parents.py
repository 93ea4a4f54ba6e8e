"""Parents for the variants tests: a small package of real-looking kernels, ingested once
per test module the way users do (``jitsynth ingest``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import jitsynth, read_local_dataset


def ingested_parents(root: Path, module: str, source: str, kernel_names: list[str]) -> Path:
    """``source`` written as ``pkg/{module}.py`` under ``root`` and ingested into ``root/parents``."""
    (root / "pkg").mkdir()
    (root / "pkg" / f"{module}.py").write_text(textwrap.dedent(source))
    jitsynth("ingest", str(root / "pkg"), "--out", str(root / "parents"), "--workers", "1",
             "--state-dir", str(root / "state"), check=True)
    _, records = read_local_dataset(root / "parents")
    assert sorted(r["kernel_name"] for r in records) == sorted(kernel_names)
    return root / "parents"
