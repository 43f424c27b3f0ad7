# Two commands on a fresh clone: `make up` (the whole stack on this machine) and `make test`.
# Both create .venv when missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYVER := $(shell $(PYTHON) -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

.PHONY: up test install system-deps clean bench bench-sweep perf-analyzer

install: $(STAMP)

# The python-backend stub of the bundled Triton links the system libpython (Debian libpythonX.Y).
system-deps:
	@ldconfig -p | grep -q "libpython$(PYVER).so.1.0" || { \
		echo "installing libpython$(PYVER) for Triton's python backend stub"; \
		apt-get update -qq && apt-get install -y -qq "libpython$(PYVER)"; }
	# The web page's end-to-end test drives Debian's headless Chromium (never a downloaded browser).
	@command -v chromium >/dev/null || { \
		echo "installing chromium for the browser test"; \
		apt-get update -qq && apt-get install -y -qq chromium; }

$(STAMP): pyproject.toml constraints.txt
	$(MAKE) system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/pastiche up

test: $(STAMP)
	$(BIN)/python -m pytest

# perf_analyzer (NVIDIA's load generator) lives in its own venv: the only wheel carrying the binary
# (tritonclient 2.41.0) pins an old tritonclient. It needs Debian libb64 and the CUDA runtime
# library from PyPI even on CPU.
PERF_VENV := .pastiche/perf-venv
PERF_STAMP := $(PERF_VENV)/.installed

perf-analyzer: $(PERF_STAMP)

$(PERF_STAMP):
	@ldconfig -p | grep -q "libb64.so.0d" || { apt-get update -qq && apt-get install -y -qq libb64-0d; }
	test -x $(PERF_VENV)/bin/python || $(PYTHON) -m venv $(PERF_VENV)
	$(PERF_VENV)/bin/python -m pip install --quiet "tritonclient[all]==2.41.0" "nvidia-cuda-runtime-cu12>=12,<13"
	touch $(PERF_STAMP)

# Quick (< 3 min) end-to-end benchmark on the bundled stack; report in benchmarks/results/.
bench: $(STAMP)
	$(BIN)/pastiche bench quick

# The full side-by-side sweep (about 10 minutes on 2 cores), perf_analyzer included.
bench-sweep: $(STAMP) $(PERF_STAMP)
	$(BIN)/pastiche bench sweep

clean:
	rm -rf .pastiche model_repository/*/
