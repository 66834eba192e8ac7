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

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m recipes.sentiment_gru --output-dir saved_models/sentiment
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
test: $(STAMP) $(TFLITE214_STAMP)
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
	rm -rf $(VENV) $(TFLITE214) saved_models/sentiment saved_models/ner .pytest_cache .site
