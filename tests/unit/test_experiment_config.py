"""The experiment's settings: what goes together and what does not, said before anything runs."""

from __future__ import annotations

import pytest

from instructpt.errors import ConfigError
from instructpt.experiment.config import ExperimentConfig


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"corpus": ["c.jsonl"], "suite": "general", "tokenizer": "t"},
            "--synthesizer gold needs the generated",
        ),
        ({"corpus": ["c.jsonl"], "synthesizer": "rules", "tokenizer": "t"}, "give --suite"),
        ({"corpus": ["c.jsonl"], "synthesizer": "rules", "suite": "general"}, "give --tokenizer"),
        ({"general": ["g.jsonl"]}, "--general (the domain recipe) needs --corpus"),
        ({"synthesizer_model": "m"}, "need --synthesizer model"),
        ({"seeds": [0, 0]}, "repeats a seed"),
        ({"augment_fraction": 0.0}, "--augment-fraction"),
        ({"instruction_ratio": 2.0}, "--instruction-ratio sets the domain recipe's mix: it needs --general"),
        ({"init": "ckpt", "model_config": "500m"}, "with --init every arm starts from the checkpoint"),
    ],
)
def test_settings_that_do_not_go_together_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExperimentConfig(output="out", **settings)


def test_arms() -> None:
    assert ExperimentConfig(output="o").arms == ("instruction", "vanilla", "vanilla+tune")
    tuned = ExperimentConfig(
        output="o", compare_tuned=True, corpus=["c"], synthesizer="rules", suite="s", init="m"
    )
    assert tuned.arms[-1] == "instruction+tune"


def test_a_synthesizer_model_runs_on_a_model_engine_and_the_step_is_keyed_by_what_it_writes(tmp_path) -> None:
    """--synthesizer model without a synthesize YAML runs the released synthesizer on vllm or transformers (auto
    would pick the rules engine for the default id); a YAML's engine is kept; the rules engine is refused."""
    from instructpt.engines.config import DEFAULT_SYNTHESIZER
    from instructpt.experiment.run import _Data, synthesize_settings

    data = _Data("k", ["c.jsonl"], ["c.jsonl"], 1.0, "general", None)
    cfg = ExperimentConfig(
        output="o", corpus=["c.jsonl"], synthesizer="model", suite="general", tokenizer="t"
    )
    settings = synthesize_settings(cfg, data, tmp_path / "pairs")
    assert settings.engine.name == "transformers" and settings.engine.model == DEFAULT_SYNTHESIZER
    assert settings.inputs == ["c.jsonl"] and settings.output == str(tmp_path / "pairs")
    yaml = tmp_path / "s.yaml"
    yaml.write_text("engine:\n  name: openai\n  model: m\nrounds: 3\ninputs: [x]\noutput: y\n")
    cfg.synthesize_config = str(yaml)
    settings = synthesize_settings(cfg, data, tmp_path / "pairs")
    assert (settings.engine.name, settings.engine.model, settings.rounds) == ("openai", "m", 3)
    assert settings.inputs == ["c.jsonl"]  # the experiment's inputs and output, not the file's
    yaml.write_text("engine:\n  name: rules\n")
    with pytest.raises(ConfigError, match="needs a model engine"):
        synthesize_settings(cfg, data, tmp_path / "pairs")


def test_a_model_config_file_is_keyed_by_what_it_says_not_by_its_path(tmp_path) -> None:
    from instructpt.experiment.run import _key
    from instructpt.train.model import model_spec

    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 128}')
    before = _key(model_spec(str(path)))
    assert model_spec(str(tmp_path)) == {"hidden_size": 128}  # a directory holding config.json
    path.write_text('{"hidden_size": 256}')  # edited in place: another model, another directory of runs
    assert _key(model_spec(str(path))) != before
    assert model_spec("tiny") == "tiny"
