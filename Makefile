# The newest Python >= 3.11 on the PATH (Cloud Shell has 3.12 and no 3.11); override with `make PYTHON=...`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test venv bench clean lint verify-pipeline

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || test -n "$(PYTHON)" || { echo "mlops-install needs Python >= 3.11: none of python3.13, python3.12, python3.11, python3 on the PATH is one (install one, or run make PYTHON=/path/to/python3.x)" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

# Byte-compile the project's own packages (pip does this for what it installs; an editable install is read from
# the tree). Without it, a machine with PYTHONDONTWRITEBYTECODE set compiles every module on each start, and a
# module imported in a thread holds the GIL while it compiles, which the wizard's event loop feels. Only changed
# files are compiled again.
PYC = $(BIN)/python -m compileall -q -j 0 installer backends screens sandbox >/dev/null

demo: $(STAMP)
	@$(PYC)
	$(BIN)/python -m installer demo

# Three test workers on a 2-core machine: the tests mostly wait for the sandbox's (scaled) latencies, and with two
# workers the suite used about one core (`time`: 8m46s of CPU in 9m07s); three finish it in 6m14s instead of 8m11s.
test: $(STAMP)
	@$(PYC)
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	@$(PYC)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# Recompile the pipeline kfp-verify runs (backends/kfp/pipelines/verify.py -> verify.yaml) with the KFP SDK, in a
# venv of its own (kfp pins kubernetes<31, which the installer cannot use).
KFP_SDK_VENV ?= /tmp/mlops-install-kfp-sdk
verify-pipeline:
	@test -x $(KFP_SDK_VENV)/bin/python || $(PYTHON) -m venv $(KFP_SDK_VENV)
	$(KFP_SDK_VENV)/bin/python -m pip install --quiet 'kfp>=2.14,<2.15'
	$(KFP_SDK_VENV)/bin/python backends/kfp/pipelines/verify.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
