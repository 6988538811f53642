"""Progress reporting for long stages: a live bar on a terminal, plain periodic log lines otherwise.

The total is exact where it is cheap to know (lines of plain files, parquet row counts), estimated where it is
not (compressed files: from the share of their bytes read so far; shown as ``~N``) and said to be unknown
otherwise. A stage that cannot count its units ahead may report the parts of its work instead (templify: its
input shards), which gives the ETA. Counters that stay zero (tokens, for the rules engine and templify) are not
shown. A terminal that reports no width (a pseudo terminal of size 0x0) gets the log lines: a bar there shows
nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger("instructpt.progress")


def _bar_fits() -> bool:
    """Whether stderr is a terminal that a live bar can be drawn on (one with a width)."""
    try:
        return sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # no fileno (a wrapper), or not a terminal after all
        return False


class Progress:
    """Counts finished units (``docs`` by default: what the stage counts), pairs and tokens; shows units/s,
    pairs per unit, tokens/s and ETA. ``docs`` holds the count whatever the unit."""

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        enabled: bool = True,
        every: float = 10.0,
        unit: str = "docs",
    ) -> None:
        self.desc, self.every, self.unit = desc, every, unit
        self.expected, self.approximate = (
            total,
            False,
        )  # units in all, those of earlier runs and other ranks too
        self.excluded = 0
        self.docs = self.pairs = self.tokens = self.skipped = 0
        self.parts: tuple[int, int, str] | None = None  # (done, in all, name) of the work's parts
        self.start = self._last_log = time.monotonic()
        self._bar = None
        if enabled and _bar_fits():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit.rstrip("s"), dynamic_ncols=True, smoothing=0.1)
        self.enabled = enabled

    @property
    def total(self) -> int | None:
        """Units this process does in this run (None: unknown)."""
        return None if self.expected is None else max(0, self.expected - self.excluded)

    def skip(self, docs: int) -> None:
        """Documents already done by an earlier run: left out of this run's total and rates, and said in the
        log line (a resumed run otherwise reads "0/0 docs")."""
        self.skipped += docs
        self.exclude(docs)

    def exclude(self, docs: int) -> None:
        """Documents this process does not do (done before, or another rank's): left out of the total."""
        self.excluded += docs
        self._set_bar_total()

    def estimate(self, expected: int, approximate: bool = True) -> None:
        """Set the number of units in all (those excluded included): an estimate, or exact once it is known."""
        self.expected, self.approximate = expected, approximate
        self._set_bar_total()

    def parts_done(self, done: int, total: int, name: str = "parts") -> None:
        """``done`` of ``total`` parts of this run's work are finished: the ETA when the units are not counted."""
        self.parts = (done, total, name)

    def _set_bar_total(self) -> None:
        if self._bar is not None and self.total is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def update(self, docs: int = 0, pairs: int = 0, tokens: int = 0) -> None:
        self.docs += docs
        self.pairs += pairs
        self.tokens += tokens
        if self._bar is not None:
            self._bar.update(docs)
            self._bar.set_postfix_str(self._postfix(bar=True), refresh=False)
        elif self.enabled and time.monotonic() - self._last_log >= self.every:
            self._last_log = time.monotonic()
            log.info("%s: %s", self.desc, self.line())

    def _postfix(self, bar: bool = False) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        shown = []
        if self.pairs:
            shown.append(f"pairs/{self.unit.rstrip('s')}={self.pairs / max(self.docs, 1):.2f}")
        if self.tokens:  # engines that generate nothing (rules) and templify count no tokens
            shown.append(f"tok/s={self.tokens / elapsed:,.0f}")
        if self.parts is not None:
            done, total, name = self.parts
            shown.append(f"{name} {done:,}/{total:,}")
            if bar and self.total is None and (eta := self._eta()) is not None:
                shown.append(f"eta={eta:,.0f}s")  # the bar's own ETA needs a total
        return " ".join(shown)

    def _eta(self) -> float | None:
        """Seconds left: by units when their total is known, else by parts done; None when neither tells."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        total = self.total
        if total is not None:
            rate = self.docs / elapsed
            return (total - self.docs) / rate if rate > 0 and total > self.docs else None
        if self.parts is not None and self.parts[0] > 0:
            done, in_all, _ = self.parts
            return elapsed * max(in_all - done, 0) / done
        return None

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        total = self.total
        if total is not None:
            count = f"{self.docs:,}/{'~' if self.approximate else ''}{total:,} {self.unit}"
        else:
            count = f"{self.docs:,} {self.unit}" + ("" if self.parts else " (total unknown)")
        eta = self._eta()
        before = f" (+{self.skipped:,} done before)" if self.skipped else ""
        parts = [f"{count}{before}", f"{self.docs / elapsed:,.1f} {self.unit}/s", self._postfix()]
        if eta is not None:
            parts.append(f"eta={eta:,.0f}s")
        return " ".join(p for p in parts if p)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            log.info("%s: done, %s", self.desc, self.line())
