# envbuild - developer entry points. `make run` and `make test` work on a fresh clone: the first
# target that needs the venv creates it with Python 3.13 and the pinned requirements-dev.txt.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins libraries (boto3, ...) the project's venv cannot share: it has a venv of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# What the lint gates write (the transformed template, the substituted ASL): never committed.
LINT_OUT := .aws-sam/lint
PYTHON_VERSION := $(shell cat .python-version 2>/dev/null || echo 3.13.0)
PORT ?= 5000
SPEC ?= events/workshop.json
# pytest-xdist workers for `make pytest` (auto: one per CPU; 0: in this process, no workers).
PYTEST_WORKERS ?= auto
# Where the test processes leave their recordings of AWS calls for the IAM proof (tests/conftest.py).
IAM_RECORDINGS := .pytest-iam

# SAM needs a region even for validate/build (nothing is deployed) and python3.13 on PATH for
# `sam build` (the venv's python comes first). Telemetry off.
SAM_REGION ?= us-east-1
SAM := env AWS_DEFAULT_REGION=$(SAM_REGION) SAM_CLI_TELEMETRY=0 PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam

.PHONY: help venv system-deps run emulator test lint validate build pytest schema docs diagram clean distclean bench

help:
	@echo "make run        build the workshop environment on the embedded emulator ($(SPEC))"
	@echo "make emulator   serve the emulated account on 127.0.0.1:$(PORT)"
	@echo "make test       lint + sam build + pytest (what CI runs)"
	@echo "make lint       every gate at zero findings: ruff, ruff format, mypy --strict, sam validate"
	@echo "                --lint, cfn-lint + serverless rules (SAM and transformed template),"
	@echo "                checkov (transformed template), statelint (every ASL, substituted),"
	@echo "                IAM resource types (tools/iam_resource_gate.py)"
	@echo "make validate   sam validate --lint"
	@echo "make build      sam build (python3.13, arm64) into .aws-sam/, then precompiled bytecode"
	@echo "make system-deps install the system tools the tests run (busybox) if missing"
	@echo "make schema     regenerate schema/environment-spec.schema.json from the pydantic model"
	@echo "make docs       regenerate the workflow diagrams in docs/architecture.md (from the ASL),"
	@echo "                docs/spec-reference.md (from the schema) and the README's sample outputs"
	@echo "                (real runs on the embedded emulator); a test fails when they are stale"
	@echo "make clean      remove build output and caches (distclean: the venv too)"
	@echo "make bench      benchmark builds on the emulator (N = 3, 20, 200, 500; a latency sweep at 3"
	@echo "                and 20; cold import of the built artifact) into docs/benchmark.md and .json"

# --- virtualenv -----------------------------------------------------------------------------
# Python 3.13: pyenv's $(PYTHON_VERSION) if pyenv has it, else python3.13 on PATH.
$(STAMP): requirements-dev.txt pyproject.toml
	@py="$$(PYENV_VERSION=$(PYTHON_VERSION) pyenv which python3.13 2>/dev/null || command -v python3.13 || true)"; \
	if [[ -z "$$py" ]]; then \
	  echo "error: Python 3.13 not found. Install it (e.g. 'pyenv install $(PYTHON_VERSION)') or put python3.13 on PATH." >&2; \
	  exit 1; \
	fi; \
	if [[ -x "$(BIN)/python" ]] && ! "$(BIN)/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
	  echo "$(VENV) is not a Python 3.13 venv: recreating it"; rm -rf "$(VENV)"; \
	fi; \
	if [[ ! -x "$(BIN)/python" ]]; then echo "creating $(VENV) with $$py"; "$$py" -m venv "$(VENV)"; fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP) system-deps

# System tools the tests run for real: busybox (the DNS probe's script runs with busybox's sh,
# nslookup and awk in tests/unit/test_probe_script.py). Installed with apt-get if missing.
system-deps:
	@if ! command -v busybox >/dev/null; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "error: busybox not found; install it (e.g. 'brew install busybox')" >&2; exit 1; \
	  fi; \
	  sudo=""; if [[ "$$(id -u)" -ne 0 ]]; then sudo="sudo"; fi; \
	  echo "installing busybox (apt-get)"; \
	  $$sudo apt-get install -y --no-install-recommends busybox \
	    || { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends busybox; }; \
	fi

$(CHECKOV_STAMP): requirements-checkov.txt $(STAMP)
	@if [[ ! -x "$(CHECKOV_VENV)/bin/python" ]]; then echo "creating $(CHECKOV_VENV)"; "$(BIN)/python" -m venv "$(CHECKOV_VENV)"; fi
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

# --- run ------------------------------------------------------------------------------------
run: $(STAMP)
	$(BIN)/envbuild run $(SPEC)

emulator: $(STAMP)
	$(BIN)/envbuild emulator --port $(PORT)

# --- checks ---------------------------------------------------------------------------------
test: lint build pytest

# Every gate must report zero findings (docs/security.md). Skipped checks are justified in
# template.yaml next to the resource (Metadata: checkov skip comments, cfn-lint ignore_checks).
lint: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(SAM) validate --lint --template-file template.yaml
	$(BIN)/python tools/iam_resource_gate.py template.yaml
	env AWS_DEFAULT_REGION=$(SAM_REGION) $(BIN)/python tools/sam_transform.py template.yaml $(LINT_OUT)/transformed.json
	$(BIN)/python tools/cfn_lint.py --append-rules cfn_lint_serverless.rules -- template.yaml $(LINT_OUT)/transformed.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file $(LINT_OUT)/transformed.json
	$(BIN)/python tools/substitute_asl.py template.yaml $(LINT_OUT)/asl
	$(BIN)/statelint $(LINT_OUT)/asl/*.asl.json

validate: $(STAMP)
	$(SAM) validate --lint --template-file template.yaml

# `sam build` unpacks wheels without compiling them, and Lambda's file system is read-only outside
# /tmp: without bytecode in the artifact every cold start compiles boto3, pydantic and Powertools
# from source. Each function's artifact is compiled here with the runtime's Python (3.13; the
# magic number is the same on arm64), hash-based and unchecked (the source never changes in a
# deployed package, and the zip's timestamps are not kept), paths as Lambda sees them (/var/task).
build: $(STAMP)
	$(SAM) build --template-file template.yaml
	@for dir in .aws-sam/build/*/; do \
	  [[ -f "$$dir/envbuild_lambda/__init__.py" ]] || continue; \
	  $(BIN)/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
	    -s "$$dir" -p /var/task "$$dir" >/dev/null || { echo "error: compileall failed in $$dir" >&2; exit 1; }; \
	done
	@echo "compiled bytecode (unchecked-hash) into .aws-sam/build/*/"

# pytest exits 5 when it collected no test: that fails here (make stops on any non-zero exit).
# Three phases, each leaving its recording of the functions' AWS calls in $(IAM_RECORDINGS):
# every test but the next phases' on xdist workers; then the tests that need one process per
# file (the fault matrix: its document checks every cell; the served-emulator CLI tests: moto's
# backends are process-wide), on xdist workers too but a whole file to each (--dist loadfile;
# xdist's --dist loadgroup does not group them with pytest 9), so the matrix and the CLI files
# run side by side; then the IAM proof on all the recordings merged.
SERIAL_TESTS := tests/workflow/test_fault_matrix.py tests/test_cli.py tests/test_cli_stack.py
pytest: $(STAMP) system-deps
	rm -rf $(IAM_RECORDINGS)
	ENVBUILD_IAM_RECORDINGS=$(IAM_RECORDINGS) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) \
	  --ignore=tests/test_iam_proof.py $(addprefix --ignore=,$(SERIAL_TESTS))
	ENVBUILD_IAM_RECORDINGS=$(IAM_RECORDINGS) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) \
	  --dist loadfile $(SERIAL_TESTS)
	ENVBUILD_IAM_RECORDINGS=$(IAM_RECORDINGS) $(BIN)/python -m pytest tests/test_iam_proof.py

schema: $(STAMP)
	@mkdir -p schema
	PYTHONPATH=functions $(BIN)/python -m envbuild_lambda.spec > schema/environment-spec.schema.json.tmp
	mv schema/environment-spec.schema.json.tmp schema/environment-spec.schema.json

# Generated documentation: the Mermaid diagrams in docs/architecture.md, docs/spec-reference.md and
# the README's sample outputs (envbuild/docgen.py).
docs: $(STAMP)
	$(BIN)/python -m envbuild.docgen

diagram: docs

clean:
	rm -rf .aws-sam .pytest_cache .pytest-iam .mypy_cache .ruff_cache build dist *.egg-info
	find . \( -path ./$(VENV) -o -path ./$(CHECKOV_VENV) \) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(CHECKOV_VENV)

# --- benchmark (issues 8, 18; not part of `make test`; builds first: it times the artifact) --
bench: $(STAMP) build
	$(BIN)/python -m bench.run --out docs/benchmark.md --json docs/benchmark.json
