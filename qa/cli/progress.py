"""Progress of long jobs for people and for logs: a redrawn line with rate and time left on a terminal, a plain
line (or a JSON object) every few seconds anywhere else."""

from __future__ import annotations

import json
import sys
import time
from typing import Callable, TextIO

from qa.config import PROGRESS_STYLES

# Off a terminal, how often a line is written while a stage runs (its end is always written).
PLAIN_INTERVAL_S = 10.0
# A terminal line is redrawn at most this often: redrawing on every batch costs more than it shows.
BAR_INTERVAL_S = 0.2


def _duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A ``(stage, done, total)`` callback that reports each stage's advance, its rate and the time left.

    Args:
        style: ``bar`` redraws one line (for a terminal); ``plain`` writes a line every ``interval`` seconds;
            ``json`` writes a JSON object per report instead; ``none`` writes nothing; ``auto`` is ``bar`` when
            ``stream`` is a terminal, else ``plain``.
        stream: where to write (standard error by default).
        clock: seconds, monotonic (for tests).
    """

    def __init__(
        self,
        style: str = "auto",
        stream: TextIO | None = None,
        *,
        interval: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if style not in PROGRESS_STYLES:
            raise ValueError(f"progress style must be one of {', '.join(PROGRESS_STYLES)}, got {style!r}")
        self.stream = stream if stream is not None else sys.stderr
        if style == "auto":
            style = "bar" if self.stream.isatty() else "plain"
        self.style = style
        self.interval = interval if style in ("plain", "json") else BAR_INTERVAL_S
        self.clock = clock
        self._stage: str | None = None
        self._started = 0.0
        self._last = float("-inf")

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.style == "none":
            return
        now = self.clock()
        if stage != self._stage:
            self._stage, self._started, self._last = stage, now, float("-inf")
        finished = done >= total
        if not finished and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else None
        left = (total - done) / rate if rate else None
        if self.style == "json":
            record = {
                "stage": stage,
                "done": done,
                "total": total,
                "elapsed_s": round(elapsed, 1),
                "per_s": round(rate, 1) if rate else None,
                "left_s": round(left, 1) if left is not None else None,
            }
            self.stream.write(json.dumps(record) + "\n")
        else:
            line = f"{stage}: {done}/{total}"
            if total:
                line += f" ({100 * done // total}%)"
            if rate:
                line += f", {rate:.1f}/s"
            if finished:
                line += f", took {_duration(elapsed)}"
            elif left is not None:
                line += f", {_duration(left)} left"
            if self.style == "bar":
                self.stream.write(f"\r\x1b[K{line}" + ("\n" if finished else ""))
            else:
                self.stream.write(line + "\n")
        self.stream.flush()
