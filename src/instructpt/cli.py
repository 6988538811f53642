"""The ``instructpt`` command line: one entry point, one subcommand per stage.

Each subcommand's module is imported only when that subcommand runs (``instructpt --help`` imports no torch).
A stage module exposes ``Config`` (its config dataclass) and ``main(config) -> Summary``; options come from the
config: defaults < ``--config FILE.yaml`` < flags. Errors the user can act on (:class:`~instructpt.errors.UserError`)
print one line, ``instructpt COMMAND: error: ...``, without a traceback or the usage block, and exit with their
class's code (a config value or flag: 2); SIGTERM and Ctrl-C exit 143 and 130. ``instructpt`` without a command
prints its help and exits 2. Flags are never abbreviated (``--round`` is an error, not ``--rounds``).

    instructpt synthesize data/ -o out/pairs --engine rules
    instructpt templify out/pairs -o out/augmented
    instructpt synthesize --help
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

# name -> (module exposing Config and main, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synthesize": (
        "instructpt.synthesizer.run",
        "Raw corpus -> instruction-response pairs with a synthesizer (LLM or rules).",
    ),
    "templify": (
        "instructpt.templates.run",
        "Synthesized pairs -> instruction-augmented pre-training documents.",
    ),
    "filter": (
        "instructpt.filter.run",
        "Synthesized pairs -> the same, less pairs that fail quality rules (grounding, options, repetition, ...).",
    ),
    "decontaminate": (
        "instructpt.decontaminate.run",
        "Synthesized or rendered data -> the same, less (or flagged with) text found in evaluation sets.",
    ),
    "pack": (
        "instructpt.pack.run",
        "A source (raw, augmented, collection, chat) -> token files with a document index, tokenized once.",
    ),
    "mix": (
        "instructpt.mix.run",
        "Packed sources -> a mixture by tokens (the paper's presets), as a seeded sample index.",
    ),
    "pretrain": (
        "instructpt.pretrain.run",
        "A mixture -> a model: pre-train from scratch or continue an HF checkpoint (torchrun for several GPUs).",
    ),
    "train-synthesizer": (
        "instructpt.train_synthesizer.run",
        "Fine-tuning data (context + pairs) -> your own instruction synthesizer model (few-shot, pair-only loss).",
    ),
    "evaluate": (
        "instructpt.evaluate.run",
        "A model -> results on the paper's general suite (lm-eval), the AdaptLLM domain tasks, or your own tasks.",
    ),
    "evaluate-synthesizer": (
        "instructpt.evaluate.synthesizer",
        "A synthesizer's response accuracy on held-out examples, and the quality of any synthesize output's pairs.",
    ),
    "report": (
        "instructpt.report.run",
        "Any run directory -> a self-contained HTML report and a Markdown card with plots.",
    ),
    "experiment": (
        "instructpt.experiment.run",
        "Instruction vs vanilla pre-training at the same token budget (generated data or your corpus), every stage, "
        "per-seed report.",
    ),
    "verify": (
        "instructpt.verify",
        "A synthesize output directory -> whether every input record is in it exactly once (exit 3 if not).",
    ),
    "export": (
        "instructpt.pretrain.export",
        "A training checkpoint (sharded or not) -> an HF model directory.",
    ),
    "demo": (
        "instructpt.demo",
        "The whole pipeline on the shipped demo corpus, offline: rules synthesizer, templify, a tiny model trained "
        "and evaluated, a report.",
    ),
}


class _Parser(argparse.ArgumentParser):
    """No abbreviated flags (``--round`` is not ``--rounds``), and a usage error is one line, not the usage block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _top_parser() -> argparse.ArgumentParser:
    from instructpt._version import __version__

    p = _Parser(
        prog="instructpt",
        description="Instruction Pre-Training: synthesize grounded instruction-response pairs from raw "
        "corpora, render them into instruction-augmented pre-training text, tokenize and mix it, pre-train "
        "models on it, train your own synthesizer, and evaluate and report on every step.",
        epilog="Run 'instructpt COMMAND --help' for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"instructpt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def command_parser(name: str) -> tuple[argparse.ArgumentParser, Any]:
    """The parser of one command, and its stage module."""
    from instructpt.config import add_arguments

    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    p = _Parser(prog=f"instructpt {name}", description=help_text)
    p.add_argument("--config", metavar="FILE", help="YAML config file; flags override its values.")
    p.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    p.add_argument("-q", "--quiet", action="store_true", help="Warnings and errors only.")
    if name != "report":
        p.add_argument(
            "--report", action="store_true", help="Write a report of the output at the end (report/)."
        )
    add_arguments(p, module.Config)
    return p, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        top = _top_parser().parse_args(argv)  # --help and --version exit here (0)
        if top.command is None:
            _top_parser().print_help()
        return 2  # no command: nothing was done
    name = argv[0]
    parser, module = command_parser(name)
    args: dict[str, Any] = vars(parser.parse_args(argv[1:]))
    config_file = args.pop("config", None)
    verbose, quiet = args.pop("verbose", False), args.pop("quiet", False)
    want_report = args.pop("report", False)
    configure_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    code, summary = _run(name, module, config_file, args)
    if code == 0 and want_report:
        return _report(name, getattr(summary, "output", None))
    return code


def _report(name: str, output: str | None) -> int:
    """``--report``: the report of the run directory the command wrote."""
    if not output or not (Path(output) / "manifest.json").exists():
        print(
            f"instructpt {name}: --report: this command writes no run directory to report on", file=sys.stderr
        )
        return 0
    from instructpt.report import run as report_run

    return _run("report", report_run, None, {"run_dir": output})[0]


class _NotElsewhere(logging.Filter):
    """Passes a record only when no logger between its own and the root has a handler: libraries that print their
    records themselves and also pass them on (huggingface_hub) would otherwise show every warning twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger.parent is not None:  # the root has no parent
            if logger.handlers:
                return False
            if not logger.propagate:
                return True
            logger = logger.parent
        return True


def configure_logging(level: int) -> None:
    """Log lines on stderr with time, level and logger; a record a library has printed already is not repeated."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NotElsewhere) for f in handler.filters):
            handler.addFilter(_NotElsewhere())


def _run(name: str, module: Any, config_file: str | None, args: dict[str, Any]) -> tuple[int, Any]:
    """Run a command: its exit code, and its summary (None when it failed)."""
    from instructpt.config import resolve
    from instructpt.errors import UserError
    from instructpt.runtime import Terminated, handle_signals, tune_gc

    try:
        with handle_signals():
            config = resolve(module.Config, config_file, args)
            tune_gc()
            summary = module.main(config)
    except UserError as exc:  # ConfigError included: one line naming the flag or YAML key, exit code 2
        print(f"instructpt {name}: error: {exc}", file=sys.stderr)
        return exc.exit_code, None
    except (KeyboardInterrupt, Terminated) as exc:
        how, code = (exc.how, exc.code) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(f"instructpt {name}: {how}; completed shards are kept, re-run to resume", file=sys.stderr)
        return code, None
    _print_summary(name, summary)
    return 0, summary


def _print_summary(name: str, summary: Any) -> None:
    """Any stage's summary: its headline counters, the time its work took, and where its rejects are."""
    print(f"instructpt {name}: {summary.line()}; {summary.run.wall_seconds:.1f}s", file=sys.stderr)
    rejected = summary.counts.get("rejected", 0)
    if rejected and summary.output:
        print(
            f"instructpt {name}: {rejected:,} rejected ({summary.top_rejects()}), each with its reason, in "
            f"{summary.output}/rejects/",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
