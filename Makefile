# The two commands of the README: `make demo` and `make test`. Set-up happens on demand.
SHELL := /bin/bash
PYTHON := tools/venv/bin/python
RECIPES := toy se_uda mos_pretrain voice_privacy
RECIPE ?= $(RECIPES)
PYTEST_ARGS ?=

.PHONY: setup mini demo test bench clean-exp

setup:
	@tools/setup.sh

mini: setup
	@if [ -x tools/make_mini_corpus.sh ]; then tools/make_mini_corpus.sh; fi

demo: setup mini
	@set -e; for recipe in $(RECIPE); do \
	    [ -d egs/$$recipe ] || { echo "make demo: no recipe egs/$$recipe (have: $(RECIPES))" >&2; exit 1; }; \
	    echo "=== egs/$$recipe ==="; \
	    start=$$(date +%s); (cd egs/$$recipe && ./run.sh); \
	    echo "=== egs/$$recipe done in $$(( $$(date +%s) - start )) s: tables in egs/$$recipe/RESULTS.md and egs/$$recipe/exp/*/RESULTS.md ==="; \
	done

test: setup
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

bench: setup
	@set -e; for bench in tests/benchmarks/bench_*.py; do \
	    echo "=== $$bench ==="; PYTHONPATH=. $(PYTHON) $$bench; done

clean-exp:
	rm -rf egs/*/exp egs/*/data
