# One venv, reused; every target installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= artifacts/model.joblib
CONFIG ?= configs/ames.toml

.PHONY: help venv tools serve train image test test-unit test-e2e test-container lint audit bench mutation clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# The lock's versions as constraints (its hashes would put the dev extras in hash-checking mode).
$(STAMP): pyproject.toml requirements/runtime.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	grep -E '^[A-Za-z0-9_.-]+==' requirements/runtime.txt | sed 's/ .*//' > $(VENV)/constraints.txt
	$(BIN)/pip install -q -e '.[dev]' -c $(VENV)/constraints.txt
	touch $(STAMP)

venv: $(STAMP)  ## create or reuse .venv with the project and its dev extra

tools:  ## install the system tools the end-to-end tests use (apt, as root)
	bash .ci/install-tools

$(MODEL): | $(STAMP)
	$(BIN)/houseprice train --config $(CONFIG) --out $(MODEL)

train: $(STAMP)  ## train the default model (always retrains)
	$(BIN)/houseprice train --config $(CONFIG) --out $(MODEL)

serve: $(MODEL)  ## train if no artifact exists, then serve on :8000
	MODEL_PATH=$(MODEL) $(BIN)/houseprice serve

image:  ## build houseprice:<version>: docker if a daemon answers, else podman (Debian base when no registry)
	bash .ci/image

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

audit: $(STAMP)  ## pip-audit the pinned runtime deps (reports when offline; fails on a known vulnerability)
	$(BIN)/pip-audit -r requirements/runtime.txt --no-deps --disable-pip \
		--vulnerability-service pypi --progress-spinner off

# The container tests run last and on their own: they build images and use the 2 cores hard.
test: $(STAMP) tools lint audit  ## the whole suite: lint, audit, unit, end-to-end, deploy, containers
	$(BIN)/pytest -m "not container"
	$(MAKE) test-container

test-unit: $(STAMP)  ## fast tests only
	$(BIN)/pytest -m "not e2e and not deploy"

test-e2e: $(STAMP)  ## end-to-end tests only
	$(BIN)/pytest -m e2e

test-container: $(STAMP)  ## build and run the image, compose stack and Kubernetes pod with podman
	$(BIN)/pytest -m container

bench: $(STAMP)  ## benchmarks (print tables; nothing asserted)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# Not part of `make test`: the whole run takes hours on two cores (docs/TESTING.md).
mutation: $(STAMP)  ## mutation testing, module by module (MODULE=model/metrics.py for one; not in make test)
	nice -n 10 $(BIN)/python tests/mutation.py $(MODULE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .mutation
