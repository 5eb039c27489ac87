# HSG aftercare assistant. `make run` to talk to the bot, `make test` to check everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.10 2>/dev/null || command -v python 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# requirements.txt is the human-edited list; requirements.lock (make lock) pins every package with
# its hashes, and is what gets installed, so a fresh install is the same everywhere
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements.lock | sha256sum | cut -c1-12)

export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE := 1

# A model is named after the hash of everything it is trained from, so an unchanged bot is never
# retrained; models are also kept in MODEL_CACHE, shared by every clone on this machine.
TRAIN_INPUTS = config.yml domain.yml requirements.lock $(shell find data bot/nlu -type f \( -name '*.yml' -o -name '*.py' \) | LC_ALL=C sort)
MODEL_HASH   = $(shell sha256sum $(TRAIN_INPUTS) | sha256sum | cut -c1-12)
MODEL_NAME   = hsg-$(MODEL_HASH)
MODEL        = models/$(MODEL_NAME).tar.gz
MODEL_CACHE ?= $(HOME)/.cache/hsg-aftercare/models

.PHONY: help install lock run run-scale train model test lint format validate hazard-log safety-case evaluate review-sheet shell benchmark benchmark-rest bench bench-scale fuzz clean

help:
	@echo "make run       install, train if needed, start the bot (chat page, REST, action server)"
	@echo "make run-scale N=2  N Rasa servers behind HAProxy on PostgreSQL + Redis (docs/deploy.md)"
	@echo "make test      install, train if needed, run every test"
	@echo "make train     (re)train the model if the data or config changed"
	@echo "make validate  check the training data and the clinical knowledge files"
	@echo "make lint      ruff (lint and format check) and mypy on bot/; make format rewrites the formatting"
	@echo "make evaluate  NLU, story and triage scores in reports/latest/index.html"
	@echo "make review-sheet  regenerate docs/clinician-review.md from the knowledge files"
	@echo "make hazard-log    regenerate docs/safety/hazard-log.md from docs/safety/hazard-log.yml"
	@echo "make safety-case   run the hazard log's tests, score every case set: reports/safety-case/index.html"
	@echo "make shell     talk to the bot in the terminal"
	@echo "make benchmark time the triage engine"
	@echo "make benchmark-rest  per-turn latency through REST (1 and 20 conversations, turn 1 vs 40)"
	@echo "make bench     this bot against a stock rasa init bot, side by side: reports/bench/bench.md"
	@echo "make bench-scale  make run-scale with 2 Rasa instances against 1: reports/bench/scale.md"
	@echo "make fuzz      10,000 generated messages through the web, REST and Telegram entry points"

install: $(STAMP)

# After editing requirements.txt: re-pin (keeping every version the lock already has) with hashes.
lock:
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	@$(BIN)/uv pip compile requirements.txt -c requirements.lock --generate-hashes --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" -o requirements.lock

$(STAMP): requirements.txt requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' || \
	  { echo "Python 3.10 is required (Rasa 3.6): found $$($(PYTHON) --version 2>&1) at $(PYTHON)."; \
	    echo "Install it (pyenv install 3.10) or run: make PYTHON=/path/to/python3.10 ..."; exit 1; }
	@echo "==> creating $(VENV) with $$($(PYTHON) --version) and installing requirements.lock (hashes checked)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --progress-bar off --require-hashes -r requirements.lock | grep -v '^Requirement already satisfied' || true
	@$(BIN)/pip check
	@rm -f $(VENV)/.installed-* && touch $@

model: $(MODEL)
train: $(MODEL)

$(MODEL): | $(STAMP)
	@mkdir -p models
	@if [ -f "$(MODEL_CACHE)/$(MODEL_NAME).tar.gz" ]; then \
	  echo "==> using the cached model $(MODEL_CACHE)/$(MODEL_NAME).tar.gz (same data, config and versions)"; \
	  cp "$(MODEL_CACHE)/$(MODEL_NAME).tar.gz" $@; \
	else \
	  echo "==> training $(MODEL_NAME) (the data or config changed)"; \
	  $(BIN)/rasa train --fixed-model-name $(MODEL_NAME) --out models && \
	  mkdir -p "$(MODEL_CACHE)" && cp $@ "$(MODEL_CACHE)/"; \
	fi

run: $(STAMP) $(MODEL)
	@$(BIN)/python -m bot run --model $(MODEL)

N ?= 2
run-scale: $(STAMP) $(MODEL)
	@$(BIN)/python -m bot run-scale --model $(MODEL) --instances $(N)

validate: $(STAMP)
	@echo "==> checking the clinical knowledge files"
	@$(BIN)/python -m bot validate
	@$(BIN)/python -m bot.tools.review_sheet --check
	@echo "==> checking the hazard log (every control verified by a test that exists)"
	@$(BIN)/python -m bot.tools.hazard_log --check
	@echo "==> rasa data validate"
	@$(BIN)/rasa data validate --fail-on-warnings --quiet

lint: $(STAMP)
	@echo "==> ruff and mypy on bot/"
	@$(BIN)/ruff check bot
	@$(BIN)/ruff format --check bot
	@$(BIN)/mypy

format: $(STAMP)
	@$(BIN)/ruff check --fix bot
	@$(BIN)/ruff format bot

test: $(STAMP) $(MODEL) lint validate
	@echo "==> pytest (model $(MODEL))"
	@HSG_MODEL=$(MODEL) $(BIN)/python -m pytest -p no:cacheprovider
	@echo "==> triage safety gate (dev vignettes)"
	@$(BIN)/python -m bot.tools.gates
	@echo "==> story tests (rasa test core --fail-on-prediction-errors)"
	@$(BIN)/rasa test core --model $(MODEL) --stories tests/stories --fail-on-prediction-errors --out results/stories --no-plot

evaluate: $(STAMP) $(MODEL)
	@$(BIN)/python -m bot.tools.evaluate --model $(MODEL)

safety-case: $(STAMP) $(MODEL)
	@HSG_MODEL=$(MODEL) $(BIN)/python -m bot.tools.safety_case

hazard-log: $(STAMP)
	@$(BIN)/python -m bot.tools.hazard_log

review-sheet: $(STAMP)
	@$(BIN)/python -m bot.tools.review_sheet

shell: $(STAMP) $(MODEL)
	@echo "(start the action server first, in another terminal: $(BIN)/python -m bot actions)"
	@$(BIN)/python -c 'from pathlib import Path; from bot.service_auth import action_secret, render_endpoints; \
	  render_endpoints(Path("endpoints.yml"), Path("var/endpoints-shell.yml"), 5055, action_secret(Path("var")))'
	@$(BIN)/rasa shell --model $(MODEL) --endpoints var/endpoints-shell.yml

benchmark: $(STAMP)
	@$(BIN)/python -m bot.tools.benchmark

benchmark-rest: $(STAMP) $(MODEL)
	@$(BIN)/python -m bot.tools.rest_benchmark --model $(MODEL)

bench: $(STAMP) $(MODEL)
	@$(BIN)/python -m bot.tools.bench $(BENCH_ARGS)

bench-scale: $(STAMP) $(MODEL)
	@$(BIN)/python -m bot.tools.scale_bench --model $(MODEL)

fuzz: $(STAMP)
	@HSG_FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest -p no:cacheprovider tests/web/test_fuzz.py -q

clean:
	rm -rf results reports .rasa
