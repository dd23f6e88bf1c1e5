# The project's commands. `make run` and `make test` work from a clean clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.* web/tsconfig*.json -type f 2>/dev/null)

.PHONY: install run test lint bench bench-search system-deps clean

install: $(VENV)/.installed web/dist/index.html

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build

run: install
	$(BIN)/liaison seed --demo
	$(BIN)/liaison serve

# What the tests need from the operating system: headless Chromium (browser tests), CJK and
# emoji fonts (so screenshots show Chinese and the icons a desktop browser shows),
# redis-server (multi-node tests) and nginx (the example deployment in front of several
# nodes). Installed when missing and we may (root with apt-get); otherwise the tests that need
# them say so and skip.
system-deps:
	@if { [ ! -x /usr/bin/chromium ] || [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] \
	      || ! command -v redis-server >/dev/null \
	      || ! PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null; } \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-noto-cjk fonts-noto-color-emoji redis-server nginx >/dev/null; \
	fi

test: install system-deps
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server handlers storage loadtests

# The load benchmark: Liaison against the bare python-socketio floor, server and generator pinned
# to a core each; writes loadtests/results/bench.md, .json and .html. About 10 minutes.
# BENCH_ARGS=--profile samples the Liaison server with py-spy during the pager steps.
bench: install
	ulimit -n 65536 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; $(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# Library search on 100,000 Chinese documents against ILIKE, in a database of its own (created
# and dropped; LIAISON_DATABASE_URL's server, or an embedded one). A few minutes.
bench-search: install
	$(BIN)/python -m loadtests.search_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) web/node_modules web/dist
