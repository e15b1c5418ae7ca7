PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test venv bench clean lint

$(STAMP): pyproject.toml
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

test: $(STAMP)
	@$(PYC)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	@$(PYC)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
