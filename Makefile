# Tessera — the two commands a newcomer needs:
#   make run    install what is missing, build, run the demo analyses
#   make test   install what is missing, build, run the whole test suite
#               (release build with gcc, an ASan+UBSan build with clang, and
#               the executor and runtime unit tests under ThreadSanitizer)
# Other targets: build, build-asan, demo, format, format-check, fuzz (libFuzzer, FUZZ_SECONDS per
# target, default 60), clean.
# make bench: build, then the benchmark against its baselines (bench/run.py; options in
# BENCH_ARGS), then Python against the CLI (bench/python_bench.py), the HDF5 reader
# (bench/hdf5_bench.py), K2IS / FRMS6 (bench/k2frms_bench.py) and Zarr / raw CSR
# (bench/zarr_csr_bench.py), each against baselines
# measured in the same run.
# make python-venv: a venv (VENV, default $(BUILD)/venv, with the system's packages) with the
# `tessera` Python package installed offline by pip from ./python (docs/python.md).

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
DEMO ?= demo

TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps deps-test build build-asan build-tsan run demo test fuzz format format-check clean

all: build

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh all

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	      -DTSR_SANITIZE=ON >/dev/null

build-asan: deps-test $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)

$(TSAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	      -DTSR_TSAN=ON >/dev/null

build-tsan: deps-test $(TSAN_BUILD)/CMakeCache.txt
	cmake --build $(TSAN_BUILD) -j$(JOBS)

run: build demo

demo:
	@scripts/demo.sh $(BUILD) $(DEMO)

test: deps-test
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory build BUILD=$(BUILD)
	@$(MAKE) --no-print-directory build-asan
	@$(MAKE) --no-print-directory build-tsan
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD) '$(TSAN_BUILD):unit|example'


fuzz: deps-test
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	      -DTSR_SANITIZE=ON -DTSR_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@for t in $$(ls $(FUZZ_BUILD)/tests/fuzz_* | grep -v '\.'); do \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$(basename $$t); \
	  $(FUZZ_BUILD)/tests/replay_$$(basename $$t) --write-seeds $(FUZZ_BUILD)/corpus/$$(basename $$t); \
	  $$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	      $(FUZZ_BUILD)/corpus/$$(basename $$t) || exit 1; \
	done

C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(C_SOURCES)

format-check:
	@clang-format --dry-run --Werror $(C_SOURCES) || \
	  { echo "format-check: run 'make format' (clang-format, .clang-format)" >&2; exit 1; }
	@echo "format-check: $(words $(C_SOURCES)) files formatted"

.PHONY: python-venv
VENV ?= $(BUILD)/venv
python-venv: deps-test
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install --no-index --no-build-isolation ./python
	@echo "python-venv: $(VENV)/bin/python -c 'import tessera' (activate: . $(VENV)/bin/activate)"

.PHONY: bench
bench: build
	/usr/bin/python3 bench/run.py --build $(BUILD) $(BENCH_ARGS)
	/usr/bin/python3 bench/python_bench.py --build $(BUILD) --threads 2
	/usr/bin/python3 bench/hdf5_bench.py --build $(BUILD)
	/usr/bin/python3 bench/k2frms_bench.py --build $(BUILD)
	/usr/bin/python3 bench/zarr_csr_bench.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(DEMO)
