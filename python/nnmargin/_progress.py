"""A tiny text progress bar for long command-line runs (no third-party dependency).

It draws on one terminal line, ``\\r``-rewritten in place, and erases itself when closed so the
report printed afterwards starts on a clean line. When the stream is not a terminal (a pipe, a log
file, pytest's capture) it draws nothing, so logs never fill with bar frames.
"""
from __future__ import annotations

import sys
import time


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # closed or detached streams
        return False


def _format_seconds(seconds: float) -> str:
    """``7.3s``, ``2m05s`` or ``1h02m``: short enough for a status line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressBar:
    """Progress of ``total`` work items, e.g. ``certify  [#######.......]  52%  5200/10000  3.1s  eta 2.9s``.

    Args:
        total: number of items the run will process.
        label: text shown before the bar.
        stream: where to draw (default ``sys.stderr``).
        enabled: draw or not; default: only when ``stream`` is a terminal.
        width: characters inside the brackets.
        min_interval: seconds between redraws (the final state is always drawn).

    Use as a context manager, calling :meth:`update` as items complete.
    """

    def __init__(self, total: int, label: str = "", stream=None, enabled: bool | None = None,
                 width: int = 30, min_interval: float = 0.1):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream) if enabled is None else bool(enabled)
        self.width = width
        self.min_interval = min_interval
        self.done = 0
        self._start = time.perf_counter()
        self._last_draw = float("-inf")
        self._drawn_length = 0

    def __enter__(self) -> "ProgressBar":
        self._draw(force=True)
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def update(self, count: int = 1) -> None:
        """Record ``count`` more finished items and redraw (at most every ``min_interval`` s)."""
        self.done = min(self.done + int(count), self.total)
        self._draw(force=self.done >= self.total)

    def line(self) -> str:
        """The current status line (without the leading carriage return)."""
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        elapsed = time.perf_counter() - self._start
        text = (f"{self.label}  [{'#' * filled}{'.' * (self.width - filled)}]  {100 * fraction:3.0f}%  "
                f"{self.done}/{self.total}  {_format_seconds(elapsed)}")
        if 0 < self.done < self.total:
            text += f"  eta {_format_seconds(elapsed * (self.total - self.done) / self.done)}"
        return text

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return
        text = self.line()
        # Pad with spaces so a shorter line fully covers the previous one.
        self.stream.write("\r" + text.ljust(self._drawn_length))
        self.stream.flush()
        self._drawn_length = len(text)
        self._last_draw = now

    def close(self) -> None:
        """Erase the bar, leaving the cursor at the start of an empty line."""
        if self.enabled and self._drawn_length:
            self.stream.write("\r" + " " * self._drawn_length + "\r")
            self.stream.flush()
            self._drawn_length = 0
