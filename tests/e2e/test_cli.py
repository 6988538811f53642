"""The command line as a user meets it: fast help that imports no torch, accurate subcommand help, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from instructpt.cli import COMMANDS, main


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "instructpt", *args], capture_output=True, text=True, timeout=timeout
    )


def test_top_level_help_lists_commands_and_imports_no_torch() -> None:
    code = (
        "import sys; from instructpt.cli import main; main([]); "
        "bad = [m for m in ('torch', 'transformers', 'vllm', 'datasets') if m in sys.modules]; "
        "print('HEAVY', bad)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "HEAVY []" in proc.stdout
    for name in COMMANDS:
        assert name in proc.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_subcommand_help_imports_no_torch(name: str) -> None:
    code = (
        f"import sys\ntry:\n    from instructpt.cli import main; main(['{name}', '--help'])\n"
        "except SystemExit: pass\nprint('HEAVY', [m for m in ('torch', 'vllm') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stderr
    assert "--config" in proc.stdout and "--output" in proc.stdout


def test_synthesize_help_shows_defaults() -> None:
    out = _run("synthesize", "--help").stdout
    for flag in (
        "--engine",
        "--model",
        "--rounds",
        "--max-model-len",
        "--trust-remote-code",
        "--api-key-env",
    ):
        assert flag in out
    assert "instruction-pretrain/instruction-synthesizer" in out


def test_errors_are_clear_and_exit_nonzero(tmp_path) -> None:
    proc = _run("synthesize", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o"), "--engine", "rules")
    assert proc.returncode == 3 and "does not exist" in proc.stderr
    proc = _run("synthesize", "-o", str(tmp_path / "o"))
    assert proc.returncode == 2 and "INPUT" in proc.stderr
    proc = _run("synthesize", "x.jsonl", "-o", "o", "--rounds", "0")
    assert proc.returncode == 2 and "--rounds" in proc.stderr
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_unusable_outputs_and_missing_model_directories_are_clear_errors(tmp_path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Cats sleep. However, dogs do not."}\n')
    (tmp_path / "afile").write_text("x")
    proc = _run("synthesize", str(corpus), "-o", str(tmp_path / "afile"), "--engine", "rules")
    assert proc.returncode == 4 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr
    out = tmp_path / "o"
    assert _run("synthesize", str(corpus), "-o", str(out), "--engine", "rules").returncode == 0
    (out / "manifest.json").write_text("{truncated")
    proc = _run("synthesize", str(corpus), "-o", str(out), "--engine", "rules")
    assert proc.returncode == 4 and "not a readable instructpt manifest" in proc.stderr
    (tmp_path / "bad.jsonl").write_text('{"text": "Fine. However, short."}\nnot json\n{"text": 3}\n')
    proc = _run("synthesize", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "o4"), "--engine", "rules")
    assert proc.returncode == 0 and "rejected=2" in proc.stderr
    assert (
        f"2 rejected (invalid_json 1, text_not_string 1), each with its reason, in {tmp_path / 'o4'}/rejects/"
        in proc.stderr
    )
    (tmp_path / "empty.jsonl").write_text("")
    proc = _run("synthesize", str(tmp_path / "empty.jsonl"), "-o", str(tmp_path / "o3"), "--engine", "rules")
    assert proc.returncode == 0 and "the inputs held no records" in proc.stderr
    missing = str(tmp_path / "no-such-model")
    proc = _run(
        "synthesize", str(corpus), "-o", str(tmp_path / "o2"), "--engine", "transformers", "--model", missing
    )
    assert proc.returncode == 5 and f"model directory {missing!r} does not exist" in proc.stderr


def test_a_command_runs_with_the_tuned_gc_threshold(tmp_path) -> None:
    """The command-line process raises the GC threshold before the stage runs (set nowhere in the library)."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Rivers carry water. However, deserts have little rain."}\n')
    code = (
        "import gc, sys\n"
        "from instructpt import cli, runtime\n"
        "from instructpt.synthesizer import run\n"
        "seen = []\n"
        "real = run.main\n"
        "def spy(config):\n"
        "    seen.append(gc.get_threshold())\n"
        "    return real(config)\n"
        "run.main = spy\n"
        f"rc = cli.main(['synthesize', {str(corpus)!r}, '-o', {str(tmp_path / 'o')!r}, '--engine', 'rules', '-q'])\n"
        "assert rc == 0 and seen == [runtime.GC_THRESHOLD], (rc, seen)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_sigterm_stops_cleanly_and_a_rerun_resumes(tmp_path) -> None:
    """A scheduler preempting the job sends SIGTERM: the run stops with a message (no traceback) and exit code
    143, finished shards are kept, and re-running gives the bytes of an uninterrupted run."""
    import json
    import os
    import signal
    import time
    from importlib import resources

    demo = resources.files("instructpt.resources.demo").joinpath("corpus-a.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in demo.splitlines()]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": texts[i % len(texts)]}) + "\n" for i in range(8000)))

    def args(out):
        return [
            sys.executable,
            "-m",
            "instructpt",
            "synthesize",
            str(corpus),
            "-o",
            str(out),
            "--engine",
            "rules",
        ]

    full, part = tmp_path / "full", tmp_path / "part"
    subprocess.run([*args(full), "--shard-size", "250", "-q"], check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen(
        [*args(part), "--shard-size", "250", "-q"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not any((part / "done").glob("shard-*")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    done = len(list((part / "done").iterdir()))
    assert (
        proc.returncode == 143 and "terminated; completed shards are kept" in err and "Traceback" not in err
    )
    assert 0 < done < len(list((full / "done").iterdir())), "the signal must land mid-run"
    resumed = subprocess.run([*args(part), "--shard-size", "250", "-q"], capture_output=True, timeout=120)
    assert resumed.returncode == 0
    for name in ("data", "rejects"):
        a, b = sorted((full / name).iterdir()), sorted((part / name).iterdir())
        assert [p.name for p in a] == [p.name for p in b]
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert os.path.exists(part / "stats.json")


def _run_with_stage_prelude(tmp_path, prelude: str, **popen) -> subprocess.CompletedProcess:
    """``instructpt synthesize`` (rules engine, one document) in a fresh interpreter, with ``prelude`` (lines of
    Python, indented for a function body) run at the start of the stage: a stand-in for library code."""
    import json

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": "Cats sleep. However, dogs do not."}) + "\n")
    code = (
        "import os, signal, sys, time\n"
        "from instructpt import cli\n"
        "from instructpt.synthesizer import run\n"
        "real = run.main\n"
        "def stage(config):\n"
        f"{prelude}"
        "    return real(config)\n"
        "run.main = stage\n"
        f"sys.exit(cli.main(['synthesize', {str(corpus)!r}, '-o', {str(tmp_path / 'o')!r}, '--engine', 'rules']))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, **popen)


@pytest.mark.parametrize(
    ("sig", "rc", "how"), [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")]
)
def test_signals_are_not_swallowed_by_code_that_catches_keyboard_interrupt(tmp_path, sig, rc, how) -> None:
    """vLLM wraps its engine start-up handshake in ``except KeyboardInterrupt`` (it logs and goes on); a SIGTERM
    or Ctrl-C there must still stop the run. Here the stage runs inside such a block, as a stand-in."""
    prelude = (
        "    try:\n"
        f"        os.kill(os.getpid(), signal.{sig})\n"
        "        time.sleep(5)\n"
        "    except KeyboardInterrupt:\n"
        "        pass  # what the library does; the run would then go on\n"
    )
    proc = _run_with_stage_prelude(tmp_path, prelude)
    assert proc.returncode == rc and how in proc.stderr, proc.stderr
    assert not (tmp_path / "o" / "done").exists() or not any((tmp_path / "o" / "done").iterdir())


def test_main_runs_outside_the_main_thread(tmp_path) -> None:
    """Embedding code may call main() from a worker thread, where no signal handler can be installed."""
    import threading

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Cats sleep. However, dogs do not."}\n')
    result = {}
    args = ["synthesize", str(corpus), "-o", str(tmp_path / "o"), "--engine", "rules", "-q", "--no-progress"]
    worker = threading.Thread(target=lambda: result.setdefault("rc", main(args)))
    worker.start()
    worker.join(60)
    assert result == {"rc": 0}


def test_a_job_started_with_sigint_ignored_keeps_ignoring_it(tmp_path) -> None:
    """Background jobs (``nohup``, ``cmd &`` in scripts) start with SIGINT ignored; the CLI must not undo that."""
    import signal

    proc = _run_with_stage_prelude(
        tmp_path,
        "    os.kill(os.getpid(), signal.SIGINT)\n",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.returncode == 0, proc.stderr
