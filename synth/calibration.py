"""How often real Warp code uses each builtin: the weights the generator draws builtins by.

``real_profile.json`` beside this module holds, for every builtin, the share of real
kernels that use it (``metadata.builtins`` as ``synth.metadata.analyse`` computes it),
measured on datasets made with ``jitsynth ingest`` (Warp's own examples and tests). The
generator draws a builtin with weight ``share + FLOOR``: common operations dominate as
they do in real code, and the floor keeps every builtin it can emit in reach (coverage).

Regenerate after a Warp upgrade or a change to metadata:

    jitsynth ingest warp.examples warp.tests --out ./real
    python -m synth.calibration ./real
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

PROFILE = Path(__file__).with_name("real_profile.json")
FLOOR = 0.01  # a builtin real code never uses still gets this weight


@lru_cache(maxsize=1)
def real_shares() -> dict[str, float]:
    return json.loads(PROFILE.read_text())["builtins"]


def builtin_weight(name: str) -> float:
    return real_shares().get(name, 0.0) + FLOOR


def profile(urls: list[str]) -> dict:
    """The profile of the real records at ``urls`` (metadata recomputed from the source,
    so records ingested by an older metadata version count the same way)."""
    from sinks.reader import iter_records
    from synth.metadata import analyse

    used: Counter[str] = Counter()
    kernels = 0
    for url in urls:
        for record in iter_records(url):
            used.update(analyse(record["python_source"], record["kernel_name"]).builtins)
            kernels += 1
    shares = {name: round(n / kernels, 5) for name, n in sorted(used.items())}
    return {"kernels": kernels, "sources": "jitsynth ingest warp.examples warp.tests", "builtins": shares}


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m synth.calibration DATASET_URL...")
    PROFILE.write_text(json.dumps(profile(argv), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
