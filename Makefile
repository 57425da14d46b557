# The README's two commands are `make main` and `make test`; each sets everything up first.
PYTHON ?= python3
export PYTHON

.PHONY: main test test-slow bench-quick cuda-build setup setup-main setup-bench setup-docs docs bench learning bench-coop bench-recurrent bench-sb3 bench-distributed bench-mmap cuda-check sanitize fuzz lint format wheel-check clean

# A short training run and the quick tables of the core ops, then the other targets named.
main: setup-main
	@$(PYTHON) -m pyrl.cli train ddpg --env pyrl/PointReach-v0 --steps 15000 --out runs/point-reach \
	  --no-progress
	@$(PYTHON) -m benchmarks.ops.returns --quick
	@$(PYTHON) -m benchmarks.ops.replay --quick
	@$(PYTHON) -m benchmarks.ops.her --quick
	@echo "main: done. More: make test, make bench (full op tables), make bench-quick (every table,"
	@echo "  quick), make learning / bench-coop / bench-recurrent / bench-sb3 / bench-distributed /"
	@echo "  bench-mmap (hours), make docs, make lint, make sanitize, make cuda-build,"
	@echo "  make wheel-check."

# Every test but the long learning and scaling runs (marked slow), which test-slow runs; in two
# worker processes where pytest-xdist is installed (scripts/setup.sh installs it).
PYTEST_WORKERS = $$($(PYTHON) -c "import xdist; print('-n 2')" 2>/dev/null)

test: setup
	$(PYTHON) -m pytest -m "not slow" $(PYTEST_WORKERS)

# The long ones: SPEC 8.2's H1/H5 over seeds, the FetchReach and large-bandit presets, Ray actors
# reaching the one-process bar, a 1M-transition save, SB3's DQN+HER on BitFlippingEnv with each
# buffer over five seeds (about 15 minutes on 2 cores).
test-slow: setup
	$(PYTHON) -m pytest -m slow

# The quick form of every benchmark table: ops, systems and learning.
bench-quick: setup-bench
	for m in ops.returns ops.replay ops.her ops.rlox ops.recurrent systems.agents systems.sb3 \
	    systems.distributed systems.memory_mapped learning.coop learning.recurrent; do \
	  $(PYTHON) -m benchmarks.$$m --quick || exit 1; done

setup:
	scripts/setup.sh

setup-main:
	@scripts/setup.sh --main

setup-bench:
	scripts/setup.sh --bench

setup-docs:
	scripts/setup.sh --docs

# The documentation site, warnings as errors, into docs/_build/html.
docs: setup-docs
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html

# The full op tables (add --publish to a command to rewrite its docs/results/ table).
bench: setup-bench
	for m in returns replay her rlox recurrent; do $(PYTHON) -m benchmarks.ops.$$m || exit 1; done
	$(PYTHON) -m benchmarks.systems.agents

learning: setup-bench
	$(PYTHON) -m benchmarks.learning.agents --out runs/learning

# Coop against PPO and DDPG alone, 4 envs x 5 seeds (about an hour on 2 cores; resumable).
bench-coop: setup-bench
	$(PYTHON) -m benchmarks.learning.coop

# Recurrent PPO and DDPG on the velocity-masked tasks beside feed-forward ones, 3 seeds
# (about 1.5 h on 2 cores; resumable).
bench-recurrent: setup-bench
	$(PYTHON) -m benchmarks.learning.recurrent

# SB3's TD3+HER on FetchReach-v4 with its own and pyrl's buffers, 10k steps x 5 seeds (about 45 min).
bench-sb3: setup-bench
	$(PYTHON) -m benchmarks.systems.sb3

# Ray actors: env steps/s and learner updates/s for 1, 2 and 4 actors on a 1 ms-per-step env.
bench-distributed: setup-bench
	$(PYTHON) -m benchmarks.systems.distributed

# 10 GB of memory-mapped replay columns sampled with RssAnon under 1 GB (needs ~11 GB of disk;
# PYRL_BENCH_DIR picks where the files go, default the temp directory).
bench-mmap: setup-bench
	$(PYTHON) -m benchmarks.systems.memory_mapped

cuda-check:
	scripts/check_cuda.sh

# pyrl built with CUDA kernels against a CUDA torch in build/cuda-venv, its ops' CUDA
# registrations checked, the CPU suite run against it (no GPU needed; about 10 minutes).
cuda-build:
	scripts/cuda_build.sh

# The C++-facing tests against an ASan + UBSan build of the extension (build/sanitize).
sanitize: setup
	scripts/sanitize.sh

# The long fuzz run (CI runs 25 examples within make test).
fuzz: setup
	PYRL_FUZZ_EXAMPLES=$${PYRL_FUZZ_EXAMPLES:-2000} $(PYTHON) -m pytest tests/test_fuzz.py -q

# ruff over the Python tree (pyproject.toml's [tool.ruff]) and clang-format over csrc/
# (.clang-format), both 100 columns; `make format` rewrites what they would change.
CLANG_FORMAT = $(PYTHON) -c "import clang_format; clang_format.clang_format()"
CSRC = $(shell find csrc -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' | sort)

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	@echo "clang-format --dry-run -Werror over csrc/ ($(words $(CSRC)) files)"
	@$(CLANG_FORMAT) --dry-run -Werror $(CSRC)

format: setup
	$(PYTHON) -m ruff format .
	$(CLANG_FORMAT) -i $(CSRC)

# A wheel built once, installed into a fresh venv with only torch, tested with no compiler on
# PATH from a directory without the sources, and `pyrl bench --quick` run (about 15 minutes).
wheel-check: setup
	scripts/wheel_check.sh

clean:
	rm -rf build dist *.egg-info runs docs/_build
