# instructpt — developer entry points. Each target creates/refreshes .venv itself.
#   make demo   the whole pipeline on the embedded default (rules -> templify -> pack -> mix -> pretrain ->
#               evaluate -> report) on the shipped demo corpus
#   make test   the test suite (what CI runs): the main suite in .venv, then the vLLM engine tests in .venv-vllm
#               (a CPU build of vLLM; set SKIP_VLLM=1 to leave them out)
#   make test-main / make test-vllm   either half alone
#   make lint   ruff and the type checker (mypy; make test runs it too)
#   make bench  CPU benchmarks (print ratios)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

VLLM_VENV := .venv-vllm

.PHONY: venv vllm-venv demo experiment test test-main test-vllm lint typecheck format bench clean

$(STAMP): pyproject.toml requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m instructpt demo -o demo-out

# The micro experiment: instruction vs vanilla pre-training on generated data, 3 seeds (CPU, ~23 min on 2 cores).
experiment: $(STAMP)
	$(PY) -m instructpt experiment --config configs/experiment-micro.yaml

# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
NO_TESTS_IS_FAILURE = rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test: typecheck test-main
ifneq ($(SKIP_VLLM),1)
test: test-vllm
endif

test-main: $(STAMP)
	@$(PY) -m pytest -q $(PYTEST_ARGS); $(NO_TESTS_IS_FAILURE)

vllm-venv:
	@VLLM_VENV=$(VLLM_VENV) scripts/setup-vllm-cpu.sh

test-vllm: vllm-venv
	@VLLM_CPU_KVCACHE_SPACE=1 $(VLLM_VENV)/bin/python -m pytest -q -m vllm tests/integration $(PYTEST_ARGS); \
	$(NO_TESTS_IS_FAILURE)

lint: typecheck
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

typecheck: $(STAMP)
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format src tests bench
	$(PY) -m ruff check --fix src tests bench

bench: $(STAMP)
	$(PY) bench/bench_synthesize.py
	$(PY) bench/bench_tokenize.py
	$(PY) bench/bench_split.py
	$(PY) bench/bench_rules.py
	$(PY) bench/bench_templify.py
	$(PY) bench/bench_chains.py
	$(PY) bench/bench_pack.py

clean:
	rm -rf demo-out .pytest_cache .ruff_cache .mypy_cache .hypothesis
