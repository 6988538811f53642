#!/usr/bin/env bash
# The checks that need a GPU, in one command for the accelerator machine (its image has torch, transformers,
# tokenizers, pytest and hypothesis, but no vLLM). Run from the repository root:
#
#   scripts/gpu-check.sh                  # logs into $OUT (the device tool's output folder), else ./gpu-out
#
# 1. env.txt:     nvidia-smi, and the versions of python, torch, transformers and vllm (when importable)
# 2. pytest.txt:  the `gpu` tests (transformers engine and the stage on CUDA) and the `vllm` tests (skipped, with
#                 the reason, when vllm does not import)
# 3. bench-pretrain.txt: MFU of the 500m and 1.3b pretrain presets, eager and torch.compile (bf16 autocast,
#                 sequence length 2048, random blocks, the project's Trainer against a bare loop)
# 4. bench-*.txt: when vllm imports, bench_chains at M=3 with the random-weight Mistral-7B shape and fixed output
#                 lengths (the GPU targets of the synthesis issue; commands and reading in bench/RESULTS.md)
#
# Environment: PYTHON (default python3), SKIP_BENCH=1 to run the tests only.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-out}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

{
    date -u
    nvidia-smi
    "$PY" - <<'PY'
import platform

import torch
import transformers

print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
      "| transformers", transformers.__version__)
try:
    import vllm
    print("vllm", vllm.__version__)
except Exception as exc:  # noqa: BLE001 - report, do not fail
    print("vllm not importable:", type(exc).__name__, exc)
PY
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

"$PY" -m pytest -q -p no:cacheprovider -m "gpu or vllm" tests/integration > "$OUT/pytest.txt" 2>&1
status=$?
tail -n 25 "$OUT/pytest.txt"

if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
    PYTHONUNBUFFERED=1 timeout 300 "$PY" bench/bench_pretrain.py --gpu --steps 20 > "$OUT/bench-pretrain.txt" 2>&1
    tail -n 8 "$OUT/bench-pretrain.txt"
fi

if [[ "${SKIP_BENCH:-0}" != 1 ]] && "$PY" -c "import vllm" > /dev/null 2>&1; then
    PYTHONUNBUFFERED=1 "$PY" bench/bench_chains.py --engine vllm --dummy-model mistral-7b --rounds 3 --repeats 1 \
        --texts 2000 --max-model-len 4096 --max-new-tokens 400 --fixed-output 300 --dtype bfloat16 \
        --gpu-memory-utilization 0.9 > "$OUT/bench-chains-7b.txt" 2>&1
    tail -n 20 "$OUT/bench-chains-7b.txt"
fi
exit $status
