# neudep: reproducibility study of "Neural Dependencies Emerging from Learning Massive Categories".
# `make test` and `make book` each set up their own virtualenv (.venv) on a fresh machine.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= default
# The images and weights are found by neudep_utils/locations.py: NEUDEP_DATA / NEUDEP_MODELS_DIR,
# else ../shared beside the checkout, else NEUDEP_HOME filled by `make data` (DATA.md).
NEUDEP_CACHE ?= $(abspath cache)
OUTPUT_DIR ?= $(abspath outputs/$(PROFILE))
PYTEST_ARGS ?=
export NEUDEP_CACHE

.PHONY: help system-deps setup data test test-slow test-all lint hooks logits notebooks book build-table pdf book-test bench bench-scaling clean

help:
	@echo "make data            the images and weights (PROFILE=$(PROFILE)): ../shared verified, else"
	@echo "                     downloaded from their public origin and verified (DATA.md)"
	@echo "make test            fast test suite (sets up .venv)"
	@echo "make test-slow       slow tests (real models on more images)"
	@echo "make logits          extract every logit cache the notebooks need (PROFILE=$(PROFILE))"
	@echo "make notebooks       execute the notebooks with papermill (PROFILE=$(PROFILE))"
	@echo "make book            logits + notebooks + jupyter-book -> book/_build/html"
	@echo "make book PROFILE=smoke   quick preview"
	@echo "make build-table     the last build's time per stage and section -> benchmarks/results/build.md"
	@echo "make pdf             the book as one PDF -> book/_build/pdf/neudep.pdf (chromium)"
	@echo "make bench           benchmarks (extraction and CovLasso)"
	@echo "make bench-scaling   CovLasso for n = 1000 ... 21841 categories (about 30 min)"

# Debian packages (root): WordNet 3.0 for the tests that check the committed hierarchy
# (neudep_utils/resources/imagenet_wordnet.json) against it, chromium for the browser test and
# `make pdf`, poppler-utils (pdftotext, pdfimages) for the PDF's checks.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends wordnet-base chromium poppler-utils >/dev/null; \
	else echo "system-deps: run as root (or: sudo apt-get install wordnet-base chromium poppler-utils)"; fi

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found"; exit 1; }
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "neudep needs Python 3.11, got " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (neudep)" >/dev/null
	touch $@

setup: $(VENV)/.installed

# With ../shared beside the checkout (or NEUDEP_DATA / NEUDEP_MODELS_DIR set): checks every file
# the profile needs against the committed registry, no network. Otherwise downloads them
# (NEUDEP_ORIGIN_URL, default GitHub's raw-content address) into NEUDEP_HOME (default: the user
# cache folder), verified; rerunning resumes. DATA_ARGS, e.g. "--workers 4 --retries 3".
data: setup
	$(PY) -m neudep_utils data --profile $(PROFILE) $(DATA_ARGS)

test: setup
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m "slow" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

hooks:
	git config core.hooksPath .githooks

# each stage of `make book` appends "<stage> <seconds>" to $(STAGES); the book prints them
STAGES := $(abspath book/_build/stages.txt)
timed = start=$$(date +%s); $(2); rc=$$?; mkdir -p $(dir $(STAGES)); \
	echo "$(1) $$(( $$(date +%s) - start ))" >> $(STAGES); exit $$rc

# LOGITS_ARGS, e.g. "--jobs 1" (one entry at a time, every thread) or "--quiet"; each entry's
# seconds go to $(EXTRACTION) (printed by `make book` at its end)
EXTRACTION := $(abspath book/_build/extraction.json)
LOGITS_ARGS ?=
logits: setup
	@mkdir -p $(dir $(STAGES)) && : > $(STAGES)
	@$(call timed,logits,$(PY) -m neudep_utils logits --profile $(PROFILE) \
	  --timings $(EXTRACTION) $(LOGITS_ARGS))

# NOTEBOOK_ARGS, e.g. "--only 01 --force", "-p seed 1" or "--quiet" (no cell progress bars);
# unchanged notebooks are skipped. NOTEBOOK_JOBS notebooks run side by side (02 after 01, whose
# fits it reuses): their single-threaded sections use the core a lone notebook leaves idle.
NOTEBOOK_JOBS ?= 2
notebooks: logits
	@$(call timed,notebooks,$(PY) scripts/run_notebooks.py --profile $(PROFILE) \
	  --output-dir $(OUTPUT_DIR) --jobs $(NOTEBOOK_JOBS) $(NOTEBOOK_ARGS))

# The summary pages come from the notebooks' result files; then Sphinx renders the book with
# warnings as errors (BOOK_ARGS="" relaxes that); HTML in book/_build/html.
BOOK_ARGS ?= -W -n --keep-going
book: notebooks
	@$(call timed,pages,$(PY) -m neudep_utils.report.pages --profile $(PROFILE) --output-dir $(OUTPUT_DIR))
	@$(call timed,html,$(VENV)/bin/jupyter-book build book --builder html $(BOOK_ARGS) >$(dir $(STAGES))html.log 2>&1 \
	  || { cat $(dir $(STAGES))html.log; false; })
	@echo "== make book PROFILE=$(PROFILE) done; time per stage, extraction entry and notebook section:"
	@$(PY) scripts/build_report.py --stages $(STAGES) --extraction $(EXTRACTION) \
	  --output-dir $(OUTPUT_DIR)
	@echo "   results: $(OUTPUT_DIR)/*.json; Sphinx log: book/_build/html.log"
	@echo "   book:    $(abspath book/_build/html/index.html)"

# The performance page's table of the last build (every stage, extraction entry and notebook
# section with its seconds, CPU seconds and work) -> benchmarks/results/build.md; LOAD_LOG: a
# file of load-average samples taken during that build ("<unix time> <1-min> <5-min> <15-min>")
LOAD_LOG ?=
build-table:
	$(PY) scripts/build_report.py --stages $(STAGES) --extraction $(EXTRACTION) \
	  --output-dir $(OUTPUT_DIR) --markdown benchmarks/results/build.md \
	  --floors benchmarks/results/floors.json $(if $(LOAD_LOG),--load $(LOAD_LOG))

# The book as one PDF, offline: Sphinx's single-page HTML build printed by Debian's chromium
# (headless). Chromium is looked for first, before the book is built (installed here when missing
# and running as root, else `make system-deps`; CHROMIUM=/path names a binary). The print style
# sheet (book/_static/neudep.css) keeps tables and figures whole and adds the title page.
PDF := book/_build/pdf/neudep.pdf
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)
pdf:
	@if [ -n "$(CHROMIUM)" ]; then \
	  command -v "$(CHROMIUM)" >/dev/null || { echo "error: CHROMIUM=$(CHROMIUM) is not an executable; install chromium (sudo make system-deps) or set CHROMIUM to its path" >&2; exit 2; }; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make pdf: installing chromium (apt-get)"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
	  || { echo "error: make pdf needs chromium and apt-get could not install it; run: sudo make system-deps" >&2; exit 2; }; \
	else echo "error: make pdf needs chromium (none on PATH); run: sudo make system-deps, or set CHROMIUM=/path/to/chromium" >&2; exit 2; fi
	@$(MAKE) --no-print-directory book
	$(VENV)/bin/jupyter-book build book --builder singlehtml $(BOOK_ARGS) >book/_build/singlehtml.log 2>&1 \
	  || { cat book/_build/singlehtml.log; false; }
	@mkdir -p $(dir $(PDF))
	$(PY) -m neudep_utils.report.pdf --html book/_build/singlehtml/intro.html --out $(PDF) \
	  --chromium "$$(command -v $(or $(CHROMIUM),chromium))"

# Opens every page of the built book in headless chromium (Debian's package, installed here when
# missing and running as root); saves book/_build/html/claims-screenshot.png; checks the PDF when
# `make pdf` made one (pdftotext and pdfimages of poppler-utils).
book-test: book
	@{ command -v chromium && command -v pdftotext; } >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium poppler-utils; \
	  else echo "book-test: chromium or poppler-utils missing; run: sudo make system-deps"; fi; }
	$(PY) -m pytest -m browser tests/test_book_browser.py $(PYTEST_ARGS)

# the CovLasso benchmarks need the optional peers (celer, skglm) and Lite0's logit second moment;
# they write benchmarks/results/covlasso.md and ksearch.md (included by the book's performance page)
bench: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_extract.py
	mkdir -p $(abspath outputs)
	$(PY) -m neudep_utils covariance --model lite0 --data imagenet-val imagenet-sample --views 1 \
	  --out $(abspath outputs)/S_lite0_views1.npy
	$(PY) benchmarks/bench_covlasso.py --cov $(abspath outputs)/S_lite0_views1.npy
	$(PY) benchmarks/bench_ksearch.py --cov $(abspath outputs)/S_lite0_views1.npy

# massive categories (n up to 21,841, float32 S of 1.9 GB; about half an hour of one core):
# writes benchmarks/results/scaling.md and scaling.png (included by the book's performance page)
bench-scaling: setup
	mkdir -p $(abspath outputs)
	$(PY) -m neudep_utils covariance --model lite0 --data imagenet-val imagenet-sample --views 1 \
	  --out $(abspath outputs)/S_lite0_views1.npy
	$(PY) benchmarks/bench_scaling.py --cov $(abspath outputs)/S_lite0_views1.npy --peer-sample 4

clean:
	rm -rf book/_build book/executed book/generated outputs
