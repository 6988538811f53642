"""The settings of ``instructpt experiment``: which data, which synthesizer, which model and schedule, which arms."""

from __future__ import annotations

from dataclasses import dataclass, field

from instructpt.config import option
from instructpt.errors import ConfigError
from instructpt.stages import RunOptions
from instructpt.train.options import TrainOptions

SYNTHESIZERS = ("gold", "rules", "trained", "model")


@dataclass
class ExperimentConfig(RunOptions):
    """``instructpt experiment``: instruction vs vanilla pre-training at the same token budget."""

    # the data: generated people (the micro experiment), or a corpus of your own
    corpus: list[str] = option(
        [],
        "Raw corpus: jsonl/json/csv/parquet files or directories, or an HF dataset id (default: the generated data "
        "of the micro experiment).",
    )
    text_field: str = option("text", "corpus: field holding the document text.")
    id_field: str | None = option(
        None, "corpus: field holding a document id (default: a stable id from file + line)."
    )
    split: str = option("train", "corpus, general: split of an HF dataset input.")
    augment_fraction: float = option(
        0.2,
        "corpus: share of the documents the synthesizer augments (they replace their raw versions in the "
        "instruction arm; SPEC §7: about 1/5 from scratch). The domain recipe (--general) augments every document.",
    )
    general: list[str] = option(
        [],
        "Domain recipe: general instruction data (files or an HF dataset id, one text per record) mixed with the "
        "augmented domain documents (mix --preset domain); default: the from-scratch recipe.",
    )
    general_text_field: str = option("text", "general: field holding the text.")
    instruction_ratio: float = option(1.0, "general: general instruction tokens per domain token.")
    suite: str | None = option(
        None,
        "Evaluation: general | biomedicine | finance | PATH (as instructpt evaluate takes it); default: the "
        "generated tasks (the micro experiment only).",
    )
    data_dir: str | None = option(None, "biomedicine / finance suites: a local copy of the tasks.")
    entities: int = option(240, "Generated data: people (half of them augmented).")
    docs_per_entity: int = option(2, "Generated data: documents per person.")
    data_seed: int = option(0, "Generated data: seed.")
    # the synthesizer
    synthesizer: str = option(
        "gold",
        "Where the pairs come from: gold (generated data: the generator's pairs, an upper bound), rules, trained "
        "(generated data: a tiny synthesizer, a base model pre-trained on the corpus and fine-tuned by "
        "train-synthesizer on the collection about other people), or model (a synthesizer model: "
        "--synthesizer-model, run as --synthesize-config says).",
        choices=SYNTHESIZERS,
    )
    synthesizer_model: str | None = option(
        None,
        "model: the synthesizer (HF id or directory; default: the one --synthesize-config names, else the "
        "released instruction-pretrain/instruction-synthesizer).",
    )
    synthesize_config: str | None = option(
        None,
        "model: a synthesize YAML whose engine and settings are used (e.g. configs/synthesize-vllm.yaml); its "
        "inputs and output are the experiment's.",
    )
    synth_base_steps: int = option(200, "trained: pre-training steps of the synthesizer's base model.")
    synth_steps: int = option(200, "trained: train-synthesizer steps on the generated collection.")
    # the model
    tokenizer: str | None = option(
        None,
        "Tokenizer (HF id or directory); default: with --init the checkpoint's, on generated data one trained "
        "on the corpus.",
    )
    vocab_size: int = option(2000, "Size of the tokenizer trained on the generated corpus.")
    model_config: str = option("tiny", "From scratch: a preset (tiny, 500m, 1.3b) or a config.json.")
    init: str | None = option(
        None,
        "Continual pre-training: every arm starts from this checkpoint (HF id or directory) instead of from "
        "scratch.",
    )
    pack_workers: int = option(0, "Tokenizer processes of each pack step (0 = one per CPU core).")
    launcher: str | None = option(
        None,
        "Run each pre-training as LAUNCHER -m instructpt pretrain --config FILE (e.g. 'torchrun "
        "--nproc-per-node 8'); default: in this process.",
    )
    seeds: list[int] = option(
        [0, 1, 2], "Seeds: every arm is pre-trained once per seed (initialisation, order)."
    )
    eval_limit: int | None = option(None, "Rows per evaluation task (quick runs).")
    eval_batch_size: int = option(8, "Sequences per evaluation forward pass.")
    tune_steps: int = option(
        40,
        "vanilla+tune: steps of instruction tuning on the instruction arm's pairs, from the vanilla model.",
    )
    tune_lr: float | None = option(
        None,
        "Peak learning rate of the tuning phase (default: a tenth of --train.lr; at the pre-training rate, a short "
        "phase on pairs alone makes a small model forget the facts it memorised).",
    )
    compare_tuned: bool = option(
        False,
        "Also the paper's second comparison: the instruction model tuned the same way (arm instruction+tune), "
        "against vanilla+tune.",
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
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds repeats a seed: {self.seeds}")
        if not 0 < self.augment_fraction <= 1:
            raise ConfigError("--augment-fraction must be in (0, 1]")
        if self.tune_steps < 1 or (self.tune_lr is not None and self.tune_lr <= 0):
            raise ConfigError("--tune-steps must be >= 1 and --tune-lr > 0")
        if self.corpus:
            if self.synthesizer in ("gold", "trained"):
                raise ConfigError(
                    f"--synthesizer {self.synthesizer} needs the generated data (gold pairs / a collection about "
                    "other people); with --corpus use rules or model"
                )
            if not self.suite:
                raise ConfigError(
                    "with --corpus, give --suite (general, biomedicine, finance or a task folder)"
                )
            if not (self.tokenizer or self.init):
                raise ConfigError(
                    "with --corpus, give --tokenizer (the paper: the Mistral tokenizer) or --init (its tokenizer)"
                )
        elif self.general:
            raise ConfigError("--general (the domain recipe) needs --corpus")
        if self.instruction_ratio != 1.0 and not self.general:
            raise ConfigError("--instruction-ratio sets the domain recipe's mix: it needs --general")
        if self.init and self.model_config != "tiny" and self.synthesizer != "trained":
            raise ConfigError(
                "--model-config is for pre-training from scratch; with --init every arm starts from the checkpoint"
            )
        if self.synthesizer != "model" and (self.synthesizer_model or self.synthesize_config):
            raise ConfigError("--synthesizer-model / --synthesize-config need --synthesizer model")

    @property
    def arms(self) -> tuple[str, ...]:
        """The arms, in the order they run: a tuned arm after the arm it starts from."""
        return ARMS + ((INSTRUCTION_TUNE,) if self.compare_tuned else ())


ARMS = ("instruction", "vanilla", "vanilla+tune")
TUNE = "vanilla+tune"  # the control: the vanilla model, then instruction-tuned on the instruction arm's pairs
INSTRUCTION_TUNE = (
    "instruction+tune"  # the paper's second comparison: both pre-trained models, then the same tuning
)
TUNED_FROM = {TUNE: "vanilla", INSTRUCTION_TUNE: "instruction"}
