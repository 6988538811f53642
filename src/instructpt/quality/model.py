"""A model-based quality score for pairs: any sequence classifier from transformers, read as a text pair.

    model = QualityModel("path/to/classifier")            # a local directory or an HF id
    model.scores([("What is X?", "X is ...")])            # probability of the classifier's "good" label

The classifier gets each pair as the text pair (question, answer), truncated to its length limit, and the score
is the softmax probability of ``label`` (default: the last label; a one-logit head gives the sigmoid). Weights are
read from safetensors only, and the repository's own code runs only with ``trust_remote_code``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from instructpt.errors import ConfigError

log = logging.getLogger(__name__)
MAX_LENGTH = 512  # tokens per pair at most, whatever the tokenizer allows


class QualityModel:
    """A loaded classifier; :meth:`scores` gives one probability per (question, answer)."""

    def __init__(
        self,
        path: str,
        label: str | None = None,
        batch_size: int = 32,
        trust_remote_code: bool = False,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:
            raise ConfigError(
                f"--quality-model needs torch and transformers ({exc}): pip install 'instructpt[hf]'"
            ) from exc
        self._torch, self.batch_size = torch, batch_size
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForSequenceClassification.from_pretrained(
                path, use_safetensors=True, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load --quality-model {path!r}: {exc}") from exc
        if self.tokenizer.pad_token is None:  # decoder tokenizers often have none; padding needs one
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        # right padding: encoders' positions then do not depend on the batch, and sequence-classification heads
        # of decoders read the last token before the padding
        self.tokenizer.padding_side = "right"
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.index = _label_index(dict(model.config.id2label or {}), model.config.num_labels, label, path)
        self.max_length = min(MAX_LENGTH, int(getattr(self.tokenizer, "model_max_length", MAX_LENGTH)))

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The probability of the chosen label for each pair, in order."""
        torch = self._torch
        out: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            batch = pairs[start : start + self.batch_size]
            enc = self.tokenizer(
                [q for q, _ in batch],
                [a for _, a in batch],
                truncation=True,
                padding=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            if logits.shape[-1] == 1:
                probs = torch.sigmoid(logits[:, 0])
            else:
                probs = torch.softmax(logits, dim=-1)[:, self.index]
            out.extend(probs.cpu().tolist())
        return out


def _label_index(id2label: dict[Any, str], num_labels: int, label: str | None, path: str) -> int:
    """The output index of ``label`` (a name, or an index as text); by default the last."""
    if num_labels == 1:
        return 0
    if label is None:
        return num_labels - 1
    names = {str(v): int(k) for k, v in id2label.items()}
    if label in names:
        return names[label]
    if label.isdigit() and int(label) < num_labels:
        return int(label)
    raise ConfigError(f"--quality-label {label!r} is none of {path!r}'s labels ({', '.join(names)})")
