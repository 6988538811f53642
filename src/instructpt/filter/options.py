"""The options of the pair quality rules, shared by ``instructpt filter`` (flat flags) and ``templify --filter``
(the ``filter`` section: ``--filter.min-grounding``), and the per-document check both run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError
from instructpt.quality.filters import FILTER_RULES_VERSION, FilterRules, check_pairs

RULES_DEFAULT = FilterRules()


@dataclass
class RuleOptions:
    """Thresholds of the pair quality rules, and the optional quality classifier."""

    min_question_chars: int = option(RULES_DEFAULT.min_question_chars, "Shorter questions are dropped.")
    max_question_chars: int = option(RULES_DEFAULT.max_question_chars, "Longer questions are dropped.")
    max_answer_chars: int = option(RULES_DEFAULT.max_answer_chars, "Longer answers are dropped.")
    max_ngram_repeats: int = option(
        RULES_DEFAULT.max_ngram_repeats,
        "A word 4-gram seen more often than this in a question or answer is repetition.",
    )
    min_grounding: float = option(
        RULES_DEFAULT.min_grounding,
        "Share of an extractive-looking answer's content words that must occur in its document (0 turns it off).",
    )
    max_question_similarity: float = option(
        RULES_DEFAULT.max_question_similarity,
        "Word-set Jaccard above which a question repeats an earlier one of its document (1 turns it off).",
    )
    english: bool = option(
        False, "Drop pairs that py3langid does not take for English (pip install 'instructpt[filter]')."
    )
    quality_model: str | None = option(
        None,
        "A sequence classifier (local directory or HF id, safetensors) that scores each pair that passed the "
        "rules, read as the text pair (question, answer); pairs scoring below --min-quality are dropped as "
        "low_quality (pip install 'instructpt[hf]').",
    )
    quality_label: str | None = option(
        None, "The classifier's label that means a good pair (default: its last label)."
    )
    min_quality: float = option(0.5, "Lowest probability of --quality-label a pair may have.")
    quality_batch_size: int = option(32, "Pairs per classifier forward pass.")
    trust_remote_code: bool = option(
        False, "Allow the classifier's repository to run its own code (off by default)."
    )

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the flag of a bad value."""
        if not 0.0 <= self.min_grounding <= 1.0 or not 0.0 <= self.max_question_similarity <= 1.0:
            raise ConfigError("--min-grounding and --max-question-similarity must be in [0, 1]")
        if min(self.min_question_chars, self.max_question_chars, self.max_answer_chars) < 0:
            raise ConfigError("the length limits must not be negative")
        if self.min_question_chars > self.max_question_chars:
            raise ConfigError("--min-question-chars is above --max-question-chars")
        if self.max_ngram_repeats < 1:
            raise ConfigError(f"--max-ngram-repeats must be at least 1, got {self.max_ngram_repeats}")
        if not 0.0 <= self.min_quality <= 1.0:
            raise ConfigError(f"--min-quality must be in [0, 1], got {self.min_quality}")
        if self.quality_batch_size < 1:
            raise ConfigError("--quality-batch-size must be at least 1")
        if self.english:
            try:
                import py3langid  # noqa: F401
            except ImportError as exc:
                raise ConfigError("--english needs py3langid: pip install 'instructpt[filter]'") from exc

    @property
    def rules(self) -> FilterRules:
        # every threshold that is an option here; the others (2-10 options) as the rules define them
        return FilterRules(**{k: getattr(self, k, v) for k, v in asdict(RULES_DEFAULT).items()})

    def rules_fingerprint(self) -> dict[str, Any]:
        fp: dict[str, Any] = {"rules": asdict(self.rules), "version": FILTER_RULES_VERSION}
        if self.quality_model:  # recorded only when used: directories written before still resume
            fp["quality"] = {
                "model": self.quality_model,
                "label": self.quality_label,
                "min": self.min_quality,
            }
        return fp


class PairChecker:
    """The rules, and the quality classifier when one is given, over the pairs of documents."""

    def __init__(self, options: RuleOptions) -> None:
        self.rules, self.min_quality = options.rules, options.min_quality
        self.model = None
        if options.quality_model:
            from instructpt.quality.model import QualityModel

            self.model = QualityModel(
                options.quality_model,
                options.quality_label,
                options.quality_batch_size,
                options.trust_remote_code,
            )

    def failures(self, docs: Sequence[tuple[str, list[tuple[str, str]]]]) -> list[dict[int, tuple[str, str]]]:
        """For each ``(text, [(question, answer), ...])``: pair index -> (rule, detail) of the pairs that fail.
        The classifier scores the pairs that pass the rules, in one batched pass over ``docs``."""
        out = [
            {i: (r, "") for i, r in enumerate(check_pairs(text, pairs, self.rules)) if r is not None}
            for text, pairs in docs
        ]
        if self.model is not None:
            where = [
                (k, i) for k, (_, pairs) in enumerate(docs) for i in range(len(pairs)) if i not in out[k]
            ]
            for (k, i), score in zip(where, self.model.scores([docs[k][1][i] for k, i in where])):
                if score < self.min_quality:
                    out[k][i] = ("low_quality", f"score {score:.4f} < {self.min_quality:g}")
        return out
