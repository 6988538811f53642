"""Progress reporting for long stages: a live bar on a terminal, plain periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("instructpt.progress")


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
        self.desc, self.total, self.every, self.unit = desc, total, every, unit
        self.docs = self.pairs = self.tokens = self.skipped = 0
        self.start = self._last_log = time.monotonic()
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit.rstrip("s"), dynamic_ncols=True, smoothing=0.1)
        self.enabled = enabled

    def skip(self, docs: int) -> None:
        """Documents already done by an earlier run: left out of this run's total and rates, and said in the
        log line (a resumed run otherwise reads "0/0 docs")."""
        self.skipped += docs
        self.exclude(docs)

    def exclude(self, docs: int) -> None:
        """Documents this process does not do (done before, or another rank's): left out of the total."""
        if self.total is not None:
            self.total = max(0, self.total - docs)
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def update(self, docs: int = 0, pairs: int = 0, tokens: int = 0) -> None:
        self.docs += docs
        self.pairs += pairs
        self.tokens += tokens
        if self._bar is not None:
            self._bar.update(docs)
            self._bar.set_postfix_str(self._postfix(), refresh=False)
        elif self.enabled and time.monotonic() - self._last_log >= self.every:
            self._last_log = time.monotonic()
            log.info("%s: %s", self.desc, self.line())

    def _postfix(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        pairs_doc = self.pairs / self.docs if self.docs else 0.0
        return f"pairs/{self.unit.rstrip('s')}={pairs_doc:.2f} tok/s={self.tokens / elapsed:,.0f}"

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.docs / elapsed
        done = f"{self.docs:,}" + (f"/{self.total:,}" if self.total is not None else "")
        eta = ""
        if self.total and rate > 0:
            eta = f" eta={max(self.total - self.docs, 0) / rate:,.0f}s"
        before = f" (+{self.skipped:,} done before)" if self.skipped else ""
        return f"{done} {self.unit}{before} {rate:,.1f} {self.unit}/s {self._postfix()}{eta}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            log.info("%s: done, %s", self.desc, self.line())
