"""structlog setup: JSON lines in containers and pipes, pretty output on a terminal.

``auto`` picks JSON when stderr is not a TTY; ``json`` and ``console`` force one.
Logs go to stderr (stdout carries data, e.g. ``jitsynth read``). The stream is looked
up at every write, so a live progress display that redirects ``sys.stderr`` shows log
lines above itself instead of tearing. ``add_tap`` lets such a display see events
(``committed``, ``kernel failed``...) without the pipeline knowing about it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import structlog

EventTap = Callable[[dict[str, Any]], None]
_taps: list[EventTap] = []


def add_tap(tap: EventTap) -> None:
    _taps.append(tap)


def remove_tap(tap: EventTap) -> None:
    if tap in _taps:
        _taps.remove(tap)


def _run_taps(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for tap in list(_taps):
        try:
            tap(dict(event_dict))
        except Exception:  # noqa: BLE001, S110 - a display must never break logging
            pass
    return event_dict


class _CurrentStderr:
    """File-like object that writes to whatever ``sys.stderr`` is at the moment."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def uses_json(fmt: str = "auto") -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def configure(fmt: str = "auto", level: str = "info") -> None:
    use_json = uses_json(fmt)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _run_taps,
            structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )
