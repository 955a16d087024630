# nodepool-sync: every target sets up .venv by itself, so a fresh clone needs only Python 3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTHON_TARGET ?= python3.12
PORT ?= 3000

.DEFAULT_GOAL := help
.PHONY: help install test fuzz soak lint format schemas run emulator invoke serve package deploy-config openapi bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null || { \
	  echo "error: $(PYTHON) is not Python 3.10 or newer, which nodepool-sync needs: run make PYTHON=python3.12 ..." >&2; \
	  exit 2; }
	@if [ -d $(VENV) ] && ! $(PY) -c 'import pip' >/dev/null 2>&1; then \
	  echo "==> $(VENV) is broken (an interrupted install, or a Python that is gone): rebuilding it"; rm -rf $(VENV); fi
	@echo "==> setting up $(VENV) (pinned runtime and dev dependencies)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt || { \
	  rm -rf $(VENV); echo "error: pip could not install the pinned dependencies for $(PYTHON); $(VENV) removed" >&2; \
	  exit 1; }
	@$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e . || { \
	  echo "error: pip could not install the nodepool-sync command into $(VENV)" >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv with the pinned runtime and dev dependencies, and the nodepool-sync command

test: $(STAMP) ## run the test suite on every core (each worker starts its own emulator on loopback)
	$(PY) -m pytest -q -n auto --maxprocesses=4

fuzz: $(STAMP) ## the hostile-event fuzz and the schema property tests, long (FUZZ_EXAMPLES=50000)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-50000} PROPERTY_EXAMPLES=$${PROPERTY_EXAMPLES:-20000} \
	  $(PY) -m pytest -q tests/test_fuzz.py tests/test_fastschema.py

soak: $(STAMP) ## a simulated week under faults, every safety invariant checked (SOAK_SEED=N replays, SOAK_STEPS=ticks)
	$(PY) -m local.soak

lint: $(STAMP) ## ruff check, ruff format --check, mypy --strict on handler/ and local/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy handler local

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(STAMP) ## regenerate schemas/*.json from schemas/source/
	$(PY) schemas/generate.py

run: $(STAMP) ## the function doing its job against the local emulator (VERBOSE=1 shows every request)
	$(PY) -m local run

emulator: $(STAMP) ## a local cloud that keeps state (the demo layout, jobs of 5-20 s) for invoke, status and serve
	$(PY) -m local emulator $(if $(JOBS),--jobs $(JOBS))

serve: $(STAMP) ## local API Gateway on http://127.0.0.1:3000 (PORT=3001 for another port) backed by the emulator
	$(PY) -m local serve --port $(PORT)

package: $(STAMP) ## build dist/nodepool-sync.zip for FunctionGraph (PYTHON_TARGET=python3.10|python3.12)
	$(PY) -m local package --python $(PYTHON_TARGET)

deploy-config: $(STAMP) ## render template.yaml into deploy/main.tf.json (Terraform, huaweicloud provider)
	$(PY) -m local deploy-config

openapi: $(STAMP) ## write deploy/openapi.json (OpenAPI 3.0 of the API Gateway routes, from the schemas)
	$(PY) -m local openapi

bench: $(STAMP) ## measure cold start, warm overhead, validation, package size, IAM calls, a reconcile pass
	$(PY) -m bench

clean: ## remove .venv, dist/, deploy/ and caches
	rm -rf $(VENV) dist deploy .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
