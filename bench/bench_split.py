"""Benchmark: splitting over-long texts into fitting pieces, against a plain unit-by-unit greedy split.

``split_to_fit`` (galloping search over units) and the plain greedy split (add one unit at a time and re-measure
the growing piece, as in ``tests/unit/test_split.py``) produce the same pieces; this times both with exact token
counts through ``HFCodec`` and a 32k byte-level BPE trained here, at the paper's budget (4096 - 400 tokens), on
three shapes of long text: prose with sentences but no paragraphs, the same without sentence punctuation (split
by words), and a base64-like blob (cut by characters).

Run:  python bench/bench_split.py [--chars 100000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from common import abstract_text, import_test_doubles, train_bpe_tokenizer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--chars", type=int, default=100_000, help="length of each text")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import_test_doubles()
    from tests.unit.test_split import _linear_reference

    from instructpt.engines.tokenizer import HFCodec
    from instructpt.synthesizer.split import split_to_fit
    from instructpt.wire import context_block

    codec = HFCodec(
        train_bpe_tokenizer(Path(tempfile.mkdtemp(prefix="bench-split-")), random.Random(args.seed))
    )
    budget = 4096 - 400

    def fits(text: str) -> bool:
        return len(codec.encode(context_block(text))) <= budget

    rng = random.Random(args.seed)
    prose = ""
    while len(prose) < args.chars:
        prose += abstract_text(rng, 250) + " "
    texts = {
        "sentences, no paragraphs": prose[: args.chars].strip(),
        "words only (no . ! ?)": prose.replace(".", "")
        .replace("!", "")
        .replace("?", "")[: args.chars]
        .strip(),
        "base64-like blob": "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(args.chars)
        ),
    }
    print(f"{'text':<26} {'tokens':>8} {'pieces':>6} {'greedy s':>9} {'split_to_fit s':>14} {'speed-up':>8}")
    for name, text in texts.items():
        start = time.perf_counter()
        fast = split_to_fit(text, fits)
        t_fast = time.perf_counter() - start
        start = time.perf_counter()
        slow = _linear_reference(text, fits)
        t_slow = time.perf_counter() - start
        assert fast == slow, "the two splits differ"
        n_tokens = len(codec.encode(text))
        print(
            f"{name:<26} {n_tokens:>8,} {len(fast):>6} {t_slow:>9.2f} {t_fast:>14.2f} {t_slow / t_fast:>7.1f}x"
        )


if __name__ == "__main__":
    main()
