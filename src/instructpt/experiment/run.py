"""The ``experiment`` command: instruction pre-training against vanilla pre-training at the same token budget,
through the project's own stages (no second implementation of any).

    instructpt experiment --config configs/experiment-micro.yaml -o OUT

data (the micro experiment's generated people, micro.py; or ``--corpus``) -> OUT/pairs (synthesize: rules, a
synthesizer model, or a tiny trained one; or the generator's gold pairs) -> OUT/augmented (templify) ->
OUT/tokenizer (``--tokenizer``, the ``--init`` checkpoint's, or a byte-level BPE trained on the generated corpus)
-> OUT/packed/{raw,augmented,tune[,general]} (pack) -> OUT/mixes/{instruction,vanilla,vanilla+tune} (mix: from
scratch, the augmented documents replace their raw versions; with ``--general`` the domain recipe; vanilla takes
raw text only, at the instruction mixture's token budget) -> for every seed and arm OUT/runs/ARM-sSEED (pretrain:
the same model config or ``--init`` checkpoint, schedule and steps) -> OUT/evals/ARM-sSEED (evaluate: the
generated tasks or ``--suite``) -> OUT/experiment.json and OUT/report.md (report.py), of the latest study, and
OUT/studies/<digest>/ the same for every study run into OUT.

Every step is a stage run with its own fingerprint and resume, in a directory under those above named by a digest
of every setting it depends on (``OUT/runs/<digest>/instruction-s0``): a re-run skips what is finished, and a
changed setting runs only the steps that depend on it, into new directories. The control arm ``vanilla+tune`` is
the vanilla model of the same seed tuned for ``--tune-steps`` on the instruction arm's pairs alone (plain vanilla
is the format floor); ``--compare-tuned`` adds ``instruction+tune``, the instruction model tuned the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from instructpt.errors import ConfigError, InputError
from instructpt.experiment.config import ARMS, TUNE, TUNED_FROM, ExperimentConfig
from instructpt.experiment.report import STORAGE_BAR, compare, markdown, scores
from instructpt.pack.tokenizer import train_tokenizer
from instructpt.stages import RunInfo, Summary
from instructpt.train.model import model_spec

log = logging.getLogger(__name__)
__all__ = ["ARMS", "STORAGE_BAR", "TUNE", "ExperimentConfig", "experiment"]


@dataclass
class _Data:
    """Where the experiment's data is: the raw corpus, what the synthesizer reads, and the evaluation suite."""

    key: str
    raw: list[str]
    augment: list[str]
    fraction: float
    suite: str
    id_field: str | None
    text_field: str = "text"
    gold: Path | None = None
    collection: Path | None = None


def _data(config: ExperimentConfig, root: Path) -> _Data:
    if config.corpus:
        key = _key(config.corpus, config.text_field, config.id_field, config.split)
        fraction = 1.0 if config.general else config.augment_fraction  # the domain recipe converts every text
        assert config.suite is not None  # checked by the config
        return _Data(
            key, config.corpus, config.corpus, fraction, config.suite, config.id_field, config.text_field
        )
    from instructpt.experiment.micro import DATA_VERSION, generate

    key = _key(DATA_VERSION, config.entities, config.docs_per_entity, config.data_seed)
    paths = generate(root / "data" / key, config.entities, config.docs_per_entity, config.data_seed)
    corpus = paths["corpus"]
    suite = config.suite or str(paths["tasks"])
    return _Data(key, [str(corpus)], [str(corpus / "augmented.jsonl")], 1.0, suite, "id",
                 gold=paths["gold"], collection=paths["collection"])  # fmt: skip


def experiment(config: ExperimentConfig) -> Summary:
    from instructpt.evaluate.run import EvaluateConfig, evaluate
    from instructpt.mix.run import MixConfig, mix
    from instructpt.pack.run import PackConfig, pack
    from instructpt.pretrain.run import PretrainConfig
    from instructpt.templates.run import TemplifyConfig, templify

    start = time.monotonic()
    root = Path(config.output)
    data = _data(config, root)
    # Each step's directory is named by a digest of every setting it depends on: a changed setting runs the steps
    # that depend on it into new directories, and the others are found finished (each is a stage run that resumes).
    synth = synthesize_settings(config, data, root / "pairs")  # checked before any step runs
    check_evaluation(config, data)
    tokenizer = config.tokenizer or config.init
    tok_key = _key(data.key, tokenizer, None if tokenizer else config.vocab_size)
    train_fp = config.train.fingerprint()
    # a trained synthesizer is made with the tokenizer, model and training options of the arms
    trained = (
        tok_key,
        model_spec(config.model_config),
        config.synth_base_steps,
        config.synth_steps,
        train_fp,
    )
    synth_fp = synth and {k: v for k, v in synth.fingerprint().items() if k not in ("inputs", "output")}
    pairs_key = _key(data.key, config.synthesizer, data.fraction, synth_fp,
                     config.synthesizer == "trained" and trained)  # fmt: skip
    if synth is not None:
        synth = replace(synth, output=str(root / "pairs" / pairs_key))
    raw_key, pack_key = _key(data.key, tok_key), _key(pairs_key, tok_key)
    general_key = _key(tok_key, config.general, config.general_text_field, config.split)
    mix_key = _key(raw_key, pack_key, config.train.seq_len, config.general and general_key,
                   config.general and config.instruction_ratio)  # fmt: skip
    base_key = _key(mix_key, config.init or model_spec(config.model_config), config.tokenizer, train_fp)
    tune_key = _key(base_key, config.tune_steps, config.tune_lr)
    suite_key = (config.suite or "generated", config.data_dir, config.eval_limit)
    if tokenizer is None:
        tokenizer = train_tokenizer(Path(data.raw[0]), root / "tokenizer" / tok_key, config.vocab_size)
    packed, raw = root / "packed" / pack_key, root / "packed" / raw_key / "raw"
    text: dict[str, Any] = {"tokenizer": tokenizer, "progress": False, "split": config.split,
                            "workers": config.pack_workers}  # fmt: skip
    pack(
        PackConfig(
            inputs=data.raw, output=str(raw), id_field=data.id_field, text_field=data.text_field, **text
        )
    )
    pairs = synthesize_pairs(config, data, synth, raw)
    # the gold pairs are a shard file, not a run directory: templify reads either
    shards = (
        [str(pairs)] if data.gold != pairs else [str(p) for p in sorted((pairs / "data").glob("shard-*"))]
    )
    augmented = root / "augmented" / pairs_key
    templify(TemplifyConfig(inputs=shards, output=str(augmented), progress=False))
    pack(
        PackConfig(inputs=[str(augmented)], output=str(packed / "augmented"), source_type="augmented", **text)
    )
    seq = config.train.seq_len
    mixes = root / "mixes" / mix_key
    if config.general:  # the domain recipe: every document augmented, with general instructions
        general = root / "packed" / general_key / "general"
        pack(
            PackConfig(
                inputs=config.general, output=str(general), text_field=config.general_text_field, **text
            )
        )
        mix(MixConfig(output=str(mixes / "instruction"), preset="domain", seq_len=seq,
                      instruction_ratio=config.instruction_ratio,
                      sources=[f"augmented={packed / 'augmented'}", f"general={general}"]))  # fmt: skip
    else:
        mix(MixConfig(output=str(mixes / "instruction"), preset="from-scratch", replace_fraction=1.0, seq_len=seq,
                      sources=[f"raw={raw}", f"augmented={packed / 'augmented'}"]))  # fmt: skip
    mix(MixConfig(output=str(mixes / "vanilla"), preset="vanilla", seq_len=seq, sources=[f"raw={raw}"],
                  pair_with=str(mixes / "instruction")))  # fmt: skip
    # the tuning data of the tuned arms: the instruction arm's pairs alone, one text per document's pairs
    tune_text = pairs_texts(pairs, root / "tune" / pairs_key / "pairs.jsonl")
    pack(PackConfig(inputs=[str(tune_text)], output=str(packed / "tune"), id_field="id", **text))
    mix(MixConfig(output=str(mixes / TUNE), preset="none", seq_len=seq, sources=[f"pairs={packed / 'tune'}"]))
    # the arms pre-trained on their mixtures, and the tuned arms (a short phase from those models), apart: a changed
    # tuning setting runs the tuning phase only
    runs = {"base": root / "runs" / base_key, "tuned": root / "runs" / tune_key}
    evals = {
        "base": root / "evals" / _key(base_key, suite_key),
        "tuned": root / "evals" / _key(tune_key, suite_key),
    }
    results: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in config.arms}
    device = "cpu" if config.train.device == "cpu" else "auto"
    for seed in config.seeds:
        for arm in config.arms:
            train = replace(config.train, seed=seed)
            group = "tuned" if arm in TUNED_FROM else "base"
            run = runs[group] / f"{arm}-s{seed}"
            if group == "tuned":  # from the arm's model of the same seed, a short phase through the same loop
                lr = config.tune_lr or config.train.lr / 10
                train = replace(train, max_steps=config.tune_steps, max_tokens=None, epochs=None, lr=lr,
                                warmup_steps=min(train.warmup_steps, max(1, config.tune_steps // 10)))  # fmt: skip
                step = PretrainConfig(data=str(mixes / TUNE), output=str(run), progress=False, train=train,
                                      init=str(runs["base"] / f"{TUNED_FROM[arm]}-s{seed}" / "model"))  # fmt: skip
            else:
                step = PretrainConfig(data=str(mixes / arm), output=str(run), model_config=config.model_config,
                                      init=config.init, tokenizer=config.tokenizer, progress=False, train=train)  # fmt: skip
            run_pretrain(step, config.launcher)
            out = evals[group] / f"{arm}-s{seed}"
            evaluate(EvaluateConfig(model=str(run / "model"), suite=data.suite, data_dir=config.data_dir,
                                    output=str(out), limit=config.eval_limit, batch_size=config.eval_batch_size,
                                    device=device))  # fmt: skip
            results[arm][seed] = scores(out / "results.json")
            _free_accelerator()
    report = compare(results, config.seeds)
    # the arms' pre-training budgets, as mixed (the tuned arms add their tuning phase on top)
    report["train_tokens"] = {arm: _train_tokens(mixes / arm) for arm in ("instruction", "vanilla", TUNE)}
    # each study's report in its own directory too: another study into the same OUT keeps this one's
    study = root / "studies" / _key(tune_key, suite_key, config.seeds, config.arms)
    report["directories"] = {"runs": str(runs["base"]), "tuned_runs": str(runs["tuned"]),
                             "evals": str(evals["base"]), "tuned_evals": str(evals["tuned"]), "mixes": str(mixes),
                             "study": str(study)}  # fmt: skip
    study.mkdir(parents=True, exist_ok=True)
    for where in (study, root):  # OUT/: the latest study
        (where / "experiment.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        (where / "report.md").write_text(markdown(report, config), encoding="utf-8")
    print(f"experiment: {root / 'report.md'} (this study's also in {study})")
    counts = {"seeds": len(config.seeds), "arms": len(config.arms), "tasks": len(report["tasks"])}
    info = RunInfo("runs", len(config.seeds) * len(config.arms), time.monotonic() - start)
    return Summary("experiment", counts, {}, info, headline=("seeds", "arms", "tasks"), output=str(root))


def _key(*settings: Any) -> str:
    """A short digest of the settings a step depends on (its directory's name)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def synthesize_settings(config: ExperimentConfig, data: _Data, out: Path) -> Any:
    """The synthesize config of the pairs step (the engine of ``trained`` is set once its model exists); None for
    the gold pairs."""
    from instructpt.config import load_yaml, resolve
    from instructpt.engines.config import EngineConfig, model_engine
    from instructpt.synthesizer.run import SynthesizeConfig

    if config.synthesizer == "gold":
        return None
    given: dict[str, Any] = {"inputs": data.augment, "output": str(out), "id_field": data.id_field,
                             "text_field": data.text_field, "split": config.split, "fraction": data.fraction,
                             "progress": False}  # fmt: skip
    if config.synthesizer != "model":
        return SynthesizeConfig(engine=EngineConfig(name="rules"), rounds=1, **given)
    if config.synthesizer_model:
        given["engine.model"] = config.synthesizer_model
    elif not config.synthesize_config:
        given["engine.model"] = EngineConfig().model  # the released synthesizer
    named = config.synthesize_config and (load_yaml(config.synthesize_config).get("engine") or {}).get("name")
    if named in (
        None,
        "auto",
    ):  # a model runs on vllm or transformers (auto would pick rules for the default id)
        given["engine.name"] = model_engine()[0]
    cfg = resolve(SynthesizeConfig, config.synthesize_config, given)
    if cfg.engine.name == "rules":
        raise ConfigError(
            "--synthesizer model needs a model engine; the synthesize settings name the rules engine"
        )
    return cfg


def synthesize_pairs(config: ExperimentConfig, data: _Data, settings: Any, raw: Path) -> Path:
    """The synthesize output the instruction arm is made from (or the generator's gold pairs)."""
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import synthesize

    if settings is None:
        assert data.gold is not None  # the config allows gold on generated data only
        return data.gold
    out = Path(settings.output)
    if config.synthesizer == "trained":
        assert data.collection is not None
        # named by the pairs' settings, which include the synthesizer's own
        model = trained_synthesizer(
            config, out.parent.parent / "synthesizer" / out.name, raw, data.collection
        )
        settings = replace(settings, engine=EngineConfig(name="transformers", model=model, max_model_len=1024,
                                                         max_new_tokens=96))  # fmt: skip
    synthesize(settings)
    return out


def check_evaluation(config: ExperimentConfig, data: _Data) -> None:
    """The evaluation settings, checked before any step runs (a bad suite would otherwise stop the run after the
    first pre-training)."""
    import importlib.util

    from instructpt.evaluate.run import EvaluateConfig

    EvaluateConfig(model="-", suite=data.suite, data_dir=config.data_dir, output="-", limit=config.eval_limit,
                   batch_size=config.eval_batch_size)  # fmt: skip
    if data.suite == "general" and importlib.util.find_spec("lm_eval") is None:
        raise ConfigError("--suite general runs lm-evaluation-harness: pip install 'instructpt[eval]'")


def run_pretrain(step: Any, launcher: str | None) -> None:
    """One pre-training run: in this process, or as ``LAUNCHER -m instructpt pretrain --config FILE`` (the
    settings written beside the run directory, FILE = RUN.yaml)."""
    from instructpt.config import to_yaml
    from instructpt.pretrain.run import pretrain

    if not launcher:
        pretrain(step)
        return
    path = Path(step.output + ".yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(step), encoding="utf-8")
    command = [*shlex.split(launcher), "-m", "instructpt", "pretrain", "--config", str(path)]
    log.info("experiment: %s", shlex.join(command))
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        raise InputError(f"the pre-training run {step.output} failed (exit {code}): {shlex.join(command)}")


def _free_accelerator() -> None:
    """Give back the GPU memory this process cached while evaluating, before the next (launched) run needs it."""
    import gc
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def _train_tokens(mixture: Path) -> int:
    return int(json.loads((mixture / "mixture.json").read_text(encoding="utf-8"))["train"]["tokens"])


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
                             warmup_steps=10, device=config.train.device, precision=config.train.precision,
                             checkpoint_every=100_000)  # fmt: skip
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


main = experiment
Config = ExperimentConfig
