"""The ``instructpt`` command line: one entry point, one subcommand per stage.

Each subcommand's module is imported only when that subcommand runs (``instructpt --help`` imports no torch).
Options come from the command's config dataclass: defaults < ``--config FILE.yaml`` < flags.

    instructpt synthesize data/ -o out/pairs --engine rules
    instructpt templify out/pairs -o out/augmented
    instructpt synthesize --help
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import signal
import sys
import threading
from typing import Any

# The stages allocate many small, short-lived containers (records, pairs, token lists) and few reference cycles;
# Python's default young-generation threshold (700) runs a collection every few documents. A larger one cut the
# synthesize stage's own overhead by about a quarter (bench/RESULTS.md). Only the command-line process is tuned.
GC_THRESHOLD = (50_000, 20, 20)


class Terminated(BaseException):
    """SIGTERM (a scheduler preempting the job, ``kill``): unwinds like Ctrl-C, so engines are closed.

    Not a KeyboardInterrupt: vLLM swallows those while its engine starts (``except KeyboardInterrupt`` around
    the start-up handshake), and the run then waited up to 600 s for an engine core the same signal had killed,
    then failed with exit 1."""

    how, code = "terminated", 143


class Interrupted(Terminated):
    """SIGINT (Ctrl-C), raised by our handler for the same reason instead of KeyboardInterrupt."""

    how, code = "interrupted", 130


def _on_signal(signum: int, frame: Any) -> None:
    raise Interrupted if signum == signal.SIGINT else Terminated


def tune_gc() -> None:
    """Freeze what is allocated so far (modules, configs) out of collections and raise the collection threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


# name -> (module, config class, run function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "synthesize": (
        "instructpt.synthesizer.run",
        "SynthesizeConfig",
        "synthesize",
        "Raw corpus -> instruction-response pairs with a synthesizer (LLM or rules).",
    ),
    "templify": (
        "instructpt.templates.run",
        "TemplifyConfig",
        "templify",
        "Synthesized pairs -> instruction-augmented pre-training documents.",
    ),
    "demo": (
        "instructpt.demo",
        "DemoConfig",
        "demo",
        "Rules synthesizer -> templify on the shipped demo corpus, offline, with a summary.",
    ),
}


def _top_parser() -> argparse.ArgumentParser:
    from instructpt import __version__

    p = argparse.ArgumentParser(
        prog="instructpt",
        description="Instruction Pre-Training: synthesize grounded instruction-response pairs from raw "
        "corpora and render them into instruction-augmented pre-training text.",
        epilog="Run 'instructpt COMMAND --help' for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"instructpt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (*_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def _command_parser(name: str) -> tuple[argparse.ArgumentParser, type, Any]:
    from instructpt.config import add_arguments

    module_name, cls_name, fn_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    cls = getattr(module, cls_name)
    p = argparse.ArgumentParser(prog=f"instructpt {name}", description=help_text)
    p.add_argument("--config", metavar="FILE", help="YAML config file; flags override its values.")
    p.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    p.add_argument("-q", "--quiet", action="store_true", help="Warnings and errors only.")
    add_arguments(p, cls)
    return p, cls, getattr(module, fn_name)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        args = _top_parser().parse_args(argv)
        if args.command is None:
            _top_parser().print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    parser, cls, run = _command_parser(name)
    args = vars(parser.parse_args(argv[1:]))
    config_file = args.pop("config", None)
    verbose, quiet = args.pop("verbose", False), args.pop("quiet", False)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return _run(name, cls, run, config_file, args, parser)


def _run(
    name: str,
    cls: type,
    run: Any,
    config_file: str | None,
    args: dict[str, Any],
    parser: argparse.ArgumentParser,
) -> int:
    from instructpt.config import ConfigError, resolve
    from instructpt.engines.base import EngineError
    from instructpt.io.readers import InputError
    from instructpt.io.shards import ResumeError

    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can handlers be set
    # SIGINT only where Python's own handler is set (a job started with SIGINT ignored stays so)
    handled = [signal.SIGTERM] + [signal.SIGINT] * (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    previous = {sig: signal.signal(sig, _on_signal) for sig in handled} if in_main_thread else {}
    try:
        config = resolve(cls, config_file, args)
        tune_gc()
        summary = run(config)
    except ConfigError as exc:
        parser.error(str(exc))
    except (InputError, ResumeError, EngineError) as exc:
        print(f"instructpt {name}: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as exc:
        how, code = (exc.how, exc.code) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(f"instructpt {name}: {how}; completed shards are kept, re-run to resume", file=sys.stderr)
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print_summary(name, summary, getattr(config, "output", None))
    return 0


def _print_summary(name: str, summary: dict[str, Any], output: str | None = None) -> None:
    counts = summary.get("counts", {})
    keys = (
        "docs_in",
        "docs_rejected",
        "engine_errors",
        "docs_out",
        "records_out",
        "chains",
        "pairs",
        "chains_in",
        "documents_out",
    )
    shown = ", ".join(f"{k}={counts[k]:,}" for k in keys if k in counts) or "the inputs held no records"
    run = summary.get("run", {})
    print(f"instructpt {name}: {shown}; {run.get('wall_seconds', 0):.1f}s", file=sys.stderr)
    rejected = sum(n for n in summary.get("by", {}).get("rejects", {}).values())
    if rejected and output:
        print(
            f"instructpt {name}: {rejected:,} rejected, each with its reason, in {output}/rejects/",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
