"""The template inventory: pair patterns per family and layout pieces, kept as YAML data, compiled once.

Files under ``inventory/``: one per pattern family (``qa.yaml``, ``qa_options.yaml``, ``qa_cot.yaml``,
``options_cot.yaml``) plus ``layouts.yaml`` (pieces that arrange a whole example: intro lines, "answer these
questions" lines, dialog speakers, numbered labels, few-shot wrappers, inverted prompts, option label styles and the
chain-of-thought wording used outside the family patterns).

Loading validates every string (known placeholders only, each required one exactly once, no wire markers) and
compiles it into a ``str.format`` string, so rendering never parses text. A pattern's id is ``{family}/{index:03d}``
and a piece's id ``{section}/{index:03d}``, the index being its position in its list: append new entries at the
end to keep existing ids stable. :func:`inventory_fingerprint` changes whenever any file's bytes change.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from instructpt.errors import ConfigError
from instructpt.templates.strings import MAX_LABELS, SEQUENCES, Template, check_text, compile_template, labels

INVENTORY_DIR = Path(__file__).parent / "inventory"
FAMILIES = ("qa", "qa_options", "qa_cot", "options_cot")
ANSWER_MODES = ("label", "label_text", "text")
# Required and allowed placeholders of each family's patterns.
_FAMILY_SLOTS = {
    "qa": ({"question", "answer"}, {"question", "answer"}),
    "qa_options": ({"question", "answer"}, {"question", "answer", "options"}),
    "qa_cot": ({"question", "rationale", "final"}, {"question", "rationale", "final"}),
    "options_cot": ({"question", "rationale", "final"}, {"question", "rationale", "final", "options"}),
}


@dataclass(frozen=True)
class OptionStyle:
    """How options are listed: ``prefixes[i]`` starts option i ("(A) ", "- "); ``answers[i]`` is label i as an
    answer ("(A)"), empty for bullet styles (whose answer stays the option text); ``join`` separates options."""

    id: str
    prefixes: tuple[str, ...]
    answers: tuple[str, ...]
    join: str

    @property
    def labelled(self) -> bool:
        return bool(self.answers)

    def block(self, options: Iterable[str]) -> str:
        return self.join.join([p + o for p, o in zip(self.prefixes, options)])


@dataclass(frozen=True)
class Pattern:
    """One pair pattern of a family; ``style`` is None when the pattern lists no options."""

    id: str
    family: str
    template: Template
    style: OptionStyle | None = None
    answer_mode: str = "text"


@dataclass(frozen=True)
class Piece:
    """A fixed line (lead, "answer these questions", header); ``text`` may be empty (= no line)."""

    id: str
    text: str


@dataclass(frozen=True)
class Speakers:
    id: str
    asker: str
    answerer: str


@dataclass(frozen=True)
class Numbered:
    """Numbered layout: optional headers, and the precomputed label of each position for questions/answers."""

    id: str
    q_head: str
    a_head: str
    q_labels: tuple[str, ...]
    a_labels: tuple[str, ...]


@dataclass(frozen=True)
class Fewshot:
    """Few-shot wrapper: optional header, per-example labels, and the line that introduces the test item."""

    id: str
    head: str
    item_labels: tuple[str, ...]
    test: str


@dataclass(frozen=True)
class Inventory:
    families: dict[str, tuple[Pattern, ...]]
    option_styles: tuple[OptionStyle, ...]
    intros: tuple[Template, ...]
    ask_one: tuple[Piece, ...]
    ask_many: tuple[Piece, ...]
    cot_cues: tuple[Piece, ...]
    cot_conclusions: tuple[Template, ...]
    speakers: tuple[Speakers, ...]
    dialog_leads: tuple[Piece, ...]
    numbered: tuple[Numbered, ...]
    fewshot: tuple[Fewshot, ...]
    next_turn_leads: tuple[Piece, ...]
    next_turn_prompts: tuple[Template, ...]
    inverted_leads: tuple[Piece, ...]
    inverted_prompts: tuple[Template, ...]
    fingerprint: str

    @property
    def n_patterns(self) -> int:
        return sum(len(p) for p in self.families.values())


# ---------------------------------------------------------------- sections


def _mapping(
    where: str, d: Any, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"template inventory: {where} must be a mapping, got {type(d).__name__}")
    keys = set(d)
    if required - keys or keys - required - optional:
        raise ConfigError(
            f"template inventory: {where}: missing keys {sorted(required - keys)}, "
            f"unknown keys {sorted(keys - required - optional)}"
        )
    return d


def _list(where: str, items: Any) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"template inventory: {where} must be a non-empty list")
    return items


def _option_styles(raw: Any) -> dict[str, OptionStyle]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("template inventory: layouts.yaml option_styles must be a non-empty mapping")
    styles = {}
    for name, spec in raw.items():
        where = f"option_style/{name}"
        spec = _mapping(where, spec, {"labels", "line", "join"}, {"answer"})
        line = compile_template(where, spec["line"], {"text"}, {"text", "n"})
        if not line.fmt.endswith("{text}"):
            raise ConfigError(f"template inventory: {where}: the option text must end the line")
        prefix_fmt = line.fmt[: -len("{text}")]
        join = check_text(where, spec["join"])
        if spec["labels"] == "bullet":
            if "n" in line.slots or "answer" in spec:
                raise ConfigError(
                    f"template inventory: {where}: a bullet style has no {{n}} label and no answer"
                )
            prefix = prefix_fmt.replace("{{", "{").replace("}}", "}")
            styles[name] = OptionStyle(where, (prefix,) * MAX_LABELS, (), join)
            continue
        if "n" not in line.slots or "answer" not in spec:
            raise ConfigError(
                f"template inventory: {where}: a labelled style needs {{n}} in line and an answer"
            )
        prefixes = tuple(prefix_fmt.format(n=label) for label in SEQUENCES.get(spec["labels"], []))
        answers = labels(where, spec["labels"], spec["answer"])
        styles[name] = OptionStyle(where, prefixes, answers, join)
    return styles


def _patterns(family: str, raw: Any, styles: dict[str, OptionStyle]) -> tuple[Pattern, ...]:
    required, allowed = _FAMILY_SLOTS[family]
    out = []
    for i, entry in enumerate(_list(f"{family}.yaml patterns", raw)):
        pid = f"{family}/{i:03d}"
        if isinstance(entry, str):
            entry = {"t": entry}
        entry = _mapping(pid, entry, {"t"}, {"style", "answer"})
        template = compile_template(pid, entry["t"], required, allowed)
        if "options" not in template.slots:
            if set(entry) - {"t"}:
                raise ConfigError(
                    f"template inventory: {pid}: a pattern without {{options}} takes no style/answer"
                )
            out.append(Pattern(pid, family, template))
            continue
        style = styles.get(entry.get("style", ""))
        if style is None:
            raise ConfigError(f"template inventory: {pid}: unknown option style {entry.get('style')!r}")
        mode = entry.get("answer", "label" if style.labelled else "text")
        if mode not in ANSWER_MODES or (mode != "text" and not style.labelled):
            raise ConfigError(
                f"template inventory: {pid}: answer mode {mode!r} does not fit style {style.id}"
            )
        out.append(Pattern(pid, family, template, style, mode))
    return tuple(out)


def _pieces(section: str, raw: Any) -> tuple[Piece, ...]:
    return tuple(
        Piece(f"{section}/{i:03d}", check_text(section, t)) for i, t in enumerate(_list(section, raw))
    )


def _templates(section: str, raw: Any, required: set[str], allowed: set[str]) -> tuple[Template, ...]:
    items = _list(section, raw)
    return tuple(compile_template(f"{section}/{i:03d}", t, required, allowed) for i, t in enumerate(items))


def _numbered(raw: Any) -> tuple[Numbered, ...]:
    out = []
    for i, d in enumerate(_list("numbered", raw)):
        nid = f"numbered/{i:03d}"
        d = _mapping(nid, d, {"q", "a"}, {"q_head", "a_head", "labels"})
        seq = d.get("labels", "number")
        q_head, a_head = check_text(nid, d.get("q_head", "")), check_text(nid, d.get("a_head", ""))
        out.append(Numbered(nid, q_head, a_head, labels(nid, seq, d["q"]), labels(nid, seq, d["a"])))
    return tuple(out)


def _fewshot(raw: Any) -> tuple[Fewshot, ...]:
    out = []
    for i, d in enumerate(_list("fewshot", raw)):
        fid = f"fewshot/{i:03d}"
        d = _mapping(fid, d, {"item", "test"}, {"head", "labels"})
        item_labels = labels(fid, d.get("labels", "number"), d["item"], need_n=False)
        out.append(Fewshot(fid, check_text(fid, d.get("head", "")), item_labels, check_text(fid, d["test"])))
    return tuple(out)


def _layout_sections(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["intros"] = _templates("intro", raw.get("intros"), {"context"}, {"context"})
    out["ask_one"] = _pieces("ask_one", raw.get("ask_one"))
    out["ask_many"] = _pieces("ask_many", raw.get("ask_many"))
    out["cot_cues"] = _pieces("cot_cue", raw.get("cot_cues"))
    both = {"rationale", "final"}
    out["cot_conclusions"] = _templates("cot_conclusion", raw.get("cot_conclusions"), both, both)
    out["speakers"] = tuple(
        Speakers(f"speakers/{i:03d}", check_text("speakers", a), check_text("speakers", b))
        for i, (a, b) in enumerate(_list("speakers", raw.get("speakers")))
    )
    out["dialog_leads"] = _pieces("dialog_lead", raw.get("dialog_leads"))
    out["numbered"] = _numbered(raw.get("numbered"))
    out["fewshot"] = _fewshot(raw.get("fewshot"))
    out["next_turn_leads"] = _pieces("next_turn_lead", raw.get("next_turn_leads"))
    out["next_turn_prompts"] = _templates(
        "next_turn_prompt", raw.get("next_turn_prompts"), {"answer"}, {"answer", "speaker"}
    )
    out["inverted_leads"] = _pieces("inverted_lead", raw.get("inverted_leads"))
    out["inverted_prompts"] = _templates(
        "inverted_prompt", raw.get("inverted_prompts"), {"context"}, {"context"}
    )
    return out


# ---------------------------------------------------------------- loading


def _files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.yaml"))
    names = {f.stem for f in files}
    missing = sorted({*FAMILIES, "layouts"} - names)
    if missing:
        raise ConfigError(f"template inventory {directory}: missing files {[m + '.yaml' for m in missing]}")
    return files


def _fingerprint(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"template inventory: {path.name} must hold a mapping")
    return data


@functools.lru_cache(maxsize=8)
def load_inventory(directory: str | Path | None = None) -> Inventory:
    """Parse, validate and compile the inventory (the shipped one by default); cached per directory."""
    directory = Path(directory) if directory is not None else INVENTORY_DIR
    files = _files(directory)
    layouts = _read_yaml(directory / "layouts.yaml")
    styles = _option_styles(layouts.get("option_styles"))
    families = {}
    for family in FAMILIES:
        data = _read_yaml(directory / f"{family}.yaml")
        if data.get("family") != family:
            raise ConfigError(f"template inventory: {family}.yaml must declare 'family: {family}'")
        families[family] = _patterns(family, data.get("patterns"), styles)
    return Inventory(
        families=families,
        option_styles=tuple(styles.values()),
        fingerprint=_fingerprint(files),
        **_layout_sections(layouts),
    )


def inventory_fingerprint(directory: str | Path | None = None) -> str:
    """sha256 over the inventory files' names and bytes: a stage refuses to resume when it changes."""
    return load_inventory(directory).fingerprint
