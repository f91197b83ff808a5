# Flowdesk: `make run` starts everything on the embedded default; `make test` runs the suite.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test install lint bench demo chromium compose clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || "$$(bin/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo --base-url http://127.0.0.1:$(PORT)
	PORT=$(PORT) $(PY) bin/devrun.py

test: lint chromium compose
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy .

bench: $(STAMP)
	$(PY) -m bench $(SCENARIOS)

# The browser tests use Debian's Chromium: Playwright cannot download its own here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: run 'sudo apt-get install chromium' (or set CHROMIUM=/path/to/chromium)."; \
	    exit 1; \
	  fi; }

# tests/deploy/test_compose.py validates compose.yaml with `docker compose config` (no daemon
# needed); Debian's docker-compose stands in where the Compose plugin is missing.
compose:
	@docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's docker-compose to validate compose.yaml..."; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; \
	  else \
	    echo "The compose.yaml tests need Docker Compose: 'sudo apt-get install docker-compose'."; \
	    exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) var
