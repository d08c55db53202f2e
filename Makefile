# Set-up and day-to-day commands. `make run` and `make test` work on a fresh machine.
# Supported: Python 3.11 to 3.13. PYTHON makes the venv; `make test-newest` runs the suite
# again on the newest of them found on the machine (NEWEST_PYTHON), in its own venv.
PYTHON ?= python3.11
VENV ?= .venv
NEWEST_PYTHON ?= $(shell bash .ci/newest-python)
NEWEST_VENV ?= .venv-newest
BIN := $(VENV)/bin
OM_PORT ?= 8080
# Without OM_API_KEY the API is open: listen on this machine only unless OM_BIND says otherwise.
OM_BIND ?= $(if $(OM_API_KEY),0.0.0.0,127.0.0.1)
WORKERS ?= 3
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/openmemory

.PHONY: run worker beat test test-sqlite test-postgres test-newest lint format install \
	install-dev migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Two stamps: the server's own dependencies (with the default embedding model), which is all
# `make run` installs, and on top of them the test and lint tools (`.[dev]`) for `make test`.
$(VENV)/.installed-run: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed-run

install-dev: $(VENV)/.installed-dev

migrate: install
	mkdir -p data
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py collectstatic --noinput -v0
	@echo "OpenMemory listening on http://localhost:$(OM_PORT)"
	@echo "  admin:     http://localhost:$(OM_PORT)/admin/"
	@echo "  dashboard: http://localhost:$(OM_PORT)/dashboard/"
	@echo "  API docs:  http://localhost:$(OM_PORT)/docs"
	@echo "  first staff account: $(BIN)/python manage.py createsuperuser"
	$(BIN)/gunicorn openmemory.wsgi --bind $(OM_BIND):$(OM_PORT) --workers $(WORKERS) \
		--worker-class gthread --threads 4 --log-level warning

# A Celery worker for background work (summaries); needs CELERY_BROKER_URL (Redis).
worker: migrate
	@test -n "$$CELERY_BROKER_URL" || (echo "set CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0"; exit 1)
	$(BIN)/celery -A openmemory worker --loglevel=INFO

# Celery beat with the database scheduler: runs the summary sweep and salience decay on the
# schedules stored in the database (editable in the admin under "Periodic tasks").
beat: migrate
	@test -n "$$CELERY_BROKER_URL" || (echo "set CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0"; exit 1)
	$(BIN)/celery -A openmemory beat --loglevel=INFO

# lint-imports: the one direction of imports between the apps (contracts in pyproject.toml).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The whole suite on SQLite, then again on PostgreSQL + pgvector. Outside CI an absent
# PostgreSQL skips the second run with a message naming it; with CI=true it fails.
test: lint test-sqlite test-postgres

test-sqlite: install-dev
	env -u DATABASE_URL $(BIN)/pytest

test-postgres: install-dev
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest

# The whole suite (both databases) again on the newest supported Python (3.13 under pyenv on
# these machines), in a venv of its own; lint is the same on every Python and is not repeated.
test-newest:
	@test -n "$(NEWEST_PYTHON)" || (echo "no Python 3.12 or 3.13 found (.ci/newest-python)"; exit 1)
	@echo "test-newest: $$($(NEWEST_PYTHON) -V) in $(NEWEST_VENV)"
	$(MAKE) test-sqlite test-postgres PYTHON=$(NEWEST_PYTHON) VENV=$(NEWEST_VENV)

clean:
	rm -rf $(VENV) $(NEWEST_VENV) data .pytest_cache .ruff_cache
