# The two commands of the README:
#   make book   create .venv, install, execute the chapters (tiny profile, cached) and build _build/html
#   make test   same install, then all tests: unit tests, nbval over book/*.ipynb, the HTML build,
#               the book in a browser (Chromium) and a Colab-like install
# and a few helpers:
#   make notebooks   re-execute the chapters in place and store their outputs (tiny profile)
#   make clean       remove the HTML build and the execution cache (keeps .venv)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Chapters run on the tiny profile: digits, CPU, minutes.
export SNNLAB_PROFILE := tiny
# ... and store no progress bars (snnlab.train reads it when progress=None).
export SNNLAB_PROGRESS := 0
# One thread per kernel: the stored outputs are made that way (tools/execute_notebooks.py),
# and a chapter on one thread keeps its pace when another process loads the CPU (two torch
# threads wait on each other whenever one of them is descheduled).
export OMP_NUM_THREADS ?= 1
# Notebook kernels start "python" from PATH: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: book test install notebooks graphviz chromium clean

book: install graphviz
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going .
	@# Jupyter Book has been seen to exit 0 without writing anything: check the pages.
	@for page in _build/html/index.html _build/html/book/intro.html \
	    $(patsubst %.ipynb,_build/html/%.html,$(wildcard book/*.ipynb)); do \
	  test -s $$page || { echo "make book: missing page $$page" >&2; exit 1; }; \
	done
	@echo "The book is in _build/html/index.html"

test: install graphviz chromium
	$(PY) -m pytest

install: $(STAMP)

# Re-install only when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

notebooks: install graphviz
	$(PY) tools/execute_notebooks.py

# The system graphviz (the `dot` program) draws the architecture graphs.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y graphviz; \
	  else \
	    echo "Graphviz's 'dot' program is missing. Install it and re-run make:" >&2; \
	    echo "  Debian/Ubuntu: sudo apt-get install graphviz    macOS: brew install graphviz" >&2; \
	    exit 1; \
	  fi; }

# The system Chromium runs tests/test_browser.py (Playwright drives it; Playwright's own
# browser download is not used). Without it that test is skipped, except in CI.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	  else \
	    echo "Chromium is missing: tests/test_browser.py will be skipped. To run it:" >&2; \
	    echo "  Debian: sudo apt-get install chromium    Ubuntu: a chromium snap or deb; or set SNNLAB_CHROMIUM" >&2; \
	  fi; }

clean:
	rm -rf _build .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
