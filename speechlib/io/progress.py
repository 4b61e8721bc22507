"""Progress a person can follow without flooding a log file.

On a terminal: a tqdm bar. Otherwise (a log file, a pipe, a job array's log): one plain line
`<what>: <done>/<total> ...` at most every `interval` seconds and at the end, no carriage returns.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "file", interval: float = 30.0,
                 stream: TextIO | None = None, enabled: bool = True):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = self.last = time.monotonic()
        self.enabled = enabled
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False)

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        self.tick()

    def tick(self) -> None:
        """Print a line if `interval` seconds passed since the last one, progress or not (so a
        long job still shows the run is alive)."""
        now = time.monotonic()
        if not self.enabled or now - self.last < self.interval:
            return
        self.last = now
        if self.bar is not None:
            self.bar.refresh()
        else:
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {(self.total - self.done) / rate:.0f} s" if rate > 0 and self.done < self.total else ""
        return f"{self.desc}: {self.done}/{self.total} {self.unit}s done, {elapsed:.0f} s elapsed{eta}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
