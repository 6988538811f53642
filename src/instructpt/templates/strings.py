"""Compiled template strings and label sequences, the building blocks of the inventory.

A template string uses ``{lowercase_name}`` placeholders; any other brace is literal text. Compiling checks the
placeholders and wire markers once and yields a ``str.format`` string, so rendering never parses text and values
(which may contain braces) are never re-interpreted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from instructpt.errors import ConfigError
from instructpt.wire import MARKERS

MAX_LABELS = 26  # more options or numbered items than this is not a sensible document; callers fall back

_SLOT = re.compile(r"\{([a-z_]+)\}")
_TRIM_SLOTS = ("answer", "final")


@dataclass(frozen=True)
class Template:
    """A compiled string: ``fmt`` for ``str.format``; ``fmt_trim`` drops the "." written right after the
    answer slot (``trim_slot``), used when the value already ends in sentence punctuation."""

    id: str
    fmt: str
    fmt_trim: str
    trim_slot: str | None
    slots: frozenset[str]

    def render(self, **values: str) -> str:
        if self.trim_slot is not None and values[self.trim_slot][-1:] in (".", "!", "?"):
            return self.fmt_trim.format(**values)
        return self.fmt.format(**values)


def check_text(where: str, text: Any) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"template inventory: {where} must be a string, got {type(text).__name__}")
    for m in MARKERS:
        if m in text:
            raise ConfigError(f"template inventory: {where} contains the wire marker {m!r}")
    return text


def compile_template(tid: str, text: Any, required: set[str], allowed: set[str]) -> Template:
    """Compile ``text`` (placeholders ``{name}``; other braces are literal) after checking its placeholders."""
    text = check_text(tid, text)
    parts = _SLOT.split(text)  # literal, name, literal, name, ..., literal
    names = parts[1::2]
    unknown = sorted(set(names) - allowed)
    missing = sorted(required - set(names))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if unknown or missing or repeated:
        raise ConfigError(
            f"template inventory: {tid} {text!r}: unknown placeholders {unknown}, missing {missing}, "
            f"repeated {repeated} (allowed: {sorted(allowed)})"
        )

    def fmt(trim_after: str | None) -> str:
        out = []
        for i, part in enumerate(parts):
            if i % 2:
                out.append("{" + part + "}")
                continue
            if trim_after is not None and i > 0 and parts[i - 1] == trim_after and part.startswith("."):
                part = part[1:]
            out.append(part.replace("{", "{{").replace("}", "}}"))
        return "".join(out)

    trim_slot = next(
        (s for s in _TRIM_SLOTS if s in names and parts[2 * names.index(s) + 2].startswith(".")), None
    )
    return Template(tid, fmt(None), fmt(trim_slot), trim_slot, frozenset(names))


# ---------------------------------------------------------------- label sequences


def _roman(n: int) -> str:
    out = []
    for value, numeral in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out.append(numeral)
            n -= value
    return "".join(out)


SEQUENCES = {
    "upper": [chr(ord("A") + i) for i in range(MAX_LABELS)],
    "lower": [chr(ord("a") + i) for i in range(MAX_LABELS)],
    "number": [str(i + 1) for i in range(MAX_LABELS)],
    "roman": [_roman(i + 1) for i in range(MAX_LABELS)],
    "ROMAN": [_roman(i + 1).upper() for i in range(MAX_LABELS)],
}


def labels(where: str, seq: Any, fmt: Any, need_n: bool = True) -> tuple[str, ...]:
    """The label of every position (``{n}`` filled from the sequence); without ``{n}`` all labels are equal."""
    if seq not in SEQUENCES:
        raise ConfigError(
            f"template inventory: {where}: unknown label sequence {seq!r} (known: {list(SEQUENCES)})"
        )
    t = compile_template(where, fmt, {"n"} if need_n else set(), {"n"})
    return tuple(t.fmt.format(n=label) for label in SEQUENCES[seq])
