"""Live progress of ``jitsynth run`` on a terminal (rich).

It polls the run's ``Metrics`` (the same counters Prometheus scrapes) from rich's own
refresh thread, and listens to log events for the last committed shard and the last
failure, so the pipeline knows nothing about it. Wiring is one ``with`` in the CLI:

    with progress_display(settings, metrics):
        anyio.run(main)

Shown: records committed (a bar against ``--count``, with an ETA), kernels/s over the
last few seconds, new records waiting in the open shard, duplicates, failures, the last
committed shard and the stored bytes. Log lines print above the display.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from stream.logs import add_tap, remove_tap, uses_json
from stream.dataset.stats import human_bytes

WINDOW_S = 10.0


def _value(metric: Any) -> float:
    """Current value of a prometheus_client Counter or Gauge (public collect API)."""
    for family in metric.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                return float(sample.value)
    return 0.0


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class ProgressDisplay:
    def __init__(self, metrics: Any, count: int | None = None, out: str = "", producer: str = "0",
                 console: Any | None = None, refresh_per_second: float = 4) -> None:
        from rich.console import Console

        self.metrics = metrics
        self.count = count
        self.out = out
        self.producer = producer
        self.console = console or Console(stderr=True)
        self.refresh_per_second = refresh_per_second
        self.started = time.monotonic()
        self.samples: deque[tuple[float, float, float]] = deque()  # (t, processed, accepted)
        self.last_shard: dict[str, Any] | None = None
        self.last_failure: str | None = None
        self.resumed_from: int | None = None
        self.live: Any = None

    # -- events from the log stream ----------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        if name == "committed":
            self.last_shard = event
        elif name in ("kernel failed", "seed failed"):
            self.last_failure = f"seed {event.get('seed')}: {str(event.get('reason', ''))[:100]}"
        elif name == "resumed":
            self.resumed_from = event.get("committed")

    # -- figures -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        m = self.metrics
        processed, dups, fails = _value(m.processed), _value(m.duplicates), _value(m.failures)
        records, committed = _value(m.records), _value(m.committed)
        accepted = processed - dups - fails
        now = time.monotonic()
        if processed == 0:
            self.samples.clear()  # the rate window starts with the first kernel, not at worker start-up
        self.samples.append((now, processed, accepted))
        while len(self.samples) > 2 and now - self.samples[0][0] > WINDOW_S:
            self.samples.popleft()
        t0, p0, a0 = self.samples[0]
        span = now - t0
        rate = (processed - p0) / span if span > 0.5 else 0.0
        accept_rate = (accepted - a0) / span if span > 0.5 else 0.0
        pending = max(accepted - records, 0)
        eta = None
        if self.count is not None and accept_rate > 0:
            eta = max(self.count - committed - pending, 0) / accept_rate
        return {"processed": int(processed), "duplicates": int(dups), "failures": int(fails),
                "committed": int(committed), "pending": int(pending), "shards": int(_value(m.shards)),
                "stored": int(_value(m.stored_bytes)), "kernels_per_s": rate, "eta_s": eta,
                "elapsed_s": now - self.started}

    def render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        s = self.snapshot()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        head = Text.assemble(("jitsynth run", "bold cyan"), f"  producer {self.producer}  →  {self.out}",
                             ("  elapsed ", "dim"), _clock(s["elapsed_s"]))
        grid.add_row("", head)
        if self.count is not None:
            done = min(s["committed"], self.count)
            bar = ProgressBar(total=self.count, completed=done, width=40)
            eta = "ETA " + (_clock(s["eta_s"]) if s["eta_s"] is not None else "--:--:--")
            line = Table.grid(padding=(0, 1))
            line.add_row(bar, Text(f"{done:,}/{self.count:,} ({100 * done / self.count:.0f}%)  {eta}"))
            grid.add_row("committed", line)
        else:
            grid.add_row("committed", f"{s['committed']:,} records (runs until SIGINT/SIGTERM)")
        processed = max(s["processed"], 1)
        grid.add_row("kernels/s", f"{s['kernels_per_s']:.1f}  ({s['processed']:,} processed, "
                                  f"{s['pending']:,} in the open shard)")
        grid.add_row("duplicates", f"{s['duplicates']:,}  ({100 * s['duplicates'] / processed:.1f}%)")
        grid.add_row("failures", Text(f"{s['failures']:,}  ({100 * s['failures'] / processed:.1f}%)",
                                      style="red" if s["failures"] else ""))
        shard = "none committed yet"
        if self.last_shard is not None:
            ev = self.last_shard
            shard = f"seq {ev.get('seq')} committed ({ev.get('records')} records)"
        grid.add_row("shard", f"{shard}; {s['shards']} this run, {human_bytes(s['stored'])} stored")
        if self.last_failure:
            grid.add_row("last failure", Text(self.last_failure, style="dim red"))
        return grid

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> ProgressDisplay:
        from rich.live import Live

        add_tap(self.on_event)
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=self.refresh_per_second,
                         transient=False, redirect_stdout=False, redirect_stderr=True)
        self.live.start(refresh=True)
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        remove_tap(self.on_event)
        if self.live is not None:
            if exc_type is not None and _value(self.metrics.processed) == 0:
                self.live.transient = True  # failed at start-up: leave only the error message
            else:
                self.live.refresh()
            self.live.stop()


def wants_progress(mode: str = "auto", log_format: str = "auto", stream: Any = None) -> bool:
    """``on``/``off`` force it; ``auto`` shows it on a terminal unless logs are JSON."""
    if mode in ("on", "off"):
        return mode == "on"
    stream = stream or sys.stderr
    return bool(stream.isatty()) and not uses_json(log_format)


@contextlib.contextmanager
def progress_display(settings: Any, metrics: Any) -> Iterator[ProgressDisplay | None]:
    """The display for a run's settings, or nothing when it is not wanted."""
    if not wants_progress(getattr(settings, "progress", "auto"), settings.log_format):
        yield None
        return
    with ProgressDisplay(metrics, settings.count, settings.out, settings.producer) as display:
        yield display
