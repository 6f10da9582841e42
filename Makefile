# pretrainlab: `make compare` (set up, then the flagship MLM-vs-CLM study) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# The tested set of every other package (make lock writes it); LOCK= installs pyproject.toml's
# open ranges instead, as a library user gets them.
LOCK ?= requirements/lock.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: help setup lock test lint pretrain compare bench clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"   # first: keeps pip from pulling a CUDA build
	$(if $(LOCK),$(BIN)/python -m pip install -q -r $(LOCK) && \
	  $(BIN)/python -m pip install -q --no-deps -e '.[dev]',$(BIN)/python -m pip install -q -e '.[dev]')
	$(BIN)/python -m pip check
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install torch, then the locked set (LOCK= for open ranges), once

lock: ## write requirements/lock.txt from .venv (torch left to TORCH_SPEC, pip to the venv)
	@mkdir -p requirements
	@{ echo "# The tested set of pretrainlab's dependencies (make lock; torch comes from TORCH_SPEC)."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -viE '^(pip|torch|triton|nvidia-.*)=='; } \
	  > requirements/lock.txt

test: setup ## the test suite (what CI runs), DDP and joblib-launcher tests included
	$(BIN)/python -m pytest -q $(ARGS)

lint: setup ## ruff
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

pretrain: setup ## pretrain MLM on the embedded corpus (ARGS="objective=clm ..." to change)
	$(BIN)/pretrainlab pretrain $(ARGS)

compare: setup ## the flagship study: MLM vs CLM vs scratch at equal FLOPs, checked by its controls
	$(BIN)/pretrainlab study experiment=mlm_vs_clm hydra/launcher=joblib $(ARGS)

bench: setup ## throughput benchmark vs a bare PyTorch loop and the HF Trainer (writes JSON)
	$(BIN)/python benchmarks/throughput.py --out outputs/bench/throughput.json $(ARGS)

clean: ## remove outputs and caches (keeps .venv)
	rm -rf outputs .cache .pytest_cache
