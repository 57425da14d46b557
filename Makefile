# The README's two commands are `make main` and `make test`; each sets everything up first.
PYTHON ?= python3
export PYTHON

.PHONY: main test test-slow bench-quick cuda-build setup setup-bench setup-docs docs bench learning bench-coop bench-recurrent bench-sb3 bench-distributed bench-mmap cuda-check sanitize fuzz clean

main: setup-bench
	$(PYTHON) -m pyrl.cli train ddpg --env pyrl/PointReach-v0 --steps 15000 --out runs/point-reach --no-progress
	$(PYTHON) benchmarks/bench_returns.py --quick
	$(PYTHON) benchmarks/bench_replay.py --quick
	$(PYTHON) benchmarks/bench_her.py --quick

# Every test but the long learning and scaling runs (marked slow), which test-slow runs.
test: setup
	$(PYTHON) -m pytest -m "not slow"

# The long ones: SPEC 8.2's H1/H5 over seeds, the FetchReach and large-bandit presets, Ray actors
# reaching the one-process bar, a 1M-transition save (about 7 minutes on 2 cores).
test-slow: setup
	$(PYTHON) -m pytest -m slow

# The quick form of every benchmark table, the systems ones (agents, Coop, recurrent, SB3, Ray,
# memory-mapped) included.
bench-quick: main
	$(PYTHON) benchmarks/bench_agents.py --quick
	$(PYTHON) benchmarks/bench_coop.py --quick
	$(PYTHON) benchmarks/bench_recurrent.py --quick
	$(PYTHON) benchmarks/bench_recurrent_learning.py --quick
	$(PYTHON) benchmarks/bench_sb3.py --quick
	$(PYTHON) benchmarks/bench_distributed.py --quick
	$(PYTHON) benchmarks/bench_memory_mapped.py --quick

setup:
	scripts/setup.sh

setup-bench:
	scripts/setup.sh --bench

setup-docs:
	scripts/setup.sh --docs

# The documentation site, warnings as errors, into docs/_build/html.
docs: setup-docs
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: setup-bench
	$(PYTHON) benchmarks/bench_returns.py
	$(PYTHON) benchmarks/bench_replay.py
	$(PYTHON) benchmarks/bench_her.py
	$(PYTHON) benchmarks/bench_recurrent.py
	$(PYTHON) benchmarks/bench_agents.py

learning: setup-bench
	$(PYTHON) benchmarks/bench_learning.py --out runs/learning

# Coop against PPO and DDPG alone, 4 envs x 5 seeds (about an hour on 2 cores; resumable).
bench-coop: setup-bench
	$(PYTHON) benchmarks/bench_coop.py

# Recurrent PPO and DDPG on the velocity-masked tasks beside feed-forward ones, 3 seeds
# (about 1.5 h on 2 cores; resumable).
bench-recurrent: setup-bench
	$(PYTHON) benchmarks/bench_recurrent_learning.py

# SB3's TD3+HER on FetchReach-v4 with its own and pyrl's buffers, 10k steps x 5 seeds (about 45 min).
bench-sb3: setup-bench
	$(PYTHON) benchmarks/bench_sb3.py

# Ray actors: env steps/s and learner updates/s for 1, 2 and 4 actors on a 1 ms-per-step env.
bench-distributed: setup-bench
	$(PYTHON) benchmarks/bench_distributed.py

# 10 GB of memory-mapped replay columns sampled with RssAnon under 1 GB (needs ~11 GB of disk;
# PYRL_BENCH_DIR picks where the files go, default the temp directory).
bench-mmap: setup-bench
	$(PYTHON) benchmarks/bench_memory_mapped.py

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

clean:
	rm -rf build dist *.egg-info runs docs/_build
