"""The ``experiment`` command: instruction pre-training against vanilla pre-training at the same token budget, on
the micro experiment's generated data, through the project's own stages (no second implementation of any).

    instructpt experiment --config configs/experiment-smoke.yaml -o OUT

OUT/data (micro.py) -> OUT/pairs (synthesize, rules; or the generator's gold pairs) -> OUT/augmented (templify) ->
OUT/tokenizer (a byte-level BPE trained on the corpus, unless --tokenizer) -> OUT/packed/{raw,augmented,tune}
(pack) -> OUT/mixes/{instruction,vanilla,vanilla+tune} (mix: the augmented documents replace their raw versions;
vanilla takes raw text only, at the instruction mixture's token budget) -> for every seed and arm
OUT/runs/ARM-sSEED (pretrain, the same model config, schedule and steps) -> OUT/evals/ARM-sSEED (evaluate on the
generated tasks) -> OUT/experiment.json
and OUT/report.md: per-seed numbers, means and spread, and the per-seed differences of instruction against the
control and against vanilla.

Every step is a stage run with its own fingerprint and resume, in a directory under those above named by a digest
of every setting it depends on (``OUT/runs/<digest>/instruction-s0``): a re-run skips what is finished, and a
changed setting runs only the steps that depend on it, into new directories. The control arm ``vanilla+tune`` is the vanilla model of the same seed tuned for ``--tune-steps``
on the instruction arm's pairs alone (plain vanilla is the format floor). ``--synthesizer trained`` makes a tiny
synthesizer through the real pipeline first (pretrain a base on the corpus, train-synthesizer on the collection
about other people) and synthesizes with it. Not yet here: released model synthesizers, both arms
instruction-tuned, corpora and suites other than the generated ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError, InputError
from instructpt.stages import RunInfo, RunOptions, Summary
from instructpt.train.loop import TrainOptions

log = logging.getLogger(__name__)
ARMS = ("instruction", "vanilla", "vanilla+tune")
TUNE = "vanilla+tune"  # the control: the vanilla model, then instruction-tuned on the instruction arm's pairs
STORAGE_BAR = 0.75  # storage accuracy both arms need before their question accuracy is compared


@dataclass
class ExperimentConfig(RunOptions):
    """``instructpt experiment``: instruction vs vanilla pre-training at the same token budget, on generated data."""

    entities: int = option(240, "People in the generated data (half of them augmented).")
    docs_per_entity: int = option(2, "Documents per person.")
    data_seed: int = option(0, "Seed of the generated data.")
    synthesizer: str = option(
        "gold",
        "Where the pairs come from: gold (the generator's, an upper bound), rules, or trained (a tiny synthesizer: a "
        "base model pre-trained on the corpus, fine-tuned by train-synthesizer on the collection about other people).",
        choices=("gold", "rules", "trained"),
    )
    synth_base_steps: int = option(200, "trained: pre-training steps of the synthesizer's base model.")
    synth_steps: int = option(200, "trained: train-synthesizer steps on the generated collection.")
    tokenizer: str | None = option(
        None, "Tokenizer (HF id or directory); default: one trained on the corpus."
    )
    vocab_size: int = option(2000, "Size of the tokenizer trained on the corpus.")
    model_config: str = option("tiny", "Model of every arm: a preset (tiny, 500m, 1.3b) or a config.json.")
    seeds: list[int] = option(
        [0, 1, 2], "Seeds: every arm is pre-trained once per seed (initialisation, order)."
    )
    eval_limit: int | None = option(None, "Rows per evaluation task (quick runs).")
    tune_steps: int = option(
        40,
        "vanilla+tune: steps of instruction tuning on the instruction arm's pairs, from the vanilla model.",
    )
    train: TrainOptions = field(
        default_factory=lambda: TrainOptions(max_steps=400, batch_size=32, seq_len=128)
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.entities < 4 or self.docs_per_entity < 1:
            raise ConfigError("--entities must be >= 4 and --docs-per-entity >= 1")
        if not self.seeds:
            raise ConfigError("give at least one seed")


def experiment(config: ExperimentConfig) -> Summary:
    from instructpt.engines.config import EngineConfig
    from instructpt.evaluate.run import EvaluateConfig, evaluate
    from instructpt.experiment.micro import generate
    from instructpt.mix.run import MixConfig, mix
    from instructpt.pack.run import PackConfig, pack
    from instructpt.pretrain.run import PretrainConfig, pretrain
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize
    from instructpt.templates.run import TemplifyConfig, templify

    start = time.monotonic()
    root = Path(config.output)
    # Each step's directory is named by a digest of every setting it depends on: a changed setting runs the steps
    # that depend on it into new directories, and the others are found finished (each is a stage run that resumes).
    data_key = _key(config.entities, config.docs_per_entity, config.data_seed)
    pairs_key = _key(data_key, config.synthesizer)
    tok_key = _key(data_key, config.tokenizer, config.vocab_size)
    pack_key = _key(pairs_key, tok_key)
    mix_key = _key(pack_key, config.train.seq_len)
    train_key = _key(mix_key, config.model_config, asdict(config.train), config.tune_steps)
    eval_key = _key(train_key, config.eval_limit)
    data = generate(root / "data" / data_key, config.entities, config.docs_per_entity, config.data_seed)
    corpus = data["corpus"]
    tokenizer = config.tokenizer or train_tokenizer(corpus, root / "tokenizer" / tok_key, config.vocab_size)
    packed = root / "packed" / pack_key
    pack(PackConfig(inputs=[str(corpus)], output=str(packed / "raw"), tokenizer=tokenizer, id_field="id",
                    progress=False))  # fmt: skip
    pairs = data["gold"]
    if config.synthesizer in ("rules", "trained"):
        pairs = root / "pairs" / pairs_key
        engine = EngineConfig(name="rules")
        if config.synthesizer == "trained":
            where = root / "synthesizer" / _key(pack_key, config.model_config, config.synth_base_steps,
                                                config.synth_steps)  # fmt: skip
            model = trained_synthesizer(config, where, packed / "raw", data["collection"])
            engine = EngineConfig(name="transformers", model=model, max_model_len=1024, max_new_tokens=96)
        synthesize(SynthesizeConfig(inputs=[str(corpus / "augmented.jsonl")], output=str(pairs), id_field="id",
                                    progress=False, engine=engine, rounds=1))  # fmt: skip
    # the gold pairs are a shard file, not a run directory: templify reads either
    shards = (
        [str(pairs)]
        if config.synthesizer != "gold"
        else [str(p) for p in sorted((pairs / "data").glob("shard-*"))]
    )
    augmented = root / "augmented" / pairs_key
    templify(TemplifyConfig(inputs=shards, output=str(augmented), progress=False))
    pack(PackConfig(inputs=[str(augmented)], output=str(packed / "augmented"), tokenizer=tokenizer,
                    source_type="augmented", progress=False))  # fmt: skip
    seq = config.train.seq_len
    mixes = root / "mixes" / mix_key
    mix(MixConfig(output=str(mixes / "instruction"), preset="from-scratch", replace_fraction=1.0, seq_len=seq,
                  sources=[f"raw={packed / 'raw'}", f"augmented={packed / 'augmented'}"]))  # fmt: skip
    mix(MixConfig(output=str(mixes / "vanilla"), preset="vanilla", seq_len=seq, sources=[f"raw={packed / 'raw'}"],
                  pair_with=str(mixes / "instruction")))  # fmt: skip
    # the control's tuning data: the instruction arm's pairs alone, one text per document's pairs
    tune_text = pairs_texts(pairs, root / "tune" / pairs_key / "pairs.jsonl")
    pack(PackConfig(inputs=[str(tune_text)], output=str(packed / "tune"), tokenizer=tokenizer, id_field="id",
                    progress=False))  # fmt: skip
    mix(MixConfig(output=str(mixes / TUNE), preset="none", seq_len=seq, sources=[f"pairs={packed / 'tune'}"]))
    runs, evals_root = root / "runs" / train_key, root / "evals" / eval_key
    results: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in ARMS}
    for seed in config.seeds:
        for arm in ARMS:
            run = runs / f"{arm}-s{seed}"
            train = replace(config.train, seed=seed)
            if arm == TUNE:  # from the vanilla model of the same seed, a short phase through the same loop
                train = replace(train, max_steps=config.tune_steps, max_tokens=None, epochs=None,
                                warmup_steps=min(train.warmup_steps, max(1, config.tune_steps // 10)))  # fmt: skip
                pretrain(PretrainConfig(data=str(mixes / TUNE), output=str(run), progress=False, train=train,
                                        init=str(runs / f"vanilla-s{seed}" / "model")))  # fmt: skip
            else:
                pretrain(PretrainConfig(data=str(mixes / arm), output=str(run), model_config=config.model_config,
                                        progress=False, train=train))  # fmt: skip
            evals = evals_root / f"{arm}-s{seed}"
            evaluate(EvaluateConfig(model=str(run / "model"), suite=str(data["tasks"]), output=str(evals),
                                    limit=config.eval_limit, device="cpu" if config.train.device == "cpu" else "auto"))  # fmt: skip
            results[arm][seed] = scores(evals / "results.json")
    report = compare(results, config.seeds)
    # the arms' pre-training budgets, as mixed (the control adds its tuning phase on top of vanilla's)
    report["train_tokens"] = {arm: _train_tokens(mixes / arm) for arm in ARMS}
    report["directories"] = {"runs": str(runs), "evals": str(evals_root), "mixes": str(mixes)}
    (root / "experiment.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (root / "report.md").write_text(markdown(report, config), encoding="utf-8")
    print(f"experiment: {root / 'report.md'}")
    counts = {"seeds": len(config.seeds), "arms": len(ARMS), "tasks": len(report["tasks"])}
    info = RunInfo("runs", len(config.seeds) * len(ARMS), time.monotonic() - start)
    return Summary("experiment", counts, {}, info, headline=("seeds", "arms", "tasks"), output=str(root))


def _key(*settings: Any) -> str:
    """A short digest of the settings a step depends on (its directory's name)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def trained_synthesizer(config: ExperimentConfig, root: Path, raw: Path, collection: Path) -> str:
    """A tiny synthesizer through the real pipeline: a base model pre-trained on the raw corpus (mix, pretrain),
    then fine-tuned by train-synthesizer on the generated collection about other people; returns its directory."""
    from instructpt.mix.run import MixConfig, mix
    from instructpt.pretrain.run import PretrainConfig, pretrain
    from instructpt.train_synthesizer.run import SynthTrainOptions, TrainSynthesizerConfig, train_synthesizer

    mix(
        MixConfig(
            output=str(root / "base-mix"), preset="none", seq_len=config.train.seq_len, sources=[f"raw={raw}"]
        )
    )
    base_train = replace(config.train, seed=0, max_steps=config.synth_base_steps)
    pretrain(PretrainConfig(data=str(root / "base-mix"), output=str(root / "base"), model_config=config.model_config,
                            progress=False, train=base_train))  # fmt: skip
    tune = SynthTrainOptions(max_steps=config.synth_steps, epochs=None, batch_size=8, seq_len=512, lr=1e-3,
                             warmup_steps=10, device=config.train.device, checkpoint_every=100_000)  # fmt: skip
    train_synthesizer(TrainSynthesizerConfig(inputs=[str(collection)], output=str(root / "trained"),
                                             init=str(root / "base" / "model"), eval_examples=4, progress=False,
                                             heldout_fraction=0.0, train=tune))  # fmt: skip
    return str(root / "trained" / "model")


def pairs_texts(pairs: Path, out: Path) -> Path:
    """The pairs of a synthesize output as plain text, one row per record ("question\nanswer" per pair): what the
    vanilla+tune control is tuned on."""
    from instructpt.io.shards import read_shard

    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for shard in sorted((pairs / "data").glob("shard-*")):
        for r in read_shard(shard):
            if r.get("pairs"):
                text = "\n\n".join(f"{p['question']}\n{p['answer']}" for p in r["pairs"])
                rows.append(json.dumps({"id": r["id"], "text": text}, ensure_ascii=False) + "\n")
    if not rows:
        raise InputError(
            f"{pairs} holds no pair for any augmented document: there is nothing to pre-train the instruction arm "
            "or tune the control on (a trained synthesizer may need more --synth-steps / --synth-base-steps)"
        )
    out.write_text("".join(rows), encoding="utf-8")
    return out


def train_tokenizer(corpus: Path, out: Path, vocab_size: int) -> str:
    """A byte-level BPE with ``<s>``, ``</s>``, ``<pad>``, trained on the corpus's texts (offline, ~1 s); kept in
    ``out`` and reused on a re-run."""
    if (out / "tokenizer.json").exists():
        return str(out)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [
        json.loads(line)["text"] for f in sorted(corpus.glob("*.jsonl")) for line in f.open(encoding="utf-8")
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out)
    return str(out)


def scores(results: Path) -> dict[str, float]:
    """Task -> its first metric's value, from evaluate's results.json (read as ``evaluate --compare`` reads it)."""
    from instructpt.evaluate.compare import result_rows

    data = json.loads(results.read_text(encoding="utf-8"))
    return {task: result_rows(result)[0][1] for task, result in data["tasks"].items()}


def compare(results: dict[str, dict[int, dict[str, float]]], seeds: list[int]) -> dict[str, Any]:
    """Per task: every arm's per-seed values, mean and spread, and the per-seed differences instruction - vanilla."""
    tasks = sorted(results[ARMS[0]][seeds[0]])
    table: dict[str, Any] = {}
    for task in tasks:
        row: dict[str, Any] = {}
        for arm in ARMS:
            values = [results[arm][s][task] for s in seeds]
            row[arm] = {"per_seed": values, "mean": statistics.fmean(values), "spread": _spread(values)}
        for other in ("vanilla", TUNE):
            diffs = [results["instruction"][s][task] - results[other][s][task] for s in seeds]
            row[f"instruction_minus_{other}"] = {
                "per_seed": diffs,
                "mean": statistics.fmean(diffs),
                "spread": _spread(diffs),
            }
        table[task] = row
    return {"seeds": seeds, "arms": list(ARMS), "tasks": table}


def _train_tokens(mixture: Path) -> int:
    return int(json.loads((mixture / "mixture.json").read_text(encoding="utf-8"))["train"]["tokens"])


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def markdown(report: dict[str, Any], config: ExperimentConfig) -> str:
    lines = [
        "# Experiment: instruction vs vanilla pre-training at the same token budget",
        "",
        f"Generated data: {config.entities} people (half augmented), pairs: {config.synthesizer}"
        + (" (the generator's gold pairs: an upper bound)" if config.synthesizer == "gold" else "")
        + f"; model {config.model_config}; seeds {report['seeds']}; {config.train.max_steps} steps of "
        f"{config.train.batch_size} x {config.train.seq_len} tokens; training tokens in the mixtures: "
        + ", ".join(f"{arm} {n:,}" for arm, n in report["train_tokens"].items())
        + ".",
        "",
        "`qa_*`: held-out question wordings (multiple choice, chance 0.25); `exact_*`: the same, exact match;",
        "`storage_*`: training-style sentence completion. A comparison counts only where storage is high (about 0.75",
        "or more) in both arms. Plain vanilla never saw a question-answer format: it is the format floor; the",
        f"control is `{TUNE}` (the vanilla model, then {config.tune_steps} steps of tuning on the instruction arm's",
        "pairs alone), and the claim is instruction against it.",
        "",
        f"| task | instruction | vanilla | {TUNE} | instruction - {TUNE} (per seed) | instruction - vanilla |",
        "|---|---:|---:|---:|---|---:|",
    ]
    storage = [  # the arms compared: instruction and the control
        row[arm]["mean"]
        for t, row in report["tasks"].items()
        if t.startswith("storage")
        for arm in ("instruction", TUNE)
    ]
    if storage and min(storage) < STORAGE_BAR:
        lines[-2:-2] = [f"**Storage is below {STORAGE_BAR} in an arm: the facts were not memorised well enough for "
                        "the comparison to count (more steps, or a larger model).**", ""]  # fmt: skip
    for task, row in report["tasks"].items():
        cells = [f"{row[arm]['mean']:.3f} ± {row[arm]['spread']:.3f}" for arm in ARMS]
        diff = row[f"instruction_minus_{TUNE}"]
        per_seed = ", ".join(f"{d:+.3f}" for d in diff["per_seed"])
        floor = row["instruction_minus_vanilla"]["mean"]
        lines.append(f"| {task} | {' | '.join(cells)} | {diff['mean']:+.3f} ({per_seed}) | {floor:+.3f} |")
    return "\n".join(lines) + "\n"


main = experiment
Config = ExperimentConfig
