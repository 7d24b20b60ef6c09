# Two commands for a fresh clone: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := runs/demo

.PHONY: demo test android-test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/fastscnn summary --num-classes 19 --size 1024x2048 --no-layers

test: $(STAMP)
	$(PY) -m pytest
	bash android_demo/core/test.sh

android-test:
	bash android_demo/core/test.sh

lint: $(STAMP)
	$(BIN)/ruff check fastscnn_tf tests benchmarks tflite
	$(BIN)/ruff format --check fastscnn_tf tests benchmarks tflite

clean:
	rm -rf $(VENV) runs build *.egg-info
