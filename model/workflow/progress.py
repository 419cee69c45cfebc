"""A plain text progress bar (no tqdm dependency): the CV fits of ``train`` and the trees
of each ensemble fit, the rows of ``predict``."""

from __future__ import annotations

import math
import time
from typing import Any, TextIO


class ProgressBar:
    """A plain text bar on a stream (stderr), redrawn in place with ``\\r``.

    It draws only on a terminal and without ``quiet``; ``print_every=N`` instead prints a
    full line every N CV fits (for logs, where ``\\r`` makes a mess). Called with a
    :class:`model.selection.Progress` it shows the CV fits; :meth:`update` shows any count.
    :meth:`close` always prints the one summary line, unless the caller passes none.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        quiet: bool = False,
        print_every: int = 0,
        width: int = 30,
    ) -> None:
        self.stream = stream
        self.width = width
        self.print_every = 0 if quiet else print_every
        isatty = getattr(stream, "isatty", None)
        self.draw = not quiet and print_every == 0 and bool(isatty and isatty())
        self._drawn = False
        self._fits: tuple[int, int, str] | None = None  # the last CV fit reported
        self._tree_drawn_at = -math.inf

    def __call__(self, p: Any) -> None:
        """Receive a :class:`model.selection.Progress` after each fitted fold."""
        metric, score = next(iter(p.scores.items()), ("score", math.nan))
        # "regressor__regressor__alpha" -> "alpha": the name the config uses
        params = " ".join(f"{k.rsplit('__', 1)[-1]}={v}" for k, v in p.params.items())
        text = f"{p.done}/{p.total} fits  {params} fold {p.fold + 1}  {metric}={score:.4f}"
        self._fits = (p.done, p.total, text)
        if self.draw:
            self.update(p.done, p.total, text)
        elif self.print_every and (p.done % self.print_every == 0 or p.done == p.total):
            self.stream.write(f"cv {text}\n")
            self.stream.flush()

    def trees(self, done: int, planned: int) -> None:
        """Receive ``(trees grown, trees planned)`` from the fit under way (the hook of
        :func:`model.ensemble.report_trees`): the bar then moves within the current CV fit.
        Redrawn at most every :attr:`TREE_REDRAW_S` seconds, and at the last tree."""
        if not self.draw:
            return
        now = time.monotonic()
        if done < planned and now - self._tree_drawn_at < self.TREE_REDRAW_S:
            return
        self._tree_drawn_at = now
        text = f"tree {done}/{planned}"
        if self._fits is None:
            self.update(done, planned, text)
        else:
            finished, total, fit_text = self._fits
            # the fit under way is fit number finished + 1
            self.update(finished * planned + done, total * planned, f"{text}  {fit_text}")

    #: The least time between two redraws for trees (a fit may grow thousands a second).
    TREE_REDRAW_S = 0.1

    def update(self, done: int, total: int | None, text: str) -> None:
        """Redraw the bar at ``done`` of ``total`` (``None``: unknown, the text alone)."""
        if not self.draw:
            return
        if total is None:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            filled = round(self.width * min(done, total) / max(total, 1))
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {text}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def line(self, text: str) -> None:
        """Print one whole line (a warning), even when quiet, after ending a drawn bar."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self, summary: str) -> None:
        if self._drawn:
            self.stream.write("\n")
        if summary:
            self.stream.write(summary + "\n")
        self.stream.flush()
