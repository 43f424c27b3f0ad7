# Two commands on a fresh clone: `make up` (the whole stack on this machine) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test install bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
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
