"""Record bytes of the default generator are pinned for seeds 0-99: the exact JSONL lines
the producer writes to shards (``Settings.generator_config()`` -> ``WorkerSettings`` ->
``init_worker`` -> ``process_batch``, as ``stream.pipeline.Producer`` runs them), hashed in
a fresh interpreter with a random hash seed.

A refactor (a move, a rename, a cleanup) must leave this digest alone. A change that alters
records on purpose bumps ``GENERATOR_VERSION`` and re-pins ``PINNED`` in the same commit.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PINNED = "e71e5a8266fa9b5de6bbb08befd37d52aab414c610b9806da8638153f970699d"

SCRIPT = """
import hashlib
from stream.config import Settings
from synth.worker import Failed, WorkerSettings, init_worker, process_batch

settings = Settings(out="unused", producer="0")
init_worker(WorkerSettings(settings.generator_config(), settings.producer, tuple(settings.validate_tiers)))
total, failed = hashlib.sha256(), []
for start in range(0, 100, 32):
    for outcome in process_batch(list(range(start, min(start + 32, 100)))):
        if isinstance(outcome, Failed):
            failed.append(outcome.seed)
        else:
            total.update(outcome.line)
print(total.hexdigest(), failed)
"""


def test_record_bytes_of_seeds_0_to_99_are_pinned() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JITSYNTH_")}
    env.update(PYTHONHASHSEED="random", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True)
    digest, failed = out.stdout.split(maxsplit=1)
    assert failed.strip() == "[]", f"seeds the worker rejected: {failed}"
    assert digest == PINNED, "record bytes changed: bump GENERATOR_VERSION and re-pin, or undo the change"
