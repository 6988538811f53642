"""PNG plots for reports, drawn with matplotlib (``pip install 'instructpt[report]'``) on its file backend.

Each function returns the PNG's bytes, or None when matplotlib is not installed (the report then shows the numbers
as tables only, and says so)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 6.0, height: float = 3.2) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return plt, fig, ax


def _png(plt: Any, fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def bars(values: dict[str, float], title: str, xlabel: str = "") -> bytes | None:
    """Horizontal bars, largest first (at most 20)."""
    if not available() or not values:
        return None
    items = sorted(values.items(), key=lambda kv: -kv[1])[:20][::-1]
    plt, fig, ax = _figure(6.0, 0.6 + 0.28 * len(items))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4C72B0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _png(plt, fig)


def columns(values: dict[str, float], title: str, xlabel: str = "") -> bytes | None:
    """Vertical bars in the given order (histograms with named buckets)."""
    if not available() or not values:
        return None
    plt, fig, ax = _figure()
    ax.bar(list(values), list(values.values()), color="#55A868")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="x", labelrotation=45)
    return _png(plt, fig)


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str = "step",
           ylabel: str = "loss") -> bytes | None:  # fmt: skip
    """Lines (x, y) by name: loss curves."""
    if not available() or not any(len(x) for x, _ in series.values()):
        return None
    plt, fig, ax = _figure()
    for name, (x, y) in series.items():
        if len(x):
            ax.plot(x, y, label=name, marker="o" if len(x) < 3 else None)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return _png(plt, fig)
