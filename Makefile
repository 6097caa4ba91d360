# Set-up and the two main jobs. `make demo` and `make test` each create the
# virtual environment in .venv on first use, so a fresh clone needs nothing
# else than Python 3.10+ and this file.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export OMP_NUM_THREADS ?= 1

.PHONY: demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/thermosynth generate --demo --output demo-output --overwrite
	$(BIN)/thermosynth preview --demo -n 4 -o demo-output-preview.png --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check thermosynth tests benchmarks
	$(BIN)/ruff format --check thermosynth tests benchmarks
	$(BIN)/mypy thermosynth

clean:
	rm -rf $(VENV) demo-output demo-output-preview.png
