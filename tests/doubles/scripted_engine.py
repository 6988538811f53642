"""Test doubles for the engine protocol: a scripted engine and a whitespace codec.

``ScriptedEngine`` is NOT a synthesizer: it answers each prompt with text chosen by a test-supplied function of
the request (default: canned well-formed pairs derived from the last context), returned immediately. It exists to
test our scheduling, parsing, resume and I/O code paths, and to measure the stage's own CPU overhead in bench/.
``WordCodec`` is a deterministic toy tokenizer (one id per whitespace-separated word, markers included) for
exact-budget tests that must not depend on a trained tokenizer.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from instructpt.engines.base import Generation, QueuedEngine, Request
from instructpt.engines.config import EngineConfig
from instructpt.wire import CON_CLOSE, CON_OPEN


def last_context(prompt: str) -> str:
    start = prompt.rindex(f"{CON_OPEN} ") + len(CON_OPEN) + 1
    return prompt[start : prompt.rindex(f" {CON_CLOSE}")]


def canned_pairs(request: Request) -> str:
    """Two well-formed pairs grounded in the first words of the last context."""
    words = last_context(request.prompt).split()
    head = " ".join(words[:6])
    return (
        f"<QUE> What does the text begin with? <ANS> {head} </END>\n\n"
        f"<QUE> How many words does it have? <ANS> {len(words)} </END>"
    )


class WordCodec:
    """Toy tokenizer: every whitespace-separated word is one token; ids are stable crc32 values."""

    eos_token_id = 2

    def __init__(self) -> None:
        self._words: dict[int, str] = {2: "</s>"}

    def encode(self, text: str) -> list[int]:
        ids = []
        for w in text.split():
            i = 2 if w == "</s>" else 10 + zlib.crc32(w.encode()) % 1_000_000_000
            self._words[i] = w
            ids.append(i)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._words[i] for i in ids)


class ScriptedEngine(QueuedEngine):
    """Answers every request at once with ``script(request)``; records every request it saw."""

    name = "scripted-test-double"

    def __init__(
        self,
        script: Callable[[Request], str] = canned_pairs,
        codec=None,
        config: EngineConfig | None = None,
        batch: int | None = None,
        return_ids: bool = True,
        text_prompts: bool = False,
        samples: Callable[[Request, int], str | None] | None = None,
    ) -> None:
        super().__init__(config or EngineConfig(name="rules"))
        self.script, self.codec = script, codec
        self.max_model_len = self.config.max_model_len if codec else None
        self.batch = batch
        self.return_ids = return_ids and not text_prompts  # False: like a server that returns text only
        self.tokenizes_prompt_text = text_prompts  # like a server in --prompt-mode text
        self.seen: list[Request] = []
        self.samples = samples  # the text of sample i of a request with n > 1 (default: script's, every time)

    def submit(self, requests: Sequence[Request]) -> None:
        super().submit(requests)
        self.seen.extend(requests)

    def poll(self) -> list[Generation]:
        out = []
        for req in self.take(self.batch):
            texts = [self.samples(req, i) if self.samples else self.script(req) for i in range(req.n)]
            if any(text is None for text in texts):
                out.append(Generation(req.key, "", "error", error="scripted failure"))
                continue
            samples = []
            for text in texts:
                assert text is not None
                ids = self.codec.encode(text) + [self.codec.eos_token_id] if self.codec else None
                samples.append(
                    Generation(
                        req.key,
                        text,
                        "stop",
                        token_ids=ids if self.return_ids else None,
                        prompt_tokens=len(req.prompt_ids or []),
                        generated_tokens=len(ids or []),
                    )
                )
            out.append(Generation.of_samples(samples))
        return out
