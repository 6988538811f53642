"""render_chain: golden outputs per layout and family, determinism, option rules, drops, validation.

Golden files live in tests/golden/templates/; run with INSTRUCTPT_UPDATE_GOLDEN=1 to rewrite them after an
intended change (and review the diff).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from instructpt.errors import ConfigError
from instructpt.records import QAPair
from instructpt.templates import (
    FAMILIES,
    LAYOUTS,
    EmptyChainError,
    TemplifyOptions,
    load_inventory,
    render_chain,
)
from instructpt.templates.inventory import INVENTORY_DIR

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "templates"
UPDATE = os.environ.get("INSTRUCTPT_UPDATE_GOLDEN") == "1"

CONTEXT_1 = (
    "The kidney filters about 180 litres of plasma a day. Most of the filtered water and salt is taken back "
    "up in the tubules, so only one to two litres leave the body as urine."
)
CONTEXT_2 = (
    "Insulin lowers blood glucose by helping muscle and fat cells take it up. It is made in the pancreas."
)

PAIRS = {
    "qa": [
        QAPair("How much plasma does the kidney filter each day?", "About 180 litres."),
        QAPair("Where is most filtered water taken back up?", "In the tubules"),
    ],
    "qa_options": [
        QAPair(
            "How much urine leaves the body daily?\nOptions:\n- one to two litres\n- 180 litres\n- none",
            "one to two litres",
        ),
        QAPair("What is filtered by the kidney?\nOptions:\n- plasma\n- bone", "plasma"),
    ],
    "qa_cot": [
        QAPair(
            "Is most filtered water lost as urine?\nLet's think step by step.",
            "About 180 litres are filtered but only one to two leave as urine.\nTherefore, the answer is no",
        ),
        QAPair(
            "Does the kidney reclaim salt?\nLet's think step by step.",
            "The text says salt is taken back up in the tubules.\nTherefore, the answer is yes.",
        ),
    ],
    "options_cot": [
        QAPair(
            "Which fraction of filtered water leaves as urine?\nOptions:\n- about 1%\n- about half\n- all of it"
            "\nLet's think step by step.",
            "Two litres out of 180 is about one percent.\nTherefore, the answer is about 1%",
        ),
    ],
}
MIXED = [
    (CONTEXT_1, [PAIRS["qa"][0], PAIRS["qa_options"][0], PAIRS["qa_cot"][0], PAIRS["options_cot"][0]]),
    (
        CONTEXT_2,
        [
            QAPair("Where is insulin made?", "In the pancreas."),
            QAPair("What does insulin lower?\nOptions:\n- blood glucose\n- blood pressure", "blood glucose"),
        ],
    ),
]


def only(layout: str) -> TemplifyOptions:
    return TemplifyOptions(layout_weights={layout: 1.0})


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {path}; run with INSTRUCTPT_UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == path.read_bytes(), f"{name}: output changed (see {path})"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_golden_layout(layout):
    doc = render_chain(MIXED, record_id="golden-layout", seed=7, options=only(layout))
    assert doc.layouts == [layout, layout]
    assert doc.n_pairs == 6 and not doc.drops
    check_golden(f"layout_{layout}", doc.text)


@pytest.mark.parametrize("family", FAMILIES)
def test_golden_family(family):
    doc = render_chain(
        [(CONTEXT_1, PAIRS[family])], record_id=f"golden-{family}", seed=3, options=only("classic")
    )
    assert any(t.startswith(family + "/") for t in doc.template_ids)
    check_golden(f"family_{family}", doc.text)


def test_same_input_same_bytes_even_in_another_process():
    doc = render_chain(MIXED, record_id="r1", seed=11)
    assert render_chain(MIXED, record_id="r1", seed=11) == doc
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_templates_render import MIXED\n"
        "from instructpt.templates import render_chain\n"
        "sys.stdout.buffer.write(render_chain(MIXED, record_id='r1', seed=11).text.encode())"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True).stdout
    assert out == doc.text.encode()


def test_record_id_and_seed_change_the_choices():
    texts = {render_chain(MIXED, record_id=f"doc-{i}", seed=0).text for i in range(60)}
    assert len(texts) >= 55
    assert (
        render_chain(MIXED, record_id="doc-1", seed=1).text
        != render_chain(MIXED, record_id="doc-1", seed=0).text
    )
    ids = Counter(t for i in range(200) for t in render_chain(MIXED, record_id=f"d{i}", seed=0).template_ids)
    assert len([t for t in ids if t.startswith("qa/")]) >= 30  # many patterns used, not one reused seed


def test_pattern_ids_and_piece_ids_are_reported_apart():
    doc = render_chain(MIXED, record_id="ids", seed=0, options=only("dialog"))
    assert doc.template_ids == []  # a dialog places the halves itself: no pair pattern
    assert any(p.startswith("speakers/") for p in doc.piece_ids)
    assert any(p.startswith("option_style/") for p in doc.piece_ids)
    inv = load_inventory()
    valid = {
        x.id for section in (inv.speakers, inv.dialog_leads, inv.option_styles, inv.cot_cues) for x in section
    }
    assert set(doc.piece_ids) <= valid | {t.id for t in inv.cot_conclusions}
    classic = render_chain(MIXED, record_id="ids", seed=0, options=only("classic"))
    assert {t.split("/")[0] for t in classic.template_ids} <= set(FAMILIES) and classic.template_ids


def test_layouts_follow_the_weights():
    counts = Counter(
        layout for i in range(1500) for layout in render_chain(MIXED, record_id=f"w{i}", seed=0).layouts
    )
    total = sum(counts.values())
    assert 0.75 <= counts["classic"] / total <= 0.85
    assert all(counts[name] > 0 for name in LAYOUTS)
    dialog_only = TemplifyOptions(layout_weights={"classic": 0, "dialog": 3})
    assert render_chain(MIXED, record_id="x", seed=0, options=dialog_only).layouts == ["dialog", "dialog"]


def test_layout_that_does_not_fit_falls_back_to_classic():
    one_pair = [(CONTEXT_1, PAIRS["qa"][:1])]
    assert render_chain(one_pair, record_id="x", seed=0, options=only("numbered")).layouts == ["classic"]
    no_context = [("", PAIRS["qa"])]
    assert render_chain(no_context, record_id="x", seed=0, options=only("inverted")).layouts == ["classic"]


def test_options_are_shuffled():
    pair = QAPair("Pick the first.\nOptions:\n- alpha\n- beta\n- gamma\n- delta", "alpha")
    opts = TemplifyOptions(layout_weights={"dialog": 1})  # bare rendering: options always listed
    firsts = Counter()
    for i in range(200):
        text = render_chain([(CONTEXT_2, [pair])], record_id=f"s{i}", seed=0, options=opts).text
        firsts[re.search(r"(alpha|beta|gamma|delta)", text).group(1)] += 1
    assert len(firsts) == 4 and max(firsts.values()) < 100


def _single_pattern_inventory(tmp_path: Path, family: str, entry: str):
    target = tmp_path / "inventory"
    shutil.copytree(INVENTORY_DIR, target)
    (target / f"{family}.yaml").write_text(f"family: {family}\npatterns:\n  - {entry}\n")
    return load_inventory(target)


OPTION_PAIR = QAPair("What is filtered?\nOptions:\n- plasma\n- bone\n- air", "plasma")


def test_labelled_options_answer_with_the_label(tmp_path):
    inv = _single_pattern_inventory(
        tmp_path,
        "qa_options",
        '{t: "Q: {question}\\n{options}\\nA: {answer}", style: letter_paren, answer: label}',
    )
    for i in range(10):
        doc = render_chain(
            [("", [OPTION_PAIR])], record_id=f"l{i}", seed=0, options=only("classic"), inventory=inv
        )
        label = re.search(r"^\((.)\) plasma$", doc.text, re.M).group(1)
        assert doc.text.endswith(f"\nA: ({label})") and not doc.omitted


def test_label_and_text_answer(tmp_path):
    inv = _single_pattern_inventory(
        tmp_path,
        "qa_options",
        '{t: "{question}\\n{options}\\n=> {answer}", style: roman_bracket, answer: label_text}',
    )
    doc = render_chain([("", [OPTION_PAIR])], record_id="lt", seed=0, options=only("classic"), inventory=inv)
    label = re.search(r"^(\[[iv]+\]) plasma$", doc.text, re.M).group(1)
    assert doc.text.endswith(f"=> {label} plasma")


def test_bullet_options_answer_with_the_text(tmp_path):
    inv = _single_pattern_inventory(
        tmp_path, "qa_options", '{t: "{question}\\n{options}\\n=> {answer}", style: dash}'
    )
    doc = render_chain([("", [OPTION_PAIR])], record_id="b", seed=0, options=only("classic"), inventory=inv)
    assert "- plasma" in doc.text and "- bone" in doc.text and doc.text.endswith("=> plasma")


def test_pattern_without_options_keeps_the_answer_text_and_counts_the_omission(tmp_path):
    inv = _single_pattern_inventory(tmp_path, "qa_options", '"{question} => {answer}"')
    doc = render_chain([("", [OPTION_PAIR])], record_id="o", seed=0, options=only("classic"), inventory=inv)
    assert doc.text.endswith("What is filtered? => plasma")
    assert "bone" not in doc.text and doc.omitted == Counter(options=1)


def test_unrenderable_pairs_are_dropped_and_counted():
    pairs = [
        QAPair("Which?\nOptions:\n- a\n- b", "c"),
        QAPair("Why?\nLet's think step by step.", "Because the text says so."),
        QAPair("Why not?\nLet's think step by step.", "Therefore, the answer is no"),
        QAPair("Which one?\nOptions:\n- only", "only"),
        QAPair("Case and period?\nOptions:\n- Blood\n- bone", "blood."),
        QAPair("Colon variant?\nLet's think step by step.", "It is stated.\nTherefore, the answer is: yes"),
        PAIRS["qa"][0],
    ]
    doc = render_chain([(CONTEXT_1, pairs)], record_id="d", seed=0, options=only("classic"))
    assert doc.drops == Counter(answer_not_in_options=1, half_formed_cot=2, too_few_options=1)
    assert doc.n_pairs == 3 and "Case and period?" in doc.text and "Colon variant?" in doc.text
    assert "It is stated." in doc.text and "the answer is:" not in doc.text  # the link is re-worded
    assert "Why?" not in doc.text and "Because the text" not in doc.text


def test_inputs_are_not_mutated():
    chain = [(c, list(p)) for c, p in MIXED]
    before = copy.deepcopy(chain)
    for layout in LAYOUTS:
        render_chain(chain, record_id="m", seed=0, options=only(layout))
    assert chain == before


def test_raw_only_and_never_empty():
    raw = render_chain(
        [(" first text \n", []), ("second text", [QAPair("Q?\nOptions:\n- x\n- y", "z")])],
        record_id="r",
        seed=0,
    )
    assert raw.raw_only and raw.text == " first text \n\n\nsecond text"  # contexts verbatim
    assert raw.layouts == ["raw", "raw"] and raw.n_pairs == 0 and raw.drops["answer_not_in_options"] == 1
    no_context = render_chain([("", PAIRS["qa"])], record_id="n", seed=0)
    assert no_context.text.strip() and not no_context.raw_only
    for empty in ([], [("", [])], [("  \n", [QAPair("Q?\nLet's think step by step.", "no link")])]):
        with pytest.raises(EmptyChainError):
            render_chain(empty, record_id="e", seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout_weights": {"classic": 1, "sideways": 1}}, "unknown layout"),
        ({"layout_weights": {"classic": -0.5, "dialog": 1}}, "'classic' must be a finite number >= 0"),
        ({"layout_weights": {"classic": 0, "dialog": 0}}, "all weights are zero"),
        ({"layout_weights": {"classic": float("nan")}}, "finite"),
        ({"intro_prob": 1.5}, "intro_prob"),
        ({"fewshot_rationale_prob": -0.1}, "fewshot_rationale_prob"),
    ],
)
def test_bad_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TemplifyOptions(**kwargs)


def test_default_weights_are_normalized_near_the_paper():
    weights = TemplifyOptions().layout_weights
    assert abs(sum(weights.values()) - 1) < 1e-9 and weights["classic"] == pytest.approx(0.8)
    assert TemplifyOptions(layout_weights={"classic": 2, "inverted": 2}).layout_weights["inverted"] == 0.5


def test_numbered_answers_to_labelled_options_carry_the_option_text():
    """An answer key under numbered questions names the option with its text ("2. (B) plasma"), never a bare
    label that reads as one more label ("2. B")."""
    chain = [(CONTEXT_1, [PAIRS["qa"][0], PAIRS["qa_options"][1]])]
    styles = set()
    for i in range(80):
        doc = render_chain(chain, record_id=f"n{i}", seed=0, options=only("numbered"))
        last = doc.text.splitlines()[-1]  # the answer to the options question, after its own label
        assert last.endswith("plasma"), last
        styles.update(t for t in doc.piece_ids if t.startswith("option_style/"))
    assert {"option_style/letter_paren", "option_style/number_paren"} <= styles  # labelled styles were drawn
