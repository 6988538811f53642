"""Scoring the domain tasks on an HF causal LM with the reference semantics (SPEC §8).

- Classification: each option is scored as the continuation ``" " + option`` of the row's ``input``; its score is
  the mean negative log-likelihood of the option's tokens alone; the option with the lowest wins (ties: the first).
  The option's tokens are what the whole text adds to the input's own encoding (lm-eval's split).
  Classification prompts are not truncated (as in the reference), except to the model's own context length.
- Generation: greedy decoding, at most ``max_new_tokens`` (100), cut at the first newline, the prompt left-truncated
  to fit ``max_length`` (2048) with room for the new tokens; a BOS stays first when the prompt is cut.

BOS: prepended to every sequence when ``add_bos``; an input whose own encoding already starts with BOS would then
carry two, and is refused.
"""

from __future__ import annotations

import math
from typing import Any

from instructpt.errors import InputError
from instructpt.evaluate import metrics
from instructpt.evaluate.tasks import Row, Task


class Scorer:
    def __init__(self, model: Any, tokenizer: Any, add_bos: bool, device: Any, batch_size: int = 8,
                 max_length: int = 2048, max_new_tokens: int = 100) -> None:  # fmt: skip
        self.model, self.tok, self.add_bos, self.device = model.eval(), tokenizer, add_bos, device
        self.batch_size, self.max_length, self.max_new_tokens = batch_size, max_length, max_new_tokens
        self.bos = tokenizer.bos_token_id
        self.context = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
        if add_bos and self.bos is None:
            raise InputError("--add-bos-token: the tokenizer has no BOS token")
        pad = tokenizer.pad_token_id
        self.pad = pad if pad is not None else (tokenizer.eos_token_id or 0)

    def encode(self, text: str, task: str, row: int) -> list[int]:
        ids = self.tok.encode(text, add_special_tokens=False)
        if self.add_bos:
            if ids and ids[0] == self.bos:
                raise InputError(f"{task} row {row}: the input starts with the BOS token and BOS is added too (two "
                                 "BOS): remove it from the input or pass --no-add-bos-token")  # fmt: skip
            ids = [self.bos, *ids]
        return ids

    # ---- classification ----
    def option_nlls(self, task: Task, row: Row) -> list[float]:
        return self._nlls([self._pair(task, row, o) for o in row.options or []])

    def _pair(self, task: Task, row: Row, option: str) -> tuple[list[int], list[int]]:
        context, continuation = row.input, " " + option
        n_space = len(context) - len(context.rstrip(" "))
        if n_space:  # trailing spaces belong to the continuation (as lm-eval splits them)
            context, continuation = context[:-n_space], context[-n_space:] + continuation
        whole = self.encode(context + continuation, task.name, row.index)
        ctx = self.encode(context, task.name, row.index)
        cont = whole[len(ctx) :]
        if not cont:
            raise InputError(f"{task.name} row {row.index}: option {option!r} adds no token to the input")
        return ctx, cont

    def _nlls(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            seqs = [
                (c + t)[-(self.context + 1) :] for c, t in chunk
            ]  # only beyond the model's context length
            width = max(map(len, seqs)) - 1
            ids = torch.full((len(seqs), width), self.pad, dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s) - 1] = torch.tensor(s[:-1])
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device)).logits
                for i, (s, (_, cont)) in enumerate(zip(seqs, chunk)):
                    n = len(cont)
                    # log-probabilities at the option's positions only (not batch x length x vocab)
                    logp = torch.log_softmax(logits[i, len(s) - 1 - n : len(s) - 1].float(), dim=-1)
                    picked = logp[
                        torch.arange(n, device=logp.device), torch.tensor(s[-n:], device=logp.device)
                    ]
                    out.append(float(-picked.mean()))
        return out

    # ---- generation ----
    def generate(self, task: Task, rows: list[Row]) -> list[str]:
        import torch

        budget = self.max_length - self.max_new_tokens
        out: list[str] = []
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            prompts = [self._fit(self.encode(r.input, task.name, r.index), budget) for r in chunk]
            width = max(map(len, prompts))
            ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts], device=self.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
            with torch.inference_mode():
                gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                                          do_sample=False, pad_token_id=self.pad, eos_token_id=self.tok.eos_token_id)  # fmt: skip
            for row in gen[:, width:].tolist():
                eos = self.tok.eos_token_id
                row = row[: row.index(eos)] if eos in row else row
                out.append(self.tok.decode(row, skip_special_tokens=True).split("\n", 1)[0])
        return out

    def _fit(self, ids: list[int], budget: int) -> list[int]:
        """``ids`` left-truncated to ``budget`` tokens, keeping a leading BOS first."""
        if len(ids) <= budget:
            return ids
        if self.add_bos:
            return [ids[0], *ids[len(ids) - budget + 1 :]]
        return ids[-budget:]


def score_task(scorer: Scorer, task: Task) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(result, samples)`` of one task: the metric's value with its row count (and a standard error for
    accuracy-type metrics), and one sample line per row."""
    samples: list[dict[str, Any]] = []
    if task.kind == "mc":
        preds, golds = [], []
        for row in task.rows:
            nlls = scorer.option_nlls(task, row)
            pred = min(range(len(nlls)), key=lambda k: (nlls[k], k))
            preds.append(pred)
            golds.append(row.gold_index or 0)
            samples.append({"index": row.index, "option_mean_nll": nlls, "prediction": pred, "gold": row.gold_index,
                            "score": float(pred == row.gold_index), **({"group": row.group} if row.group else {})})  # fmt: skip
        value = _mc_value(task, preds, golds)
    else:
        texts = scorer.generate(task, task.rows)
        labels = [row.label or "" for row in task.rows]
        for row, text in zip(task.rows, texts):
            samples.append(
                {
                    "index": row.index,
                    "prediction": text,
                    "gold": row.label,
                    "score": _row_score(task, text, row),
                }
            )
        value = {"ner_f1": metrics.ner_f1, "convfinqa_match": metrics.convfinqa_match}.get(
            task.metric, metrics.exact_match
        )(texts, labels)
    n = len(task.rows)
    result: dict[str, Any] = {"metric": task.metric, "value": value, "n": n, "source": task.source}
    if task.metric in ("accuracy", "micro_f1", "convfinqa_match", "exact_match") and n:
        result["stderr"] = math.sqrt(value * (1 - value) / n)
    return result, samples


def _mc_value(task: Task, preds: list[int], golds: list[int]) -> float:
    if task.metric == "weighted_f1":
        return metrics.weighted_f1(preds, golds)
    if task.metric == "micro_f1":
        return metrics.micro_f1(preds, golds)
    if task.metric == "headline_f1":
        return metrics.headline_f1(preds, golds, [r.group for r in task.rows])
    return metrics.accuracy(preds, golds)


def _row_score(task: Task, text: str, row: Row) -> float:
    gold = row.label or ""
    if task.metric == "ner_f1":
        return metrics.ner_row_f1(text, gold)
    if task.metric == "convfinqa_match":
        return metrics.convfinqa_score(text, gold)
    return float(text.strip() == gold.strip())
