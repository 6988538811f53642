"""The template inventory: size, family rules, validation and fingerprint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instructpt.errors import ConfigError
from instructpt.templates import FAMILIES, inventory_fingerprint, load_inventory
from instructpt.templates.inventory import INVENTORY_DIR, compile_template
from instructpt.wire import MARKERS


def _copy_inventory(tmp_path: Path) -> Path:
    target = tmp_path / "inventory"
    shutil.copytree(INVENTORY_DIR, target)
    return target


def test_inventory_size_and_families():
    inv = load_inventory()
    assert set(inv.families) == set(FAMILIES)
    for family, patterns in inv.families.items():
        assert len(patterns) >= 20, family
        assert all(p.family == family for p in patterns)
    assert inv.n_patterns >= 150


def test_about_half_the_option_patterns_drop_the_options():
    inv = load_inventory()
    for family in ("qa_options", "options_cot"):
        patterns = inv.families[family]
        dropping = sum(p.style is None for p in patterns)
        assert 0.4 <= dropping / len(patterns) <= 0.6, family
        # Bullet styles always answer with the text; labelled ones may use the label.
        for p in patterns:
            if p.style is not None and not p.style.labelled:
                assert p.answer_mode == "text", p.id


def test_pattern_texts_are_distinct_within_each_family():
    inv = load_inventory()
    for family, patterns in inv.families.items():
        keys = [(p.template.fmt, p.style and p.style.id, p.answer_mode) for p in patterns]
        assert len(set(keys)) == len(keys), family


def test_ids_are_stable_and_positional():
    inv = load_inventory()
    assert inv.families["qa_options"][17].id == "qa_options/017"
    assert inv.intros[0].id == "intro/000"
    assert inv.option_styles[0].id.startswith("option_style/")


def test_inventory_is_cached_and_fingerprint_is_a_sha256():
    assert load_inventory() is load_inventory()
    fp = inventory_fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0


def test_fingerprint_changes_with_any_byte(tmp_path):
    copy = _copy_inventory(tmp_path)
    assert inventory_fingerprint(copy) == inventory_fingerprint()
    (copy / "layouts.yaml").write_text((copy / "layouts.yaml").read_text() + "\n# note\n")
    load_inventory.cache_clear()
    assert inventory_fingerprint(copy) != inventory_fingerprint()


def test_no_wire_marker_anywhere_in_the_inventory():
    for path in INVENTORY_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not any(m in text for m in MARKERS), path.name


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ('"Q: {question}"', "missing ['answer']"),
        ('"Q: {question} {answer} {context}"', "unknown placeholders ['context']"),
        ('"{question} {answer} {answer}"', "repeated ['answer']"),
        ('"<QUE> {question} {answer}"', "wire marker"),
    ],
)
def test_bad_patterns_are_config_errors(tmp_path, pattern, message):
    copy = _copy_inventory(tmp_path)
    (copy / "qa.yaml").write_text(f"family: qa\npatterns:\n  - {pattern}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_inventory(copy)


def test_option_pattern_rules_are_checked(tmp_path):
    copy = _copy_inventory(tmp_path)
    bad = [
        ('{t: "{question} {options} {answer}", style: nope}', "unknown option style"),
        ('{t: "{question} {options} {answer}", style: dash, answer: label}', "does not fit style"),
        ('{t: "{question} {answer}", style: dash}', "takes no style"),
    ]
    for entry, message in bad:
        (copy / "qa_options.yaml").write_text(f"family: qa_options\npatterns:\n  - {entry}\n")
        load_inventory.cache_clear()
        with pytest.raises(ConfigError, match=message):
            load_inventory(copy)


def test_missing_family_file_is_named(tmp_path):
    copy = _copy_inventory(tmp_path)
    (copy / "qa_cot.yaml").unlink()
    with pytest.raises(ConfigError, match="qa_cot.yaml"):
        load_inventory(copy)


def test_compiled_template_keeps_literal_braces_and_trims_a_double_period():
    # Only {lowercase_name} is a placeholder; other braces are text, and values are never re-parsed.
    t = compile_template("t/000", "{x} in {1, 2}: {answer}.", {"answer"}, {"answer", "x"})
    assert t.render(x="S", answer="a set") == "S in {1, 2}: a set."
    assert t.render(x="S", answer="a set.") == "S in {1, 2}: a set."
    assert t.render(x="{answer}", answer="Why?") == "{answer} in {1, 2}: Why?"


def test_the_inventory_has_no_seams_a_reader_would_notice():
    """Rendered text reads as written text: no placeholder-like delimiters, no second invitation to answer after an
    intro, no lead-in a question may repeat, no "short answer" before full-sentence answers, no lettered questions
    whose lettered options would make an answer key read "E. A"."""
    import re

    texts = {p.name: p.read_text(encoding="utf-8") for p in INVENTORY_DIR.glob("*.yaml")}
    for name, text in texts.items():
        assert not re.search(r"__\w+__", text), name  # "__Q__" reads like an unfilled placeholder
        if name == "qa.yaml":  # plain answers are often whole sentences (a CoT's final answer is short)
            assert "short answer" not in text.lower(), name
        assert "Given the passage:" not in text, name  # "Given the passage: Given that ..."
    inv = load_inventory()
    for intro in inv.intros:  # the "answer these questions" line is ask_one/ask_many's job
        raw = intro.render(context="CONTEXT")
        assert "question" not in raw.lower(), raw
    for nb in inv.numbered:  # the second question is "2", "ii" or "II", never "B" or "b"
        assert re.sub(r"[^0-9A-Za-z]|Exercise|Question|Problem|Q", "", nb.q_labels[1]).lower() != "b", nb.id
