"""The bench's sampler runs in a process of its own (so it never holds the measured
process's GIL) and still sees a child's peak memory and CPU."""

from __future__ import annotations

import subprocess
import sys

from stream.bench.sampler import Sampler

# Touches 200 MiB, frees it, burns 0.5 s of CPU, then says so and waits for stdin to close.
CHILD = """
import sys, time
block = bytearray(b"x") * (200 << 20)
del block
while time.process_time() < 0.5:
    pass
print("done", flush=True)
sys.stdin.read()
"""


def test_sampler_sees_a_childs_peak_after_it_is_freed_and_its_cpu() -> None:
    # A long interval: only the first tick and the last one (taken when the block ends)
    with Sampler(interval=60.0) as sampler:
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
    child.communicate("")
    assert sampler.peak_workers[child.pid] >= 200 << 20  # the high-water mark, freed long before the tick
    assert sampler.cpu_seconds()[child.pid] >= 0.45
    assert sampler.peak_main > 0 and sampler._proc is not None
    assert sampler._proc.pid not in sampler.peak_workers  # the sampler does not measure itself
    assert 0 < sampler.cpu_utilisation() <= 1.0


def test_peaks_are_the_blocks_not_the_processs_lifetime() -> None:
    import psutil

    before = psutil.Process().memory_info().rss
    block = bytearray(b"x") * (300 << 20)  # this process's peak, before the block
    del block
    with Sampler(interval=60.0) as sampler:
        pass
    assert sampler.peak_main < before + (150 << 20)
