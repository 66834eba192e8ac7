# Every target creates .venv first if it is missing, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-ner test docs bench bench-ner setup clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# An older runtime that apps still ship, in its own venv (tflite-runtime 2.14 needs numpy<2):
# the compatibility tests load every exported .tflite file in it.
TFLITE214 := .venv-tflite214
TFLITE214_STAMP := $(TFLITE214)/.installed

$(TFLITE214_STAMP):
	test -x $(TFLITE214)/bin/python || $(PYTHON) -m venv $(TFLITE214)
	$(TFLITE214)/bin/python -m pip install --quiet "tflite-runtime==2.14.0" "numpy<2"
	touch $(TFLITE214_STAMP)

# MediaPipe Tasks (the `mediapipe` export target's runtime) and tflite-support 0.4.4 (the
# reference metadata writer and reader the tests compare nlpkit's metadata with), in their own
# venv: tflite-support needs protobuf<4, which TensorFlow 2.21 in .venv cannot share. Its
# metadata code loads libusb-1.0, a Debian package, installed here (as root) when missing.
MEDIAPIPE := .venv-mediapipe
MEDIAPIPE_STAMP := $(MEDIAPIPE)/.installed

$(MEDIAPIPE_STAMP):
	ldconfig -p | grep -q libusb-1.0 || (apt-get update && apt-get install -y libusb-1.0-0)
	test -x $(MEDIAPIPE)/bin/python || $(PYTHON) -m venv $(MEDIAPIPE)
	$(MEDIAPIPE)/bin/python -m pip install --quiet --upgrade pip
	$(MEDIAPIPE)/bin/python -m pip install --quiet "mediapipe==1.2.3" "tflite-support==0.4.4"
	touch $(MEDIAPIPE_STAMP)

# LiteRT.js (@litertjs/core, the `web` export target's runtime) for the tests that run web
# files under Node: `npm ci` installs exactly what web/package-lock.json pins.
WEB_STAMP := web/node_modules/.installed

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $(WEB_STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m recipes.sentiment_gru --output-dir saved_models/sentiment --tokenizer regex \
		--targets litert,web,mediapipe
	$(VENV)/bin/nlpkit predict saved_models/sentiment --format tflite \
		"a gripping , beautifully acted film" \
		"the plot is a dull , lifeless mess" \
		""

demo-ner: $(STAMP)
	$(PY) -m recipes.ner_bilstm_crf --output-dir saved_models/ner
	$(VENV)/bin/nlpkit predict saved_models/ner --format tflite \
		"Maria Keller , the chief executive of Helios Bank , flew to Oslo on Monday ." \
		""

# One pytest worker per core; --dist loadfile keeps each test file on one worker, so module
# and session fixtures (the tiny trained bundles) are built at most once per worker.
# --durations lists the 30 slowest tests and fixtures, so every CI log shows where the time goes.
# The docs are built first (seconds, so a broken link fails fast): --strict turns every MkDocs
# warning (a broken link or anchor, an API reference that does not resolve, a benchmark result
# without its provenance) into a failed build.
test: $(STAMP) $(TFLITE214_STAMP) $(MEDIAPIPE_STAMP) $(WEB_STAMP)
	$(DOCS_BUILD)
	$(PY) -m pytest -q -n auto --dist loadfile --durations=30

# The documentation site (mkdocs.yml, docs/) into .site/, which git ignores.
DOCS_BUILD = $(PY) -m mkdocs build --strict --site-dir .site

docs: $(STAMP)
	$(DOCS_BUILD)

bench: $(STAMP)
	$(PY) benchmarks/sentiment.py --data-dir $${NLPKIT_DATA:-../shared/data}

bench-ner: $(STAMP)
	$(PY) benchmarks/ner.py --data-dir $${NLPKIT_DATA:-../shared/data}

clean:
	rm -rf $(VENV) $(TFLITE214) $(MEDIAPIPE) web/node_modules saved_models/sentiment saved_models/ner .pytest_cache .site
