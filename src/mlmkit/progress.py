"""Feedback on long work, on stderr: a live bar per task on a terminal, one summary line per task otherwise.

Library functions take a `Progress` and stay silent without one (`Progress(QUIET)`); the CLI builds one
from `--quiet` / `-v`. A task counts its units whatever the verbosity, so callers can report totals.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

QUIET, NORMAL, VERBOSE = 0, 1, 2
REDRAW_S = 0.2
BAR_WIDTH = 20
BYTES = "B"


def duration(seconds: float) -> str:
    """'1:02:03' or '2:03'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _amount(count: float, unit: str) -> str:
    return f"{count / 1e6:.1f} MB" if unit == BYTES else f"{int(count)} {unit}"


class Task:
    """Counts the units of one piece of work (tiles, chips, documents, bytes) and shows how it goes."""

    def __init__(self, progress: Progress, label: str, total: int | None, unit: str, pixels: int | None,
                 summary: bool = True) -> None:
        self.progress, self.label, self.total, self.unit, self.pixels = progress, label, total, unit, pixels
        self.show_summary = summary
        self.done = 0
        self.started = time.perf_counter()
        self._drawn = 0.0

    def __enter__(self) -> Task:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.finish(failed=kind is not None)

    def advance(self, count: int = 1) -> None:
        """`count` more units done; redraws the bar at most every REDRAW_S seconds."""
        self.done += count
        now = time.perf_counter()
        if self.progress.live and now - self._drawn >= REDRAW_S:
            self._drawn = now
            self.progress.redraw(self.bar_line(now - self.started))

    def rates(self, elapsed: float) -> str:
        """'3.1 tiles/s, 0.82 Mpx/s' (or MB/s for bytes) over `elapsed` seconds."""
        if elapsed <= 0 or not self.done:
            return ""
        if self.unit == BYTES:
            return f"{self.done / elapsed / 1e6:.1f} MB/s"
        parts = [f"{self.done / elapsed:.1f} {self.unit}/s"]
        if self.pixels and self.total:
            parts.append(f"{self.pixels * self.done / self.total / elapsed / 1e6:.2f} Mpx/s")
        return ", ".join(parts)

    def bar_line(self, elapsed: float) -> str:
        """`label |#####     | 12/64 tiles  ETA 0:17  3.1 tiles/s, 0.82 Mpx/s`."""
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            amount = f"{_amount(self.done, self.unit)}/{_amount(self.total, self.unit)}" if self.unit == BYTES \
                else f"{self.done}/{self.total} {self.unit}"
            line = f"{self.label} |{'#' * filled}{' ' * (BAR_WIDTH - filled)}| {amount}"
        else:
            line = f"{self.label}: {_amount(self.done, self.unit)}"
        if self.total and self.done:  # before the rates: narrow terminals cut the line's end
            line += f"  ETA {duration(elapsed * (self.total - self.done) / self.done)}"
        rates = self.rates(elapsed)
        if rates:
            line += f"  {rates}"
        return line

    def summary(self, elapsed: float) -> str:
        """`label: 64 tiles, 3.8 Mpx in 12.3 s (5.2 tiles/s, 0.31 Mpx/s)`."""
        what = _amount(self.done, self.unit)
        if self.pixels and self.unit != BYTES:
            what += f", {self.pixels / 1e6:.1f} Mpx"
        rates = self.rates(elapsed)
        return f"{self.label}: {what} in {elapsed:.1f} s" + (f" ({rates})" if rates else "")

    def finish(self, failed: bool = False) -> None:
        """End the bar; the summary line is written unless the work failed (its error says enough) or the
        caller reports the outcome itself."""
        elapsed = time.perf_counter() - self.started
        self.progress.end_line(self.summary(elapsed) if self.show_summary and not failed else None)


class Progress:
    """Where and how much to say: QUIET (nothing), NORMAL (bars or summaries) or VERBOSE (details too)."""

    def __init__(self, verbosity: int = NORMAL, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.verbosity = verbosity
        self._stream = stream
        self._live = live
        self._bar_shown = False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr  # looked up late: test runners swap sys.stderr

    @property
    def live(self) -> bool:
        """Bars redrawn in place: only on a terminal, and not when quiet."""
        if self.verbosity <= QUIET:
            return False
        if self._live is not None:
            return self._live
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def task(self, label: str, total: int | None = None, unit: str = "items", pixels: int | None = None,
             summary: bool = True) -> Task:
        """A unit counter with a bar; `pixels` (the scene's pixel count) adds Mpx/s to the rates; `summary`
        False leaves the closing line to the caller."""
        return Task(self, label, total, unit, pixels, summary)

    def download(self, label: str, total_bytes: int | None) -> Task:
        """A byte counter for a download (`total_bytes` from Content-Length, None when unknown)."""
        return Task(self, label, total_bytes, BYTES, None)

    def download_hook(self, label: str) -> Callable[[int, int | None], None]:
        """A download callback (bytes done, total) showing a byte task that ends with its summary once the file
        is whole; a download that fails or is interrupted leaves no summary (its error says enough)."""
        task: Task | None = None

        def hook(done: int, total: int | None) -> None:
            nonlocal task
            if task is None:
                task = self.download(label, total)
                task.done = done  # a resumed download starts where the partial file ends
            task.advance(done - task.done)
            if total is not None and done >= total:
                task.finish()
        return hook

    def info(self, message: str) -> None:
        """A line shown unless quiet."""
        if self.verbosity >= NORMAL:
            self.end_line(message)

    def detail(self, message: str) -> None:
        """A line shown with -v only (band matching, grid, tile layout, providers...)."""
        if self.verbosity >= VERBOSE:
            self.end_line(message)

    def redraw(self, line: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + line[:width].ljust(width))
        self.stream.flush()
        self._bar_shown = True

    def end_line(self, line: str | None) -> None:
        """Replace a live bar by `line` (or just clear it), or write `line` on its own."""
        if self._bar_shown:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self._bar_shown = False
        if line is not None and self.verbosity >= NORMAL:
            self.stream.write(line + "\n")
        self.stream.flush()
