# The two commands of the README: `make demo` and `make test`. Set-up happens on demand.
SHELL := /bin/bash
PYTHON := tools/venv/bin/python
RECIPES := toy se_uda mos_pretrain voice_privacy mushra_gml audio2image
RECIPE ?= $(RECIPES)
PYTEST_ARGS ?=
# pytest-xdist workers (tests/conftest.py keeps the tests of one shared tiny run on one worker)
TEST_JOBS ?= 2

.PHONY: setup mini demo results test bench clean-exp

setup:
	@tools/setup.sh

mini: setup
	@if [ -x tools/make_mini_corpus.sh ]; then tools/make_mini_corpus.sh; fi

demo: setup mini
	@set -e; all=$$(date +%s); for recipe in $(RECIPE); do \
	    [ -d egs/$$recipe ] || { echo "make demo: no recipe egs/$$recipe (have: $(RECIPES))" >&2; exit 1; }; \
	    echo "=== $$(date '+%Y-%m-%dT%H:%M:%S') egs/$$recipe ==="; \
	    start=$$(date +%s); (cd egs/$$recipe && ./run.sh); \
	    echo "=== $$(date '+%Y-%m-%dT%H:%M:%S') egs/$$recipe done in $$(( $$(date +%s) - start )) s: tables in egs/$$recipe/RESULTS.md and egs/$$recipe/exp/*/RESULTS.md ==="; \
	done; \
	$(PYTHON) -m speechlib.results.summary; \
	echo "=== $$(date '+%Y-%m-%dT%H:%M:%S') make demo done in $$(( $$(date +%s) - all )) s: summary in RESULTS.md ==="

# The top-level RESULTS.md from every recipe's committed egs/<recipe>/results.json.
results: setup
	@$(PYTHON) -m speechlib.results.summary

test: setup
	$(PYTHON) -m pytest tests -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

bench: setup
	@set -e; for bench in tests/benchmarks/bench_*.py; do \
	    echo "=== $$bench ==="; PYTHONPATH=. $(PYTHON) $$bench; done

clean-exp:
	rm -rf egs/*/exp egs/*/data
