# Two commands on a fresh clone: `make up` (the whole stack on this machine) and `make test`.
# Both create .venv when missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYVER := $(shell $(PYTHON) -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

.PHONY: up test install system-deps clean

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

clean:
	rm -rf .pastiche model_repository/*/
