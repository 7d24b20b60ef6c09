# A fresh clone needs two commands: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := runs/demo
DEMO_SIZE := 128x160
ASSETS := android_demo/app/src/main/assets

.PHONY: demo test test-fast android-test arm64-test web web-test lint venv clean

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

# The main job: first the whole pipeline on built-in synthetic scenes (train -> evaluate ->
# export int8 -> parity and latency -> overlays), then the shipped CamVid preset on real street
# photos, and its int8 model into the Android app. Each step is a file target, so a re-run redoes
# only what is missing and a killed training run resumes where it stopped.
PRESET := fastscnn_tf/presets/camvid
demo: $(DEMO)/predictions/.done $(DEMO)/street/.done $(DEMO)/assets/.done
	@echo "== done: street overlays in $(DEMO)/street, synthetic ones in $(DEMO)/predictions,"
	@echo "   latency in $(DEMO)/benchmark/benchmark.md; the app ships the preset ($(ASSETS))"

$(DEMO)/model.keras: | $(STAMP)
	@echo "== 1/7 the network, then training on synthetic scenes (a few minutes on 2 cores)"
	$(BIN)/fastscnn summary --num-classes 8 --size $(DEMO_SIZE) --no-layers
	$(BIN)/fastscnn train --dataset synthetic --out $(DEMO) --epochs 4 --steps-per-epoch 50 \
	  --batch-size 8 --crop $(DEMO_SIZE) --val-batch-size 20 --verbose 2
	@echo "== 2/7 evaluate the Keras model on the validation split"
	$(BIN)/fastscnn evaluate --model $@ --dataset synthetic --split val

$(DEMO)/fastscnn_int8.tflite: $(DEMO)/model.keras
	@echo "== 3/7 export int8 TFLite: uint8 image in, uint8 class mask out"
	$(BIN)/fastscnn export $< --size $(DEMO_SIZE) --precision int8 --output $@

$(DEMO)/benchmark/benchmark.md: $(DEMO)/fastscnn_int8.tflite
	@echo "== 4/7 parity of float32 and int8 with Keras, then latency (2 threads)"
	$(PY) tflite/parity.py $(DEMO)/model.keras --dataset synthetic --size $(DEMO_SIZE) \
	  --precisions float32 int8 --out $(DEMO)/parity --force
	$(BIN)/fastscnn benchmark $(DEMO)/model.keras --sizes 256x512 512x1024 \
	  --precisions float32 int8 --threads 2 --runs 20 --output-dir $(DEMO)/benchmark
	cat $@

$(DEMO)/predictions/.done: $(DEMO)/benchmark/benchmark.md
	@echo "== 5/7 predict: colour masks and overlays for unseen synthetic scenes"
	$(BIN)/fastscnn write-data --dataset synthetic --split test --count 6 --out $(DEMO)/data
	$(BIN)/fastscnn predict $(DEMO)/data/images/test --model $(DEMO)/fastscnn_int8.tflite \
	  --out $(DEMO)/predictions
	touch $@

$(DEMO)/street/.done: | $(STAMP)
	@echo "== 6/7 real street photos (CamVid, see $(PRESET)/samples) with the shipped preset"
	$(BIN)/fastscnn presets
	$(BIN)/fastscnn predict $(PRESET)/samples --out $(DEMO)/street
	touch $@

# The app's assets are links to the preset's files (one copy of the model in the repository);
# `fastscnn android-assets --model F.tflite` replaces them with your own model.
$(DEMO)/assets/.done: | $(STAMP)
	@echo "== 7/7 the Android app ships the preset's int8 model and labels.txt ($(ASSETS))"
	cmp $(ASSETS)/fastscnn_int8.tflite $(PRESET)/camvid_int8.tflite
	cmp $(ASSETS)/labels.txt $(PRESET)/labels.txt
	$(BIN)/fastscnn android-assets --model camvid --dest $(DEMO)/assets
	touch $@

# The browser tests (make web-test) run inside the pytest suite, once web/setup.sh has installed
# Chromium and the npm packages they need.
test: $(STAMP)
	bash web/setup.sh
	bash tflite/arm64/setup.sh
	$(PY) -m pytest --durations=25
	bash android_demo/core/test.sh

# The inner loop: everything but the slow, browser, PyTorch, ARM64 and process-starting tests
# (tests/conftest.py gives the markers); `make test` still runs them all.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser and not torch and not subprocess and not arm64" \
	  --durations=10

# The phone's kernels under qemu-aarch64: every exported variant on ARM64 LiteRT (the host's
# version and the app's), four CPU models, 1 and 2 threads, XNNPACK and builtin kernels, against
# x86 (about 15 minutes on 2 cores); `make test` runs the short form, tests/test_arm64.py.
arm64-test: $(STAMP)
	bash tflite/arm64/setup.sh
	$(PY) tflite/arm64/check.py
	$(PY) -m pytest tests/test_arm64.py

android-test:
	bash android_demo/core/test.sh

# The browser demo (web/): LiteRT.js and playwright-core from web/package-lock.json (npm ci).
web:
	bash web/setup.sh npm

# Its tests in Debian's Chromium, headless (installed with apt-get when missing).
web-test: $(STAMP)
	bash web/setup.sh
	$(PY) -m pytest tests/test_web.py

lint: $(STAMP)
	$(BIN)/ruff check fastscnn_tf tests benchmarks tflite
	$(BIN)/ruff format --check fastscnn_tf tests benchmarks tflite

clean:
	rm -rf $(VENV) runs build *.egg-info
