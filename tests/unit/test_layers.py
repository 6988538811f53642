"""The package's import structure: no cycles, nothing below the CLI imports it, one home for the wire format, and
``import instructpt`` / ``instructpt --help`` stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "instructpt").rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (lazy imports included)."""
    mods = _modules()

    def owner(name: str) -> str:
        while name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("instructpt"):
                deps |= {owner(f"{node.module}.{a.name}") for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.startswith("instructpt")}
        graph[name] = deps - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_check_can_fail() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_nothing_below_the_cli_imports_it() -> None:
    importers = sorted(m for m, deps in _graph().items() if "instructpt.cli" in deps)
    assert importers == ["instructpt.__main__"]


def test_the_wire_format_has_one_home() -> None:
    graph = _graph()
    assert "instructpt.synthesizer.format" not in graph
    users = {m for m, deps in graph.items() if "instructpt.wire" in deps}
    assert {
        "instructpt.synthesizer.chains",
        "instructpt.engines.rules.engine",
        "instructpt.engines.tokenizer",
    } <= users


@pytest.mark.parametrize("stmt", ["import instructpt", "import instructpt.cli as c; c.main(['--help'])"])
def test_light_imports(stmt: str) -> None:
    code = f"import sys\ntry:\n    {stmt}\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'transformers', 'pyarrow', 'vllm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


def test_stages_are_callable_from_python(tmp_path: Path) -> None:
    import instructpt
    from instructpt.engines.config import EngineConfig

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Rivers carry water to the sea. However, deserts have little rain."}\n')
    pairs = instructpt.synthesize(
        instructpt.SynthesizeConfig(
            inputs=[str(corpus)],
            output=str(tmp_path / "p"),
            progress=False,
            engine=EngineConfig(name="rules"),
        )
    )
    docs = instructpt.templify(
        instructpt.TemplifyConfig(inputs=[str(tmp_path / "p")], output=str(tmp_path / "a"), progress=False)
    )
    assert isinstance(pairs, instructpt.Summary) and pairs.counts["docs_out"] == 1
    assert docs.counts["docs_out"] == 1 and docs.stage == "templify"
    assert set(instructpt.__all__) == {"__version__", *instructpt._STAGES}
    with pytest.raises(AttributeError):
        instructpt.no_such_stage  # noqa: B018
