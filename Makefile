# A fresh clone needs two commands: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := runs/demo
DEMO_SIZE := 128x160
ASSETS := android_demo/app/src/main/assets

.PHONY: demo test android-test lint venv clean

venv: $(STAMP)

# mediapipe: metadata writer + its ImageSegmenter in the tests. torch: the CPU wheel only (an
# unpinned torch pulls a multi-GB CUDA build); without it the PyTorch parity test is skipped.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,mediapipe]"
	$(PY) -m pip install --quiet "torch==2.13.0+cpu" \
	  || echo "note: no CPU torch wheel here; the PyTorch parity test will be skipped"
	touch $@

# The main job on built-in synthetic scenes: train -> evaluate -> export int8 -> parity and
# latency -> overlays -> app assets. Each step is a file target, so a re-run redoes only what is
# missing and a killed training run resumes where it stopped.
demo: $(DEMO)/predictions/.done $(ASSETS)/fastscnn_int8.tflite
	@echo "== done: overlays in $(DEMO)/predictions, latency in $(DEMO)/benchmark/benchmark.md,"
	@echo "   the int8 model and labels.txt copied into $(ASSETS) for the Android app"

$(DEMO)/model.keras: | $(STAMP)
	@echo "== 1/6 the network, then training on synthetic scenes (a few minutes on 2 cores)"
	$(BIN)/fastscnn summary --num-classes 8 --size $(DEMO_SIZE) --no-layers
	$(BIN)/fastscnn train --dataset synthetic --out $(DEMO) --epochs 6 --steps-per-epoch 50 \
	  --batch-size 8 --crop $(DEMO_SIZE) --val-batch-size 20 --verbose 2
	@echo "== 2/6 evaluate the Keras model on the validation split"
	$(BIN)/fastscnn evaluate --model $@ --dataset synthetic --split val

$(DEMO)/fastscnn_int8.tflite: $(DEMO)/model.keras
	@echo "== 3/6 export int8 TFLite: uint8 image in, uint8 class mask out"
	$(BIN)/fastscnn export $< --size $(DEMO_SIZE) --precision int8 --output $@

$(DEMO)/benchmark/benchmark.md: $(DEMO)/fastscnn_int8.tflite
	@echo "== 4/6 parity of float32 and int8 with Keras, then latency (2 threads)"
	$(PY) tflite/parity.py $(DEMO)/model.keras --dataset synthetic --size $(DEMO_SIZE) \
	  --precisions float32 int8 --out $(DEMO)/parity --force
	$(BIN)/fastscnn benchmark $(DEMO)/model.keras --sizes 256x512 512x1024 \
	  --precisions float32 int8 --threads 2 --runs 20 --output-dir $(DEMO)/benchmark
	cat $@

$(DEMO)/predictions/.done: $(DEMO)/benchmark/benchmark.md
	@echo "== 5/6 predict: colour masks and overlays for unseen test scenes"
	$(BIN)/fastscnn write-data --dataset synthetic --split test --count 6 --out $(DEMO)/data
	$(BIN)/fastscnn predict $(DEMO)/data/images/test --model $(DEMO)/fastscnn_int8.tflite \
	  --out $(DEMO)/predictions
	touch $@

$(ASSETS)/fastscnn_int8.tflite: $(DEMO)/fastscnn_int8.tflite
	@echo "== 6/6 copy the int8 model and labels.txt into the Android app"
	$(BIN)/fastscnn android-assets --model $< --dest $(ASSETS)

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
