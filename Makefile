# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test bench lint format install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/veille db upgrade
	$(BIN)/veille run

# The whole suite on SQLite (the embedded default), then every test that takes a database
# (the db_url fixture) again on a throwaway PostgreSQL server when the machine has one.
PG_TESTS := tests/core tests/platforms tests/store tests/media tests/detectors/test_hash_repo.py tests/cli/test_roles.py

test: $(DEV_STAMP)
	$(BIN)/python -m pytest
	scripts/with_postgres.sh $(BIN)/python -m pytest -q -p no:cacheprovider $(PG_TESTS)

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# One formatter (ruff format), the linter and the type checker; .ci/run runs this before the tests.
lint: $(DEV_STAMP)
	$(BIN)/ruff check bot detectors tests bench scripts migrations
	$(BIN)/ruff format --check bot detectors tests bench scripts migrations
	$(BIN)/mypy bot detectors

format: $(DEV_STAMP)
	$(BIN)/ruff format bot detectors tests bench scripts migrations
	$(BIN)/ruff check --fix bot detectors tests bench scripts migrations

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
