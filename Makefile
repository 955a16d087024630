# nodepool-sync: every target sets up .venv by itself, so a fresh clone needs only Python 3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTHON_TARGET ?= python3.12

.DEFAULT_GOAL := help
.PHONY: help install test lint format schemas run invoke serve package deploy-config bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> setting up $(VENV) (pinned runtime and dev dependencies)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv with the pinned runtime and dev dependencies

test: $(STAMP) ## run the test suite (starts its own emulator on loopback)
	$(PY) -m pytest -q

lint: $(STAMP) ## ruff check, ruff format --check, mypy --strict on handler/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy handler

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(STAMP) ## regenerate schemas/*.json from schemas/source/
	$(PY) schemas/generate.py

run: $(STAMP) ## the function doing its job against the local emulator (a reconcile pass, a change event, the triggers, a fleet, a waited job)
	$(PY) -m local run

serve: $(STAMP) ## local API Gateway on http://127.0.0.1:3000 backed by the emulator
	$(PY) -m local serve

package: $(STAMP) ## build dist/nodepool-sync.zip for FunctionGraph (PYTHON_TARGET=python3.10|python3.12)
	$(PY) -m local package --python $(PYTHON_TARGET)

deploy-config: $(STAMP) ## render template.yaml into deploy/main.tf.json (Terraform, huaweicloud provider)
	$(PY) -m local deploy-config

bench: $(STAMP) ## measure cold start, warm overhead, validation, package size, IAM calls
	$(PY) -m bench

clean: ## remove .venv, dist/, deploy/ and caches
	rm -rf $(VENV) dist deploy .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
